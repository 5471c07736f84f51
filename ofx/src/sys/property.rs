//! `ofxProperty.h`: the property suite.

use super::core::{OfxPropertySetHandle, OfxStatus};
use std::ffi::{c_char, c_int, c_void, CStr};

pub const kOfxPropertySuite: &CStr = c"OfxPropertySuite";

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxPropertySuiteV1 {
    pub propSetPointer: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *mut c_void) -> OfxStatus,
    >,
    pub propSetString: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *const c_char,
        ) -> OfxStatus,
    >,
    pub propSetDouble:
        Option<unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, f64) -> OfxStatus>,
    pub propSetInt: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, c_int) -> OfxStatus,
    >,
    pub propSetPointerN: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *const *mut c_void,
        ) -> OfxStatus,
    >,
    pub propSetStringN: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *const *const c_char,
        ) -> OfxStatus,
    >,
    pub propSetDoubleN: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *const f64) -> OfxStatus,
    >,
    pub propSetIntN: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *const c_int) -> OfxStatus,
    >,
    pub propGetPointer: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *mut *mut c_void,
        ) -> OfxStatus,
    >,
    pub propGetString: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *mut *mut c_char,
        ) -> OfxStatus,
    >,
    pub propGetDouble: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *mut f64) -> OfxStatus,
    >,
    pub propGetInt: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *mut c_int) -> OfxStatus,
    >,
    pub propGetPointerN: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *mut *mut c_void,
        ) -> OfxStatus,
    >,
    pub propGetStringN: Option<
        unsafe extern "C" fn(
            OfxPropertySetHandle,
            *const c_char,
            c_int,
            *mut *mut c_char,
        ) -> OfxStatus,
    >,
    pub propGetDoubleN: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *mut f64) -> OfxStatus,
    >,
    pub propGetIntN: Option<
        unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, c_int, *mut c_int) -> OfxStatus,
    >,
    pub propReset: Option<unsafe extern "C" fn(OfxPropertySetHandle, *const c_char) -> OfxStatus>,
    pub propGetDimension:
        Option<unsafe extern "C" fn(OfxPropertySetHandle, *const c_char, *mut c_int) -> OfxStatus>,
}
