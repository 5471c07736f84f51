//! `ofxMemory.h`: the memory suite.

use super::core::OfxStatus;
use std::ffi::{c_void, CStr};

pub const kOfxMemorySuite: &CStr = c"OfxMemorySuite";

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxMemorySuiteV1 {
    pub memoryAlloc: Option<
        unsafe extern "C" fn(
            handle: *mut c_void,
            nBytes: usize,
            allocatedData: *mut *mut c_void,
        ) -> OfxStatus,
    >,
    pub memoryFree: Option<unsafe extern "C" fn(allocatedData: *mut c_void) -> OfxStatus>,
}
