//! The demo model as the product sees it: a tiny model of the Wan2.2 TI2V-5B architecture,
//! trained on a synthetic world of coloured shapes that move, grow, shrink or bounce on plain
//! backgrounds. It runs through the very same path as the real model (tokenizer, umT5,
//! transformer, sampler, VAE) and is the default whenever no model is given.
//!
//! This crate holds only what running the shipped model needs; its trainer, the world it learns
//! from and the pixel judge are the `t2v-demo-trainer` crate (`demo/trainer`), which the product
//! never links.
//!
//! - [`shipped`]: where the shipped model is (`demo/model`, `$T2V_DEMO_MODEL`), its recommended
//!   settings and the one-line description of what it draws;
//! - [`settings`]: `demo.json`, the settings file a model folder carries;
//! - [`vocabulary`]: the words it knows (read from its tokenizer), for the unknown-word warning;
//! - with the `embed` feature, `embedded` holds the model's files compiled in.

#[cfg(feature = "embed")]
pub mod embedded;
pub mod settings;
pub mod shipped;
pub mod vocabulary;

pub use settings::{DemoSettings, SettingsFile, SETTINGS_FILE};
pub use shipped::{model_dir, recommended_settings};
pub use vocabulary::{unknown_words, vocabulary};
