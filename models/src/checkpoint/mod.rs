//! Checkpoint loading: find the component files, detect their layout from tensor names, read
//! their hyper-parameters, and build the layers through one canonical naming scheme, reporting
//! missing, mis-shaped and leftover tensors.

pub mod configs;
pub mod files;
pub mod layout;

pub use files::{ComponentFiles, ModelFiles, Overrides};
pub use layout::{Component, Layout, Naming};

use crate::dit::{DitConfig, WanTransformer};
use crate::vae::{VaeConfig, WanVae};
use crate::weights::{TensorSource, TrackedWeights};
use crate::{Error, Result};
use candle_core::{DType, Device};
use std::sync::Arc;

/// Tracked weights of one component, named canonically.
pub fn open_component(files: &ComponentFiles) -> Result<TrackedWeights> {
    let source = files::open_sources(&files.files)?;
    Ok(track(source, &files.layout))
}

pub fn track(source: Arc<dyn TensorSource>, layout: &Layout) -> TrackedWeights {
    let layout = layout.clone();
    TrackedWeights::new(source, move |stored| layout.canonical(stored))
}

/// Wraps a layer-construction error with the file it came from.
fn in_file(weights: &TrackedWeights, e: candle_core::Error) -> Error {
    Error::checkpoint(weights.source().origin(), e.to_string())
}

pub fn build_transformer(weights: &TrackedWeights, cfg: &DitConfig, dtype: DType, device: &Device) -> Result<WanTransformer> {
    let model = WanTransformer::new(cfg, weights.var_builder(dtype, device)).map_err(|e| in_file(weights, e))?;
    weights.ensure_all_used("transformer", |_| false)?;
    Ok(model)
}

pub fn load_transformer(files: &ComponentFiles, dtype: DType, device: &Device) -> Result<WanTransformer> {
    let weights = open_component(files)?;
    let cfg = configs::transformer_config(&weights, files.config.as_deref())?;
    build_transformer(&weights, &cfg, dtype, device)
}

/// Builds the VAE; with `decoder_only`, the encoder's tensors are left unread (text-to-video
/// never encodes).
pub fn build_vae(weights: &TrackedWeights, cfg: &VaeConfig, decoder_only: bool, dtype: DType, device: &Device) -> Result<WanVae> {
    cfg.validate().map_err(|e| in_file(weights, e))?;
    let vb = weights.var_builder(dtype, device);
    let vae = if decoder_only { WanVae::new_decoder_only(cfg, vb) } else { WanVae::new(cfg, vb) }
        .map_err(|e| in_file(weights, e))?;
    let encoder_part = |name: &str| decoder_only && (name.starts_with("encoder.") || name.starts_with("quant_conv."));
    weights.ensure_all_used("VAE", encoder_part)?;
    Ok(vae)
}

pub fn load_vae(files: &ComponentFiles, decoder_only: bool, dtype: DType, device: &Device) -> Result<WanVae> {
    let weights = open_component(files)?;
    let cfg = configs::vae_config(&weights, files.config.as_deref())?;
    build_vae(&weights, &cfg, decoder_only, dtype, device)
}
