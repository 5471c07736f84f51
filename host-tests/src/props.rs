//! The host's property store and the property suite over it.
//!
//! Every property set is predefined by the host: a property has a type (int, double,
//! string, pointer), a default and a fixed or variable dimension. Getting or setting an
//! unknown property answers `kOfxStatErrUnknown`, the wrong type `kOfxStatErrValue`, an
//! index out of range `kOfxStatErrBadIndex`, and a handle that is not a property set
//! `kOfxStatErrBadHandle`.

use ofx_bindings::sys::*;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

const PROPERTY_SET_TAG: u64 = 0x5052_4f50_5345_5431; // "PROPSET1"

/// Typed values of one property.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Int(Vec<i32>),
    Double(Vec<f64>),
    String(Vec<CString>),
    Pointer(Vec<usize>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::String(v) => v.len(),
            Values::Pointer(v) => v.len(),
        }
    }
    fn type_name(&self) -> &'static str {
        match self {
            Values::Int(_) => "int",
            Values::Double(_) => "double",
            Values::String(_) => "string",
            Values::Pointer(_) => "pointer",
        }
    }
}

#[derive(Debug, Clone)]
struct Property {
    values: Values,
    default: Values,
    /// `None`: variable dimension (grows when the plugin sets the next index).
    fixed_dimension: Option<usize>,
}

/// A property set at a stable address; its address is the OFX handle.
#[repr(C)] // the tag must sit at offset 0, as in every handle object of this host
pub struct PropertySet {
    tag: u64,
    /// What the set belongs to, for error messages ("host", "clip Output", ...).
    pub what: String,
    props: Mutex<BTreeMap<CString, Property>>,
    /// Strings replaced while a plugin may still hold their pointer; freed with the set.
    retired: Mutex<Vec<CString>>,
    /// Host context attached to the set (the host property set points back to its host).
    pub(crate) context: std::sync::atomic::AtomicUsize,
}

pub type PropResult<T> = Result<T, OfxStatus>;

impl PropertySet {
    pub fn new(what: impl Into<String>) -> Box<PropertySet> {
        Box::new(PropertySet {
            tag: PROPERTY_SET_TAG,
            what: what.into(),
            props: Mutex::new(BTreeMap::new()),
            retired: Mutex::new(Vec::new()),
            context: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// A copy with the same definitions and values (descriptor -> instance).
    pub fn clone_as(&self, what: impl Into<String>) -> Box<PropertySet> {
        let copy = PropertySet::new(what);
        *copy.props.lock().unwrap() = self.props.lock().unwrap().clone();
        copy
    }

    pub fn handle(&self) -> OfxPropertySetHandle {
        self as *const PropertySet as OfxPropertySetHandle
    }

    /// The set behind a handle, after checking it is one.
    ///
    /// # Safety
    /// `handle` is NULL or a pointer the host handed out that is still alive (a plugin
    /// passing a freed handle is undefined behaviour in any host). The tag check catches
    /// handles of another kind.
    pub unsafe fn from_handle<'a>(handle: OfxPropertySetHandle) -> PropResult<&'a PropertySet> {
        // SAFETY: per the contract above; reading the tag of a live object of any of our
        // handle kinds is valid because every one starts with a u64 tag.
        let set = unsafe { (handle as *const PropertySet).as_ref() }.ok_or(kOfxStatErrBadHandle)?;
        // SAFETY: as above.
        if unsafe { std::ptr::addr_of!(set.tag).read() } != PROPERTY_SET_TAG {
            return Err(kOfxStatErrBadHandle);
        }
        Ok(set)
    }

    fn define(&self, name: &CStr, values: Values, fixed: bool) {
        let fixed_dimension = fixed.then(|| values.len());
        self.props.lock().unwrap().insert(
            name.to_owned(),
            Property {
                default: values.clone(),
                values,
                fixed_dimension,
            },
        );
    }
    pub fn define_int(&self, name: &CStr, values: &[i32]) {
        self.define(name, Values::Int(values.to_vec()), true)
    }
    pub fn define_double(&self, name: &CStr, values: &[f64]) {
        self.define(name, Values::Double(values.to_vec()), true)
    }
    pub fn define_string(&self, name: &CStr, values: &[&str]) {
        self.define(
            name,
            Values::String(values.iter().map(|s| c(s)).collect()),
            true,
        )
    }
    pub fn define_pointer(&self, name: &CStr, values: &[usize]) {
        self.define(name, Values::Pointer(values.to_vec()), true)
    }
    pub fn define_int_var(&self, name: &CStr, values: &[i32]) {
        self.define(name, Values::Int(values.to_vec()), false)
    }
    pub fn define_double_var(&self, name: &CStr, values: &[f64]) {
        self.define(name, Values::Double(values.to_vec()), false)
    }
    pub fn define_string_var(&self, name: &CStr, values: &[&str]) {
        self.define(
            name,
            Values::String(values.iter().map(|s| c(s)).collect()),
            false,
        )
    }
    pub fn define_bool(&self, name: &CStr, value: bool) {
        self.define_int(name, &[value as i32])
    }
    pub fn remove(&self, name: &CStr) {
        self.props.lock().unwrap().remove(name);
    }
    pub fn contains(&self, name: &CStr) -> bool {
        self.props.lock().unwrap().contains_key(name)
    }
    /// Names of all properties, for diagnostics.
    pub fn names(&self) -> Vec<String> {
        self.props
            .lock()
            .unwrap()
            .keys()
            .map(|k| k.to_string_lossy().into_owned())
            .collect()
    }
    /// All values of a property, as stored.
    pub fn values(&self, name: &CStr) -> Option<Values> {
        self.props
            .lock()
            .unwrap()
            .get(name)
            .map(|p| p.values.clone())
    }

    fn with_prop<R>(
        &self,
        name: &CStr,
        f: impl FnOnce(&mut Property) -> PropResult<R>,
    ) -> PropResult<R> {
        let mut props = self.props.lock().unwrap();
        let prop = props.get_mut(name).ok_or(kOfxStatErrUnknown)?;
        f(prop)
    }

    fn slot_for_set(prop: &mut Property, index: c_int) -> PropResult<usize> {
        let index = usize::try_from(index).map_err(|_| kOfxStatErrBadIndex)?;
        match prop.fixed_dimension {
            Some(n) if index >= n => Err(kOfxStatErrBadIndex),
            Some(_) => Ok(index),
            None if index > prop.values.len() => Err(kOfxStatErrBadIndex),
            None => Ok(index),
        }
    }

    fn set_at<T>(vec: &mut Vec<T>, index: usize, value: T) -> Option<T> {
        if index == vec.len() {
            vec.push(value);
            None
        } else {
            Some(std::mem::replace(&mut vec[index], value))
        }
    }

    pub fn set_int(&self, name: &CStr, index: c_int, value: i32) -> PropResult<()> {
        self.with_prop(name, |p| {
            let i = Self::slot_for_set(p, index)?;
            match &mut p.values {
                Values::Int(v) => {
                    Self::set_at(v, i, value);
                    Ok(())
                }
                _ => Err(kOfxStatErrValue),
            }
        })
    }

    pub fn set_double(&self, name: &CStr, index: c_int, value: f64) -> PropResult<()> {
        self.with_prop(name, |p| {
            let i = Self::slot_for_set(p, index)?;
            match &mut p.values {
                Values::Double(v) => {
                    Self::set_at(v, i, value);
                    Ok(())
                }
                _ => Err(kOfxStatErrValue),
            }
        })
    }

    pub fn set_string(&self, name: &CStr, index: c_int, value: &CStr) -> PropResult<()> {
        let old = self.with_prop(name, |p| {
            let i = Self::slot_for_set(p, index)?;
            match &mut p.values {
                Values::String(v) => Ok(Self::set_at(v, i, value.to_owned())),
                _ => Err(kOfxStatErrValue),
            }
        })?;
        if let Some(old) = old {
            self.retired.lock().unwrap().push(old);
        }
        Ok(())
    }

    pub fn set_str(&self, name: &CStr, index: c_int, value: &str) -> PropResult<()> {
        self.set_string(name, index, &c(value))
    }

    pub fn set_pointer(&self, name: &CStr, index: c_int, value: usize) -> PropResult<()> {
        self.with_prop(name, |p| {
            let i = Self::slot_for_set(p, index)?;
            match &mut p.values {
                Values::Pointer(v) => {
                    Self::set_at(v, i, value);
                    Ok(())
                }
                _ => Err(kOfxStatErrValue),
            }
        })
    }

    /// Replaces all values (the `N` setters); a fixed dimension caps the count.
    pub fn set_all(&self, name: &CStr, values: Values) -> PropResult<()> {
        let old = self.with_prop(name, |p| {
            if std::mem::discriminant(&p.values) != std::mem::discriminant(&values) {
                return Err(kOfxStatErrValue);
            }
            if let Some(n) = p.fixed_dimension {
                if values.len() > n {
                    return Err(kOfxStatErrBadIndex);
                }
                // Setting fewer values than the dimension keeps the rest.
                let mut merged = p.values.clone();
                match (&mut merged, &values) {
                    (Values::Int(m), Values::Int(v)) => m[..v.len()].copy_from_slice(v),
                    (Values::Double(m), Values::Double(v)) => m[..v.len()].copy_from_slice(v),
                    (Values::Pointer(m), Values::Pointer(v)) => m[..v.len()].copy_from_slice(v),
                    (Values::String(m), Values::String(v)) => m[..v.len()].clone_from_slice(v),
                    _ => unreachable!("discriminants compared above"),
                }
                return Ok(std::mem::replace(&mut p.values, merged));
            }
            Ok(std::mem::replace(&mut p.values, values))
        })?;
        if let Values::String(old) = old {
            self.retired.lock().unwrap().extend(old);
        }
        Ok(())
    }

    pub fn get_int(&self, name: &CStr, index: c_int) -> PropResult<i32> {
        self.with_prop(name, |p| match &p.values {
            Values::Int(v) => usize::try_from(index)
                .ok()
                .and_then(|i| v.get(i))
                .copied()
                .ok_or(kOfxStatErrBadIndex),
            _ => Err(kOfxStatErrValue),
        })
    }
    pub fn get_double(&self, name: &CStr, index: c_int) -> PropResult<f64> {
        self.with_prop(name, |p| match &p.values {
            Values::Double(v) => usize::try_from(index)
                .ok()
                .and_then(|i| v.get(i))
                .copied()
                .ok_or(kOfxStatErrBadIndex),
            _ => Err(kOfxStatErrValue),
        })
    }
    /// Pointer to the stored string; valid until the set is dropped (replaced strings are
    /// retired, not freed).
    pub fn get_string_ptr(&self, name: &CStr, index: c_int) -> PropResult<*const c_char> {
        self.with_prop(name, |p| match &p.values {
            Values::String(v) => usize::try_from(index)
                .ok()
                .and_then(|i| v.get(i))
                .map(|s| s.as_ptr())
                .ok_or(kOfxStatErrBadIndex),
            _ => Err(kOfxStatErrValue),
        })
    }
    pub fn get_string(&self, name: &CStr, index: c_int) -> PropResult<String> {
        self.with_prop(name, |p| match &p.values {
            Values::String(v) => usize::try_from(index)
                .ok()
                .and_then(|i| v.get(i))
                .map(|s| s.to_string_lossy().into_owned())
                .ok_or(kOfxStatErrBadIndex),
            _ => Err(kOfxStatErrValue),
        })
    }
    pub fn get_strings(&self, name: &CStr) -> PropResult<Vec<String>> {
        match self.values(name).ok_or(kOfxStatErrUnknown)? {
            Values::String(v) => Ok(v.iter().map(|s| s.to_string_lossy().into_owned()).collect()),
            _ => Err(kOfxStatErrValue),
        }
    }
    pub fn get_doubles(&self, name: &CStr) -> PropResult<Vec<f64>> {
        match self.values(name).ok_or(kOfxStatErrUnknown)? {
            Values::Double(v) => Ok(v),
            _ => Err(kOfxStatErrValue),
        }
    }
    pub fn get_ints(&self, name: &CStr) -> PropResult<Vec<i32>> {
        match self.values(name).ok_or(kOfxStatErrUnknown)? {
            Values::Int(v) => Ok(v),
            _ => Err(kOfxStatErrValue),
        }
    }
    pub fn get_pointer(&self, name: &CStr, index: c_int) -> PropResult<usize> {
        self.with_prop(name, |p| match &p.values {
            Values::Pointer(v) => usize::try_from(index)
                .ok()
                .and_then(|i| v.get(i))
                .copied()
                .ok_or(kOfxStatErrBadIndex),
            _ => Err(kOfxStatErrValue),
        })
    }
    pub fn dimension(&self, name: &CStr) -> PropResult<usize> {
        self.with_prop(name, |p| Ok(p.values.len()))
    }
    pub fn reset(&self, name: &CStr) -> PropResult<()> {
        let old = self.with_prop(name, |p| {
            Ok(std::mem::replace(&mut p.values, p.default.clone()))
        })?;
        if let Values::String(old) = old {
            self.retired.lock().unwrap().extend(old);
        }
        Ok(())
    }
    pub fn type_of(&self, name: &CStr) -> Option<&'static str> {
        self.props
            .lock()
            .unwrap()
            .get(name)
            .map(|p| p.values.type_name())
    }
}

/// A `CString` from host-side text (no interior NULs by construction of our own strings).
pub fn c(text: &str) -> CString {
    ofx_bindings::c_string(text)
}

// ---- The property suite ------------------------------------------------------------------

fn status(result: PropResult<()>) -> OfxStatus {
    match result {
        Ok(()) => kOfxStatOK,
        Err(s) => s,
    }
}

/// Resolves handle and name for a suite call.
///
/// # Safety
/// `handle` as in [`PropertySet::from_handle`]; `name` NULL or a NUL-terminated string.
unsafe fn args<'a>(
    handle: OfxPropertySetHandle,
    name: *const c_char,
) -> PropResult<(&'a PropertySet, &'a CStr)> {
    // SAFETY: forwarded contract.
    let set = unsafe { PropertySet::from_handle(handle) }?;
    if name.is_null() {
        return Err(kOfxStatErrUnknown);
    }
    // SAFETY: non-NULL, NUL-terminated per the OFX contract for property names.
    Ok((set, unsafe { CStr::from_ptr(name) }))
}

unsafe extern "C" fn prop_set_pointer(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut c_void,
) -> OfxStatus {
    // SAFETY: plugin-provided handle and name, checked by `args`.
    status(unsafe { args(h, n) }.and_then(|(s, n)| s.set_pointer(n, i, v as usize)))
}
unsafe extern "C" fn prop_set_string(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *const c_char,
) -> OfxStatus {
    if v.is_null() {
        return kOfxStatErrValue;
    }
    // SAFETY: checked handle/name; `v` non-NULL and NUL-terminated per the OFX contract.
    status(
        unsafe { args(h, n) }.and_then(|(s, n)| s.set_string(n, i, unsafe { CStr::from_ptr(v) })),
    )
}
unsafe extern "C" fn prop_set_double(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: f64,
) -> OfxStatus {
    // SAFETY: checked by `args`.
    status(unsafe { args(h, n) }.and_then(|(s, n)| s.set_double(n, i, v)))
}
unsafe extern "C" fn prop_set_int(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: c_int,
) -> OfxStatus {
    // SAFETY: checked by `args`.
    status(unsafe { args(h, n) }.and_then(|(s, n)| s.set_int(n, i, v)))
}

/// Reads `count` items from a plugin array.
///
/// # Safety
/// `ptr` is NULL (then `count` must be 0) or points to `count` readable items.
unsafe fn read_array<T: Copy>(ptr: *const T, count: c_int) -> PropResult<Vec<T>> {
    let count = usize::try_from(count).map_err(|_| kOfxStatErrBadIndex)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(kOfxStatErrValue);
    }
    // SAFETY: per the contract above.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) }.to_vec())
}

unsafe extern "C" fn prop_set_pointer_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *const *mut c_void,
) -> OfxStatus {
    // SAFETY: checked handle/name; `v` holds `c` pointers per the OFX contract.
    status(unsafe { args(h, n) }.and_then(|(s, n)| {
        let v = unsafe { read_array(v, c) }?;
        s.set_all(
            n,
            Values::Pointer(v.into_iter().map(|p| p as usize).collect()),
        )
    }))
}
unsafe extern "C" fn prop_set_string_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *const *const c_char,
) -> OfxStatus {
    // SAFETY: checked handle/name; `v` holds `c` NUL-terminated strings per the OFX contract.
    status(unsafe { args(h, n) }.and_then(|(s, n)| {
        let ptrs = unsafe { read_array(v, c) }?;
        if ptrs.iter().any(|p| p.is_null()) {
            return Err(kOfxStatErrValue);
        }
        let strings = ptrs
            .into_iter()
            .map(|p| unsafe { CStr::from_ptr(p) }.to_owned())
            .collect();
        s.set_all(n, Values::String(strings))
    }))
}
unsafe extern "C" fn prop_set_double_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *const f64,
) -> OfxStatus {
    // SAFETY: checked handle/name; `v` holds `c` doubles.
    status(
        unsafe { args(h, n) }
            .and_then(|(s, n)| s.set_all(n, Values::Double(unsafe { read_array(v, c) }?))),
    )
}
unsafe extern "C" fn prop_set_int_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *const c_int,
) -> OfxStatus {
    // SAFETY: checked handle/name; `v` holds `c` ints.
    status(
        unsafe { args(h, n) }
            .and_then(|(s, n)| s.set_all(n, Values::Int(unsafe { read_array(v, c) }?))),
    )
}

/// Writes through a plugin out-pointer.
///
/// # Safety
/// `out` is NULL (rejected) or writable for one `T`.
unsafe fn write_out<T>(out: *mut T, value: PropResult<T>) -> OfxStatus {
    if out.is_null() {
        return kOfxStatErrValue;
    }
    match value {
        Ok(v) => {
            // SAFETY: per the contract above.
            unsafe { out.write(v) };
            kOfxStatOK
        }
        Err(s) => s,
    }
}

unsafe extern "C" fn prop_get_pointer(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut *mut c_void,
) -> OfxStatus {
    // SAFETY: checked handle/name; out pointer checked by write_out.
    unsafe {
        write_out(
            v,
            args(h, n)
                .and_then(|(s, n)| s.get_pointer(n, i))
                .map(|p| p as *mut c_void),
        )
    }
}
unsafe extern "C" fn prop_get_string(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut *mut c_char,
) -> OfxStatus {
    // SAFETY: as above; the returned pointer stays valid while the set lives.
    unsafe {
        write_out(
            v,
            args(h, n)
                .and_then(|(s, n)| s.get_string_ptr(n, i))
                .map(|p| p as *mut c_char),
        )
    }
}
unsafe extern "C" fn prop_get_double(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut f64,
) -> OfxStatus {
    // SAFETY: as above.
    unsafe { write_out(v, args(h, n).and_then(|(s, n)| s.get_double(n, i))) }
}
unsafe extern "C" fn prop_get_int(
    h: OfxPropertySetHandle,
    n: *const c_char,
    i: c_int,
    v: *mut c_int,
) -> OfxStatus {
    // SAFETY: as above.
    unsafe { write_out(v, args(h, n).and_then(|(s, n)| s.get_int(n, i))) }
}

/// Copies the first `count` values out.
///
/// # Safety
/// `out` writable for `count` items.
unsafe fn write_n<T: Copy>(out: *mut T, count: c_int, values: PropResult<Vec<T>>) -> OfxStatus {
    let values = match values {
        Ok(v) => v,
        Err(s) => return s,
    };
    let Ok(count) = usize::try_from(count) else {
        return kOfxStatErrBadIndex;
    };
    if count > values.len() {
        return kOfxStatErrBadIndex;
    }
    if count > 0 && out.is_null() {
        return kOfxStatErrValue;
    }
    for (i, v) in values.into_iter().take(count).enumerate() {
        // SAFETY: per the contract above, i < count.
        unsafe { out.add(i).write(v) };
    }
    kOfxStatOK
}

unsafe extern "C" fn prop_get_pointer_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *mut *mut c_void,
) -> OfxStatus {
    // SAFETY: checked handle/name; `v` has room for `c` pointers per the OFX contract.
    unsafe {
        write_n(
            v,
            c,
            args(h, n).and_then(|(s, n)| match s.values(n) {
                Some(Values::Pointer(p)) => Ok(p.into_iter().map(|p| p as *mut c_void).collect()),
                Some(_) => Err(kOfxStatErrValue),
                None => Err(kOfxStatErrUnknown),
            }),
        )
    }
}
unsafe extern "C" fn prop_get_string_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *mut *mut c_char,
) -> OfxStatus {
    // SAFETY: as above, strings stay valid while the set lives.
    unsafe {
        write_n(
            v,
            c,
            args(h, n).and_then(|(s, n)| {
                let dim = s.dimension(n)?;
                (0..dim as c_int)
                    .map(|i| s.get_string_ptr(n, i).map(|p| p as *mut c_char))
                    .collect()
            }),
        )
    }
}
unsafe extern "C" fn prop_get_double_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *mut f64,
) -> OfxStatus {
    // SAFETY: as above.
    unsafe { write_n(v, c, args(h, n).and_then(|(s, n)| s.get_doubles(n))) }
}
unsafe extern "C" fn prop_get_int_n(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: c_int,
    v: *mut c_int,
) -> OfxStatus {
    // SAFETY: as above.
    unsafe { write_n(v, c, args(h, n).and_then(|(s, n)| s.get_ints(n))) }
}
unsafe extern "C" fn prop_reset(h: OfxPropertySetHandle, n: *const c_char) -> OfxStatus {
    // SAFETY: checked by `args`.
    status(unsafe { args(h, n) }.and_then(|(s, n)| s.reset(n)))
}
unsafe extern "C" fn prop_get_dimension(
    h: OfxPropertySetHandle,
    n: *const c_char,
    c: *mut c_int,
) -> OfxStatus {
    // SAFETY: checked handle/name and out pointer.
    unsafe {
        write_out(
            c,
            args(h, n)
                .and_then(|(s, n)| s.dimension(n))
                .map(|d| d as c_int),
        )
    }
}

pub static PROPERTY_SUITE: OfxPropertySuiteV1 = OfxPropertySuiteV1 {
    propSetPointer: Some(prop_set_pointer),
    propSetString: Some(prop_set_string),
    propSetDouble: Some(prop_set_double),
    propSetInt: Some(prop_set_int),
    propSetPointerN: Some(prop_set_pointer_n),
    propSetStringN: Some(prop_set_string_n),
    propSetDoubleN: Some(prop_set_double_n),
    propSetIntN: Some(prop_set_int_n),
    propGetPointer: Some(prop_get_pointer),
    propGetString: Some(prop_get_string),
    propGetDouble: Some(prop_get_double),
    propGetInt: Some(prop_get_int),
    propGetPointerN: Some(prop_get_pointer_n),
    propGetStringN: Some(prop_get_string_n),
    propGetDoubleN: Some(prop_get_double_n),
    propGetIntN: Some(prop_get_int_n),
    propReset: Some(prop_reset),
    propGetDimension: Some(prop_get_dimension),
};
