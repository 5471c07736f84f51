//! Parameter sets and typed parameter values.
//!
//! The value functions of the parameter suite are C-variadic. They are called here with
//! exactly the C types `ofxParam.h` prescribes for each parameter type (`int`, `double`,
//! `char *`, or pointers to them), which is the whole contract of a variadic call.

use crate::c_string;
use crate::error::{OfxError, Result};
use crate::property::PropertySet;
use crate::suites::Suites;
use crate::sys::*;
use std::ffi::{c_char, c_int, CStr};
use std::ptr::{self, NonNull};

/// The parameter set of a descriptor or an instance.
#[derive(Clone, Copy)]
pub struct ParamSet {
    handle: NonNull<OfxParamSetStruct>,
    suites: Suites,
}

// SAFETY: opaque token passed back to the host only.
unsafe impl Send for ParamSet {}
unsafe impl Sync for ParamSet {}

macro_rules! param_fn {
    ($suites:expr, $f:ident) => {
        $suites.parameter()?.$f.ok_or_else(|| {
            OfxError::missing(concat!("the parameter suite has no ", stringify!($f)))
        })?
    };
}

impl ParamSet {
    pub fn new(handle: OfxParamSetHandle, suites: Suites) -> Option<Self> {
        NonNull::new(handle).map(|handle| ParamSet { handle, suites })
    }

    pub fn handle(&self) -> OfxParamSetHandle {
        self.handle.as_ptr()
    }

    /// `paramDefine`: the new descriptor's properties. Prefer the builders of
    /// [`crate::descriptor`], which set ranges and display ranges together.
    pub fn define_raw(&self, param_type: &CStr, name: &str) -> Result<PropertySet> {
        let f = param_fn!(self.suites, paramDefine);
        let name_c = c_string(name);
        let mut props: OfxPropertySetHandle = ptr::null_mut();
        // SAFETY: valid set token, NUL-terminated strings alive for the call, live out slot.
        let status = unsafe {
            f(
                self.handle(),
                param_type.as_ptr(),
                name_c.as_ptr(),
                &mut props,
            )
        };
        OfxError::check(status, || format!("paramDefine({:?}, {name})", param_type))?;
        PropertySet::new(props, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("paramDefine gave NULL"))
    }

    /// `paramGetHandle`.
    pub fn param(&self, name: &str) -> Result<Param> {
        let f = param_fn!(self.suites, paramGetHandle);
        let name_c = c_string(name);
        let mut param: OfxParamHandle = ptr::null_mut();
        let mut props: OfxPropertySetHandle = ptr::null_mut();
        // SAFETY: valid set token, NUL-terminated name, live out slots.
        let status = unsafe { f(self.handle(), name_c.as_ptr(), &mut param, &mut props) };
        OfxError::check(status, || format!("paramGetHandle({name})"))?;
        let handle =
            NonNull::new(param).ok_or_else(|| OfxError::bad_handle("paramGetHandle gave NULL"))?;
        let props = PropertySet::new(props, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("paramGetHandle gave NULL properties"))?;
        Ok(Param {
            handle,
            props,
            suites: self.suites,
            name: name.to_owned(),
        })
    }

    pub fn properties(&self) -> Result<PropertySet> {
        let f = param_fn!(self.suites, paramSetGetPropertySet);
        let mut props: OfxPropertySetHandle = ptr::null_mut();
        // SAFETY: valid set token and live out slot.
        let status = unsafe { f(self.handle(), &mut props) };
        OfxError::check(status, || "paramSetGetPropertySet".into())?;
        PropertySet::new(props, self.suites.property()?)
            .ok_or_else(|| OfxError::bad_handle("NULL param set properties"))
    }

    /// Groups several `set_*` calls into one undo step (`paramEditBegin/End`).
    pub fn edit<R>(&self, label: &str, body: impl FnOnce() -> Result<R>) -> Result<R> {
        let begin = param_fn!(self.suites, paramEditBegin);
        let end = param_fn!(self.suites, paramEditEnd);
        let label_c = c_string(label);
        // SAFETY: valid set token and NUL-terminated label.
        OfxError::check(unsafe { begin(self.handle(), label_c.as_ptr()) }, || {
            "paramEditBegin".into()
        })?;
        let result = body();
        // SAFETY: valid set token; balances the begin above.
        OfxError::check(unsafe { end(self.handle()) }, || "paramEditEnd".into())?;
        result
    }
}

/// A parameter instance. The typed getters check the parameter type first, so that the
/// variadic call always matches what the host reads.
#[derive(Clone)]
pub struct Param {
    handle: NonNull<OfxParamStruct>,
    props: PropertySet,
    suites: Suites,
    name: String,
}

// SAFETY: opaque token passed back to the host only.
unsafe impl Send for Param {}
unsafe impl Sync for Param {}

/// Which C type the variadic value functions use for a parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Int(usize),
    Double(usize),
    String,
    None,
}

fn value_kind(param_type: &str) -> ValueKind {
    let t = param_type.as_bytes();
    let is = |c: &CStr| t == c.to_bytes();
    if is(kOfxParamTypeInteger) || is(kOfxParamTypeBoolean) || is(kOfxParamTypeChoice) {
        ValueKind::Int(1)
    } else if is(kOfxParamTypeInteger2D) {
        ValueKind::Int(2)
    } else if is(kOfxParamTypeInteger3D) {
        ValueKind::Int(3)
    } else if is(kOfxParamTypeDouble) {
        ValueKind::Double(1)
    } else if is(kOfxParamTypeDouble2D) {
        ValueKind::Double(2)
    } else if is(kOfxParamTypeDouble3D) || is(kOfxParamTypeRGB) {
        ValueKind::Double(3)
    } else if is(kOfxParamTypeRGBA) {
        ValueKind::Double(4)
    } else if is(kOfxParamTypeString) || is(kOfxParamTypeStrChoice) || is(kOfxParamTypeCustom) {
        ValueKind::String
    } else {
        ValueKind::None
    }
}

impl Param {
    pub fn handle(&self) -> OfxParamHandle {
        self.handle.as_ptr()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn properties(&self) -> PropertySet {
        self.props
    }
    /// `kOfxParamPropType`.
    pub fn param_type(&self) -> Result<String> {
        self.props.get_string(kOfxParamPropType, 0)
    }

    fn expect(&self, wanted: fn(ValueKind) -> bool, what: &str) -> Result<ValueKind> {
        let kind = value_kind(&self.param_type()?);
        if wanted(kind) {
            Ok(kind)
        } else {
            Err(OfxError::new(
                kOfxStatErrValue,
                format!("parameter {} is not {what}", self.name),
            ))
        }
    }

    /// Value of an Integer, Boolean or Choice parameter (`None` time: current time).
    pub fn get_int(&self, time: Option<OfxTime>) -> Result<i32> {
        self.expect(|k| k == ValueKind::Int(1), "an int, boolean or choice")?;
        let mut value: c_int = 0;
        let status = match time {
            // SAFETY: 1-D int parameter: the host reads one `int *` vararg, given here.
            None => unsafe {
                param_fn!(self.suites, paramGetValue)(self.handle(), &mut value as *mut c_int)
            },
            // SAFETY: as above, after the time argument.
            Some(t) => unsafe {
                param_fn!(self.suites, paramGetValueAtTime)(
                    self.handle(),
                    t,
                    &mut value as *mut c_int,
                )
            },
        };
        OfxError::check(status, || format!("paramGetValue({})", self.name))?;
        Ok(value)
    }

    pub fn get_bool(&self, time: Option<OfxTime>) -> Result<bool> {
        Ok(self.get_int(time)? != 0)
    }

    /// Value of a Double parameter.
    pub fn get_double(&self, time: Option<OfxTime>) -> Result<f64> {
        self.expect(|k| k == ValueKind::Double(1), "a double")?;
        let mut value = 0.0f64;
        let status = match time {
            // SAFETY: 1-D double parameter: the host reads one `double *` vararg.
            None => unsafe {
                param_fn!(self.suites, paramGetValue)(self.handle(), &mut value as *mut f64)
            },
            // SAFETY: as above, after the time argument.
            Some(t) => unsafe {
                param_fn!(self.suites, paramGetValueAtTime)(
                    self.handle(),
                    t,
                    &mut value as *mut f64,
                )
            },
        };
        OfxError::check(status, || format!("paramGetValue({})", self.name))?;
        Ok(value)
    }

    /// Value of a String (or StrChoice/Custom) parameter, copied out of the host's buffer.
    pub fn get_string(&self, time: Option<OfxTime>) -> Result<String> {
        self.expect(|k| k == ValueKind::String, "a string")?;
        let mut value: *const c_char = ptr::null();
        let status = match time {
            // SAFETY: string parameter: the host reads one `char **` vararg.
            None => unsafe {
                param_fn!(self.suites, paramGetValue)(
                    self.handle(),
                    &mut value as *mut *const c_char,
                )
            },
            // SAFETY: as above, after the time argument.
            Some(t) => unsafe {
                param_fn!(self.suites, paramGetValueAtTime)(
                    self.handle(),
                    t,
                    &mut value as *mut *const c_char,
                )
            },
        };
        OfxError::check(status, || format!("paramGetValue({})", self.name))?;
        if value.is_null() {
            return Ok(String::new());
        }
        // SAFETY: non-NULL host-owned NUL-terminated string, copied before any other call.
        Ok(unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned())
    }

    /// All dimensions of an int or double parameter, as doubles (for 2D/3D/RGB/RGBA).
    pub fn get_doubles(&self, time: Option<OfxTime>) -> Result<Vec<f64>> {
        let kind = self.expect(
            |k| matches!(k, ValueKind::Double(_) | ValueKind::Int(_)),
            "numeric",
        )?;
        let t = time;
        match kind {
            ValueKind::Double(n) => {
                let mut v = [0.0f64; 4];
                let [a, b, c, d] = &mut v;
                let (a, b, c, d) = (a as *mut f64, b as *mut f64, c as *mut f64, d as *mut f64);
                // SAFETY: an n-D double parameter reads n `double *` varargs; we pass 4 valid
                // pointers and the host reads only the first n (extra varargs are ignored).
                let status = unsafe {
                    match t {
                        None => param_fn!(self.suites, paramGetValue)(self.handle(), a, b, c, d),
                        Some(t) => param_fn!(self.suites, paramGetValueAtTime)(
                            self.handle(),
                            t,
                            a,
                            b,
                            c,
                            d,
                        ),
                    }
                };
                OfxError::check(status, || format!("paramGetValue({})", self.name))?;
                Ok(v[..n].to_vec())
            }
            ValueKind::Int(n) => {
                let mut v = [0 as c_int; 3];
                let [a, b, c] = &mut v;
                let (a, b, c) = (a as *mut c_int, b as *mut c_int, c as *mut c_int);
                // SAFETY: an n-D int parameter reads n `int *` varargs; 3 valid pointers given.
                let status = unsafe {
                    match t {
                        None => param_fn!(self.suites, paramGetValue)(self.handle(), a, b, c),
                        Some(t) => {
                            param_fn!(self.suites, paramGetValueAtTime)(self.handle(), t, a, b, c)
                        }
                    }
                };
                OfxError::check(status, || format!("paramGetValue({})", self.name))?;
                Ok(v[..n].iter().map(|&x| x as f64).collect())
            }
            _ => unreachable!("checked by expect"),
        }
    }

    /// Sets an Integer, Boolean or Choice parameter (from the main thread, e.g. in
    /// `InstanceChanged`; the host then sends `InstanceChanged` with `PluginEdited`).
    pub fn set_int(&self, value: i32) -> Result<()> {
        self.expect(|k| k == ValueKind::Int(1), "an int, boolean or choice")?;
        // SAFETY: 1-D int parameter: the host reads one `int` vararg.
        let status =
            unsafe { param_fn!(self.suites, paramSetValue)(self.handle(), value as c_int) };
        OfxError::check(status, || format!("paramSetValue({}, {value})", self.name))
    }

    pub fn set_bool(&self, value: bool) -> Result<()> {
        self.set_int(value as i32)
    }

    pub fn set_double(&self, value: f64) -> Result<()> {
        self.expect(|k| k == ValueKind::Double(1), "a double")?;
        // SAFETY: 1-D double parameter: the host reads one `double` vararg.
        let status = unsafe { param_fn!(self.suites, paramSetValue)(self.handle(), value) };
        OfxError::check(status, || format!("paramSetValue({}, {value})", self.name))
    }

    /// Sets a String parameter; interior NULs are dropped. The host copies the text.
    pub fn set_string(&self, value: &str) -> Result<()> {
        self.expect(|k| k == ValueKind::String, "a string")?;
        let c = c_string(value);
        // SAFETY: string parameter: the host reads one `char *` vararg, alive for the call.
        let status = unsafe { param_fn!(self.suites, paramSetValue)(self.handle(), c.as_ptr()) };
        OfxError::check(status, || format!("paramSetValue({})", self.name))
    }

    /// Enables or disables the parameter in the host UI (`kOfxParamPropEnabled`).
    pub fn set_enabled(&self, enabled: bool) -> Result<()> {
        self.props.set_bool(kOfxParamPropEnabled, 0, enabled)
    }

    /// Shows or hides the parameter (`kOfxParamPropSecret`). Set it on instances: Nuke can
    /// never reveal a parameter described as secret.
    pub fn set_secret(&self, secret: bool) -> Result<()> {
        self.props.set_bool(kOfxParamPropSecret, 0, secret)
    }
}
