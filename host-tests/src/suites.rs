//! The suites the host hands out, as static tables of `extern "C"` functions. The
//! C-variadic entries come from the C shim (`shim/varargs.c`), which calls back into the
//! `ofxh_rust_*` functions of this module with plain, typed arguments.

use crate::host::current_host;
use crate::objects::*;
use crate::props::{c, PropertySet};
use crate::records::{Message, ProgressEvent};
use ofx_bindings::sys::*;
use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

// ---- C shim (variadic functions) ---------------------------------------------------------

extern "C" {
    fn ofxh_message(
        handle: *mut c_void,
        kind: *const c_char,
        id: *const c_char,
        format: *const c_char,
        ...
    ) -> OfxStatus;
    fn ofxh_set_persistent_message(
        handle: *mut c_void,
        kind: *const c_char,
        id: *const c_char,
        format: *const c_char,
        ...
    ) -> OfxStatus;
    fn ofxh_param_get_value(param: OfxParamHandle, ...) -> OfxStatus;
    fn ofxh_param_get_value_at_time(param: OfxParamHandle, time: OfxTime, ...) -> OfxStatus;
    fn ofxh_param_get_derivative(param: OfxParamHandle, time: OfxTime, ...) -> OfxStatus;
    fn ofxh_param_get_integral(
        param: OfxParamHandle,
        time1: OfxTime,
        time2: OfxTime,
        ...
    ) -> OfxStatus;
    fn ofxh_param_set_value(param: OfxParamHandle, ...) -> OfxStatus;
    fn ofxh_param_set_value_at_time(param: OfxParamHandle, time: OfxTime, ...) -> OfxStatus;
}

/// Writes `value` through a non-NULL out pointer.
///
/// # Safety
/// `out` is NULL or writable for one `T` (the plugin's out argument).
unsafe fn put<T>(out: *mut T, value: T) -> OfxStatus {
    if out.is_null() {
        return kOfxStatErrBadHandle;
    }
    // SAFETY: per the contract above.
    unsafe { out.write(value) };
    kOfxStatOK
}

/// # Safety
/// `s` NULL or NUL-terminated.
unsafe fn str_arg<'a>(s: *const c_char) -> Option<&'a str> {
    // SAFETY: per the contract above.
    (!s.is_null())
        .then(|| unsafe { CStr::from_ptr(s) }.to_str().ok())
        .flatten()
}

// ---- Image effect suite --------------------------------------------------------------------

unsafe extern "C" fn get_property_set(
    effect: OfxImageEffectHandle,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: plugin-given handle, checked by tag; out pointer checked by `put`.
    match unsafe { EffectObj::from_handle(effect as *const c_void) } {
        Some(e) => unsafe { put(out, e.props.handle()) },
        None => kOfxStatErrBadHandle,
    }
}

unsafe extern "C" fn get_param_set(
    effect: OfxImageEffectHandle,
    out: *mut OfxParamSetHandle,
) -> OfxStatus {
    // SAFETY: as above.
    match unsafe { EffectObj::from_handle(effect as *const c_void) } {
        Some(e) => unsafe { put(out, e.params.handle()) },
        None => kOfxStatErrBadHandle,
    }
}

unsafe extern "C" fn clip_define(
    effect: OfxImageEffectHandle,
    name: *const c_char,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle; name NUL-terminated per OFX.
    let Some(e) = (unsafe { EffectObj::from_handle(effect as *const c_void) }) else {
        return kOfxStatErrBadHandle;
    };
    let Some(name) = (unsafe { str_arg(name) }) else {
        return kOfxStatErrValue;
    };
    if e.is_instance {
        return kOfxStatErrBadHandle; // clips are defined on descriptors only
    }
    let mut clips = e.clips.lock().unwrap();
    if clips.iter().any(|c| c.name == name) {
        return kOfxStatErrExists;
    }
    let clip = ClipObj::descriptor(name, e as *const EffectObj);
    let props = clip.props.handle();
    clips.push(clip);
    // SAFETY: out pointer checked by `put`.
    unsafe { put(out, props) }
}

unsafe extern "C" fn clip_get_handle(
    effect: OfxImageEffectHandle,
    name: *const c_char,
    clip: *mut OfxImageClipHandle,
    props: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle; NUL-terminated name.
    let Some(e) = (unsafe { EffectObj::from_handle(effect as *const c_void) }) else {
        return kOfxStatErrBadHandle;
    };
    let Some(name) = (unsafe { str_arg(name) }) else {
        return kOfxStatErrValue;
    };
    let Some(found) = e.clip(name) else {
        return kOfxStatErrUnknown;
    };
    // SAFETY: `found` points into the effect's clip list, alive with the effect.
    let found = unsafe { &*found };
    if !props.is_null() {
        // SAFETY: non-NULL out pointer (props is optional in the API).
        unsafe { props.write(found.props.handle()) };
    }
    // SAFETY: out pointer checked by `put`.
    unsafe { put(clip, found.handle()) }
}

unsafe extern "C" fn clip_get_property_set(
    clip: OfxImageClipHandle,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle and checked out pointer.
    match unsafe { ClipObj::from_handle(clip) } {
        Some(c) => unsafe { put(out, c.props.handle()) },
        None => kOfxStatErrBadHandle,
    }
}

/// Builds the properties of an image over a host buffer.
pub(crate) fn image_properties(render: &ActiveRender, clip: &str) -> Box<PropertySet> {
    let p = PropertySet::new(format!("image of {clip} at {}", render.time));
    let b = render.bounds;
    p.define_string(kOfxPropType, &["OfxTypeImage"]);
    p.define_string(
        kOfxImageEffectPropPixelDepth,
        &[render.depth.to_str().unwrap()],
    );
    p.define_string(kOfxImageEffectPropComponents, &["OfxImageComponentRGBA"]);
    p.define_string(
        kOfxImageEffectPropPreMultiplication,
        &["OfxImageAlphaPremultiplied"],
    );
    p.define_double(
        kOfxImageEffectPropRenderScale,
        &[render.render_scale, render.render_scale],
    );
    p.define_double(kOfxImagePropPixelAspectRatio, &[1.0]);
    p.define_pointer(kOfxImagePropData, &[render.data]);
    p.define_int(kOfxImagePropBounds, &[b.x1, b.y1, b.x2, b.y2]);
    p.define_int(kOfxImagePropRegionOfDefinition, &[b.x1, b.y1, b.x2, b.y2]);
    p.define_int(kOfxImagePropRowBytes, &[render.row_bytes]);
    p.define_string(kOfxImagePropField, &["OfxFieldNone"]);
    p.define_string(
        kOfxImagePropUniqueIdentifier,
        &[&format!("{clip}@{}", render.time)],
    );
    p
}

unsafe extern "C" fn clip_get_image(
    clip: OfxImageClipHandle,
    time: OfxTime,
    _region: *const OfxRectD,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle.
    let Some(clip) = (unsafe { ClipObj::from_handle(clip) }) else {
        return kOfxStatErrBadHandle;
    };
    let effect = clip.effect();
    if clip.name != "Output" {
        // An input: the image connected to it (the same at every time), if any.
        let inputs = effect.inputs.lock().unwrap();
        let Some(input) = inputs.iter().find(|i| i.clip == clip.name) else {
            return kOfxStatFailed;
        };
        let render = ActiveRender {
            thread: std::thread::current().id(),
            time,
            data: input.pixels.as_ptr() as usize,
            bounds: OfxRectI {
                x1: 0,
                y1: 0,
                x2: input.width as i32,
                y2: input.height as i32,
            },
            row_bytes: (input.width * 4 * std::mem::size_of::<f32>()) as i32,
            depth: ofx_bindings::PixelDepth::Float.as_cstr(),
            render_scale: 1.0,
        };
        let props = image_properties(&render, &clip.name);
        props.context.store(
            effect as *const EffectObj as usize,
            std::sync::atomic::Ordering::SeqCst,
        );
        let handle = props.handle();
        effect.images.lock().unwrap().push(OutstandingImage {
            props,
            data: render.data,
        });
        // SAFETY: out pointer checked by `put`.
        return unsafe { put(out, handle) };
    }
    let renders = effect.renders.lock().unwrap();
    let this_thread = std::thread::current().id();
    // The render running on this thread first, then any render of that time (a plugin may
    // fetch its output from one of its own worker threads).
    let render = renders
        .iter()
        .find(|r| r.thread == this_thread && r.time == time)
        .or_else(|| renders.iter().find(|r| r.time == time));
    let Some(render) = render else {
        return kOfxStatFailed;
    };
    let props = image_properties(render, &clip.name);
    props.context.store(
        effect as *const EffectObj as usize,
        std::sync::atomic::Ordering::SeqCst,
    );
    let handle = props.handle();
    effect.images.lock().unwrap().push(OutstandingImage {
        props,
        data: render.data,
    });
    // SAFETY: out pointer checked by `put`.
    unsafe { put(out, handle) }
}

unsafe extern "C" fn clip_release_image(image: OfxPropertySetHandle) -> OfxStatus {
    // SAFETY: tag-checked property set handle.
    let Ok(set) = (unsafe { PropertySet::from_handle(image) }) else {
        return kOfxStatErrBadHandle;
    };
    let effect = set.context.load(std::sync::atomic::Ordering::SeqCst) as *const c_void;
    // SAFETY: clip_get_image stores the owning effect's address in the image's context; an
    // effect outlives the images it handed out (the host checks they are all released).
    let Some(effect) = (unsafe { EffectObj::from_handle(effect) }) else {
        return kOfxStatErrBadHandle;
    };
    let mut images = effect.images.lock().unwrap();
    match images.iter().position(|img| img.props.handle() == image) {
        Some(i) => {
            images.swap_remove(i);
            kOfxStatOK
        }
        None => kOfxStatErrBadHandle, // released twice, or never handed out
    }
}

unsafe extern "C" fn clip_get_region_of_definition(
    clip: OfxImageClipHandle,
    _time: OfxTime,
    out: *mut OfxRectD,
) -> OfxStatus {
    // SAFETY: tag-checked handle.
    let Some(clip) = (unsafe { ClipObj::from_handle(clip) }) else {
        return kOfxStatErrBadHandle;
    };
    let (w, h) = clip.effect().host.profile.project_size;
    // SAFETY: checked out pointer.
    unsafe {
        put(
            out,
            OfxRectD {
                x1: 0.0,
                y1: 0.0,
                x2: w,
                y2: h,
            },
        )
    }
}

unsafe extern "C" fn abort(effect: OfxImageEffectHandle) -> c_int {
    // SAFETY: tag-checked handle.
    match unsafe { EffectObj::from_handle(effect as *const c_void) } {
        Some(e) => e.host.abort.load(std::sync::atomic::Ordering::SeqCst) as c_int,
        None => 0,
    }
}

/// Image memory: a 16-byte aligned block with a lock count.
struct ImageMemory {
    tag: u64,
    data: Vec<u128>,
    locks: Mutex<u32>,
}
const IMAGE_MEMORY_TAG: u64 = 0x494d_474d_454d_3031;

unsafe extern "C" fn image_memory_alloc(
    _effect: OfxImageEffectHandle,
    n: usize,
    out: *mut OfxImageMemoryHandle,
) -> OfxStatus {
    let block = Box::new(ImageMemory {
        tag: IMAGE_MEMORY_TAG,
        data: vec![0u128; n.div_ceil(16)],
        locks: Mutex::new(0),
    });
    // SAFETY: checked out pointer; ownership passes to the handle until imageMemoryFree.
    unsafe { put(out, Box::into_raw(block) as OfxImageMemoryHandle) }
}

/// # Safety
/// `h` NULL or a handle from image_memory_alloc not yet freed.
unsafe fn image_memory<'a>(h: OfxImageMemoryHandle) -> Option<&'a ImageMemory> {
    // SAFETY: per the contract; tag checked.
    let m = unsafe { (h as *const ImageMemory).as_ref() }?;
    (m.tag == IMAGE_MEMORY_TAG).then_some(m)
}

unsafe extern "C" fn image_memory_free(h: OfxImageMemoryHandle) -> OfxStatus {
    // SAFETY: plugin contract: a live handle from imageMemoryAlloc.
    if unsafe { image_memory(h) }.is_none() {
        return kOfxStatErrBadHandle;
    }
    // SAFETY: came from Box::into_raw in image_memory_alloc; freed once.
    drop(unsafe { Box::from_raw(h as *mut ImageMemory) });
    kOfxStatOK
}

unsafe extern "C" fn image_memory_lock(
    h: OfxImageMemoryHandle,
    out: *mut *mut c_void,
) -> OfxStatus {
    // SAFETY: plugin contract: a live handle.
    let Some(m) = (unsafe { image_memory(h) }) else {
        return kOfxStatErrBadHandle;
    };
    *m.locks.lock().unwrap() += 1;
    // SAFETY: checked out pointer; the block does not move while the handle lives.
    unsafe { put(out, m.data.as_ptr() as *mut c_void) }
}

unsafe extern "C" fn image_memory_unlock(h: OfxImageMemoryHandle) -> OfxStatus {
    // SAFETY: plugin contract: a live handle.
    let Some(m) = (unsafe { image_memory(h) }) else {
        return kOfxStatErrBadHandle;
    };
    let mut locks = m.locks.lock().unwrap();
    *locks = locks.saturating_sub(1);
    kOfxStatOK
}

pub static IMAGE_EFFECT_SUITE: OfxImageEffectSuiteV1 = OfxImageEffectSuiteV1 {
    getPropertySet: Some(get_property_set),
    getParamSet: Some(get_param_set),
    clipDefine: Some(clip_define),
    clipGetHandle: Some(clip_get_handle),
    clipGetPropertySet: Some(clip_get_property_set),
    clipGetImage: Some(clip_get_image),
    clipReleaseImage: Some(clip_release_image),
    clipGetRegionOfDefinition: Some(clip_get_region_of_definition),
    abort: Some(abort),
    imageMemoryAlloc: Some(image_memory_alloc),
    imageMemoryFree: Some(image_memory_free),
    imageMemoryLock: Some(image_memory_lock),
    imageMemoryUnlock: Some(image_memory_unlock),
};

// ---- Parameter suite -----------------------------------------------------------------------

unsafe extern "C" fn param_define(
    set: OfxParamSetHandle,
    param_type: *const c_char,
    name: *const c_char,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle; NUL-terminated strings per OFX.
    let Some(set) = (unsafe { ParamSetObj::from_handle(set) }) else {
        return kOfxStatErrBadHandle;
    };
    let (Some(param_type), Some(name)) = (unsafe { str_arg(param_type) }, unsafe { str_arg(name) })
    else {
        return kOfxStatErrValue;
    };
    if set.effect().is_instance {
        return kOfxStatErrBadHandle; // parameters are defined on descriptors only
    }
    let mut params = set.params.lock().unwrap();
    if params.iter().any(|p| p.name == name) {
        return kOfxStatErrExists;
    }
    let Some(param) = ParamObj::descriptor(&c(param_type), name, set as *const ParamSetObj) else {
        return kOfxStatErrUnknown;
    };
    let props = param.props.handle();
    params.push(param);
    // SAFETY: checked out pointer.
    unsafe { put(out, props) }
}

unsafe extern "C" fn param_get_handle(
    set: OfxParamSetHandle,
    name: *const c_char,
    out: *mut OfxParamHandle,
    props: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle; NUL-terminated name.
    let Some(set) = (unsafe { ParamSetObj::from_handle(set) }) else {
        return kOfxStatErrBadHandle;
    };
    let Some(name) = (unsafe { str_arg(name) }) else {
        return kOfxStatErrValue;
    };
    let hidden = set
        .effect()
        .host
        .hidden_params
        .lock()
        .unwrap()
        .iter()
        .any(|h| h == name);
    let Some(param) = set.find(name).filter(|_| !hidden) else {
        return kOfxStatErrUnknown;
    };
    // SAFETY: points into the set's list, alive with the set.
    let param = unsafe { &*param };
    if !props.is_null() {
        // SAFETY: optional non-NULL out pointer.
        unsafe { props.write(param.props.handle()) };
    }
    // SAFETY: checked out pointer.
    unsafe { put(out, param.handle()) }
}

unsafe extern "C" fn param_set_get_property_set(
    set: OfxParamSetHandle,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle, checked out pointer.
    match unsafe { ParamSetObj::from_handle(set) } {
        Some(s) => unsafe { put(out, s.props.handle()) },
        None => kOfxStatErrBadHandle,
    }
}

unsafe extern "C" fn param_get_property_set(
    param: OfxParamHandle,
    out: *mut OfxPropertySetHandle,
) -> OfxStatus {
    // SAFETY: tag-checked handle, checked out pointer.
    match unsafe { ParamObj::from_handle(param as *const c_void) } {
        Some(p) => unsafe { put(out, p.props.handle()) },
        None => kOfxStatErrBadHandle,
    }
}

unsafe extern "C" fn param_get_num_keys(param: OfxParamHandle, out: *mut c_uint) -> OfxStatus {
    // SAFETY: tag-checked handle; values are never animated in this host.
    match unsafe { ParamObj::from_handle(param as *const c_void) } {
        Some(_) => unsafe { put(out, 0) },
        None => kOfxStatErrBadHandle,
    }
}
unsafe extern "C" fn param_get_key_time(
    param: OfxParamHandle,
    _nth: c_uint,
    _out: *mut OfxTime,
) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { ParamObj::from_handle(param as *const c_void) } {
        Some(_) => kOfxStatErrBadIndex,
        None => kOfxStatErrBadHandle,
    }
}
unsafe extern "C" fn param_get_key_index(
    param: OfxParamHandle,
    _t: OfxTime,
    _dir: c_int,
    _out: *mut c_int,
) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { ParamObj::from_handle(param as *const c_void) } {
        Some(_) => kOfxStatFailed,
        None => kOfxStatErrBadHandle,
    }
}
unsafe extern "C" fn param_delete_key(param: OfxParamHandle, _t: OfxTime) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { ParamObj::from_handle(param as *const c_void) } {
        Some(_) => kOfxStatErrBadIndex,
        None => kOfxStatErrBadHandle,
    }
}
unsafe extern "C" fn param_delete_all_keys(param: OfxParamHandle) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { ParamObj::from_handle(param as *const c_void) } {
        Some(_) => kOfxStatOK,
        None => kOfxStatErrBadHandle,
    }
}
unsafe extern "C" fn param_copy(
    to: OfxParamHandle,
    from: OfxParamHandle,
    _offset: OfxTime,
    _range: *const OfxRangeD,
) -> OfxStatus {
    // SAFETY: tag-checked handles.
    let (Some(to), Some(from)) = (
        unsafe { ParamObj::from_handle(to as *const c_void) },
        unsafe { ParamObj::from_handle(from as *const c_void) },
    ) else {
        return kOfxStatErrBadHandle;
    };
    if to.param_type != from.param_type {
        return kOfxStatErrValue;
    }
    let value = from.value.lock().unwrap().clone();
    to.store(value);
    kOfxStatOK
}
unsafe extern "C" fn param_edit_begin(set: OfxParamSetHandle, _name: *const c_char) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { ParamSetObj::from_handle(set) } {
        Some(_) => kOfxStatOK,
        None => kOfxStatErrBadHandle,
    }
}
unsafe extern "C" fn param_edit_end(set: OfxParamSetHandle) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { ParamSetObj::from_handle(set) } {
        Some(_) => kOfxStatOK,
        None => kOfxStatErrBadHandle,
    }
}

pub static PARAMETER_SUITE: OfxParameterSuiteV1 = OfxParameterSuiteV1 {
    paramDefine: Some(param_define),
    paramGetHandle: Some(param_get_handle),
    paramSetGetPropertySet: Some(param_set_get_property_set),
    paramGetPropertySet: Some(param_get_property_set),
    paramGetValue: Some(ofxh_param_get_value),
    paramGetValueAtTime: Some(ofxh_param_get_value_at_time),
    paramGetDerivative: Some(ofxh_param_get_derivative),
    paramGetIntegral: Some(ofxh_param_get_integral),
    paramSetValue: Some(ofxh_param_set_value),
    paramSetValueAtTime: Some(ofxh_param_set_value_at_time),
    paramGetNumKeys: Some(param_get_num_keys),
    paramGetKeyTime: Some(param_get_key_time),
    paramGetKeyIndex: Some(param_get_key_index),
    paramDeleteKey: Some(param_delete_key),
    paramDeleteAllKeys: Some(param_delete_all_keys),
    paramCopy: Some(param_copy),
    paramEditBegin: Some(param_edit_begin),
    paramEditEnd: Some(param_edit_end),
};

// Callbacks of the C shim: plain typed arguments, no varargs.

/// # Safety
/// `param` as any plugin handle; checked by tag.
unsafe fn instance_param<'a>(param: *mut c_void) -> Result<&'a ParamObj, OfxStatus> {
    // SAFETY: forwarded contract.
    let p = unsafe { ParamObj::from_handle(param) }.ok_or(kOfxStatErrBadHandle)?;
    if !p.is_instance {
        return Err(kOfxStatErrBadHandle); // descriptors have no value
    }
    Ok(p)
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_kind(
    param: *mut c_void,
    kind: *mut c_int,
    dims: *mut c_int,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `kind`/`dims` are locals of the shim.
    match unsafe { instance_param(param) } {
        Ok(p) => unsafe {
            kind.write(p.kind as c_int);
            dims.write(p.dims as c_int);
            kOfxStatOK
        },
        Err(s) => s,
    }
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_get_ints(
    param: *mut c_void,
    _has_time: c_int,
    _t: f64,
    out: *mut c_int,
    n: c_int,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `out` is the shim's array of `n` <= 4 ints.
    let p = match unsafe { instance_param(param) } {
        Ok(p) => p,
        Err(s) => return s,
    };
    match &*p.value.lock().unwrap() {
        Stored::Ints(v) if v.len() == n as usize => {
            for (i, x) in v.iter().enumerate() {
                // SAFETY: i < n, within the shim's array.
                unsafe { out.add(i).write(*x) };
            }
            kOfxStatOK
        }
        _ => kOfxStatErrValue,
    }
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_get_doubles(
    param: *mut c_void,
    _has_time: c_int,
    _t: f64,
    out: *mut f64,
    n: c_int,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `out` is the shim's array of `n` <= 4 doubles.
    let p = match unsafe { instance_param(param) } {
        Ok(p) => p,
        Err(s) => return s,
    };
    match &*p.value.lock().unwrap() {
        Stored::Doubles(v) if v.len() == n as usize => {
            for (i, x) in v.iter().enumerate() {
                // SAFETY: i < n, within the shim's array.
                unsafe { out.add(i).write(*x) };
            }
            kOfxStatOK
        }
        _ => kOfxStatErrValue,
    }
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_get_string(
    param: *mut c_void,
    _has_time: c_int,
    _t: f64,
    out: *mut *const c_char,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `out` is a local of the shim. The pointer stays valid while
    // the parameter lives: replaced strings are retired, not freed.
    let p = match unsafe { instance_param(param) } {
        Ok(p) => p,
        Err(s) => return s,
    };
    match &*p.value.lock().unwrap() {
        Stored::Str(s) => unsafe { put(out, s.as_ptr()) },
        _ => kOfxStatErrValue,
    }
}

/// A value set by the plugin: store it and queue `InstanceChanged(PluginEdited)`.
fn plugin_set(p: &ParamObj, value: Stored) -> OfxStatus {
    p.store(value);
    p.set()
        .effect()
        .pending_plugin_changes
        .lock()
        .unwrap()
        .push(p.name.clone());
    kOfxStatOK
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_set_ints(
    param: *mut c_void,
    _has_time: c_int,
    _t: f64,
    values: *const c_int,
    n: c_int,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `values` is the shim's array of `n` ints.
    let p = match unsafe { instance_param(param) } {
        Ok(p) => p,
        Err(s) => return s,
    };
    if p.kind != ValueKind::Int || p.dims != n as usize {
        return kOfxStatErrValue;
    }
    // SAFETY: n ints in the shim's array.
    let v = unsafe { std::slice::from_raw_parts(values, n as usize) }.to_vec();
    plugin_set(p, Stored::Ints(v))
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_set_doubles(
    param: *mut c_void,
    _has_time: c_int,
    _t: f64,
    values: *const f64,
    n: c_int,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `values` is the shim's array of `n` doubles.
    let p = match unsafe { instance_param(param) } {
        Ok(p) => p,
        Err(s) => return s,
    };
    if p.kind != ValueKind::Double || p.dims != n as usize {
        return kOfxStatErrValue;
    }
    // SAFETY: n doubles in the shim's array.
    let v = unsafe { std::slice::from_raw_parts(values, n as usize) }.to_vec();
    plugin_set(p, Stored::Doubles(v))
}

#[no_mangle]
unsafe extern "C" fn ofxh_rust_param_set_string(
    param: *mut c_void,
    _has_time: c_int,
    _t: f64,
    value: *const c_char,
) -> OfxStatus {
    // SAFETY: tag-checked handle; `value` is the plugin's `char *` vararg.
    let p = match unsafe { instance_param(param) } {
        Ok(p) => p,
        Err(s) => return s,
    };
    if p.kind != ValueKind::String || value.is_null() {
        return kOfxStatErrValue;
    }
    // SAFETY: non-NULL NUL-terminated string per the OFX contract; copied now.
    plugin_set(p, Stored::Str(unsafe { CStr::from_ptr(value) }.to_owned()))
}

// ---- Message suites --------------------------------------------------------------------------

/// Called by the shim with the formatted text.
#[no_mangle]
unsafe extern "C" fn ofxh_rust_message(
    handle: *mut c_void,
    kind: *const c_char,
    id: *const c_char,
    text: *const c_char,
    persistent: c_int,
) -> OfxStatus {
    // SAFETY: strings NULL or NUL-terminated (the plugin's, and the shim's buffer).
    let message = unsafe {
        Message {
            kind: str_arg(kind).unwrap_or("").to_owned(),
            id: str_arg(id).unwrap_or("").to_owned(),
            text: if text.is_null() {
                String::new()
            } else {
                CStr::from_ptr(text).to_string_lossy().into_owned()
            },
        }
    };
    let is_question = message.kind.as_bytes() == kOfxMessageQuestion.to_bytes();
    // SAFETY: the handle is NULL, an effect handle (checked by tag) or something else.
    let effect = unsafe { EffectObj::from_handle(handle) };
    if persistent != 0 {
        let Some(effect) = effect.filter(|e| e.is_instance) else {
            return kOfxStatErrBadHandle;
        };
        effect.records.lock().unwrap().persistent = Some(message);
        return kOfxStatOK;
    }
    let reply = match effect {
        Some(e) => {
            e.records.lock().unwrap().messages.push(message);
            e.host
                .question_reply
                .load(std::sync::atomic::Ordering::SeqCst)
        }
        None => match current_host() {
            Some(host) => {
                host.messages.lock().unwrap().push(message);
                host.question_reply
                    .load(std::sync::atomic::Ordering::SeqCst)
            }
            None => {
                eprintln!("[ofx-test-host] message with no host: {message:?}");
                kOfxStatReplyYes
            }
        },
    };
    if is_question {
        reply
    } else {
        kOfxStatOK
    }
}

unsafe extern "C" fn clear_persistent_message(handle: *mut c_void) -> OfxStatus {
    // SAFETY: tag-checked handle.
    match unsafe { EffectObj::from_handle(handle) } {
        Some(e) if e.is_instance => {
            e.records.lock().unwrap().persistent = None;
            kOfxStatOK
        }
        _ => kOfxStatErrBadHandle,
    }
}

pub static MESSAGE_SUITE_V1: OfxMessageSuiteV1 = OfxMessageSuiteV1 {
    message: Some(ofxh_message),
};
pub static MESSAGE_SUITE_V2: OfxMessageSuiteV2 = OfxMessageSuiteV2 {
    message: Some(ofxh_message),
    setPersistentMessage: Some(ofxh_set_persistent_message),
    clearPersistentMessage: Some(clear_persistent_message),
};
/// Resolve 14's V2: `setPersistentMessage` is NULL.
pub static MESSAGE_SUITE_V2_NULL_PERSISTENT: OfxMessageSuiteV2 = OfxMessageSuiteV2 {
    message: Some(ofxh_message),
    setPersistentMessage: None,
    clearPersistentMessage: Some(clear_persistent_message),
};

// ---- Progress suites -------------------------------------------------------------------------

fn progress_record(handle: *mut c_void, event: ProgressEvent) -> OfxStatus {
    // SAFETY: tag-checked handle.
    let Some(e) = (unsafe { EffectObj::from_handle(handle) }).filter(|e| e.is_instance) else {
        return kOfxStatErrBadHandle;
    };
    let is_update = matches!(event, ProgressEvent::Update(_));
    e.records.lock().unwrap().progress.push(event);
    if is_update
        && e.host
            .cancel_progress
            .load(std::sync::atomic::Ordering::SeqCst)
    {
        kOfxStatReplyNo
    } else {
        kOfxStatOK
    }
}

unsafe extern "C" fn progress_start_v1(handle: *mut c_void, label: *const c_char) -> OfxStatus {
    // SAFETY: NULL or NUL-terminated label.
    let label = unsafe { str_arg(label) }.unwrap_or("").to_owned();
    progress_record(handle, ProgressEvent::Start { label, id: None })
}
unsafe extern "C" fn progress_start_v2(
    handle: *mut c_void,
    label: *const c_char,
    id: *const c_char,
) -> OfxStatus {
    // SAFETY: NULL or NUL-terminated strings.
    let (label, id) = unsafe {
        (
            str_arg(label).unwrap_or("").to_owned(),
            str_arg(id).map(str::to_owned),
        )
    };
    progress_record(handle, ProgressEvent::Start { label, id })
}
unsafe extern "C" fn progress_update(handle: *mut c_void, fraction: f64) -> OfxStatus {
    progress_record(handle, ProgressEvent::Update(fraction))
}
unsafe extern "C" fn progress_end(handle: *mut c_void) -> OfxStatus {
    progress_record(handle, ProgressEvent::End)
}

pub static PROGRESS_SUITE_V1: OfxProgressSuiteV1 = OfxProgressSuiteV1 {
    progressStart: Some(progress_start_v1),
    progressUpdate: Some(progress_update),
    progressEnd: Some(progress_end),
};
pub static PROGRESS_SUITE_V2: OfxProgressSuiteV2 = OfxProgressSuiteV2 {
    progressStart: Some(progress_start_v2),
    progressUpdate: Some(progress_update),
    progressEnd: Some(progress_end),
};

// ---- Memory suite ----------------------------------------------------------------------------

const MEMORY_HEADER: usize = 16;

unsafe extern "C" fn memory_alloc(
    _handle: *mut c_void,
    n: usize,
    out: *mut *mut c_void,
) -> OfxStatus {
    let Some(size) = n.checked_add(MEMORY_HEADER) else {
        return kOfxStatErrMemory;
    };
    let Ok(layout) = std::alloc::Layout::from_size_align(size, 16) else {
        return kOfxStatErrMemory;
    };
    // SAFETY: non-zero size (header included).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return kOfxStatErrMemory;
    }
    // SAFETY: the header holds the size, for memoryFree to rebuild the layout.
    unsafe { (base as *mut usize).write(size) };
    // SAFETY: checked out pointer; data starts after the header, 16-aligned.
    unsafe { put(out, base.add(MEMORY_HEADER) as *mut c_void) }
}

unsafe extern "C" fn memory_free(data: *mut c_void) -> OfxStatus {
    if data.is_null() {
        return kOfxStatErrBadHandle;
    }
    // SAFETY: plugin contract: `data` came from memoryAlloc; the header precedes it.
    unsafe {
        let base = (data as *mut u8).sub(MEMORY_HEADER);
        let size = (base as *const usize).read();
        std::alloc::dealloc(
            base,
            std::alloc::Layout::from_size_align_unchecked(size, 16),
        );
    }
    kOfxStatOK
}

pub static MEMORY_SUITE: OfxMemorySuiteV1 = OfxMemorySuiteV1 {
    memoryAlloc: Some(memory_alloc),
    memoryFree: Some(memory_free),
};

// ---- Multithread suite -----------------------------------------------------------------------

thread_local! {
    static THREAD_INDEX: Cell<Option<u32>> = const { Cell::new(None) };
}

struct SendPtr(*mut c_void);
// SAFETY: `customArg` is shared with the plugin's own threads by the suite's contract.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

unsafe extern "C" fn multi_thread(
    func: OfxThreadFunctionV1,
    n: c_uint,
    arg: *mut c_void,
) -> OfxStatus {
    let Some(func) = func else {
        return kOfxStatErrBadHandle;
    };
    let n = if n == 0 { num_cpus() } else { n };
    let arg = SendPtr(arg);
    let arg = &arg;
    let panicked = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                scope.spawn(move || {
                    THREAD_INDEX.with(|t| t.set(Some(i)));
                    // SAFETY: the plugin's thread function, called with the index, count and
                    // argument it asked for.
                    unsafe { func(i, n, arg.0) };
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).any(|r| r.is_err())
    });
    if panicked {
        kOfxStatFailed
    } else {
        kOfxStatOK
    }
}

fn num_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

unsafe extern "C" fn multi_thread_num_cpus(out: *mut c_uint) -> OfxStatus {
    // SAFETY: checked out pointer.
    unsafe { put(out, num_cpus()) }
}
unsafe extern "C" fn multi_thread_index(out: *mut c_uint) -> OfxStatus {
    // SAFETY: checked out pointer.
    unsafe { put(out, THREAD_INDEX.with(|t| t.get()).unwrap_or(0)) }
}
unsafe extern "C" fn multi_thread_is_spawned() -> c_int {
    THREAD_INDEX.with(|t| t.get()).is_some() as c_int
}

/// A recursive mutex, as OFX mutexes are.
struct HostMutex {
    tag: u64,
    state: Mutex<(Option<ThreadId>, u32)>,
    released: Condvar,
}
const MUTEX_TAG: u64 = 0x4d55_5445_5830_3031;

/// # Safety
/// `m` NULL or a live handle from mutexCreate.
unsafe fn host_mutex<'a>(m: OfxMutexHandle) -> Option<&'a HostMutex> {
    // SAFETY: per the contract; tag checked.
    let m = unsafe { (m as *const HostMutex).as_ref() }?;
    (m.tag == MUTEX_TAG).then_some(m)
}

unsafe extern "C" fn mutex_create(out: *mut OfxMutexHandle, lock_count: c_int) -> OfxStatus {
    let owner = (lock_count > 0).then(|| std::thread::current().id());
    let m = Box::new(HostMutex {
        tag: MUTEX_TAG,
        state: Mutex::new((owner, lock_count.max(0) as u32)),
        released: Condvar::new(),
    });
    // SAFETY: checked out pointer; owned by the handle until mutexDestroy.
    unsafe { put(out, Box::into_raw(m) as OfxMutexHandle) }
}
unsafe extern "C" fn mutex_destroy(m: OfxMutexHandle) -> OfxStatus {
    // SAFETY: plugin contract: a live handle.
    if unsafe { host_mutex(m) }.is_none() {
        return kOfxStatErrBadHandle;
    }
    // SAFETY: from Box::into_raw in mutex_create, destroyed once.
    drop(unsafe { Box::from_raw(m as *mut HostMutex) });
    kOfxStatOK
}
unsafe extern "C" fn mutex_lock(m: OfxMutexHandle) -> OfxStatus {
    // SAFETY: plugin contract: a live handle.
    let Some(m) = (unsafe { host_mutex(m) }) else {
        return kOfxStatErrBadHandle;
    };
    let me = std::thread::current().id();
    let mut state = m.state.lock().unwrap();
    while state.0.is_some() && state.0 != Some(me) {
        state = m.released.wait(state).unwrap();
    }
    state.0 = Some(me);
    state.1 += 1;
    kOfxStatOK
}
unsafe extern "C" fn mutex_unlock(m: OfxMutexHandle) -> OfxStatus {
    // SAFETY: plugin contract: a live handle.
    let Some(m) = (unsafe { host_mutex(m) }) else {
        return kOfxStatErrBadHandle;
    };
    let mut state = m.state.lock().unwrap();
    if state.0 != Some(std::thread::current().id()) {
        return kOfxStatErrBadHandle; // not locked by this thread
    }
    state.1 -= 1;
    if state.1 == 0 {
        state.0 = None;
        m.released.notify_one();
    }
    kOfxStatOK
}
unsafe extern "C" fn mutex_try_lock(m: OfxMutexHandle) -> OfxStatus {
    // SAFETY: plugin contract: a live handle.
    let Some(m) = (unsafe { host_mutex(m) }) else {
        return kOfxStatErrBadHandle;
    };
    let me = std::thread::current().id();
    let mut state = m.state.lock().unwrap();
    if state.0.is_some() && state.0 != Some(me) {
        return kOfxStatFailed;
    }
    state.0 = Some(me);
    state.1 += 1;
    kOfxStatOK
}

pub static MULTI_THREAD_SUITE: OfxMultiThreadSuiteV1 = OfxMultiThreadSuiteV1 {
    multiThread: Some(multi_thread),
    multiThreadNumCPUs: Some(multi_thread_num_cpus),
    multiThreadIndex: Some(multi_thread_index),
    multiThreadIsSpawnedThread: Some(multi_thread_is_spawned),
    mutexCreate: Some(mutex_create),
    mutexDestroy: Some(mutex_destroy),
    mutexLock: Some(mutex_lock),
    mutexUnLock: Some(mutex_unlock),
    mutexTryLock: Some(mutex_try_lock),
};
