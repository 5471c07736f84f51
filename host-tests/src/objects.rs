//! The objects behind OFX handles: effects (descriptors and instances), clips, parameter
//! sets and parameters. Each is boxed (stable address = handle) and starts with a tag so a
//! handle of the wrong kind is answered with `kOfxStatErrBadHandle` instead of misread.

use crate::host::HostState;
use crate::props::{c, PropertySet};
use crate::records::Records;
use ofx_bindings::sys::*;
use ofx_bindings::Context;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) const EFFECT_TAG: u64 = 0x4546_4645_4354_3031; // "EFFECT01"
pub(crate) const CLIP_TAG: u64 = 0x434c_4950_3030_3031;
pub(crate) const PARAM_SET_TAG: u64 = 0x5041_5241_4d53_4554;
pub(crate) const PARAM_TAG: u64 = 0x5041_5241_4d30_3031;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Reads the leading tag of any handle object.
///
/// # Safety
/// `ptr` is NULL or points to a live object of this host (all start with a `u64` tag at
/// offset 0, being `#[repr(C)]`).
pub(crate) unsafe fn tag_of(ptr: *const u8) -> Option<u64> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: per the contract; unaligned read not needed, the objects are 8-aligned.
    Some(unsafe { (ptr as *const u64).read() })
}

/// An image handed to the plugin by `clipGetImage`, owned by the host until released.
pub(crate) struct OutstandingImage {
    pub props: Box<PropertySet>,
    /// Address of the pixels, to tell which render the image belongs to.
    pub data: usize,
}

/// An image connected to an input clip: RGBA f32, rows bottom-up as OFX lays them out. Its
/// pixels stay put while connected (images handed out point into them).
pub(crate) struct InputImage {
    pub clip: String,
    pub width: usize,
    pub height: usize,
    pub pixels: Box<[f32]>,
}

/// A render in flight: the output buffer `clipGetImage(Output, time)` returns.
pub(crate) struct ActiveRender {
    pub thread: std::thread::ThreadId,
    pub time: f64,
    pub data: usize,
    pub bounds: OfxRectI,
    pub row_bytes: i32,
    pub depth: &'static CStr,
    pub render_scale: f64,
}

#[repr(C)]
pub(crate) struct EffectObj {
    tag: u64,
    pub id: u64,
    pub is_instance: bool,
    pub context: Option<Context>,
    pub props: Box<PropertySet>,
    pub params: Box<ParamSetObj>,
    #[allow(clippy::vec_box)] // boxed: each clip's address is its OFX handle
    pub clips: Mutex<Vec<Box<ClipObj>>>,
    pub host: Arc<HostState>,
    pub records: Mutex<Records>,
    pub renders: Mutex<Vec<ActiveRender>>,
    pub images: Mutex<Vec<OutstandingImage>>,
    /// Images connected to input clips (`Instance::connect_input`).
    pub inputs: Mutex<Vec<InputImage>>,
    /// Parameters the plugin set (from any thread) whose InstanceChanged is still due.
    pub pending_plugin_changes: Mutex<Vec<String>>,
    pub in_render: AtomicUsize,
    pub max_in_render: AtomicUsize,
}

impl EffectObj {
    pub fn new(
        host: Arc<HostState>,
        props: Box<PropertySet>,
        is_instance: bool,
        context: Option<Context>,
    ) -> Box<Self> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let param_props = PropertySet::new("parameter set");
        param_props.define_string_var(kOfxPluginPropParamPageOrder, &[]);
        let mut effect = Box::new(EffectObj {
            tag: EFFECT_TAG,
            id,
            is_instance,
            context,
            props,
            params: Box::new(ParamSetObj {
                tag: PARAM_SET_TAG,
                props: param_props,
                params: Mutex::new(Vec::new()),
                effect: std::ptr::null(),
            }),
            clips: Mutex::new(Vec::new()),
            host,
            records: Mutex::new(Records::default()),
            renders: Mutex::new(Vec::new()),
            images: Mutex::new(Vec::new()),
            inputs: Mutex::new(Vec::new()),
            pending_plugin_changes: Mutex::new(Vec::new()),
            in_render: AtomicUsize::new(0),
            max_in_render: AtomicUsize::new(0),
        });
        let effect_ptr: *const EffectObj = &*effect;
        effect.params.effect = effect_ptr;
        effect
    }

    pub fn handle(&self) -> OfxImageEffectHandle {
        self as *const EffectObj as OfxImageEffectHandle
    }

    /// # Safety
    /// As [`tag_of`]: NULL or a live handle of this host.
    pub unsafe fn from_handle<'a>(handle: *const std::ffi::c_void) -> Option<&'a EffectObj> {
        // SAFETY: forwarded contract.
        if unsafe { tag_of(handle as *const u8) } != Some(EFFECT_TAG) {
            return None;
        }
        // SAFETY: the tag says it is an EffectObj, alive per the contract.
        unsafe { (handle as *const EffectObj).as_ref() }
    }

    pub fn clip(&self, name: &str) -> Option<*const ClipObj> {
        self.clips
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.name == name)
            .map(|c| &**c as *const ClipObj)
    }

    pub fn clip_names(&self) -> Vec<String> {
        self.clips
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }
}

#[repr(C)]
pub(crate) struct ClipObj {
    tag: u64,
    pub name: String,
    pub props: Box<PropertySet>,
    pub effect: *const EffectObj,
}

// SAFETY: `effect` points to the owning EffectObj, which outlives its clips and is Sync.
unsafe impl Send for ClipObj {}
unsafe impl Sync for ClipObj {}

impl ClipObj {
    pub fn descriptor(name: &str, effect: *const EffectObj) -> Box<Self> {
        let p = PropertySet::new(format!("clip {name}"));
        p.define_string(kOfxPropType, &["OfxTypeClip"]);
        p.define_string(kOfxPropName, &[name]);
        p.define_string(kOfxPropLabel, &[name]);
        p.define_string(kOfxPropShortLabel, &[name]);
        p.define_string(kOfxPropLongLabel, &[name]);
        p.define_string_var(kOfxImageEffectPropSupportedComponents, &[]);
        p.define_bool(kOfxImageEffectPropTemporalClipAccess, false);
        p.define_bool(kOfxImageClipPropOptional, false);
        p.define_string(kOfxImageClipPropFieldExtraction, &["OfxFieldDoubled"]);
        p.define_bool(kOfxImageClipPropIsMask, false);
        p.define_bool(kOfxImageEffectPropSupportsTiles, true);
        Box::new(ClipObj {
            tag: CLIP_TAG,
            name: name.into(),
            props: p,
            effect,
        })
    }

    /// The instance clip: the descriptor's properties plus what the host decides.
    pub fn instance_of(
        desc: &ClipObj,
        effect: *const EffectObj,
        state: &HostState,
        connected: bool,
    ) -> Box<Self> {
        let p = desc
            .props
            .clone_as(format!("clip {} (instance)", desc.name));
        let depth = state
            .profile
            .depths
            .first()
            .copied()
            .unwrap_or(ofx_bindings::PixelDepth::Float);
        p.define_string(
            kOfxImageEffectPropPixelDepth,
            &[depth.as_cstr().to_str().unwrap()],
        );
        p.define_string(kOfxImageEffectPropComponents, &["OfxImageComponentRGBA"]);
        p.define_string(
            kOfxImageClipPropUnmappedPixelDepth,
            &[depth.as_cstr().to_str().unwrap()],
        );
        p.define_string(
            kOfxImageClipPropUnmappedComponents,
            &["OfxImageComponentRGBA"],
        );
        p.define_string(
            kOfxImageEffectPropPreMultiplication,
            &["OfxImageAlphaPremultiplied"],
        );
        p.define_double(kOfxImagePropPixelAspectRatio, &[1.0]);
        p.define_double(kOfxImageEffectPropFrameRate, &[state.profile.frame_rate]);
        p.define_double(
            kOfxImageEffectPropUnmappedFrameRate,
            &[state.profile.frame_rate],
        );
        let (a, b) = state.profile.frame_range;
        p.define_double(kOfxImageEffectPropFrameRange, &[a, b]);
        p.define_double(kOfxImageEffectPropUnmappedFrameRange, &[a, b]);
        p.define_string(kOfxImageClipPropFieldOrder, &["OfxFieldNone"]);
        p.define_bool(kOfxImageClipPropConnected, connected);
        p.define_bool(kOfxImageClipPropContinuousSamples, false);
        if let Some(cm) = &state.profile.colour_management {
            p.define_string(crate::colour_management::CLIP_COLOURSPACE, &[&cm.working]);
            p.define_string_var(
                &std::ffi::CString::new(crate::colour_management::CLIP_PREFERRED_COLOURSPACES)
                    .unwrap(),
                &[],
            );
        }
        Box::new(ClipObj {
            tag: CLIP_TAG,
            name: desc.name.clone(),
            props: p,
            effect,
        })
    }

    pub fn handle(&self) -> OfxImageClipHandle {
        self as *const ClipObj as OfxImageClipHandle
    }

    /// # Safety
    /// As [`tag_of`].
    pub unsafe fn from_handle<'a>(handle: OfxImageClipHandle) -> Option<&'a ClipObj> {
        // SAFETY: forwarded contract.
        if unsafe { tag_of(handle as *const u8) } != Some(CLIP_TAG) {
            return None;
        }
        // SAFETY: tagged ClipObj, alive per the contract.
        unsafe { (handle as *const ClipObj).as_ref() }
    }

    pub fn effect(&self) -> &EffectObj {
        // SAFETY: a clip never outlives the effect that owns it in `clips`.
        unsafe { &*self.effect }
    }
}

#[repr(C)]
pub(crate) struct ParamSetObj {
    tag: u64,
    pub props: Box<PropertySet>,
    #[allow(clippy::vec_box)] // boxed: each parameter's address is its OFX handle
    pub params: Mutex<Vec<Box<ParamObj>>>,
    pub effect: *const EffectObj,
}

// SAFETY: `effect` points to the owning EffectObj (see ClipObj).
unsafe impl Send for ParamSetObj {}
unsafe impl Sync for ParamSetObj {}

impl ParamSetObj {
    pub fn handle(&self) -> OfxParamSetHandle {
        self as *const ParamSetObj as OfxParamSetHandle
    }
    /// # Safety
    /// As [`tag_of`].
    pub unsafe fn from_handle<'a>(handle: OfxParamSetHandle) -> Option<&'a ParamSetObj> {
        // SAFETY: forwarded contract.
        if unsafe { tag_of(handle as *const u8) } != Some(PARAM_SET_TAG) {
            return None;
        }
        // SAFETY: tagged ParamSetObj.
        unsafe { (handle as *const ParamSetObj).as_ref() }
    }
    pub fn effect(&self) -> &EffectObj {
        // SAFETY: the set is a field of its effect.
        unsafe { &*self.effect }
    }
    pub fn find(&self, name: &str) -> Option<*const ParamObj> {
        self.params
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.name == name)
            .map(|p| &**p as *const ParamObj)
    }
}

/// Stored parameter value, in the C type the variadic functions use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stored {
    Ints(Vec<i32>),
    Doubles(Vec<f64>),
    Str(CString),
    None,
}

/// How a parameter type's value crosses the variadic functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    None = 0,
    Int = 1,
    Double = 2,
    String = 3,
}

pub(crate) fn kind_of(param_type: &CStr) -> Option<(ValueKind, usize)> {
    let table: &[(&CStr, ValueKind, usize)] = &[
        (kOfxParamTypeInteger, ValueKind::Int, 1),
        (kOfxParamTypeBoolean, ValueKind::Int, 1),
        (kOfxParamTypeChoice, ValueKind::Int, 1),
        (kOfxParamTypeInteger2D, ValueKind::Int, 2),
        (kOfxParamTypeInteger3D, ValueKind::Int, 3),
        (kOfxParamTypeDouble, ValueKind::Double, 1),
        (kOfxParamTypeDouble2D, ValueKind::Double, 2),
        (kOfxParamTypeDouble3D, ValueKind::Double, 3),
        (kOfxParamTypeRGB, ValueKind::Double, 3),
        (kOfxParamTypeRGBA, ValueKind::Double, 4),
        (kOfxParamTypeString, ValueKind::String, 1),
        (kOfxParamTypeStrChoice, ValueKind::String, 1),
        (kOfxParamTypeCustom, ValueKind::String, 1),
        (kOfxParamTypePushButton, ValueKind::None, 0),
        (kOfxParamTypeGroup, ValueKind::None, 0),
        (kOfxParamTypePage, ValueKind::None, 0),
    ];
    table
        .iter()
        .find(|(t, _, _)| *t == param_type)
        .map(|(_, k, d)| (*k, *d))
}

#[repr(C)]
pub(crate) struct ParamObj {
    tag: u64,
    pub name: String,
    pub param_type: &'static CStr,
    pub kind: ValueKind,
    pub dims: usize,
    pub props: Box<PropertySet>,
    pub value: Mutex<Stored>,
    /// Previous string values: a plugin may still hold a pointer from paramGetValue.
    pub retired: Mutex<Vec<CString>>,
    pub set: *const ParamSetObj,
    pub is_instance: bool,
}

// SAFETY: `set` points to the owning ParamSetObj (see ClipObj).
unsafe impl Send for ParamObj {}
unsafe impl Sync for ParamObj {}

impl ParamObj {
    /// A parameter descriptor of a known type with every property OFX defines for it.
    pub fn descriptor(param_type: &CStr, name: &str, set: *const ParamSetObj) -> Option<Box<Self>> {
        let (kind, dims) = kind_of(param_type)?;
        let param_type: &'static CStr = [
            kOfxParamTypeInteger,
            kOfxParamTypeBoolean,
            kOfxParamTypeChoice,
            kOfxParamTypeInteger2D,
            kOfxParamTypeInteger3D,
            kOfxParamTypeDouble,
            kOfxParamTypeDouble2D,
            kOfxParamTypeDouble3D,
            kOfxParamTypeRGB,
            kOfxParamTypeRGBA,
            kOfxParamTypeString,
            kOfxParamTypeStrChoice,
            kOfxParamTypeCustom,
            kOfxParamTypePushButton,
            kOfxParamTypeGroup,
            kOfxParamTypePage,
        ]
        .into_iter()
        .find(|t| *t == param_type)?;
        let p = PropertySet::new(format!("param {name}"));
        p.define_string(kOfxPropType, &["OfxTypeParameter"]);
        p.define_string(kOfxPropName, &[name]);
        p.define_string(kOfxPropLabel, &[name]);
        p.define_string(kOfxPropShortLabel, &[name]);
        p.define_string(kOfxPropLongLabel, &[name]);
        p.define_string(kOfxParamPropType, &[param_type.to_str().unwrap()]);
        p.define_bool(kOfxParamPropSecret, false);
        p.define_string(kOfxParamPropHint, &[""]);
        p.define_string(kOfxParamPropScriptName, &[name]);
        p.define_string(kOfxParamPropParent, &[""]);
        p.define_bool(kOfxParamPropEnabled, true);
        p.define_pointer(kOfxParamPropDataPtr, &[0]);
        p.define_string(kOfxPropIcon, &["", ""]);
        if kind != ValueKind::None {
            p.define_bool(kOfxParamPropAnimates, kind != ValueKind::String);
            p.define_bool(kOfxParamPropIsAnimating, false);
            p.define_bool(kOfxParamPropIsAutoKeying, false);
            p.define_bool(kOfxParamPropPersistant, true);
            p.define_bool(kOfxParamPropEvaluateOnChange, true);
            p.define_bool(kOfxParamPropPluginMayWrite, false);
            p.define_bool(kOfxParamPropCanUndo, true);
            p.define_string(
                kOfxParamPropCacheInvalidation,
                &["OfxParamInvalidateValueChange"],
            );
        }
        let value = match kind {
            ValueKind::Int => {
                p.define_int(kOfxParamPropDefault, &vec![0; dims]);
                if param_type != kOfxParamTypeBoolean && param_type != kOfxParamTypeChoice {
                    p.define_int(kOfxParamPropMin, &vec![kOfxFlagInfiniteMin; dims]);
                    p.define_int(kOfxParamPropMax, &vec![kOfxFlagInfiniteMax; dims]);
                    p.define_int(kOfxParamPropDisplayMin, &vec![kOfxFlagInfiniteMin; dims]);
                    p.define_int(kOfxParamPropDisplayMax, &vec![kOfxFlagInfiniteMax; dims]);
                }
                if param_type == kOfxParamTypeChoice {
                    p.define_string_var(kOfxParamPropChoiceOption, &[]);
                    p.define_int_var(kOfxParamPropChoiceOrder, &[]);
                }
                Stored::Ints(vec![0; dims])
            }
            ValueKind::Double => {
                p.define_double(kOfxParamPropDefault, &vec![0.0; dims]);
                p.define_double(kOfxParamPropMin, &vec![-f64::MAX; dims]);
                p.define_double(kOfxParamPropMax, &vec![f64::MAX; dims]);
                p.define_double(kOfxParamPropDisplayMin, &vec![-f64::MAX; dims]);
                p.define_double(kOfxParamPropDisplayMax, &vec![f64::MAX; dims]);
                p.define_double(kOfxParamPropIncrement, &[1.0]);
                p.define_int(kOfxParamPropDigits, &[2]);
                p.define_string(kOfxParamPropDoubleType, &["OfxParamDoubleTypePlain"]);
                p.define_string(
                    kOfxParamPropDefaultCoordinateSystem,
                    &["OfxParamCoordinatesCanonical"],
                );
                Stored::Doubles(vec![0.0; dims])
            }
            ValueKind::String => {
                p.define_string(kOfxParamPropDefault, &[""]);
                if param_type == kOfxParamTypeString {
                    p.define_string(kOfxParamPropStringMode, &["OfxParamStringIsSingleLine"]);
                    p.define_bool(kOfxParamPropStringFilePathExists, true);
                }
                if param_type == kOfxParamTypeStrChoice {
                    p.define_string_var(kOfxParamPropChoiceOption, &[]);
                    p.define_string_var(kOfxParamPropChoiceEnum, &[]);
                }
                Stored::Str(CString::default())
            }
            ValueKind::None => {
                if param_type == kOfxParamTypeGroup {
                    p.define_bool(kOfxParamPropGroupOpen, true);
                }
                if param_type == kOfxParamTypePage {
                    p.define_string_var(kOfxParamPropPageChild, &[]);
                }
                Stored::None
            }
        };
        Some(Box::new(ParamObj {
            tag: PARAM_TAG,
            name: name.into(),
            param_type,
            kind,
            dims,
            props: p,
            value: Mutex::new(value),
            retired: Mutex::new(Vec::new()),
            set,
            is_instance: false,
        }))
    }

    /// The instance of a descriptor: same properties, value = default.
    pub fn instance_of(desc: &ParamObj, set: *const ParamSetObj) -> Box<Self> {
        let props = desc
            .props
            .clone_as(format!("param {} (instance)", desc.name));
        let value = match desc.kind {
            ValueKind::Int => Stored::Ints(
                props
                    .get_ints(kOfxParamPropDefault)
                    .unwrap_or_else(|_| vec![0; desc.dims]),
            ),
            ValueKind::Double => Stored::Doubles(
                props
                    .get_doubles(kOfxParamPropDefault)
                    .unwrap_or_else(|_| vec![0.0; desc.dims]),
            ),
            ValueKind::String => Stored::Str(c(&props
                .get_string(kOfxParamPropDefault, 0)
                .unwrap_or_default())),
            ValueKind::None => Stored::None,
        };
        Box::new(ParamObj {
            tag: PARAM_TAG,
            name: desc.name.clone(),
            param_type: desc.param_type,
            kind: desc.kind,
            dims: desc.dims,
            props,
            value: Mutex::new(value),
            retired: Mutex::new(Vec::new()),
            set,
            is_instance: true,
        })
    }

    pub fn handle(&self) -> OfxParamHandle {
        self as *const ParamObj as OfxParamHandle
    }
    /// # Safety
    /// As [`tag_of`].
    pub unsafe fn from_handle<'a>(handle: *const std::ffi::c_void) -> Option<&'a ParamObj> {
        // SAFETY: forwarded contract.
        if unsafe { tag_of(handle as *const u8) } != Some(PARAM_TAG) {
            return None;
        }
        // SAFETY: tagged ParamObj.
        unsafe { (handle as *const ParamObj).as_ref() }
    }
    pub fn set(&self) -> &ParamSetObj {
        // SAFETY: a parameter lives in its set's vector.
        unsafe { &*self.set }
    }

    /// Stores a new value; strings replaced stay alive (see `retired`).
    pub fn store(&self, value: Stored) {
        let old = std::mem::replace(&mut *self.value.lock().unwrap(), value);
        if let Stored::Str(s) = old {
            self.retired.lock().unwrap().push(s);
        }
    }
}
