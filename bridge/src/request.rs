//! What a submitter asks the service for: which model, at which precision, and the generation
//! parameters with their optional inputs (first frame, starting latents).

use candle_core::{DType, Tensor};
use image::DynamicImage;
use std::path::PathBuf;
use std::sync::Arc;
use t2v_models::checkpoint::Overrides;
use t2v_models::pipeline::GenerationParams;

/// Where the model's files are. Changing it (or the dtype) makes the worker reload.
#[derive(Debug, Clone, Default)]
pub struct ModelSpec {
    /// A diffusers folder or a folder of original / ComfyUI single files; `None` when every
    /// component is given in `overrides`.
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
}

impl ModelSpec {
    pub fn folder(path: impl Into<PathBuf>) -> Self {
        ModelSpec {
            path: Some(path.into()),
            overrides: Overrides::default(),
        }
    }
}

/// One clip to generate.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: ModelSpec,
    pub params: GenerationParams,
    /// Compute precision of the transformer (the text encoder and VAE follow the rules of
    /// `t2v_models::checkpoint::{text_encoder_dtype, vae_dtype}`).
    pub dtype: DType,
    /// First frame, for image-to-video.
    pub image: Option<Arc<DynamicImage>>,
    /// Starting latents `[1, 48, F', H/16, W/16]` used instead of seeded noise.
    pub init_latents: Option<Tensor>,
}

impl Request {
    pub fn new(model: ModelSpec, params: GenerationParams) -> Self {
        Request {
            model,
            params,
            dtype: DType::F32,
            image: None,
            init_latents: None,
        }
    }
}
