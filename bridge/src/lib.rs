//! The generation service behind the "Text to Video" node, and the library side of the `t2v`
//! command line.
//!
//! - [`Service`] (in [`service`]): one worker thread per process that owns the device and the
//!   models; jobs queued in order, identical requests merged, cancellation within one step,
//!   streaming frames, lazy loading with idle unload, a prompt-embedding cache.
//! - [`JobHandle`] (in [`job`]): what a submitter holds: progress, frames so far, waiting with
//!   a timeout, cancelling its own interest.
//! - [`ClipCache`] (in [`clip_cache`]): finished clips on disk, keyed by [`ClipKey`]
//!   ([`cache_key`]), written atomically and verified on every read.
//! - Writers for what the command line exports: PNG sequences ([`frames_out`]), OpenEXR
//!   ([`exr_out`]), animated previews ([`preview`]), contact sheets ([`contact_sheet`]).
//! - Prompt presets (styles and a tag library) shared with the node ([`presets`]).
//!
//! ```no_run
//! use t2v_bridge::{ModelSpec, Request, Service, ServiceConfig};
//! use t2v_models::pipeline::GenerationParams;
//!
//! let service = Service::new(ServiceConfig::default())?;
//! let params = GenerationParams { prompt: "a red ball bouncing".into(), ..Default::default() };
//! let job = service.submit(Request::new(ModelSpec::folder("/models/Wan2.2-TI2V-5B"), params))?;
//! let clip = job.wait()?;
//! println!("{} frames", clip.frames.len());
//! # Ok::<(), t2v_bridge::Error>(())
//! ```

pub mod bench;
pub mod cache_key;
pub mod cache_manifest;
pub mod cache_sharing;
pub mod clip_cache;
pub mod config;
pub mod contact_sheet;
pub mod device;
mod embedding_cache;
pub mod error;
pub mod exr_out;
pub mod frame;
pub mod frames_out;
pub mod job;
pub mod metadata;
pub mod model_identity;
mod model_slot;
pub mod presets;
pub mod preview;
pub mod progress;
pub mod request;
pub mod service;

pub use cache_key::ClipKey;
pub use clip_cache::{ClipCache, Lookup};
pub use config::ServiceConfig;
pub use device::DeviceChoice;
pub use error::{Error, ErrorKind, Result};
pub use frame::Frame;
pub use job::{Clip, JobHandle, ProgressObserver};
pub use metadata::ClipMetadata;
pub use progress::{JobProgress, JobStage};
pub use request::{ModelSpec, Request};
pub use service::{Service, ServiceStats};
