//! Typed access to a host property set.

use crate::c_string;
use crate::error::{OfxError, Result};
use crate::sys::*;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::{self, NonNull};

/// A host-owned property set. The handle is only ever passed back to the host.
#[derive(Clone, Copy)]
pub struct PropertySet {
    handle: NonNull<OfxPropertySetStruct>,
    suite: &'static OfxPropertySuiteV1,
}

// SAFETY: the handle is an opaque token that this type never dereferences; OFX allows
// property calls from render threads.
unsafe impl Send for PropertySet {}
unsafe impl Sync for PropertySet {}

impl std::fmt::Debug for PropertySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PropertySet({:p})", self.handle)
    }
}

fn name_of(name: &CStr) -> String {
    name.to_string_lossy().into_owned()
}

macro_rules! suite_fn {
    ($self:ident, $f:ident) => {
        $self.suite.$f.ok_or_else(|| {
            OfxError::missing(concat!("the property suite has no ", stringify!($f)))
        })?
    };
}

impl PropertySet {
    /// `None` when the host gave a NULL handle.
    pub fn new(handle: OfxPropertySetHandle, suite: &'static OfxPropertySuiteV1) -> Option<Self> {
        NonNull::new(handle).map(|handle| PropertySet { handle, suite })
    }

    /// Wraps a handle with the suites fetched at `Load`.
    pub fn from_handle(handle: OfxPropertySetHandle) -> Result<Self> {
        let suite = crate::suites::get()?.property()?;
        PropertySet::new(handle, suite).ok_or_else(|| OfxError::bad_handle("NULL property set"))
    }

    pub fn handle(&self) -> OfxPropertySetHandle {
        self.handle.as_ptr()
    }

    pub fn get_int(&self, name: &CStr, index: usize) -> Result<i32> {
        let f = suite_fn!(self, propGetInt);
        let mut value: c_int = 0;
        // SAFETY: valid handle token, NUL-terminated name, and `value` is a live c_int.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, &mut value) };
        OfxError::check(status, || format!("propGetInt({}, {index})", name_of(name)))?;
        Ok(value)
    }

    pub fn get_bool(&self, name: &CStr, index: usize) -> Result<bool> {
        Ok(self.get_int(name, index)? != 0)
    }

    pub fn get_double(&self, name: &CStr, index: usize) -> Result<f64> {
        let f = suite_fn!(self, propGetDouble);
        let mut value = 0.0f64;
        // SAFETY: as in get_int, with a live f64.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, &mut value) };
        OfxError::check(status, || {
            format!("propGetDouble({}, {index})", name_of(name))
        })?;
        Ok(value)
    }

    /// The string, copied out at once (the host's pointer is only valid until the property changes).
    pub fn get_string(&self, name: &CStr, index: usize) -> Result<String> {
        let f = suite_fn!(self, propGetString);
        let mut value: *mut c_char = ptr::null_mut();
        // SAFETY: as in get_int, with a live `char *` slot.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, &mut value) };
        OfxError::check(status, || {
            format!("propGetString({}, {index})", name_of(name))
        })?;
        if value.is_null() {
            return Err(OfxError::new(
                kOfxStatErrValue,
                format!("propGetString({}) gave NULL", name_of(name)),
            ));
        }
        // SAFETY: non-NULL, and the host returns a NUL-terminated string it owns; copied now.
        Ok(unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned())
    }

    pub fn get_pointer(&self, name: &CStr, index: usize) -> Result<*mut c_void> {
        let f = suite_fn!(self, propGetPointer);
        let mut value: *mut c_void = ptr::null_mut();
        // SAFETY: as in get_int, with a live `void *` slot.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, &mut value) };
        OfxError::check(status, || {
            format!("propGetPointer({}, {index})", name_of(name))
        })?;
        Ok(value)
    }

    pub fn dimension(&self, name: &CStr) -> Result<usize> {
        let f = suite_fn!(self, propGetDimension);
        let mut count: c_int = 0;
        // SAFETY: as in get_int.
        let status = unsafe { f(self.handle(), name.as_ptr(), &mut count) };
        OfxError::check(status, || format!("propGetDimension({})", name_of(name)))?;
        Ok(count.max(0) as usize)
    }

    /// All values of an int property (`propGetIntN`).
    pub fn get_ints(&self, name: &CStr) -> Result<Vec<i32>> {
        let n = self.dimension(name)?;
        let f = suite_fn!(self, propGetIntN);
        let mut values = vec![0 as c_int; n];
        if n == 0 {
            return Ok(values);
        }
        // SAFETY: `values` has room for exactly `n` ints.
        let status = unsafe {
            f(
                self.handle(),
                name.as_ptr(),
                n as c_int,
                values.as_mut_ptr(),
            )
        };
        OfxError::check(status, || format!("propGetIntN({}, {n})", name_of(name)))?;
        Ok(values)
    }

    /// All values of a double property (`propGetDoubleN`).
    pub fn get_doubles(&self, name: &CStr) -> Result<Vec<f64>> {
        let n = self.dimension(name)?;
        let f = suite_fn!(self, propGetDoubleN);
        let mut values = vec![0.0f64; n];
        if n == 0 {
            return Ok(values);
        }
        // SAFETY: `values` has room for exactly `n` doubles.
        let status = unsafe {
            f(
                self.handle(),
                name.as_ptr(),
                n as c_int,
                values.as_mut_ptr(),
            )
        };
        OfxError::check(status, || format!("propGetDoubleN({}, {n})", name_of(name)))?;
        Ok(values)
    }

    /// All values of a string property, one `propGetString` per index.
    pub fn get_strings(&self, name: &CStr) -> Result<Vec<String>> {
        (0..self.dimension(name)?)
            .map(|i| self.get_string(name, i))
            .collect()
    }

    pub fn set_int(&self, name: &CStr, index: usize, value: i32) -> Result<()> {
        let f = suite_fn!(self, propSetInt);
        // SAFETY: valid handle token and NUL-terminated name; value passed by value.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, value) };
        OfxError::check(status, || {
            format!("propSetInt({}, {index}, {value})", name_of(name))
        })
    }

    pub fn set_bool(&self, name: &CStr, index: usize, value: bool) -> Result<()> {
        self.set_int(name, index, value as i32)
    }

    pub fn set_double(&self, name: &CStr, index: usize, value: f64) -> Result<()> {
        let f = suite_fn!(self, propSetDouble);
        // SAFETY: as in set_int.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, value) };
        OfxError::check(status, || {
            format!("propSetDouble({}, {index}, {value})", name_of(name))
        })
    }

    /// Sets a string; interior NULs in `value` are dropped. The host copies the string.
    pub fn set_string(&self, name: &CStr, index: usize, value: &str) -> Result<()> {
        self.set_cstr(name, index, &c_string(value))
    }

    pub fn set_cstr(&self, name: &CStr, index: usize, value: &CStr) -> Result<()> {
        let f = suite_fn!(self, propSetString);
        // SAFETY: both strings are NUL-terminated and outlive the call; the host copies them.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, value.as_ptr()) };
        OfxError::check(status, || {
            format!("propSetString({}, {index}, {:?})", name_of(name), value)
        })
    }

    // The pointer is stored by the host, never dereferenced by it or by us.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn set_pointer(&self, name: &CStr, index: usize, value: *mut c_void) -> Result<()> {
        let f = suite_fn!(self, propSetPointer);
        // SAFETY: the pointer is stored by the host, not dereferenced.
        let status = unsafe { f(self.handle(), name.as_ptr(), index as c_int, value) };
        OfxError::check(status, || {
            format!("propSetPointer({}, {index})", name_of(name))
        })
    }

    /// Sets values `0..values.len()` (`propSetIntN`).
    pub fn set_ints(&self, name: &CStr, values: &[i32]) -> Result<()> {
        let f = suite_fn!(self, propSetIntN);
        // SAFETY: `values` holds exactly `len` ints for the duration of the call.
        let status = unsafe {
            f(
                self.handle(),
                name.as_ptr(),
                values.len() as c_int,
                values.as_ptr(),
            )
        };
        OfxError::check(status, || {
            format!("propSetIntN({}, {values:?})", name_of(name))
        })
    }

    /// Sets values `0..values.len()` (`propSetDoubleN`).
    pub fn set_doubles(&self, name: &CStr, values: &[f64]) -> Result<()> {
        let f = suite_fn!(self, propSetDoubleN);
        // SAFETY: `values` holds exactly `len` doubles for the duration of the call.
        let status = unsafe {
            f(
                self.handle(),
                name.as_ptr(),
                values.len() as c_int,
                values.as_ptr(),
            )
        };
        OfxError::check(status, || {
            format!("propSetDoubleN({}, {values:?})", name_of(name))
        })
    }

    /// Sets string values `0..values.len()`, one `propSetString` per index.
    pub fn set_cstrs(&self, name: &CStr, values: &[&CStr]) -> Result<()> {
        for (i, v) in values.iter().enumerate() {
            self.set_cstr(name, i, v)?;
        }
        Ok(())
    }

    pub fn reset(&self, name: &CStr) -> Result<()> {
        let f = suite_fn!(self, propReset);
        // SAFETY: valid handle token and NUL-terminated name.
        let status = unsafe { f(self.handle(), name.as_ptr()) };
        OfxError::check(status, || format!("propReset({})", name_of(name)))
    }

    pub fn get_rect_i(&self, name: &CStr) -> Result<OfxRectI> {
        Ok(OfxRectI {
            x1: self.get_int(name, 0)?,
            y1: self.get_int(name, 1)?,
            x2: self.get_int(name, 2)?,
            y2: self.get_int(name, 3)?,
        })
    }

    pub fn get_rect_d(&self, name: &CStr) -> Result<OfxRectD> {
        Ok(OfxRectD {
            x1: self.get_double(name, 0)?,
            y1: self.get_double(name, 1)?,
            x2: self.get_double(name, 2)?,
            y2: self.get_double(name, 3)?,
        })
    }

    pub fn set_rect_d(&self, name: &CStr, r: OfxRectD) -> Result<()> {
        self.set_doubles(name, &[r.x1, r.y1, r.x2, r.y2])
    }

    pub fn get_point_d(&self, name: &CStr) -> Result<OfxPointD> {
        Ok(OfxPointD {
            x: self.get_double(name, 0)?,
            y: self.get_double(name, 1)?,
        })
    }

    pub fn get_range_d(&self, name: &CStr) -> Result<OfxRangeD> {
        Ok(OfxRangeD {
            min: self.get_double(name, 0)?,
            max: self.get_double(name, 1)?,
        })
    }

    pub fn set_range_d(&self, name: &CStr, r: OfxRangeD) -> Result<()> {
        self.set_doubles(name, &[r.min, r.max])
    }

    /// Like a setter, but a host that does not know the property (older than the OFX
    /// version that introduced it) is not an error.
    pub fn ignore_unknown(result: Result<()>) -> Result<()> {
        match result {
            Err(e) if e.status == kOfxStatErrUnknown => Ok(()),
            other => other,
        }
    }
}
