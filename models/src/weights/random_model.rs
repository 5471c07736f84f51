//! Models of a given configuration with [`RandomWeights`]: the real-size architecture (or a
//! tiny one of the same shape) without a download, for benchmarks and tests of timing and
//! memory. The outputs mean nothing; only their shapes and costs are real.

use super::RandomWeights;
use crate::dit::{DitConfig, WanTransformer};
use crate::text::umt5::{Umt5Config, Umt5Encoder};
use crate::vae::{VaeConfig, WanVae};
use candle_core::{DType, Device, Result};

/// The configurations of the three models of one architecture.
#[derive(Debug, Clone)]
pub struct ModelConfigs {
    pub transformer: DitConfig,
    pub vae: VaeConfig,
    pub text_encoder: Umt5Config,
}

impl ModelConfigs {
    /// Wan2.2 TI2V-5B's own (the transformer alone is 5B parameters: a large GPU).
    pub fn wan22_ti2v_5b() -> Self {
        ModelConfigs {
            transformer: DitConfig::wan22_ti2v_5b(),
            vae: VaeConfig::wan22_ti2v_5b(),
            text_encoder: Umt5Config::umt5_xxl(),
        }
    }

    /// A small configuration of the same architecture (same latent channels, patching and
    /// VAE compression), practical on a CPU.
    pub fn tiny() -> Self {
        ModelConfigs {
            transformer: DitConfig {
                num_attention_heads: 4,
                attention_head_dim: 32,
                text_dim: 64,
                ffn_dim: 256,
                num_layers: 2,
                ..DitConfig::wan22_ti2v_5b()
            },
            vae: VaeConfig {
                base_dim: 16,
                decoder_base_dim: Some(32),
                ..VaeConfig::wan22_ti2v_5b()
            },
            text_encoder: Umt5Config {
                vocab_size: 1024,
                d_model: 64,
                d_kv: 16,
                d_ff: 128,
                num_layers: 2,
                num_heads: 4,
                ..Umt5Config::umt5_xxl()
            },
        }
    }
}

impl RandomWeights {
    pub fn transformer(cfg: &DitConfig, dtype: DType, device: &Device) -> Result<WanTransformer> {
        WanTransformer::new(cfg, Self::var_builder(dtype, device))
    }

    /// Encoder and decoder.
    pub fn vae(cfg: &VaeConfig, dtype: DType, device: &Device) -> Result<WanVae> {
        WanVae::new(cfg, Self::var_builder(dtype, device))
    }

    /// A TAEHV tiny decoder (the fast decoder) of `cfg`'s size.
    pub fn tiny_decoder(
        cfg: &crate::taehv::TaehvConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<crate::taehv::TaehvDecoder> {
        crate::taehv::TaehvDecoder::from_var_builder(
            cfg,
            Self::var_builder(dtype, device).pp("decoder"),
        )
    }

    pub fn vae_decoder(cfg: &VaeConfig, dtype: DType, device: &Device) -> Result<WanVae> {
        WanVae::new_decoder_only(cfg, Self::var_builder(dtype, device))
    }

    pub fn text_encoder(cfg: &Umt5Config, dtype: DType, device: &Device) -> Result<Umt5Encoder> {
        Umt5Encoder::new(cfg, Self::var_builder(dtype, device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    #[test]
    fn the_tiny_random_model_encodes_a_prompt_of_its_configured_width() {
        let cfg = ModelConfigs::tiny();
        let dev = Device::Cpu;
        let text = RandomWeights::text_encoder(&cfg.text_encoder, DType::F32, &dev).unwrap();
        let ids = Tensor::new(&[[3u32, 4, 5]], &dev).unwrap();
        let out = text.forward(&ids).unwrap();
        assert_eq!(out.dims(), &[1, 3, cfg.text_encoder.d_model]);
        let values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
        assert!(RandomWeights::transformer(&cfg.transformer, DType::F32, &dev).is_ok());
        assert!(RandomWeights::vae_decoder(&cfg.vae, DType::F32, &dev).is_ok());
    }
}
