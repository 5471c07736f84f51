//! Host state shared by everything a `Host` loads, the `OfxHost` struct and `fetchSuite`.

use crate::profile::{HostProfile, MessageSupport, ProgressSupport};
use crate::props::PropertySet;
use crate::records::Message;
use crate::suites;
use ofx_bindings::sys::*;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// A suite request from the plugin and whether the host answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRequest {
    pub name: String,
    pub version: i32,
    pub provided: bool,
}

pub(crate) struct HostState {
    pub profile: HostProfile,
    pub props: Box<PropertySet>,
    pub ofx_host: Box<OfxHost>,
    pub abort: AtomicBool,
    pub cancel_progress: AtomicBool,
    pub question_reply: AtomicI32,
    /// Messages whose handle was NULL or not an instance.
    pub messages: Mutex<Vec<Message>>,
    pub actions: Mutex<Vec<String>>,
    pub suite_requests: Mutex<Vec<SuiteRequest>>,
    /// Parameters that `paramGetHandle` does not find (a host that lost them; fault injection).
    pub hidden_params: Mutex<Vec<String>>,
}

// SAFETY: `ofx_host` holds a pointer to `props`, owned by this same state; both are only
// read after construction.
unsafe impl Send for HostState {}
unsafe impl Sync for HostState {}

thread_local! {
    /// Hosts currently running an action on this thread (for messages with a NULL handle).
    static CURRENT: RefCell<Vec<Weak<HostState>>> = const { RefCell::new(Vec::new()) };
}

/// Marks `state` as the host running an action on this thread until dropped.
pub(crate) struct CurrentHostGuard;

impl CurrentHostGuard {
    pub fn enter(state: &Arc<HostState>) -> Self {
        CURRENT.with(|c| c.borrow_mut().push(Arc::downgrade(state)));
        CurrentHostGuard
    }
}

impl Drop for CurrentHostGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().pop());
    }
}

pub(crate) fn current_host() -> Option<Arc<HostState>> {
    CURRENT.with(|c| c.borrow().last().and_then(|w| w.upgrade()))
}

impl HostState {
    pub fn new(profile: HostProfile) -> Arc<HostState> {
        let props = host_properties(&profile);
        let ofx_host = Box::new(OfxHost {
            host: props.handle(),
            fetchSuite: Some(fetch_suite),
        });
        let state = Arc::new(HostState {
            profile,
            props,
            ofx_host,
            abort: AtomicBool::new(false),
            cancel_progress: AtomicBool::new(false),
            question_reply: AtomicI32::new(kOfxStatReplyYes),
            messages: Mutex::new(Vec::new()),
            actions: Mutex::new(Vec::new()),
            suite_requests: Mutex::new(Vec::new()),
            hidden_params: Mutex::new(Vec::new()),
        });
        // fetchSuite receives the host property handle; it finds its host through this.
        state
            .props
            .context
            .store(Arc::as_ptr(&state) as usize, Ordering::SeqCst);
        state
    }

    pub fn ofx_host_ptr(&self) -> *mut OfxHost {
        &*self.ofx_host as *const OfxHost as *mut OfxHost
    }

    pub fn log_action(&self, action: &CStr) {
        self.actions
            .lock()
            .unwrap()
            .push(action.to_string_lossy().into_owned());
    }
}

fn host_properties(profile: &HostProfile) -> Box<PropertySet> {
    let p = PropertySet::new("host");
    p.define_string(kOfxPropType, &["OfxTypeImageEffectHost"]);
    p.define_string(kOfxPropName, &[&profile.name]);
    p.define_string(kOfxPropLabel, &[&profile.label]);
    p.define_int_var(kOfxPropAPIVersion, &[1, 5]);
    p.define_int_var(kOfxPropVersion, &profile.version);
    let version_label = format!(
        "{}.{}.{}",
        profile.version[0], profile.version[1], profile.version[2]
    );
    p.define_string(kOfxPropVersionLabel, &[&version_label]);
    p.define_bool(kOfxImageEffectHostPropIsBackground, profile.is_background);
    p.define_bool(kOfxImageEffectPropSupportsOverlays, false);
    p.define_bool(kOfxImageEffectPropSupportsMultiResolution, true);
    p.define_bool(kOfxImageEffectPropSupportsTiles, true);
    p.define_bool(kOfxImageEffectPropTemporalClipAccess, true);
    p.define_string_var(
        kOfxImageEffectPropSupportedComponents,
        &["OfxImageComponentRGBA", "OfxImageComponentAlpha"],
    );
    let contexts: Vec<&str> = profile
        .contexts
        .iter()
        .map(|c| c.as_cstr().to_str().unwrap())
        .collect();
    p.define_string_var(kOfxImageEffectPropSupportedContexts, &contexts);
    let depths: Vec<&str> = profile
        .depths
        .iter()
        .map(|d| d.as_cstr().to_str().unwrap())
        .collect();
    p.define_string_var(kOfxImageEffectPropSupportedPixelDepths, &depths);
    p.define_bool(
        kOfxImageEffectPropSupportsMultipleClipDepths,
        profile.multiple_clip_depths,
    );
    p.define_bool(kOfxImageEffectPropSupportsMultipleClipPARs, false);
    p.define_bool(kOfxImageEffectPropSetableFrameRate, false);
    p.define_bool(kOfxImageEffectPropSetableFielding, false);
    p.define_bool(kOfxParamHostPropSupportsCustomInteract, false);
    p.define_bool(kOfxParamHostPropSupportsStringAnimation, false);
    p.define_bool(kOfxParamHostPropSupportsChoiceAnimation, false);
    p.define_bool(kOfxParamHostPropSupportsBooleanAnimation, false);
    p.define_bool(kOfxParamHostPropSupportsCustomAnimation, false);
    p.define_bool(kOfxParamHostPropSupportsStrChoice, true);
    p.define_int(kOfxParamHostPropMaxParameters, &[-1]);
    p.define_int(kOfxParamHostPropMaxPages, &[0]);
    p.define_int(kOfxParamHostPropPageRowColumnCount, &[0, 0]);
    p.define_pointer(kOfxPropHostOSHandle, &[0]);
    p.define_string(
        kOfxImageEffectHostPropNativeOrigin,
        &["kOfxImageEffectHostPropNativeOriginBottomLeft"],
    );
    p.define_string(kOfxImageEffectPropOpenGLRenderSupported, &["false"]);
    p.define_string(kOfxImageEffectPropCudaRenderSupported, &["false"]);
    p.define_bool(kOfxImageEffectPropCudaStreamSupported, false);
    p.define_string(kOfxImageEffectPropMetalRenderSupported, &["false"]);
    p.define_string(kOfxImageEffectPropOpenCLRenderSupported, &["false"]);
    p.define_bool(kOfxImageEffectPropRenderQualityDraft, false);
    if profile.sequential_render_property {
        p.define_int(kOfxImageEffectInstancePropSequentialRender, &[0]);
    }
    if let Some(cm) = &profile.colour_management {
        p.define_string(crate::colour_management::STYLE, &[&cm.style]);
    }
    p
}

/// `OfxHost::fetchSuite`.
unsafe extern "C" fn fetch_suite(
    host: OfxPropertySetHandle,
    name: *const c_char,
    version: c_int,
) -> *const c_void {
    // SAFETY: the plugin passes back the handle we gave it in OfxHost::host.
    let Ok(props) = (unsafe { PropertySet::from_handle(host) }) else {
        return std::ptr::null();
    };
    let state_ptr = props.context.load(Ordering::SeqCst) as *const HostState;
    // SAFETY: set in HostState::new to the Arc'd state owning `props`; the state outlives every
    // plugin it loads (plugins hold an Arc to it).
    let Some(state) = (unsafe { state_ptr.as_ref() }) else {
        return std::ptr::null();
    };
    if name.is_null() {
        return std::ptr::null();
    }
    // SAFETY: non-NULL NUL-terminated suite name.
    let name = unsafe { CStr::from_ptr(name) };
    let suite = suite_for(&state.profile, name, version);
    state.suite_requests.lock().unwrap().push(SuiteRequest {
        name: name.to_string_lossy().into_owned(),
        version,
        provided: !suite.is_null(),
    });
    suite
}

fn suite_for(profile: &HostProfile, name: &CStr, version: c_int) -> *const c_void {
    fn ptr<T>(suite: &'static T) -> *const c_void {
        suite as *const T as *const c_void
    }
    match (name.to_bytes(), version) {
        (b"OfxPropertySuite", 1) => ptr(&crate::props::PROPERTY_SUITE),
        (b"OfxImageEffectSuite", 1) => ptr(&suites::IMAGE_EFFECT_SUITE),
        (b"OfxParameterSuite", 1) => ptr(&suites::PARAMETER_SUITE),
        (b"OfxMemorySuite", 1) if profile.memory_suite => ptr(&suites::MEMORY_SUITE),
        (b"OfxMultiThreadSuite", 1) if profile.multithread_suite => {
            ptr(&suites::MULTI_THREAD_SUITE)
        }
        (b"OfxMessageSuite", 1) if profile.messages != MessageSupport::None => {
            ptr(&suites::MESSAGE_SUITE_V1)
        }
        (b"OfxMessageSuite", 2) => match profile.messages {
            MessageSupport::V2 => ptr(&suites::MESSAGE_SUITE_V2),
            MessageSupport::V2NullPersistent => ptr(&suites::MESSAGE_SUITE_V2_NULL_PERSISTENT),
            _ => std::ptr::null(),
        },
        (b"OfxProgressSuite", 1) if profile.progress != ProgressSupport::None => {
            ptr(&suites::PROGRESS_SUITE_V1)
        }
        (b"OfxProgressSuite", 2) if profile.progress == ProgressSupport::V2 => {
            ptr(&suites::PROGRESS_SUITE_V2)
        }
        _ => std::ptr::null(),
    }
}
