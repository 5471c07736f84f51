//! Progress bars: V2 when the host has it, V1 otherwise.

use crate::c_string;
use crate::effect::ImageEffect;
use crate::error::{OfxError, Result};
use crate::sys::*;
use std::ffi::c_void;

/// A started progress bar, ended on drop.
pub struct Progress {
    effect: ImageEffect,
    update: unsafe extern "C" fn(*mut c_void, f64) -> OfxStatus,
    end: Option<unsafe extern "C" fn(*mut c_void) -> OfxStatus>,
}

impl Progress {
    /// `progressStart`; `Err(kOfxStatErrMissingHostFeature)` when the host has no progress suite.
    pub fn start(effect: &ImageEffect, label: &str, id: &str) -> Result<Progress> {
        let suites = effect.suites();
        let handle = effect.handle() as *mut c_void;
        let label_c = c_string(label);
        if let Some(s) = suites.progress_v2 {
            if let (Some(start), Some(update)) = (s.progressStart, s.progressUpdate) {
                let id_c = c_string(id);
                // SAFETY: valid instance token and NUL-terminated strings alive for the call.
                let status = unsafe { start(handle, label_c.as_ptr(), id_c.as_ptr()) };
                OfxError::check(status, || "progressStart (v2)".into())?;
                return Ok(Progress {
                    effect: *effect,
                    update,
                    end: s.progressEnd,
                });
            }
        }
        if let Some(s) = suites.progress_v1 {
            if let (Some(start), Some(update)) = (s.progressStart, s.progressUpdate) {
                // SAFETY: as above.
                let status = unsafe { start(handle, label_c.as_ptr()) };
                OfxError::check(status, || "progressStart (v1)".into())?;
                return Ok(Progress {
                    effect: *effect,
                    update,
                    end: s.progressEnd,
                });
            }
        }
        Err(OfxError::missing("the host has no progress suite"))
    }

    /// `progressUpdate(fraction)`; `Ok(false)` when the user asked to cancel.
    pub fn update(&self, fraction: f64) -> Result<bool> {
        // SAFETY: valid instance token; the function came from the host's suite.
        let status = unsafe {
            (self.update)(
                self.effect.handle() as *mut c_void,
                fraction.clamp(0.0, 1.0),
            )
        };
        match status {
            kOfxStatOK | kOfxStatReplyYes => Ok(true),
            kOfxStatReplyNo => Ok(false),
            other => Err(OfxError::new(other, "progressUpdate")),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(end) = self.end {
            // SAFETY: balances the successful progressStart of this value.
            unsafe { end(self.effect.handle() as *mut c_void) };
        }
    }
}
