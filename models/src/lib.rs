//! candle implementations of the Wan2.2 TI2V-5B components (umT5 text encoder, diffusion
//! transformer, VAE), the samplers, the generation pipeline and the checkpoint loaders.
//!
//! No OFX, no threads and no I/O inside the layers: loaders live in [`weights`] and
//! [`checkpoint`], orchestration in [`pipeline`].

pub mod checkpoint;
pub mod dit;
pub mod error;
pub mod lora;
pub mod ops;
pub mod pipeline;
pub mod preview;
pub mod residency;
pub mod sampling;
pub mod taehv;
pub mod text;
pub mod upscale;
pub mod vae;
pub mod weights;

pub use error::{Error, Result};

/// The version of the inference numerics: bump it in any change that alters the pixels a
/// request produces (an op's rounding, a kernel, the noise, a sampler). Clip caches key on it, so
/// clips made by older numerics miss instead of being served next to newer ones.
pub const NUMERICS_VERSION: u32 = 1;
