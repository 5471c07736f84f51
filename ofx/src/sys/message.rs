//! `ofxMessage.h`: the message suites.
//!
//! `message` and `setPersistentMessage` are C-variadic (`printf` style). Rust can declare and
//! call such function pointers, but must never pass user text as the format: callers pass
//! `c"%s"` and the text as the single variadic argument (see `crate::message`).

use super::core::OfxStatus;
use std::ffi::{c_char, c_void, CStr};

pub const kOfxMessageSuite: &CStr = c"OfxMessageSuite";

pub const kOfxMessageFatal: &CStr = c"OfxMessageFatal";
pub const kOfxMessageError: &CStr = c"OfxMessageError";
pub const kOfxMessageWarning: &CStr = c"OfxMessageWarning";
pub const kOfxMessageMessage: &CStr = c"OfxMessageMessage";
pub const kOfxMessageLog: &CStr = c"OfxMessageLog";
pub const kOfxMessageQuestion: &CStr = c"OfxMessageQuestion";

/// `printf`-style message function: `(handle, messageType, messageId, format, ...)`.
pub type OfxMessageFn = unsafe extern "C" fn(
    handle: *mut c_void,
    messageType: *const c_char,
    messageId: *const c_char,
    format: *const c_char,
    ...
) -> OfxStatus;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxMessageSuiteV1 {
    pub message: Option<OfxMessageFn>,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxMessageSuiteV2 {
    pub message: Option<OfxMessageFn>,
    pub setPersistentMessage: Option<OfxMessageFn>,
    pub clearPersistentMessage: Option<unsafe extern "C" fn(handle: *mut c_void) -> OfxStatus>,
}
