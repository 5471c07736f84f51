//! `ofxMultiThread.h`: the multithread suite.

use super::core::OfxStatus;
use std::ffi::{c_int, c_uint, c_void, CStr};

pub const kOfxMultiThreadSuite: &CStr = c"OfxMultiThreadSuite";

/// Opaque host mutex.
#[repr(C)]
pub struct OfxMutex {
    _private: [u8; 0],
}
pub type OfxMutexHandle = *mut OfxMutex;

/// The function `multiThread` runs on every spawned thread.
pub type OfxThreadFunctionV1 =
    Option<unsafe extern "C" fn(threadIndex: c_uint, threadMax: c_uint, customArg: *mut c_void)>;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OfxMultiThreadSuiteV1 {
    pub multiThread: Option<
        unsafe extern "C" fn(
            func: OfxThreadFunctionV1,
            nThreads: c_uint,
            customArg: *mut c_void,
        ) -> OfxStatus,
    >,
    pub multiThreadNumCPUs: Option<unsafe extern "C" fn(nCPUs: *mut c_uint) -> OfxStatus>,
    pub multiThreadIndex: Option<unsafe extern "C" fn(threadIndex: *mut c_uint) -> OfxStatus>,
    pub multiThreadIsSpawnedThread: Option<unsafe extern "C" fn() -> c_int>,
    pub mutexCreate:
        Option<unsafe extern "C" fn(mutex: *mut OfxMutexHandle, lockCount: c_int) -> OfxStatus>,
    pub mutexDestroy: Option<unsafe extern "C" fn(mutex: OfxMutexHandle) -> OfxStatus>,
    pub mutexLock: Option<unsafe extern "C" fn(mutex: OfxMutexHandle) -> OfxStatus>,
    pub mutexUnLock: Option<unsafe extern "C" fn(mutex: OfxMutexHandle) -> OfxStatus>,
    pub mutexTryLock: Option<unsafe extern "C" fn(mutex: OfxMutexHandle) -> OfxStatus>,
}
