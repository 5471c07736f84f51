//! The host and its suites, fetched once at `Load` and held for the plugin's lifetime.
//!
//! The host pointer arrives in `setHost` (before `Load`); [`main_entry`](crate::entry::main_entry)
//! fetches every suite when `Load` arrives and forgets them after `Unload`, so that a binary
//! that stays mapped between an unload and a reload never uses the previous host's tables.

use crate::error::{OfxError, Result};
use crate::property::PropertySet;
use crate::sys::*;
use std::ffi::{c_int, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::RwLock;

/// Every suite the safe layer knows, each `None` when the host does not provide it.
#[derive(Clone, Copy, Default)]
pub struct Suites {
    pub property: Option<&'static OfxPropertySuiteV1>,
    pub image_effect: Option<&'static OfxImageEffectSuiteV1>,
    pub parameter: Option<&'static OfxParameterSuiteV1>,
    pub memory: Option<&'static OfxMemorySuiteV1>,
    pub multi_thread: Option<&'static OfxMultiThreadSuiteV1>,
    pub message_v1: Option<&'static OfxMessageSuiteV1>,
    pub message_v2: Option<&'static OfxMessageSuiteV2>,
    pub progress_v1: Option<&'static OfxProgressSuiteV1>,
    pub progress_v2: Option<&'static OfxProgressSuiteV2>,
    host_properties: Option<PropertySet>,
}

// SAFETY: suite tables are immutable tables of function pointers that the host keeps alive
// while the plugin is loaded; OFX lets any thread call them (ofxThreadSafety.rst). The host
// property handle is only passed back to the host, never dereferenced here.
unsafe impl Send for Suites {}
unsafe impl Sync for Suites {}

impl std::fmt::Debug for Suites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suites")
            .field("property", &self.property.is_some())
            .field("image_effect", &self.image_effect.is_some())
            .field("parameter", &self.parameter.is_some())
            .field("memory", &self.memory.is_some())
            .field("multi_thread", &self.multi_thread.is_some())
            .field("message_v1", &self.message_v1.is_some())
            .field("message_v2", &self.message_v2.is_some())
            .field("progress_v1", &self.progress_v1.is_some())
            .field("progress_v2", &self.progress_v2.is_some())
            .finish()
    }
}

impl Suites {
    pub fn property(&self) -> Result<&'static OfxPropertySuiteV1> {
        self.property
            .ok_or_else(|| OfxError::missing("the host has no OfxPropertySuite v1"))
    }
    pub fn image_effect(&self) -> Result<&'static OfxImageEffectSuiteV1> {
        self.image_effect
            .ok_or_else(|| OfxError::missing("the host has no OfxImageEffectSuite v1"))
    }
    pub fn parameter(&self) -> Result<&'static OfxParameterSuiteV1> {
        self.parameter
            .ok_or_else(|| OfxError::missing("the host has no OfxParameterSuite v1"))
    }
    /// The host's own property set (`kOfxPropName`, supported contexts, depths, ...).
    pub fn host_properties(&self) -> Result<PropertySet> {
        self.host_properties
            .ok_or_else(|| OfxError::missing("no host property set"))
    }
}

static HOST: AtomicPtr<OfxHost> = AtomicPtr::new(ptr::null_mut());
static SUITES: RwLock<Option<Suites>> = RwLock::new(None);

/// `OfxPlugin::setHost`: remembers the host; suites are fetched at `Load`.
///
/// # Safety
/// `host` is NULL or points to an `OfxHost` that stays valid while the binary is loaded,
/// as `ofxCore.h` guarantees for `setHost`.
pub unsafe extern "C" fn set_host(host: *mut OfxHost) {
    HOST.store(host, Ordering::SeqCst);
}

/// Fetches one suite; NULL (or no `fetchSuite`) gives `None`.
///
/// # Safety
/// `host` must be valid (see [`set_host`]) and `T` must be the struct of `name` at `version`.
unsafe fn fetch<T>(host: &OfxHost, name: &CStr, version: c_int) -> Option<&'static T> {
    let fetch_suite = host.fetchSuite?;
    // SAFETY: calling the host's fetchSuite with its own handle and a valid C string.
    let suite = unsafe { fetch_suite(host.host, name.as_ptr(), version) };
    // SAFETY: a non-NULL return points to the host's `T` table, alive while we are loaded.
    unsafe { (suite as *const T).as_ref() }
}

/// Fetches every suite from the host given to `setHost`. Called by the entry point on `Load`.
pub fn fetch_all() -> Result<Suites> {
    let host = HOST.load(Ordering::SeqCst);
    // SAFETY: the pointer came from `setHost`, whose contract keeps it valid while loaded.
    let Some(host) = (unsafe { host.as_ref() }) else {
        return Err(OfxError::missing("setHost was not called before Load"));
    };
    // SAFETY: each name/version pair is fetched into the struct declared for it in `sys`.
    let suites = unsafe {
        let property = fetch::<OfxPropertySuiteV1>(host, kOfxPropertySuite, 1);
        Suites {
            property,
            image_effect: fetch(host, kOfxImageEffectSuite, 1),
            parameter: fetch(host, kOfxParameterSuite, 1),
            memory: fetch(host, kOfxMemorySuite, 1),
            multi_thread: fetch(host, kOfxMultiThreadSuite, 1),
            message_v1: fetch(host, kOfxMessageSuite, 1),
            message_v2: fetch(host, kOfxMessageSuite, 2),
            progress_v1: fetch(host, kOfxProgressSuite, 1),
            progress_v2: fetch(host, kOfxProgressSuite, 2),
            host_properties: property.and_then(|suite| PropertySet::new(host.host, suite)),
        }
    };
    suites.property()?;
    suites.image_effect()?;
    suites.parameter()?;
    *SUITES.write().unwrap_or_else(|e| e.into_inner()) = Some(suites);
    Ok(suites)
}

/// Forgets the suites (after `Unload`): later calls fail with `kOfxStatErrMissingHostFeature`.
pub fn forget() {
    *SUITES.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The suites fetched at `Load`.
pub fn get() -> Result<Suites> {
    SUITES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .ok_or_else(|| OfxError::missing("suites are not fetched: the plugin is not loaded"))
}
