//! SRVGGNetCompact (Real-ESRGAN's `realesr-animevideov3`, `realesr-general-x4v3`): a plain stack
//! of 3x3 convolutions with PReLU at the input resolution, a pixel shuffle, and the
//! nearest-upsampled input added back, so the network only learns the detail.
//!
//! Weight names are Real-ESRGAN's: `body.{2i}` the convolutions, `body.{2i+1}` the PReLUs.

use crate::ops::{fused_kernels, Conv2d};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactConfig {
    pub num_in_ch: usize,
    pub num_out_ch: usize,
    pub num_feat: usize,
    /// Convolutions between the first and the last.
    pub num_conv: usize,
    pub upscale: usize,
}

/// `max(0, x) + weight * min(0, x)` with one slope per channel of `x` `[N, C, H, W]`.
#[derive(Debug, Clone)]
struct PRelu {
    weight: Tensor,
}

impl PRelu {
    fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get(channels, "weight")?.reshape((1, channels, 1, 1))?;
        Ok(Self { weight })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let zeros = x.zeros_like()?;
        x.maximum(&zeros)?
            .add(&x.minimum(&zeros)?.broadcast_mul(&self.weight)?)
    }
}

#[derive(Debug, Clone)]
pub struct SrVggNetCompact {
    convs: Vec<Conv2d>,
    activations: Vec<PRelu>,
    config: CompactConfig,
}

impl SrVggNetCompact {
    pub fn new(cfg: &CompactConfig, vb: VarBuilder) -> Result<Self> {
        let kernels = fused_kernels();
        let body = vb.pp("body");
        let mut convs = Vec::with_capacity(cfg.num_conv + 2);
        let mut activations = Vec::with_capacity(cfg.num_conv + 1);
        let last_out = cfg.num_out_ch * cfg.upscale * cfg.upscale;
        for i in 0..cfg.num_conv + 2 {
            let in_dim = if i == 0 { cfg.num_in_ch } else { cfg.num_feat };
            let out_dim = if i == cfg.num_conv + 1 {
                last_out
            } else {
                cfg.num_feat
            };
            convs.push(Conv2d::new(
                in_dim,
                out_dim,
                3,
                1,
                1,
                body.pp(2 * i),
                &kernels,
            )?);
            if i <= cfg.num_conv {
                activations.push(PRelu::new(cfg.num_feat, body.pp(2 * i + 1))?);
            }
        }
        Ok(Self {
            convs,
            activations,
            config: *cfg,
        })
    }

    pub fn config(&self) -> &CompactConfig {
        &self.config
    }

    /// `x`: `[N, C, H, W]` in [0, 1]; returns `[N, C, H * s, W * s]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = x.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            out = conv.forward(&out)?;
            if let Some(act) = self.activations.get(i) {
                out = act.forward(&out)?;
            }
        }
        let s = self.config.upscale;
        let out = candle_nn::ops::pixel_shuffle(&out, s)?;
        let (_, _, h, w) = x.dims4()?;
        out.add(&x.upsample_nearest2d(h * s, w * s)?)
    }
}
