use super::causal_conv::{CausalCache, CausalConv3d};
use super::config::VaeConfig;
use super::mid_block::MidBlock;
use super::norm::RmsNorm;
use super::patchify::unpatchify;
use super::resample::{Resample, ResampleMode};
use super::resnet::ResidualBlock;
use super::shortcut::DupUp3d;
use crate::ops::Kernels;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// diffusers' `WanResidualUpBlock`: resnets and an upsampler, plus a [`DupUp3d`] shortcut around
/// them when the block upsamples.
#[derive(Debug, Clone)]
pub struct ResidualUpBlock {
    resnets: Vec<ResidualBlock>,
    upsampler: Option<Resample>,
    avg_shortcut: Option<DupUp3d>,
}

impl ResidualUpBlock {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        num_res_blocks: usize,
        temporal: bool,
        up: bool,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let resnets = (0..=num_res_blocks)
            .map(|j| {
                ResidualBlock::new(
                    if j == 0 { in_dim } else { out_dim },
                    out_dim,
                    vb.pp("resnets").pp(j),
                    kernels,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let (upsampler, avg_shortcut) = if up {
            let mode = if temporal {
                ResampleMode::Upsample3d
            } else {
                ResampleMode::Upsample2d
            };
            let upsampler = Resample::new(out_dim, mode, out_dim, vb.pp("upsampler"), kernels)?;
            (
                Some(upsampler),
                Some(DupUp3d::new(
                    in_dim,
                    out_dim,
                    if temporal { 2 } else { 1 },
                    2,
                )?),
            )
        } else {
            (None, None)
        };
        Ok(Self {
            resnets,
            upsampler,
            avg_shortcut,
        })
    }

    pub fn forward(
        &self,
        x: &Tensor,
        cache: &mut CausalCache,
        first_chunk: bool,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        for resnet in &self.resnets {
            h = resnet.forward(&h, cache)?;
        }
        if let Some(upsampler) = &self.upsampler {
            h = upsampler.forward(&h, cache, first_chunk)?;
        }
        match &self.avg_shortcut {
            Some(shortcut) => h + shortcut.forward(x, first_chunk)?,
            None => Ok(h),
        }
    }
}

/// diffusers' `WanDecoder3d` (Wan2.2 residual layout).
#[derive(Debug, Clone)]
pub struct Decoder3d {
    conv_in: CausalConv3d,
    mid_block: MidBlock,
    up_blocks: Vec<ResidualUpBlock>,
    norm_out: RmsNorm,
    conv_out: CausalConv3d,
}

impl Decoder3d {
    /// Builds from the `decoder.` weights.
    pub fn new(cfg: &VaeConfig, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        let base = cfg.decoder_base_dim();
        let stages = cfg.dim_mult.len();
        let dims: Vec<usize> = std::iter::once(cfg.dim_mult[stages - 1])
            .chain(cfg.dim_mult.iter().rev().copied())
            .map(|u| base * u)
            .collect();
        let temperal_upsample = cfg.temperal_upsample();
        let up_blocks = (0..stages)
            .map(|i| {
                let up = i != stages - 1;
                let temporal = up && temperal_upsample[i];
                let vb = vb.pp("up_blocks").pp(i);
                ResidualUpBlock::new(
                    dims[i],
                    dims[i + 1],
                    cfg.num_res_blocks,
                    temporal,
                    up,
                    vb,
                    kernels,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let out_dim = dims[stages];
        Ok(Self {
            conv_in: CausalConv3d::new(
                cfg.z_dim,
                dims[0],
                [3, 3, 3],
                [1, 1, 1],
                1,
                vb.pp("conv_in"),
                kernels,
            )?,
            mid_block: MidBlock::new(dims[0], 1, vb.pp("mid_block"), kernels)?,
            up_blocks,
            norm_out: RmsNorm::new(out_dim, false, vb.pp("norm_out"))?,
            conv_out: CausalConv3d::new(
                out_dim,
                cfg.out_channels,
                [3, 3, 3],
                [1, 1, 1],
                1,
                vb.pp("conv_out"),
                kernels,
            )?,
        })
    }

    /// One chunk of latent frames `[B, T, z, h, w]` -> patchified pixel frames.
    pub fn forward(
        &self,
        x: &Tensor,
        cache: &mut CausalCache,
        first_chunk: bool,
    ) -> Result<Tensor> {
        let x = self.conv_in.forward_cached(x, cache)?;
        let mut x = self.mid_block.forward(&x, cache)?;
        for block in &self.up_blocks {
            x = block.forward(&x, cache, first_chunk)?;
        }
        let x = self.norm_out.forward_silu(&x)?;
        self.conv_out.forward_cached(&x, cache)
    }
}

/// The decoding half of the VAE: `post_quant_conv` and `decoder.*`.
#[derive(Debug, Clone)]
pub struct WanVaeDecoder {
    post_quant_conv: CausalConv3d,
    decoder: Decoder3d,
    z_dim: usize,
    patch_size: usize,
    /// Pixels per latent along each side.
    spatial_factor: usize,
    dtype: DType,
    device: Device,
}

impl WanVaeDecoder {
    /// `vb` is the VAE's root (it holds both `decoder.*` and `post_quant_conv`).
    pub fn new(cfg: &VaeConfig, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        cfg.validate()?;
        let z = cfg.z_dim;
        Ok(Self {
            post_quant_conv: CausalConv3d::new(
                z,
                z,
                [1, 1, 1],
                [0, 0, 0],
                1,
                vb.pp("post_quant_conv"),
                kernels,
            )?,
            decoder: Decoder3d::new(cfg, vb.pp("decoder"), kernels)?,
            z_dim: z,
            patch_size: cfg.patch_size(),
            spatial_factor: cfg.scale_factor_spatial,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    /// Decodes `z` `[B, z, T, h, w]` (not normalised) one latent frame per decoder call and hands
    /// each chunk of frames `[B, 3, n, 16h, 16w]`, clamped to [-1, 1] and in the weights' dtype,
    /// to `on_chunk` together with the index of its first frame: 1 frame for the first latent
    /// frame, then 4 for each further one. An error from `on_chunk` stops decoding and is returned.
    pub fn decode_streaming<E: From<candle_core::Error>>(
        &self,
        z: &Tensor,
        on_chunk: &mut dyn FnMut(usize, Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let z = self.prepare(z)?;
        let mut next_frame = 0;
        self.each_latent_frame(&z, &mut |x| {
            let chunk = unpatchify(&x, self.patch_size)?.clamp(-1f32, 1f32)?;
            let n = chunk.dim(2)?;
            on_chunk(next_frame, chunk)?;
            next_frame += n;
            Ok(())
        })
    }

    /// `z` `[B, z, T, h, w]` on the decoder's device and dtype, frames first `[B, T, z, h, w]`.
    pub(super) fn prepare(&self, z: &Tensor) -> Result<Tensor> {
        let (_, channels, _, _, _) = z.dims5()?;
        if channels != self.z_dim {
            candle_core::bail!(
                "VAE decode: latents have {channels} channels, expected {}",
                self.z_dim
            )
        }
        super::check_dtype_on_device(self.dtype, &self.device)?;
        z.to_device(&self.device)?
            .to_dtype(self.dtype)?
            .permute((0, 2, 1, 3, 4))
    }

    /// Decodes prepared latents `[B, T, z, h, w]` one latent frame per decoder call, with
    /// causal caches of their own, handing each call's patchified frames `[B, n, C, H, W]` on.
    pub(super) fn each_latent_frame<E: From<candle_core::Error>>(
        &self,
        z: &Tensor,
        on_frames: &mut dyn FnMut(Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut cache = CausalCache::new();
        for i in 0..z.dim(1)? {
            cache.start_chunk();
            let x = self.post_quant_conv.forward(&z.narrow(1, i, 1)?)?;
            on_frames(self.decoder.forward(&x, &mut cache, i == 0)?)?;
        }
        Ok(())
    }

    pub(super) fn patch_size(&self) -> usize {
        self.patch_size
    }

    pub(super) fn spatial_factor(&self) -> usize {
        self.spatial_factor
    }

    /// [`Self::decode_streaming`] collected into one `[B, 3, F, H, W]` clip.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let mut chunks = Vec::new();
        self.decode_streaming(z, &mut |_, chunk| {
            chunks.push(chunk);
            Ok::<(), candle_core::Error>(())
        })?;
        Tensor::cat(&chunks, 2)
    }
}
