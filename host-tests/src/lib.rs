//! A headless OpenFX host for tests and the `ofx-render` command.
//!
//! It loads `.ofx.bundle`s with `libloading` and drives their plugins through the action
//! sequence of the OFX 1.5 specification, with real property, parameter, image effect,
//! memory, multithread, message and progress suites. Host profiles imitate Nuke, Resolve
//! and Natron, and tests can assert on everything the plugin told the host.
//!
//! ```no_run
//! use ofx_test_host::{Host, HostProfile};
//! use ofx_bindings::{Context, PixelDepth};
//! let host = Host::new(HostProfile::natron());
//! let bundle = host.load_bundle("RampGenerator.ofx.bundle")?;
//! let plugin = bundle.plugin(None)?;
//! let instance = plugin.create_instance(Context::Generator)?;
//! instance.set_param("seed", 3)?;
//! let image = instance.render(1.0, PixelDepth::Float, 16)?;
//! println!("{:?} {:?}", image.pixel_f32(0, 0), instance.persistent_message());
//! # Ok::<(), ofx_test_host::HostError>(())
//! ```
//!
//! The C-variadic suite functions (messages, parameter values) are implemented in a small
//! C shim (`shim/varargs.c`): Rust cannot define C-variadic functions on stable.

#![allow(non_upper_case_globals)] // OFX C constant names in match patterns

pub mod colour_management;
mod error;
mod fixture_build;
mod host;
mod image;
mod instance;
mod objects;
mod plugin;
mod profile;
pub mod props;
mod records;
mod suites;

pub use error::{HostError, Result};
pub use fixture_build::{
    assemble_bundle, bundle_binary_path, find_bundles, ramp_generator_bundle, search_path,
};
pub use host::SuiteRequest;
pub use image::{RenderedImage, RowLayout};
pub use instance::{Instance, ParamValue, RenderRequest};
pub use plugin::{Bundle, ContextDescriptor, Host, Plugin, PluginInfo};
pub use profile::{ColourManagement, HostProfile, MessageSupport, ProgressSupport, WorkingSpace};
pub use props::PropertySet;
pub use records::{Message, ProgressEvent};
