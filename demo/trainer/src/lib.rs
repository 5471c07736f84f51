//! The demo model's trainer (`t2v-train-demo`): a tiny model of the Wan2.2 TI2V-5B architecture
//! trained on the CPU on a synthetic world of coloured shapes, exported as the diffusers folder
//! `demo/model` that the `t2v-demo` crate ships. The product never links this crate.
//!
//! - [`world`]: the procedural scenes, their captions and the held-out combinations;
//! - [`vocab`]: the vocabulary and the `tokenizer.json` built from it;
//! - [`configs`]: model sizes and training schedules;
//! - [`train`]: the trainer, [`text_pretraining`]: its first step for the text encoder,
//!   [`export`]: the diffusers folder it writes;
//! - [`kernels`]: the differentiable kernels the `t2v-models` layers train with,
//!   [`collapsed_text`]: the short text context that trains like the padded one;
//! - [`init`]: the initial weights;
//! - [`latent_basis`]: the change of basis that puts the backgrounds in the first latent channels;
//! - [`judge`] and [`eval`]: judging generated clips from their pixels;
//! - [`workers`]: the trainer's worker threads;
//! - [`fast_decode`]: the demo model's preview projection and tiny decoder, made from its VAE.
//! - [`upscaler`]: the demo model's 2x upscaler (a tiny SRVGGNetCompact), trained on the world.

pub mod collapsed_text;
pub mod configs;
pub mod eval;
pub mod export;
pub mod fast_decode;
pub mod init;
pub mod judge;
pub mod kernels;
pub mod latent_basis;
pub mod text_pretraining;
pub mod train;
pub mod upscaler;
pub mod vocab;
pub mod workers;
pub mod world;
