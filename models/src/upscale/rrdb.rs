//! RRDBNet (ESRGAN's generator, Real-ESRGAN's `RealESRGAN_x4plus` and `RealESRGAN_x2plus`):
//! residual-in-residual dense blocks at the input resolution, then two nearest x2 upsamplings
//! with convolutions. The x2 and x1 variants see a pixel-unshuffled input (4 and 16 times the
//! channels at a half and a quarter of the size), so the same x4 body gives x2 and x1.
//!
//! Weight names are basicsr's (`conv_first`, `body.{i}.rdb{1,2,3}.conv{1..5}`, `conv_body`,
//! `conv_up1`, `conv_up2`, `conv_hr`, `conv_last`).

use crate::ops::{fused_kernels, Conv2d, Kernels};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

const LEAKY_SLOPE: f64 = 0.2;
/// The residual scaling of the dense blocks.
const RESIDUAL_SCALE: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrdbConfig {
    pub num_in_ch: usize,
    pub num_out_ch: usize,
    /// 4, 2 or 1.
    pub scale: usize,
    pub num_feat: usize,
    pub num_block: usize,
    pub num_grow_ch: usize,
}

impl RrdbConfig {
    /// How much the input is pixel-unshuffled before `conv_first`.
    pub fn unshuffle(&self) -> usize {
        4 / self.scale
    }
}

fn lrelu(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::leaky_relu(x, LEAKY_SLOPE)
}

fn conv3(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
    kernels: &Arc<dyn Kernels>,
) -> Result<Conv2d> {
    Conv2d::new(in_dim, out_dim, 3, 1, 1, vb, kernels)
}

#[derive(Debug, Clone)]
struct ResidualDenseBlock {
    convs: Vec<Conv2d>,
}

impl ResidualDenseBlock {
    fn new(feat: usize, grow: usize, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        let convs = (0..5)
            .map(|i| {
                let out = if i == 4 { feat } else { grow };
                conv3(
                    feat + i * grow,
                    out,
                    vb.pp(format!("conv{}", i + 1)),
                    kernels,
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self { convs })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut features = vec![x.clone()];
        for conv in &self.convs[..4] {
            let y = lrelu(&conv.forward(&Tensor::cat(&features, 1)?)?)?;
            features.push(y);
        }
        let last = self.convs[4].forward(&Tensor::cat(&features, 1)?)?;
        (last * RESIDUAL_SCALE)? + x
    }
}

#[derive(Debug, Clone)]
struct Rrdb {
    blocks: [ResidualDenseBlock; 3],
}

impl Rrdb {
    fn new(feat: usize, grow: usize, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        let block =
            |i: usize| ResidualDenseBlock::new(feat, grow, vb.pp(format!("rdb{i}")), kernels);
        Ok(Self {
            blocks: [block(1)?, block(2)?, block(3)?],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = x.clone();
        for block in &self.blocks {
            out = block.forward(&out)?;
        }
        (out * RESIDUAL_SCALE)? + x
    }
}

#[derive(Debug, Clone)]
pub struct RrdbNet {
    conv_first: Conv2d,
    body: Vec<Rrdb>,
    conv_body: Conv2d,
    conv_up1: Conv2d,
    conv_up2: Conv2d,
    conv_hr: Conv2d,
    conv_last: Conv2d,
    config: RrdbConfig,
}

impl RrdbNet {
    pub fn new(cfg: &RrdbConfig, vb: VarBuilder) -> Result<Self> {
        let k = &fused_kernels();
        let feat = cfg.num_feat;
        let in_ch = cfg.num_in_ch * cfg.unshuffle() * cfg.unshuffle();
        let body = (0..cfg.num_block)
            .map(|i| Rrdb::new(feat, cfg.num_grow_ch, vb.pp("body").pp(i), k))
            .collect::<Result<_>>()?;
        Ok(Self {
            conv_first: conv3(in_ch, feat, vb.pp("conv_first"), k)?,
            body,
            conv_body: conv3(feat, feat, vb.pp("conv_body"), k)?,
            conv_up1: conv3(feat, feat, vb.pp("conv_up1"), k)?,
            conv_up2: conv3(feat, feat, vb.pp("conv_up2"), k)?,
            conv_hr: conv3(feat, feat, vb.pp("conv_hr"), k)?,
            conv_last: conv3(feat, cfg.num_out_ch, vb.pp("conv_last"), k)?,
            config: *cfg,
        })
    }

    pub fn config(&self) -> &RrdbConfig {
        &self.config
    }

    /// `x`: `[N, C, H, W]` in [0, 1] (H and W multiples of [`RrdbConfig::unshuffle`]);
    /// returns `[N, C, H * scale, W * scale]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let unshuffle = self.config.unshuffle();
        let feat = if unshuffle > 1 {
            candle_nn::ops::pixel_unshuffle(x, unshuffle)?
        } else {
            x.clone()
        };
        let feat = self.conv_first.forward(&feat)?;
        let mut body = feat.clone();
        for block in &self.body {
            body = block.forward(&body)?;
        }
        let feat = (feat + self.conv_body.forward(&body)?)?;
        let up = |conv: &Conv2d, x: &Tensor| -> Result<Tensor> {
            let (_, _, h, w) = x.dims4()?;
            lrelu(&conv.forward(&x.upsample_nearest2d(2 * h, 2 * w)?)?)
        };
        let feat = up(&self.conv_up1, &feat)?;
        let feat = up(&self.conv_up2, &feat)?;
        self.conv_last
            .forward(&lrelu(&self.conv_hr.forward(&feat)?)?)
    }
}
