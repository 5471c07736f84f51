use crate::sys::*;
use std::fmt;

/// A non-OK status from the host, or one our code returns to the host, with what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfxError {
    pub status: OfxStatus,
    pub what: String,
}

pub type Result<T> = std::result::Result<T, OfxError>;

impl OfxError {
    pub fn new(status: OfxStatus, what: impl Into<String>) -> Self {
        OfxError {
            status,
            what: what.into(),
        }
    }
    /// The host lacks a suite or a function this call needs.
    pub fn missing(what: impl Into<String>) -> Self {
        OfxError::new(kOfxStatErrMissingHostFeature, what)
    }
    pub fn bad_handle(what: impl Into<String>) -> Self {
        OfxError::new(kOfxStatErrBadHandle, what)
    }
    pub fn failed(what: impl Into<String>) -> Self {
        OfxError::new(kOfxStatFailed, what)
    }
    /// `Ok(())` for `kOfxStatOK`, an error naming `what` otherwise.
    pub fn check(status: OfxStatus, what: impl FnOnce() -> String) -> Result<()> {
        if status == kOfxStatOK {
            Ok(())
        } else {
            Err(OfxError::new(status, what()))
        }
    }
}

impl fmt::Display for OfxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            status_name(self.status),
            self.status,
            self.what
        )
    }
}

impl std::error::Error for OfxError {}

/// The C name of a status code, for logs and error messages.
pub fn status_name(status: OfxStatus) -> &'static str {
    match status {
        kOfxStatOK => "kOfxStatOK",
        kOfxStatFailed => "kOfxStatFailed",
        kOfxStatErrFatal => "kOfxStatErrFatal",
        kOfxStatErrUnknown => "kOfxStatErrUnknown",
        kOfxStatErrMissingHostFeature => "kOfxStatErrMissingHostFeature",
        kOfxStatErrUnsupported => "kOfxStatErrUnsupported",
        kOfxStatErrExists => "kOfxStatErrExists",
        kOfxStatErrFormat => "kOfxStatErrFormat",
        kOfxStatErrMemory => "kOfxStatErrMemory",
        kOfxStatErrBadHandle => "kOfxStatErrBadHandle",
        kOfxStatErrBadIndex => "kOfxStatErrBadIndex",
        kOfxStatErrValue => "kOfxStatErrValue",
        kOfxStatReplyYes => "kOfxStatReplyYes",
        kOfxStatReplyNo => "kOfxStatReplyNo",
        kOfxStatReplyDefault => "kOfxStatReplyDefault",
        kOfxStatUnlicensed => "kOfxStatUnlicensed",
        kOfxStatErrImageFormat => "kOfxStatErrImageFormat",
        kOfxStatGPUOutOfMemory => "kOfxStatGPUOutOfMemory",
        kOfxStatGPURenderFailed => "kOfxStatGPURenderFailed",
        _ => "unknown status",
    }
}
