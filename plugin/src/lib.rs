//! The "Text to Video" OpenFX generator node: Wan2.2 TI2V-5B text-to-video (and
//! image-to-video from the optional `Source` clip), generated locally by the `t2v-bridge`
//! service. User and TD documentation: docs/node.md.
//!
//! One explicit `match` over the actions below; the node's logic is in [`node`], its
//! parameters in [`params`], the pixel writing in [`pixels`].

pub mod colour;
pub mod engine;
pub mod frame_memory;
pub mod log;
pub mod node;
pub mod params;
pub mod pixels;
pub mod remote;
pub mod services;
pub mod source;
pub mod status;
pub mod working_space;

use node::Node;
use ofx_bindings::descriptor::{ClipDescriptor, ClipPreferences, EffectDescriptor};
use ofx_bindings::sys::*;
use ofx_bindings::{
    Action, ActionArgs, Components, Context, ImageEffect, OfxError, PixelDepth, Plugin,
    RenderThreadSafety, Reply, Result,
};
use params::Settings;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub struct TextToVideo;

static OWN_PLUGINS: &[ofx_bindings::PluginEntry] =
    &[ofx_bindings::PluginEntry::new::<TextToVideo>()];

/// The plugins of the engine that serves the host (see [`engine`]): the CUDA build's when it
/// loaded, else this binary's.
#[no_mangle]
pub extern "C" fn OfxGetNumberOfPlugins() -> std::ffi::c_int {
    catch_unwind(|| match engine::current() {
        engine::Engine::Cuda(binary) => binary.number_of_plugins(),
        engine::Engine::Own { .. } => OWN_PLUGINS.len() as std::ffi::c_int,
    })
    .unwrap_or(0)
}

#[no_mangle]
pub extern "C" fn OfxGetPlugin(nth: std::ffi::c_int) -> *mut OfxPlugin {
    catch_unwind(|| match engine::current() {
        engine::Engine::Cuda(binary) => binary.plugin(nth),
        engine::Engine::Own { .. } => ofx_bindings::entry::plugin_at(OWN_PLUGINS, nth),
    })
    .unwrap_or(std::ptr::null_mut())
}

/// The clip's frame rate, where the host lets a generator choose it.
const FRAME_RATE: f64 = 24.0;

impl Plugin for TextToVideo {
    /// Stable, without `-`: Nuke's node class is `OFXorg.texttovideo.TextToVideo_v1`.
    const IDENTIFIER: &'static CStr = c"org.texttovideo.TextToVideo";
    const VERSION_MAJOR: u32 = 1;
    const VERSION_MINOR: u32 = 0;

    fn main_entry(action: Action<'_>, args: ActionArgs) -> Result<Reply> {
        // Our own catch, so that a panic reaches the log file (the safe layer catches it too).
        match catch_unwind(AssertUnwindSafe(|| dispatch(action, args))) {
            Ok(Err(e)) if e.status != kOfxStatReplyDefault => {
                log!("{action:?} failed: {e}");
                Err(e)
            }
            Ok(result) => result,
            Err(panic) => {
                let text = t2v_support::panic_message(panic.as_ref());
                log!("panic in {action:?}: {text}");
                Err(OfxError::failed(format!("internal error: {text}")))
            }
        }
    }
}

fn dispatch(action: Action<'_>, args: ActionArgs) -> Result<Reply> {
    match action {
        Action::Load => {
            log::init();
            // Rust's runtime registers thread-local destructors on host threads that call us,
            // and candle's CPU thread pool is never joined: both would run unmapped code after
            // the host's dlclose. Staying mapped makes Unload + dlclose safe.
            let pinned = ofx_bindings::entry::pin_binary();
            // Candle computes on rayon's global pool, which can never be shut down: start it
            // here with names of its own (threads otherwise inherit their creator's name,
            // e.g. `t2v-worker`). With the binary pinned, a reload reuses it.
            t2v_bridge::device::start_cpu_threads();
            let host = ofx_bindings::suites::get()
                .and_then(|s| s.host_properties())
                .and_then(|p| p.get_string(kOfxPropName, 0))
                .unwrap_or_default();
            log!(
                "load: TextToVideo {} in host {host}; pinned {pinned}; log {:?}",
                env!("CARGO_PKG_VERSION"),
                log::log_path()
            );
            Ok(Reply::Ok)
        }
        Action::Unload => {
            services::shutdown_all();
            remote::disconnect_all();
            log!("unload: every service thread joined");
            log::close();
            Ok(Reply::Ok)
        }
        Action::Describe => describe(args.effect()?),
        Action::DescribeInContext => describe_in_context(args),
        Action::CreateInstance => {
            let effect = args.effect()?;
            let node = std::sync::Arc::new(Node::default());
            effect.set_instance_data(NodeData(node.clone()))?;
            let set_up = node
                .set_up(&effect)
                .and_then(|()| node.announce(&effect, false));
            if let Err(e) = set_up {
                // A failed CreateInstance gets no DestroyInstance: nothing of it may stay.
                node.release();
                let _ = effect.drop_instance_data();
                return Err(e);
            }
            services::instance_created();
            Ok(Reply::Ok)
        }
        Action::DestroyInstance => {
            let effect = args.effect()?;
            // Only an instance that still has its data counts as going: a second
            // DestroyInstance (or one after a failed CreateInstance) changes nothing.
            let Ok(data) = effect.instance_data::<NodeData>() else {
                log!("destroy instance: no instance data (already destroyed)");
                return Ok(Reply::Ok);
            };
            data.0.release();
            effect.drop_instance_data()?;
            services::instance_destroyed();
            Ok(Reply::Ok)
        }
        Action::InstanceChanged => {
            let effect = args.effect()?;
            let node = node_of(&effect)?;
            let name = args.in_args()?.get_string(kOfxPropName, 0)?;
            match name.as_str() {
                params::GENERATE => node.generate(&effect)?,
                params::CANCEL => node.cancel(&effect)?,
                params::STATUS | params::GENERATION => {}
                params::STYLE => {
                    params::keep_style_name(&effect.param_set()?)?;
                    node.announce(&effect, true)?;
                }
                params::STYLE_NAME => {
                    params::show_style_name(&effect.param_set()?)?;
                    node.announce(&effect, true)?;
                }
                params::RESOLUTION => {
                    node.update_size_params(&effect)?;
                    node.announce(&effect, true)?;
                }
                params::SAMPLER | params::MODEL => {
                    node.update_sampling_params(&effect, true)?;
                    node.announce(&effect, true)?;
                }
                _ => node.announce(&effect, true)?,
            }
            Ok(Reply::Ok)
        }
        // Main-thread actions: where a clip that finished without a progress bar is announced.
        Action::BeginInstanceChanged | Action::EndInstanceChanged | Action::SyncPrivateData => {
            let effect = args.effect()?;
            node_of(&effect)?.announce(&effect, false)?;
            Ok(Reply::Ok)
        }
        Action::PurgeCaches => {
            services::unload_models();
            log!("purge caches: models unloaded");
            Ok(Reply::Ok)
        }
        Action::GetClipPreferences => {
            let prefs = ClipPreferences(args.out_args()?);
            prefs.set_frame_varying(true)?;
            prefs.set_premultiplication(false)?;
            let effect = args.effect()?;
            let settings = Settings::read(&effect.param_set()?, None)?;
            let colour = node_of(&effect)?.colour(settings.colour);
            working_space::set_clip_preferences(&effect, &prefs.0, colour)?;
            // The clip's format (OFX 1.5, a Natron extension before): without it a host
            // takes the project's format for a node with no input, and its writers put the
            // clip in a corner of a project-sized frame (seen in NatronRenderer). The same
            // bounds as the region of definition.
            let (width, height) = settings.clip_size();
            let format = [0, 0, width as i32, height as i32];
            ofx_bindings::PropertySet::ignore_unknown(
                prefs.0.set_ints(c"OfxImageClipPropFormat", &format),
            )?;
            let setable = ofx_bindings::suites::get()
                .and_then(|s| s.host_properties())
                .and_then(|p| p.get_bool(kOfxImageEffectPropSetableFrameRate, 0))
                .unwrap_or(false);
            if setable {
                prefs
                    .0
                    .set_double(kOfxImageEffectPropFrameRate, 0, FRAME_RATE)?;
            }
            Ok(Reply::Ok)
        }
        Action::GetRegionOfDefinition => {
            let effect = args.effect()?;
            let time = args.in_args()?.get_double(kOfxPropTime, 0)?;
            let s = Settings::read(&effect.param_set()?, Some(time))?;
            // Canonical coordinates: not scaled by the render scale (the image bounds are).
            let (width, height) = s.clip_size();
            let rod = OfxRectD {
                x1: 0.0,
                y1: 0.0,
                x2: width as f64,
                y2: height as f64,
            };
            args.out_args()?
                .set_rect_d(kOfxImageEffectPropRegionOfDefinition, rod)?;
            Ok(Reply::Ok)
        }
        Action::GetTimeDomain => {
            let effect = args.effect()?;
            let s = Settings::read(&effect.param_set()?, None)?;
            let first = s.first_frame as f64;
            let range = OfxRangeD {
                min: first,
                max: first + s.frames.max(1) as f64 - 1.0,
            };
            args.out_args()?
                .set_range_d(kOfxImageEffectPropFrameRange, range)?;
            Ok(Reply::Ok)
        }
        Action::GetFramesNeeded => {
            // Image-to-video reads the Source clip at the first frame only.
            let effect = args.effect()?;
            let s = Settings::read(&effect.param_set()?, None)?;
            let first = s.first_frame as f64;
            args.out_args()?
                .set_doubles(c"OfxImageClipPropFrameRange_Source", &[first, first])?;
            Ok(Reply::Ok)
        }
        Action::Render => {
            let effect = args.effect()?;
            node_of(&effect)?.render(&effect, &args.in_args()?)
        }
        Action::BeginSequenceRender | Action::EndSequenceRender => Ok(Reply::Ok),
        _ => Ok(Reply::Default),
    }
}

/// The instance data: the node, shared with render threads.
struct NodeData(std::sync::Arc<Node>);

fn node_of(effect: &ImageEffect) -> Result<std::sync::Arc<Node>> {
    Ok(effect.instance_data::<NodeData>()?.0.clone())
}

fn describe(effect: ImageEffect) -> Result<Reply> {
    log!("describe");
    let d = EffectDescriptor::new(effect)?;
    d.set_label("Text to Video")?;
    d.set_short_label("Text to Video")?;
    d.set_long_label("Text to Video (Wan2.2 TI2V-5B)")?;
    d.set_grouping("AI")?;
    d.set_description(
        "Generates a video clip from a text prompt (and optionally a first frame from the Source input) with the \
         Wan2.2 TI2V-5B model, locally. Set Model Path, write a prompt and press Generate.",
    )?;
    // Nuke has no Generator context: it gets the General one.
    d.set_supported_contexts(&[Context::Generator, Context::General])?;
    d.set_supported_pixel_depths(&[PixelDepth::Float, PixelDepth::Short, PixelDepth::Byte])?;
    d.set_render_thread_safety(RenderThreadSafety::FullySafe)?;
    d.set_host_frame_threading(false)?;
    d.set_supports_tiles(false)?;
    d.set_supports_multi_resolution(false)?;
    d.set_supports_multiple_clip_depths(false)?;
    d.set_temporal_clip_access(true)?;
    d.set_sequential_render(0)?;
    d.set_cpu_render_supported(true)?;
    // The node can be told the host's colourspaces and say which it produces (core names).
    let _ = d
        .properties()
        .set_string(working_space::STYLE, 0, working_space::STYLE_CORE);
    // The output colourspace follows `colour`: the host asks for clip preferences again.
    d.properties()
        .set_cstrs(kOfxImageEffectPropClipPreferencesSlaveParam, &[c"colour"])?;
    Ok(Reply::Ok)
}

fn describe_in_context(args: ActionArgs) -> Result<Reply> {
    let d = EffectDescriptor::new(args.effect()?)?;
    let context = args.in_args()?.get_string(kOfxImageEffectPropContext, 0)?;
    log!("describe in context {context}");
    let mut output = ClipDescriptor::output();
    output.components = vec![Components::Rgba];
    d.define_clip(&output)?;
    // Optional in both contexts (the Generator context allows only optional inputs).
    let mut source = ClipDescriptor::new("Source")
        .optional(true)
        .label("Source")
        .components(&[Components::Rgba]);
    source.temporal_access = true;
    d.define_clip(&source)?;
    params::describe(&d.param_set()?)?;
    Ok(Reply::Ok)
}
