//! `ofxProgress.h`: the progress suites. `progressUpdate` returns `kOfxStatReplyNo` when the
//! user asked to cancel.

use super::core::OfxStatus;
use std::ffi::{c_char, c_void, CStr};

pub const kOfxProgressSuite: &CStr = c"OfxProgressSuite";

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxProgressSuiteV1 {
    pub progressStart: Option<
        unsafe extern "C" fn(effectInstance: *mut c_void, label: *const c_char) -> OfxStatus,
    >,
    pub progressUpdate:
        Option<unsafe extern "C" fn(effectInstance: *mut c_void, progress: f64) -> OfxStatus>,
    pub progressEnd: Option<unsafe extern "C" fn(effectInstance: *mut c_void) -> OfxStatus>,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxProgressSuiteV2 {
    pub progressStart: Option<
        unsafe extern "C" fn(
            effectInstance: *mut c_void,
            message: *const c_char,
            messageid: *const c_char,
        ) -> OfxStatus,
    >,
    pub progressUpdate:
        Option<unsafe extern "C" fn(effectInstance: *mut c_void, progress: f64) -> OfxStatus>,
    pub progressEnd: Option<unsafe extern "C" fn(effectInstance: *mut c_void) -> OfxStatus>,
}
