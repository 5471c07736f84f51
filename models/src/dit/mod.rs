//! The Wan2.2 TI2V-5B diffusion transformer (diffusers `WanTransformer3DModel`).

pub mod attention;
pub mod block;
pub mod config;
pub mod embeddings;
pub mod flops;
#[cfg(feature = "cuda")]
pub mod fused_attention;
pub mod model;
pub mod modulation;
pub mod rope;
pub mod streaming;

pub use config::DitConfig;
pub use model::{BlockPass, PromptContext, WanTransformer};
pub use modulation::TokenTimesteps;
