use super::causal_conv::{CausalCache, CausalConv3d};
use super::config::VaeConfig;
use super::mid_block::MidBlock;
use super::norm::RmsNorm;
use super::patchify::patchify;
use super::resample::{Resample, ResampleMode};
use super::resnet::ResidualBlock;
use super::shortcut::AvgDown3d;
use crate::ops::Kernels;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// Frames per encoder call after the first frame, which is encoded alone.
const ENCODE_CHUNK_FRAMES: usize = 4;

/// diffusers' `WanResidualDownBlock`: resnets and a downsampler, plus an [`AvgDown3d`] shortcut
/// around all of them.
#[derive(Debug, Clone)]
pub struct ResidualDownBlock {
    resnets: Vec<ResidualBlock>,
    downsampler: Option<Resample>,
    avg_shortcut: AvgDown3d,
}

impl ResidualDownBlock {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        num_res_blocks: usize,
        temporal: bool,
        down: bool,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let avg_shortcut = AvgDown3d::new(
            in_dim,
            out_dim,
            if temporal { 2 } else { 1 },
            if down { 2 } else { 1 },
        )?;
        let resnets = (0..num_res_blocks)
            .map(|j| {
                ResidualBlock::new(
                    if j == 0 { in_dim } else { out_dim },
                    out_dim,
                    vb.pp("resnets").pp(j),
                    kernels,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let downsampler = if down {
            let mode = if temporal {
                ResampleMode::Downsample3d
            } else {
                ResampleMode::Downsample2d
            };
            Some(Resample::new(
                out_dim,
                mode,
                out_dim,
                vb.pp("downsampler"),
                kernels,
            )?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            downsampler,
            avg_shortcut,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let mut h = x.clone();
        for resnet in &self.resnets {
            h = resnet.forward(&h, cache)?;
        }
        if let Some(downsampler) = &self.downsampler {
            h = downsampler.forward(&h, cache, false)?;
        }
        h + self.avg_shortcut.forward(x)?
    }
}

/// diffusers' `WanEncoder3d` (Wan2.2 residual layout).
#[derive(Debug, Clone)]
pub struct Encoder3d {
    conv_in: CausalConv3d,
    down_blocks: Vec<ResidualDownBlock>,
    mid_block: MidBlock,
    norm_out: RmsNorm,
    conv_out: CausalConv3d,
}

impl Encoder3d {
    /// Builds from the `encoder.` weights; outputs `2 * z_dim` channels (mean and log-variance).
    pub fn new(cfg: &VaeConfig, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        let dims: Vec<usize> = std::iter::once(1)
            .chain(cfg.dim_mult.iter().copied())
            .map(|u| cfg.base_dim * u)
            .collect();
        let stages = cfg.dim_mult.len();
        let conv_in = CausalConv3d::new(
            cfg.in_channels,
            dims[0],
            [3, 3, 3],
            [1, 1, 1],
            1,
            vb.pp("conv_in"),
            kernels,
        )?;
        let down_blocks = (0..stages)
            .map(|i| {
                let last = i == stages - 1;
                let temporal = !last && cfg.temperal_downsample[i];
                let vb = vb.pp("down_blocks").pp(i);
                ResidualDownBlock::new(
                    dims[i],
                    dims[i + 1],
                    cfg.num_res_blocks,
                    temporal,
                    !last,
                    vb,
                    kernels,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let out_dim = dims[stages];
        Ok(Self {
            conv_in,
            down_blocks,
            mid_block: MidBlock::new(out_dim, 1, vb.pp("mid_block"), kernels)?,
            norm_out: RmsNorm::new(out_dim, false, vb.pp("norm_out"))?,
            conv_out: CausalConv3d::new(
                out_dim,
                2 * cfg.z_dim,
                [3, 3, 3],
                [1, 1, 1],
                1,
                vb.pp("conv_out"),
                kernels,
            )?,
        })
    }

    /// One chunk `[B, T, C, H, W]` (patchified pixels) -> its latent frames.
    pub fn forward(&self, x: &Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let mut x = self.conv_in.forward_cached(x, cache)?;
        for block in &self.down_blocks {
            x = block.forward(&x, cache)?;
        }
        let x = self.mid_block.forward(&x, cache)?;
        let x = self.norm_out.forward_silu(&x)?;
        self.conv_out.forward_cached(&x, cache)
    }
}

/// The encoding half of the VAE: `encoder.*` and `quant_conv`.
#[derive(Debug, Clone)]
pub struct WanVaeEncoder {
    encoder: Encoder3d,
    quant_conv: CausalConv3d,
    z_dim: usize,
    patch_size: usize,
    in_channels: usize,
    scale_factor_spatial: usize,
    dtype: DType,
    device: Device,
}

impl WanVaeEncoder {
    /// `vb` is the VAE's root (it holds both `encoder.*` and `quant_conv`).
    pub fn new(cfg: &VaeConfig, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        cfg.validate()?;
        let z2 = 2 * cfg.z_dim;
        Ok(Self {
            encoder: Encoder3d::new(cfg, vb.pp("encoder"), kernels)?,
            quant_conv: CausalConv3d::new(
                z2,
                z2,
                [1, 1, 1],
                [0, 0, 0],
                1,
                vb.pp("quant_conv"),
                kernels,
            )?,
            z_dim: cfg.z_dim,
            patch_size: cfg.patch_size(),
            in_channels: cfg.in_channels,
            scale_factor_spatial: cfg.scale_factor_spatial,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// `video` `[B, 3, F, H, W]` in [-1, 1] with F = 4k+1 and H, W multiples of 16 -> the
    /// posterior mean `[B, z, k+1, H/16, W/16]` (not normalised), in the weights' dtype and on
    /// their device.
    ///
    /// The first frame is encoded alone, then 4 frames per call, the causal caches carried over.
    pub fn encode(&self, video: &Tensor) -> Result<Tensor> {
        let (_, c, f, h, w) = video.dims5()?;
        let p = self.patch_size;
        let s = self.scale_factor_spatial;
        if c * p * p != self.in_channels {
            candle_core::bail!(
                "VAE encode: {c} channels, expected {}",
                self.in_channels / (p * p)
            )
        }
        if f == 0 || (f - 1) % ENCODE_CHUNK_FRAMES != 0 {
            candle_core::bail!(
                "VAE encode: {f} frames; the frame count must be 4k+1 (1, 5, 9, ...)"
            )
        }
        if h % s != 0 || w % s != 0 {
            candle_core::bail!(
                "VAE encode: {w}x{h} pixels; width and height must be multiples of {s}"
            )
        }
        super::check_dtype_on_device(self.dtype, &self.device)?;
        let x = patchify(&video.to_device(&self.device)?.to_dtype(self.dtype)?, p)?;
        let mut cache = CausalCache::new();
        let mut latents = Vec::with_capacity(1 + f / ENCODE_CHUNK_FRAMES);
        let mut start = 0;
        while start < f {
            let len = if start == 0 { 1 } else { ENCODE_CHUNK_FRAMES };
            cache.start_chunk();
            latents.push(
                self.encoder
                    .forward(&x.narrow(1, start, len)?, &mut cache)?,
            );
            start += len;
        }
        let moments = self.quant_conv.forward(&Tensor::cat(&latents, 1)?)?;
        moments
            .narrow(2, 0, self.z_dim)?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }
}
