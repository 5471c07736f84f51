//! Loading binaries, the plugin lifecycle (Load, Describe, DescribeInContext, Unload).

// `Arc<Box<EffectObj>>`: an effect is built in its Box (its parameter set points back to that
// address), so it cannot move into an Arc afterwards.
#![allow(clippy::redundant_allocation)]

use crate::error::{HostError, Result};
use crate::host::{CurrentHostGuard, HostState, SuiteRequest};
use crate::instance::Instance;
use crate::objects::{ClipObj, EffectObj, ParamObj};
use crate::profile::HostProfile;
use crate::props::PropertySet;
use crate::records::Message;
use ofx_bindings::binary::{BinaryError, OfxBinary};
use ofx_bindings::sys::*;
use ofx_bindings::{Context, PixelDepth, RenderThreadSafety};
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// A headless OFX host. Cheap to create; each test can have its own.
pub struct Host {
    pub(crate) state: Arc<HostState>,
    isolated: bool,
}

impl Host {
    pub fn new(profile: HostProfile) -> Host {
        Host {
            state: HostState::new(profile),
            isolated: true,
        }
    }

    /// By default each load maps a private copy of the binary, so that several hosts in one
    /// test process (tests run in parallel threads) never share the plugin's globals, as
    /// separate host processes would not. Turn it off to load the bundle's own file (the CLI
    /// does), e.g. to test that a plugin survives unload and reload of the same file.
    pub fn set_isolated_loading(&mut self, isolated: bool) {
        self.isolated = isolated;
    }

    pub fn profile(&self) -> &HostProfile {
        &self.state.profile
    }
    /// The host property set the plugin sees.
    pub fn properties(&self) -> &PropertySet {
        &self.state.props
    }
    /// What `abort()` returns from now on.
    pub fn set_abort(&self, abort: bool) {
        self.state.abort.store(abort, Ordering::SeqCst);
    }
    /// Makes `progressUpdate` answer `kOfxStatReplyNo` (the user pressed Cancel).
    pub fn set_progress_cancel(&self, cancel: bool) {
        self.state.cancel_progress.store(cancel, Ordering::SeqCst);
    }
    /// The reply to `kOfxMessageQuestion` messages.
    pub fn set_question_reply(&self, yes: bool) {
        self.state.question_reply.store(
            if yes {
                kOfxStatReplyYes
            } else {
                kOfxStatReplyNo
            },
            Ordering::SeqCst,
        );
    }
    /// Fault injection: from now on `paramGetHandle` answers `kOfxStatErrUnknown` for `name`
    /// (`hidden`), as a host that lost the parameter would.
    pub fn hide_param(&self, name: &str, hidden: bool) {
        let mut list = self.state.hidden_params.lock().unwrap();
        list.retain(|n| n != name);
        if hidden {
            list.push(name.to_string());
        }
    }
    /// Every action the host sent, in order.
    pub fn actions(&self) -> Vec<String> {
        self.state.actions.lock().unwrap().clone()
    }
    /// Messages sent with a NULL (or non-instance) handle.
    pub fn messages(&self) -> Vec<Message> {
        self.state.messages.lock().unwrap().clone()
    }
    pub fn suite_requests(&self) -> Vec<SuiteRequest> {
        self.state.suite_requests.lock().unwrap().clone()
    }

    /// Loads `NAME.ofx.bundle` (or the `.ofx` binary itself) and lists its plugins.
    pub fn load_bundle(&self, path: impl AsRef<Path>) -> Result<Bundle> {
        let path = path.as_ref();
        let binary = if path.extension().is_some_and(|e| e == "ofx") && path.is_file() {
            path.to_path_buf()
        } else {
            crate::bundle_binary_path(path)?
        };
        LoadedBinary::load(self.state.clone(), path, &binary, self.isolated).map(|inner| Bundle {
            inner: Arc::new(inner),
        })
    }
}

/// What `OfxGetPlugin(n)` described.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub index: usize,
    pub identifier: String,
    pub version: (u32, u32),
    pub api: String,
    pub api_version: i32,
}

struct PluginPointers {
    set_host: Option<unsafe extern "C" fn(*mut OfxHost)>,
    main_entry: unsafe extern "C" fn(
        *const std::ffi::c_char,
        *const c_void,
        OfxPropertySetHandle,
        OfxPropertySetHandle,
    ) -> OfxStatus,
}

pub(crate) struct LoadedBinary {
    bundle_path: PathBuf,
    library: Option<libloading::Library>,
    temp_copy: Option<PathBuf>,
    infos: Vec<PluginInfo>,
    pointers: Vec<Option<PluginPointers>>,
    set_host_status: Option<OfxStatus>,
    loaded: Mutex<HashMap<usize, Weak<PluginInner>>>,
    state: Arc<HostState>,
}

static COPY_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl LoadedBinary {
    fn load(
        state: Arc<HostState>,
        bundle_path: &Path,
        binary: &Path,
        isolated: bool,
    ) -> Result<LoadedBinary> {
        let (load_path, temp_copy) = if isolated {
            let dir = std::env::temp_dir().join(format!(
                "ofx-test-host-{}-{}",
                std::process::id(),
                COPY_COUNTER.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir)?;
            let copy = dir.join(binary.file_name().unwrap_or_default());
            std::fs::copy(binary, &copy)?;
            (copy.clone(), Some(copy))
        } else {
            (binary.to_path_buf(), None)
        };
        // SAFETY: loading a plugin runs its initialisers; that is what hosting a plugin means.
        let binary = unsafe { OfxBinary::open(&load_path) }.map_err(|e| match e {
            BinaryError::Load { message, .. } => HostError::Load {
                path: binary.to_path_buf(),
                message,
            },
            BinaryError::MissingSymbol { symbol, .. } => HostError::Bundle {
                path: bundle_path.to_path_buf(),
                what: format!("no {symbol}"),
            },
        })?;
        let bad = |what: &str| HostError::Bundle {
            path: bundle_path.to_path_buf(),
            what: what.into(),
        };

        // Optional OfxSetHost (1.5): called first; the pointer is valid until OfxGetPlugin.
        // SAFETY: our OfxHost lives as long as the host state.
        let set_host_status = unsafe { binary.set_host(state.ofx_host_ptr()) };
        if set_host_status.is_some_and(|s| s != kOfxStatOK && s != kOfxStatReplyDefault) {
            return Err(bad(
                "OfxSetHost refused this host; the binary asks to be skipped",
            ));
        }
        let count = binary.number_of_plugins();
        let mut infos = Vec::new();
        let mut pointers = Vec::new();
        for index in 0..count.max(0) {
            // SAFETY: index within OfxGetNumberOfPlugins; the struct is read, never written.
            let raw = unsafe { binary.plugin(index).as_ref() }
                .ok_or_else(|| bad("OfxGetPlugin returned NULL"))?;
            // SAFETY: NUL-terminated strings owned by the binary (checked for NULL).
            let text = |p: *const std::ffi::c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                }
            };
            let info = PluginInfo {
                index: index as usize,
                identifier: text(raw.pluginIdentifier),
                version: (raw.pluginVersionMajor, raw.pluginVersionMinor),
                api: text(raw.pluginApi),
                api_version: raw.apiVersion,
            };
            // Only image effects of API version 1 are for us; others are listed but unusable.
            let usable =
                info.api.as_bytes() == kOfxImageEffectPluginApi.to_bytes() && info.api_version == 1;
            pointers.push(if usable {
                raw.mainEntry.map(|main_entry| PluginPointers {
                    set_host: raw.setHost,
                    main_entry,
                })
            } else {
                None
            });
            infos.push(info);
        }
        Ok(LoadedBinary {
            bundle_path: bundle_path.to_path_buf(),
            library: Some(binary.into_library()),
            temp_copy,
            infos,
            pointers,
            set_host_status,
            loaded: Mutex::new(HashMap::new()),
            state,
        })
    }
}

impl Drop for LoadedBinary {
    fn drop(&mut self) {
        // Unload actions ran when the last Plugin went; now unmap the binary.
        drop(self.library.take());
        if let Some(copy) = &self.temp_copy {
            let _ = std::fs::remove_file(copy);
            if let Some(dir) = copy.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// A loaded binary and the plugins it exports.
#[derive(Clone)]
pub struct Bundle {
    inner: Arc<LoadedBinary>,
}

impl Bundle {
    pub fn path(&self) -> &Path {
        &self.inner.bundle_path
    }
    pub fn plugins(&self) -> &[PluginInfo] {
        &self.inner.infos
    }
    /// What `OfxSetHost` returned, `None` when the binary does not export it.
    pub fn set_host_status(&self) -> Option<OfxStatus> {
        self.inner.set_host_status
    }

    /// Loads and describes a plugin (`setHost`, `Load`, `Describe`); `None` picks the first.
    /// A plugin already loaded through this bundle is shared, not loaded twice.
    pub fn plugin(&self, identifier: Option<&str>) -> Result<Plugin> {
        let info = match identifier {
            Some(id) => self.inner.infos.iter().find(|i| i.identifier == id),
            None => self.inner.infos.first(),
        }
        .ok_or_else(|| HostError::NoSuchPlugin(identifier.unwrap_or("<first>").into()))?;
        let mut loaded = self.inner.loaded.lock().unwrap();
        if let Some(existing) = loaded.get(&info.index).and_then(Weak::upgrade) {
            return Ok(Plugin { inner: existing });
        }
        let pointers = self.inner.pointers[info.index].as_ref().ok_or_else(|| {
            HostError::Unsupported(format!(
                "{} is {} v{}, not an image effect v1",
                info.identifier, info.api, info.api_version
            ))
        })?;
        let state = &self.inner.state;
        if let Some(set_host) = pointers.set_host {
            // SAFETY: our OfxHost outlives the plugin (the plugin holds the state's Arc).
            unsafe { set_host(state.ofx_host_ptr()) };
        }
        let descriptor = EffectObj::new(
            state.clone(),
            descriptor_properties(&state.profile, &self.inner.bundle_path),
            false,
            None,
        );
        let inner = Arc::new(PluginInner {
            binary: self.inner.clone(),
            info: info.clone(),
            main_entry: pointers.main_entry,
            descriptor,
            contexts: Mutex::new(HashMap::new()),
            render_lock: Mutex::new(()),
            loaded: std::sync::atomic::AtomicBool::new(false),
        });
        inner.action(kOfxActionLoad, std::ptr::null(), None, None)?;
        inner.loaded.store(true, Ordering::SeqCst);
        inner.action(
            kOfxActionDescribe,
            inner.descriptor.handle() as *const c_void,
            None,
            None,
        )?;
        loaded.insert(info.index, Arc::downgrade(&inner));
        Ok(Plugin { inner })
    }
}

fn descriptor_properties(profile: &HostProfile, bundle: &Path) -> Box<PropertySet> {
    let p = PropertySet::new("effect descriptor");
    p.define_string(kOfxPropType, &["OfxTypeImageEffect"]);
    p.define_string(kOfxPropLabel, &[""]);
    p.define_string(kOfxPropShortLabel, &[""]);
    p.define_string(kOfxPropLongLabel, &[""]);
    p.define_int_var(kOfxPropVersion, &[0]);
    p.define_string(kOfxPropVersionLabel, &[""]);
    p.define_string(kOfxPropPluginDescription, &[""]);
    p.define_string_var(kOfxImageEffectPropSupportedContexts, &[]);
    p.define_string(kOfxImageEffectPluginPropGrouping, &[""]);
    p.define_bool(kOfxImageEffectPluginPropSingleInstance, false);
    p.define_string(
        kOfxImageEffectPluginRenderThreadSafety,
        &["OfxImageEffectRenderInstanceSafe"],
    );
    p.define_bool(kOfxImageEffectPluginPropHostFrameThreading, true);
    p.define_pointer(kOfxImageEffectPluginPropOverlayInteractV1, &[0]);
    p.define_pointer(kOfxImageEffectPluginPropOverlayInteractV2, &[0]);
    p.define_bool(kOfxImageEffectPropSupportsMultiResolution, true);
    p.define_bool(kOfxImageEffectPropSupportsTiles, true);
    p.define_bool(kOfxImageEffectPropTemporalClipAccess, false);
    p.define_string_var(kOfxImageEffectPropSupportedPixelDepths, &[]);
    p.define_bool(kOfxImageEffectPluginPropFieldRenderTwiceAlways, true);
    p.define_bool(kOfxImageEffectPropSupportsMultipleClipDepths, false);
    p.define_bool(kOfxImageEffectPropSupportsMultipleClipPARs, false);
    p.define_string_var(kOfxImageEffectPropClipPreferencesSlaveParam, &[]);
    if profile.colour_management.is_some() {
        p.define_string(
            crate::colour_management::STYLE,
            &[crate::colour_management::STYLE_NONE],
        );
    }
    p.define_string(kOfxPluginPropFilePath, &[&bundle.to_string_lossy()]);
    p.define_string(kOfxImageEffectPropCPURenderSupported, &["true"]);
    p.define_string(kOfxImageEffectPropOpenGLRenderSupported, &["false"]);
    p.define_string(kOfxImageEffectPropCudaRenderSupported, &["false"]);
    p.define_bool(kOfxImageEffectPropCudaStreamSupported, false);
    p.define_string(kOfxImageEffectPropMetalRenderSupported, &["false"]);
    p.define_string(kOfxImageEffectPropOpenCLRenderSupported, &["false"]);
    p.define_string(kOfxImageEffectPluginPropObsolete, &[""]);
    if profile.sequential_render_property {
        p.define_int(kOfxImageEffectInstancePropSequentialRender, &[0]);
    }
    p
}

pub(crate) struct PluginInner {
    binary: Arc<LoadedBinary>,
    pub info: PluginInfo,
    main_entry: unsafe extern "C" fn(
        *const std::ffi::c_char,
        *const c_void,
        OfxPropertySetHandle,
        OfxPropertySetHandle,
    ) -> OfxStatus,
    pub descriptor: Box<EffectObj>,
    contexts: Mutex<HashMap<Context, Arc<Box<EffectObj>>>>,
    /// Held around Render for plugins that are not thread safe at all.
    pub render_lock: Mutex<()>,
    loaded: std::sync::atomic::AtomicBool,
}

impl PluginInner {
    pub fn state(&self) -> &Arc<HostState> {
        &self.binary.state
    }

    /// Sends one action; the raw status.
    pub fn call(
        &self,
        action: &CStr,
        handle: *const c_void,
        in_args: Option<&PropertySet>,
        out_args: Option<&PropertySet>,
    ) -> OfxStatus {
        let state = self.state();
        state.log_action(action);
        let _current = CurrentHostGuard::enter(state);
        let in_args = in_args.map_or(std::ptr::null_mut(), |p| p.handle());
        let out_args = out_args.map_or(std::ptr::null_mut(), |p| p.handle());
        // SAFETY: the plugin's mainEntry with a valid action name and handles this host owns.
        unsafe { (self.main_entry)(action.as_ptr(), handle, in_args, out_args) }
    }

    /// Sends one action; `kOfxStatOK` and `kOfxStatReplyDefault` are success.
    pub fn action(
        &self,
        action: &CStr,
        handle: *const c_void,
        in_args: Option<&PropertySet>,
        out_args: Option<&PropertySet>,
    ) -> Result<OfxStatus> {
        match self.call(action, handle, in_args, out_args) {
            s @ (kOfxStatOK | kOfxStatReplyDefault) => Ok(s),
            status => Err(HostError::Action {
                plugin: self.info.identifier.clone(),
                action: action.to_string_lossy().into_owned(),
                status,
            }),
        }
    }

    pub fn thread_safety(&self) -> RenderThreadSafety {
        self.descriptor
            .props
            .get_string(kOfxImageEffectPluginRenderThreadSafety, 0)
            .ok()
            .and_then(|s| RenderThreadSafety::from_name(&s))
            .unwrap_or(RenderThreadSafety::InstanceSafe)
    }

    /// The descriptor of a context, described on first use.
    pub fn context_descriptor(&self, context: Context) -> Result<Arc<Box<EffectObj>>> {
        let mut contexts = self.contexts.lock().unwrap();
        if let Some(d) = contexts.get(&context) {
            return Ok(d.clone());
        }
        let state = self.state();
        if !state.profile.contexts.contains(&context) {
            return Err(HostError::Unsupported(format!(
                "the host profile {} has no {context:?} context",
                state.profile.name
            )));
        }
        let supported = self
            .descriptor
            .props
            .get_strings(kOfxImageEffectPropSupportedContexts)
            .unwrap_or_default();
        if !supported
            .iter()
            .any(|c| c.as_bytes() == context.as_cstr().to_bytes())
        {
            return Err(HostError::Unsupported(format!(
                "{} does not support the {context:?} context",
                self.info.identifier
            )));
        }
        let props = self
            .descriptor
            .props
            .clone_as(format!("effect descriptor ({context:?})"));
        let desc = EffectObj::new(state.clone(), props, false, Some(context));
        let in_args = PropertySet::new("DescribeInContext inArgs");
        in_args.define_string(
            kOfxImageEffectPropContext,
            &[context.as_cstr().to_str().unwrap()],
        );
        self.action(
            kOfxImageEffectActionDescribeInContext,
            desc.handle() as *const c_void,
            Some(&in_args),
            None,
        )?;
        let desc = Arc::new(desc);
        contexts.insert(context, desc.clone());
        Ok(desc)
    }
}

impl Drop for PluginInner {
    fn drop(&mut self) {
        if self.loaded.load(Ordering::SeqCst) {
            // Unload is sent once, while the binary is still mapped (it is dropped after us).
            let _ = self.call(kOfxActionUnload, std::ptr::null(), None, None);
        }
    }
}

/// A loaded and described plugin. Clones share it; `Unload` is sent when the last clone
/// and the last instance are gone, then the binary is unmapped with the last `Bundle`.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

impl Plugin {
    pub fn info(&self) -> &PluginInfo {
        &self.inner.info
    }
    pub fn identifier(&self) -> &str {
        &self.inner.info.identifier
    }
    /// The main descriptor's properties, as the plugin left them after `Describe`.
    pub fn descriptor_properties(&self) -> &PropertySet {
        &self.inner.descriptor.props
    }
    pub fn supported_contexts(&self) -> Vec<Context> {
        let v = self
            .inner
            .descriptor
            .props
            .get_strings(kOfxImageEffectPropSupportedContexts)
            .unwrap_or_default();
        v.iter().filter_map(|s| Context::from_name(s)).collect()
    }
    pub fn supported_pixel_depths(&self) -> Vec<PixelDepth> {
        let v = self
            .inner
            .descriptor
            .props
            .get_strings(kOfxImageEffectPropSupportedPixelDepths)
            .unwrap_or_default();
        v.iter().filter_map(|s| PixelDepth::from_name(s)).collect()
    }
    pub fn render_thread_safety(&self) -> RenderThreadSafety {
        self.inner.thread_safety()
    }
    /// `DescribeInContext` (once per context), giving the clips and parameters defined there.
    pub fn describe_in_context(&self, context: Context) -> Result<ContextDescriptor> {
        Ok(ContextDescriptor {
            desc: self.inner.context_descriptor(context)?,
            _plugin: self.clone(),
        })
    }
    /// `CreateInstance` in `context`, then `GetClipPreferences`.
    pub fn create_instance(&self, context: Context) -> Result<Instance> {
        Instance::create(self.clone(), context, &[])
    }
    /// `CreateInstance` of an instance loaded from a project: `saved` (from
    /// [`Instance::saved_values`]) is stored before `CreateInstance`, as a host loads it.
    pub fn create_instance_from(
        &self,
        context: Context,
        saved: &[(String, crate::ParamValue)],
    ) -> Result<Instance> {
        Instance::create(self.clone(), context, saved)
    }
}

/// The effect descriptor of one context, with its clips and parameters.
pub struct ContextDescriptor {
    desc: Arc<Box<EffectObj>>,
    _plugin: Plugin,
}

impl ContextDescriptor {
    pub fn properties(&self) -> &PropertySet {
        &self.desc.props
    }
    pub fn clip_names(&self) -> Vec<String> {
        self.desc.clip_names()
    }
    pub fn clip_properties(&self, name: &str) -> Option<&PropertySet> {
        // SAFETY: clips are never removed from a descriptor, and the Box keeps its address.
        self.desc
            .clip(name)
            .map(|c| unsafe { &*(&*(*c).props as *const PropertySet) })
    }
    pub fn param_names(&self) -> Vec<String> {
        self.desc
            .params
            .params
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }
    pub fn param_properties(&self, name: &str) -> Option<&PropertySet> {
        // SAFETY: parameters are never removed from a descriptor, and the Box keeps its address.
        self.desc
            .params
            .find(name)
            .map(|p| unsafe { &*(&*(*p).props as *const PropertySet) })
    }
    pub(crate) fn clips(&self) -> Vec<*const ClipObj> {
        self.desc
            .clips
            .lock()
            .unwrap()
            .iter()
            .map(|c| &**c as *const ClipObj)
            .collect()
    }
    pub(crate) fn params(&self) -> Vec<*const ParamObj> {
        self.desc
            .params
            .params
            .lock()
            .unwrap()
            .iter()
            .map(|p| &**p as *const ParamObj)
            .collect()
    }
    pub(crate) fn param_set_props(&self) -> &PropertySet {
        &self.desc.params.props
    }
}
