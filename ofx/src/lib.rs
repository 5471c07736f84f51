//! OpenFX bindings, written once and shared by our plugin and our test host.
//!
//! - [`sys`]: the raw C API of OpenFX 1.5.1, hand-written `#[repr(C)]` types and constants,
//!   checked field by field against an independent binding in `tests/layout.rs`.
//! - The safe layer, for plugin authors:
//!   - [`suites`]: suites fetched once at `Load` and held as `Option<&'static Suite>`,
//!     checked before every call;
//!   - [`entry`]: the `mainEntry` trampoline that parses the action, checks handles,
//!     turns panics into `kOfxStatFailed`, plus [`export_plugins!`];
//!   - [`PropertySet`]: typed property access with index and dimension;
//!   - [`ImageEffect`], [`Clip`], [`Image`]: effect handles, clips and image access
//!     (including negative row bytes);
//!   - [`descriptor`] and [`param`]: effect, clip and parameter descriptors (ranges *and*
//!     display ranges), and typed parameter values;
//!   - [`message`] and [`progress`]: messages always sent as `"%s"` + our text.
//! - [`binary`]: an OFX binary opened by path (hosts, and plugins that serve another binary's
//!   plugins).
//!
//! All `unsafe` of the project's OFX code lives in this crate; each block states the
//! invariant it relies on. Every host pointer is checked for NULL before use.

#![allow(non_upper_case_globals)] // the C constant names are used in match patterns

pub mod sys;

pub mod binary;
pub mod descriptor;
mod effect;
pub mod entry;
mod error;
mod image;
pub mod message;
pub mod param;
pub mod progress;
mod property;
pub mod suites;
mod types;

pub use effect::{Clip, ImageEffect};
pub use entry::{Action, ActionArgs, Plugin, PluginEntry, Reply};
pub use error::{status_name, OfxError, Result};
pub use image::{Image, Pixel};
pub use property::PropertySet;
pub use types::{ChangeReason, Components, Context, MessageType, PixelDepth, RenderThreadSafety};

/// Strips interior NULs so that any Rust text can cross the C boundary.
pub fn c_string(text: &str) -> std::ffi::CString {
    let bytes: Vec<u8> = text.bytes().filter(|&b| b != 0).collect();
    std::ffi::CString::new(bytes).expect("interior NULs were removed")
}
