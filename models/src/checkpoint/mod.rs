//! Checkpoint loading: find the component files, detect their layout from tensor names, read
//! their hyper-parameters, and build the layers through one canonical naming scheme, reporting
//! missing, mis-shaped and leftover tensors.

pub mod configs;
pub mod declared;
pub mod files;
pub mod layout;
mod preview_files;
pub mod validate;

pub use declared::declared_sampling;
pub use files::{ComponentFiles, FoundComponents, ModelFiles, Overrides};
pub use layout::{Component, Layout, Naming};
pub use preview_files::load_latent_rgb;

use crate::dit::{DitConfig, WanTransformer};
use crate::lora::Loras;
use crate::pipeline::Models;
use crate::text::{PromptTokenizer, Umt5Config, Umt5Encoder};
use crate::vae::{VaeConfig, WanVae};
use crate::weights::stored::build_with_stored;
use crate::weights::{TensorSource, TrackedWeights};
use crate::{Error, Result};
use candle_core::{DType, Device};
use std::sync::Arc;

/// Tracked weights of one component, named canonically.
pub fn open_component(files: &ComponentFiles) -> Result<TrackedWeights> {
    open_component_with_loras(files, &Loras::none())
}

/// [`open_component`] with the changes `loras` make to this component merged in as each tensor
/// is read; an error names a LoRA tensor that does not fit.
pub fn open_component_with_loras(files: &ComponentFiles, loras: &Loras) -> Result<TrackedWeights> {
    let source = files::open_sources(&files.files)?;
    let weights = track(source, &files.layout);
    let layout = files.layout.clone();
    loras.apply(files.layout.component, weights, move |stored| {
        layout.canonical(stored)
    })
}

pub fn track(source: Arc<dyn TensorSource>, layout: &Layout) -> TrackedWeights {
    let layout = layout.clone();
    TrackedWeights::new(source, move |stored| layout.canonical(stored))
}

/// Wraps a layer-construction error with the file it came from.
fn in_file(weights: &TrackedWeights, e: candle_core::Error) -> Error {
    Error::checkpoint(weights.source().origin(), e.to_string())
}

pub fn build_transformer(
    weights: &TrackedWeights,
    cfg: &DitConfig,
    dtype: DType,
    device: &Device,
) -> Result<WanTransformer> {
    let model = build_with_stored(weights, || {
        WanTransformer::new(cfg, weights.var_builder(dtype, device))
    })
    .map_err(|e| in_file(weights, e))?;
    weights.ensure_all_used("transformer", |_| false)?;
    Ok(model)
}

/// [`build_transformer`] with the blocks kept in host memory and streamed through `slots`
/// device slots ([`crate::dit::streaming`]).
pub fn build_transformer_streamed(
    weights: &TrackedWeights,
    cfg: &DitConfig,
    dtype: DType,
    device: &Device,
    slots: usize,
) -> Result<WanTransformer> {
    let model = WanTransformer::new_streamed(
        cfg,
        weights.var_builder(dtype, device),
        weights.clone(),
        slots,
    )
    .map_err(|e| in_file(weights, e))?;
    weights.ensure_all_used("transformer", |_| false)?;
    Ok(model)
}

pub fn load_transformer_streamed(
    files: &ComponentFiles,
    loras: &Loras,
    dtype: DType,
    device: &Device,
    slots: usize,
) -> Result<WanTransformer> {
    let weights = open_component_with_loras(files, loras)?;
    let cfg = configs::transformer_config(&weights, files.config.as_deref())?;
    build_transformer_streamed(&weights, &cfg, dtype, device, slots)
}

pub fn load_transformer(
    files: &ComponentFiles,
    dtype: DType,
    device: &Device,
) -> Result<WanTransformer> {
    load_transformer_with_loras(files, &Loras::none(), dtype, device)
}

pub fn load_transformer_with_loras(
    files: &ComponentFiles,
    loras: &Loras,
    dtype: DType,
    device: &Device,
) -> Result<WanTransformer> {
    let weights = open_component_with_loras(files, loras)?;
    let cfg = configs::transformer_config(&weights, files.config.as_deref())?;
    build_transformer(&weights, &cfg, dtype, device)
}

/// Builds the VAE; with `decoder_only`, the encoder's tensors are left unread (text-to-video
/// never encodes).
pub fn build_vae(
    weights: &TrackedWeights,
    cfg: &VaeConfig,
    decoder_only: bool,
    dtype: DType,
    device: &Device,
) -> Result<WanVae> {
    cfg.validate().map_err(|e| in_file(weights, e))?;
    let vb = weights.var_builder(dtype, device);
    let vae = if decoder_only {
        WanVae::new_decoder_only(cfg, vb)
    } else {
        WanVae::new(cfg, vb)
    }
    .map_err(|e| in_file(weights, e))?;
    let encoder_part = |name: &str| {
        decoder_only && (name.starts_with("encoder.") || name.starts_with("quant_conv."))
    };
    weights.ensure_all_used("VAE", encoder_part)?;
    Ok(vae)
}

pub fn load_vae(
    files: &ComponentFiles,
    decoder_only: bool,
    dtype: DType,
    device: &Device,
) -> Result<WanVae> {
    let weights = open_component(files)?;
    let cfg = configs::vae_config(&weights, files.config.as_deref())?;
    build_vae(&weights, &cfg, decoder_only, dtype, device)
}

/// candle has no bf16 convolution on the CPU: the VAE runs in f32 there.
pub fn vae_dtype(compute: DType, device: &Device) -> DType {
    if compute == DType::BF16 && device.is_cpu() {
        DType::F32
    } else {
        compute
    }
}

/// umT5 overflows in f16; it runs in bf16 when f16 is asked for.
pub fn text_encoder_dtype(compute: DType) -> DType {
    if compute == DType::F16 {
        DType::BF16
    } else {
        compute
    }
}

pub fn build_text_encoder(
    weights: &TrackedWeights,
    cfg: &Umt5Config,
    dtype: DType,
    device: &Device,
) -> Result<Umt5Encoder> {
    let encoder = build_with_stored(weights, || {
        Umt5Encoder::new(cfg, weights.var_builder(dtype, device))
    })
    .map_err(|e| in_file(weights, e))?;
    weights.ensure_all_used("text encoder", tied_embedding)?;
    Ok(encoder)
}

/// transformers saves umT5's embedding twice (tied); one copy is read.
pub(crate) fn tied_embedding(name: &str) -> bool {
    name == "shared.weight" || name == "encoder.embed_tokens.weight"
}

pub fn load_text_encoder(
    files: &ComponentFiles,
    dtype: DType,
    device: &Device,
) -> Result<Umt5Encoder> {
    load_text_encoder_with_loras(files, &Loras::none(), dtype, device)
}

pub fn load_text_encoder_with_loras(
    files: &ComponentFiles,
    loras: &Loras,
    dtype: DType,
    device: &Device,
) -> Result<Umt5Encoder> {
    let weights = open_component_with_loras(files, loras)?;
    let cfg = configs::text_encoder_config(&weights, files.config.as_deref())?;
    build_text_encoder(&weights, &cfg, text_encoder_dtype(dtype), device)
}

pub fn load_tokenizer(path: &std::path::Path) -> Result<PromptTokenizer> {
    PromptTokenizer::from_file(path).map_err(|e| Error::Tokenizer(e.to_string()))
}

/// Loads every component of `files` for generation on `device` at `dtype`, after checking
/// (from shapes and configs alone) that the components fit together.
pub fn load_models(files: &ModelFiles, dtype: DType, device: &Device) -> Result<Models> {
    let tokenizer = load_tokenizer(&files.tokenizer)?;
    let text_weights = open_component(&files.text_encoder)?;
    let text_cfg =
        configs::text_encoder_config(&text_weights, files.text_encoder.config.as_deref())?;
    let dit_weights = open_component(&files.transformer)?;
    let dit_cfg = configs::transformer_config(&dit_weights, files.transformer.config.as_deref())?;
    let vae_weights = open_component(&files.vae)?;
    let vae_cfg = configs::vae_config(&vae_weights, files.vae.config.as_deref())?;
    check_compatible(&dit_cfg, &vae_cfg, &text_cfg)?;
    Ok(Models {
        tokenizer,
        text_encoder: build_text_encoder(
            &text_weights,
            &text_cfg,
            text_encoder_dtype(dtype),
            device,
        )?,
        transformer: build_transformer(&dit_weights, &dit_cfg, dtype, device)?,
        vae: build_vae(
            &vae_weights,
            &vae_cfg,
            false,
            vae_dtype(dtype, device),
            device,
        )?,
    })
}

/// The components must agree on the widths they hand each other.
pub fn check_compatible(dit: &DitConfig, vae: &VaeConfig, text: &Umt5Config) -> Result<()> {
    if dit.in_channels != vae.z_dim {
        return Err(Error::InvalidRequest(format!(
            "the transformer takes {} latent channels but the VAE makes {}: they are not from the same model",
            dit.in_channels, vae.z_dim
        )));
    }
    if dit.text_dim != text.d_model {
        return Err(Error::InvalidRequest(format!(
            "the transformer expects {}-wide text embeddings but the text encoder makes {}: they are not from the same model",
            dit.text_dim, text.d_model
        )));
    }
    Ok(())
}
