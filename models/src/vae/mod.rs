//! The Wan2.2 VAE (diffusers `AutoencoderKLWan` with the Wan2.2 config): causal 3D convolutions,
//! encoder, streaming decoder.
//!
//! Weight names are diffusers' (`encoder.*`, `quant_conv`, `post_quant_conv`, `decoder.*`),
//! rooted at the `VarBuilder` given. Computation runs in the `VarBuilder`'s dtype, with norm
//! statistics and attention softmax in f32.

mod attention;
mod causal_conv;
mod config;
mod decoder;
mod encoder;
mod mid_block;
mod norm;
mod patchify;
mod resample;
mod resnet;
mod shortcut;
mod tiled;

pub use causal_conv::{CausalCache, CausalConv3d, CACHE_T};
pub use config::{VaeConfig, WAN22_LATENTS_MEAN, WAN22_LATENTS_STD};
pub use decoder::WanVaeDecoder;
pub use encoder::WanVaeEncoder;
pub use patchify::{patchify, unpatchify};
pub use tiled::Tiling;

use crate::ops::{fused_kernels, Kernels};
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// The whole VAE, or only its decoder (text-to-video never encodes).
#[derive(Debug, Clone)]
pub struct WanVae {
    encoder: Option<WanVaeEncoder>,
    decoder: WanVaeDecoder,
    config: VaeConfig,
}

impl WanVae {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        Self::new_with_kernels(cfg, vb, &fused_kernels())
    }

    /// [`Self::new`] with other [`Kernels`] than the fused inference ones.
    pub fn new_with_kernels(
        cfg: &VaeConfig,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        Ok(Self {
            encoder: Some(WanVaeEncoder::new(cfg, vb.clone(), kernels)?),
            decoder: WanVaeDecoder::new(cfg, vb, kernels)?,
            config: cfg.clone(),
        })
    }

    /// Loads only `post_quant_conv` and `decoder.*`; [`Self::encode`] then fails.
    pub fn new_decoder_only(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            encoder: None,
            decoder: WanVaeDecoder::new(cfg, vb, &fused_kernels())?,
            config: cfg.clone(),
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    pub fn encoder(&self) -> Option<&WanVaeEncoder> {
        self.encoder.as_ref()
    }

    pub fn decoder(&self) -> &WanVaeDecoder {
        &self.decoder
    }

    /// See [`WanVaeEncoder::encode`].
    pub fn encode(&self, video: &Tensor) -> Result<Tensor> {
        match &self.encoder {
            Some(encoder) => encoder.encode(video),
            None => candle_core::bail!("VAE encode: this VAE was loaded without its encoder"),
        }
    }

    /// See [`WanVaeDecoder::decode_streaming`].
    pub fn decode_streaming(
        &self,
        z: &Tensor,
        on_chunk: &mut dyn FnMut(usize, Tensor) -> crate::Result<()>,
    ) -> crate::Result<()> {
        self.decoder.decode_streaming(z, on_chunk)
    }

    /// See [`WanVaeDecoder::decode_tiled_streaming`].
    pub fn decode_tiled_streaming(
        &self,
        z: &Tensor,
        tiling: Tiling,
        on_chunk: &mut dyn FnMut(usize, Tensor) -> crate::Result<()>,
    ) -> crate::Result<()> {
        self.decoder.decode_tiled_streaming(z, tiling, on_chunk)
    }

    /// See [`WanVaeDecoder::decode`].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.decode(z)
    }

    /// `(mu - mean) / std` per channel, in f32: the posterior mean in the transformer's space.
    /// Written as `(mu - mean) * (1/std)`, as the diffusers pipelines do, to round the same way.
    pub fn normalize_latents(&self, mu: &Tensor) -> Result<Tensor> {
        let (mean, inv_std) = self.latent_stats(mu)?;
        mu.to_dtype(DType::F32)?
            .broadcast_sub(&mean)?
            .broadcast_mul(&inv_std)
    }

    /// `z * std + mean` per channel, in f32 (written `z / (1/std) + mean`, as in diffusers): the
    /// inverse of [`Self::normalize_latents`].
    pub fn denormalize_latents(&self, z: &Tensor) -> Result<Tensor> {
        let (mean, inv_std) = self.latent_stats(z)?;
        z.to_dtype(DType::F32)?
            .broadcast_div(&inv_std)?
            .broadcast_add(&mean)
    }

    /// Mean and `1/std` in f32, shaped `[1, z, 1, 1, 1]` for latents `[B, z, T, h, w]`.
    fn latent_stats(&self, latents: &Tensor) -> Result<(Tensor, Tensor)> {
        let z = self.config.z_dim;
        if latents.rank() != 5 || latents.dim(1)? != z {
            candle_core::bail!(
                "VAE latents: shape {:?}, expected [B, {z}, T, h, w]",
                latents.dims()
            )
        }
        let device = latents.device();
        let mean: Vec<f32> = self.config.latents_mean.iter().map(|&m| m as f32).collect();
        let inv_std: Vec<f32> = self
            .config
            .latents_std
            .iter()
            .map(|&s| 1.0 / s as f32)
            .collect();
        Ok((
            Tensor::from_vec(mean, (1, z, 1, 1, 1), device)?,
            Tensor::from_vec(inv_std, (1, z, 1, 1, 1), device)?,
        ))
    }
}

/// candle 0.11's CPU convolutions have no bf16 kernel: say so rather than fail inside the first
/// convolution. (Building the model in bf16 on the CPU is fine, e.g. to check a checkpoint's layout.)
fn check_dtype_on_device(dtype: DType, device: &candle_core::Device) -> Result<()> {
    if device.is_cpu() && dtype == DType::BF16 {
        candle_core::bail!(
            "the VAE can't run in bf16 on the CPU (no bf16 convolution there): load it in f32"
        )
    }
    Ok(())
}

#[cfg(test)]
mod tests;
