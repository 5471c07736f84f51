//! The demo model: a tiny model of the Wan2.2 TI2V-5B architecture, trained on a synthetic world
//! of coloured shapes that move, grow, shrink or bounce on plain backgrounds. It runs through the
//! very same path as the real model (tokenizer, umT5, transformer, sampler, VAE) and is the
//! default whenever no model is given.
//!
//! - [`world`]: the procedural scenes, their captions and the held-out combinations;
//! - [`vocab`]: the vocabulary and the `tokenizer.json` built from it;
//! - [`configs`]: model sizes and training schedules;
//! - [`train`]: the trainer (`t2v-train-demo`), [`text_pretraining`]: its first step for the
//!   text encoder, [`export`]: the diffusers folder it writes;
//! - [`latent_basis`]: the change of basis that puts the backgrounds in the first latent channels;
//! - [`judge`] and [`eval`]: judging generated clips from their pixels;
//! - [`workers`]: the trainer's worker threads;
//! - [`shipped`]: where the shipped model is, its recommended settings and its vocabulary;
//!   with the `embed` feature, `embedded` holds the model's files compiled in.

pub mod configs;
#[cfg(feature = "embed")]
pub mod embedded;
pub mod eval;
pub mod export;
pub mod init;
pub mod judge;
pub mod latent_basis;
pub mod shipped;
pub mod text_pretraining;
pub mod train;
pub mod vocab;
pub mod workers;
pub mod world;

pub use configs::DemoSettings;
pub use shipped::{model_dir, recommended_settings, unknown_words, vocabulary};
