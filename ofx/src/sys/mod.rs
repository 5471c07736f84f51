//! The raw OpenFX 1.5.1 C API, written by hand from the BSD-3-Clause headers (see
//! `THIRD_PARTY.md`). Names are the C names so that they can be grepped against the
//! headers and the reference documentation; every layout and every value is checked
//! against an independent binding in `tests/layout.rs`.
//!
//! String constants are `&'static CStr` (`c"..."` literals), ready to pass as
//! `const char *`.
#![allow(non_upper_case_globals, non_snake_case, non_camel_case_types)]

mod core;
mod gpu;
mod image_effect;
mod memory;
mod message;
mod multithread;
mod param;
mod progress;
mod property;

pub use self::core::*;
pub use self::gpu::*;
pub use self::image_effect::*;
pub use self::memory::*;
pub use self::message::*;
pub use self::multithread::*;
pub use self::param::*;
pub use self::progress::*;
pub use self::property::*;

/// Sources of the declarations, so that tests can list every constant.
#[doc(hidden)]
pub const SOURCES: &[(&str, &str)] = &[
    ("core.rs", include_str!("core.rs")),
    ("gpu.rs", include_str!("gpu.rs")),
    ("image_effect.rs", include_str!("image_effect.rs")),
    ("memory.rs", include_str!("memory.rs")),
    ("message.rs", include_str!("message.rs")),
    ("multithread.rs", include_str!("multithread.rs")),
    ("param.rs", include_str!("param.rs")),
    ("progress.rs", include_str!("progress.rs")),
    ("property.rs", include_str!("property.rs")),
];
