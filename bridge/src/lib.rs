//! The generation service behind the "Text to Video" node and the `t2v` command line. Its
//! public API is plain data (requests, parameters, progress, frames, metadata, errors: all
//! serde types of its own), so requests and results can be saved, compared and sent over a
//! network; the models' and candle's types stay inside.
//!
//! - [`Service`] (in [`service`]): one worker thread per process that owns the device and the
//!   models; jobs queued in order, identical requests merged, cancellation within one step,
//!   streaming frames, lazy loading with idle unload, a prompt-embedding cache.
//! - [`JobHandle`] (in [`job`]): what a submitter holds: progress, frames so far, waiting with
//!   a timeout, cancelling its own interest.
//! - [`ClipCache`] (in [`clip_cache`]): finished clips on disk, keyed by [`ClipKey`]
//!   ([`cache_key`]), written atomically and verified on every read.
//!
//! ```no_run
//! use t2v_bridge::{GenerationParams, ModelSpec, Request, Service, ServiceConfig};
//!
//! let service = Service::new(ServiceConfig::default())?;
//! let params = GenerationParams { prompt: "a red ball bouncing".into(), ..Default::default() };
//! let job = service.submit(Request::new(ModelSpec::folder("/models/Wan2.2-TI2V-5B"), params))?;
//! let clip = job.wait()?;
//! println!("{} frames", clip.frames.len());
//! # Ok::<(), t2v_bridge::Error>(())
//! ```

pub mod cache_key;
pub mod cache_manifest;
pub mod cache_sharing;
pub mod clip_cache;
pub mod config;
pub mod device;
mod embedding_cache;
pub mod error;
pub mod fast_decode;
pub mod frame;
pub mod job;
pub mod memory;
pub mod metadata;
pub mod model_identity;
mod model_slot;
pub use model_slot::ResidentComponents;
pub mod params;
pub mod preview;
pub mod progress;
pub mod request;
pub mod service;
pub mod upscale;

pub use cache_key::ClipKey;
pub use clip_cache::{ClipCache, Lookup};
pub use config::ServiceConfig;
pub use device::{DeviceChoice, Precision};
pub use error::{Error, ErrorKind, Result};
pub use fast_decode::{preferred_decoder, Decoder};
pub use frame::{Frame, FrameKind, StreamedFrame};
pub use job::{Clip, JobHandle, ProgressObserver};
pub use memory::{MemoryBudget, PlanReport};
pub use metadata::ClipMetadata;
pub use params::{GenerationParams, Sampler, Sampling, StepCache, StepCacheMethod};
pub use preview::PreviewCadence;
pub use progress::{JobProgress, JobStage};
pub use request::{Image, Latents, LoraSpec, ModelSpec, Overrides, Request};
pub use service::{Service, ServiceStats};
pub use upscale::{Upscale, UpscaleTarget};
