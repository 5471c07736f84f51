//! Messages to the user, always sent as `("%s", text)`: our text is never a format string.

use crate::c_string;
use crate::effect::ImageEffect;
use crate::error::{OfxError, Result};
use crate::suites;
use crate::sys::*;
use crate::types::MessageType;
use std::ffi::c_void;

/// The host's answer to a message (`Yes`/`No` only for questions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageReply {
    Ok,
    Yes,
    No,
}

fn handle_of(effect: Option<&ImageEffect>) -> *mut c_void {
    effect.map_or(std::ptr::null_mut(), |e| e.handle() as *mut c_void)
}

/// `message(handle, type, id, "%s", text)` via message suite V2, else V1. `effect` may be
/// `None` for a message not tied to an instance.
pub fn message(
    effect: Option<&ImageEffect>,
    kind: MessageType,
    id: &str,
    text: &str,
) -> Result<MessageReply> {
    let suites = match effect {
        Some(e) => *e.suites(),
        None => suites::get()?,
    };
    let f = suites
        .message_v2
        .and_then(|s| s.message)
        .or_else(|| suites.message_v1.and_then(|s| s.message))
        .ok_or_else(|| OfxError::missing("the host has no message suite"))?;
    let id_c = c_string(id);
    let text_c = c_string(text);
    // SAFETY: every pointer is NUL-terminated and alive for the call; the format is the
    // literal "%s" and exactly one `char *` vararg follows, as printf requires.
    let status = unsafe {
        f(
            handle_of(effect),
            kind.as_cstr().as_ptr(),
            id_c.as_ptr(),
            c"%s".as_ptr(),
            text_c.as_ptr(),
        )
    };
    match status {
        kOfxStatOK => Ok(MessageReply::Ok),
        kOfxStatReplyYes => Ok(MessageReply::Yes),
        kOfxStatReplyNo => Ok(MessageReply::No),
        other => Err(OfxError::new(other, format!("message({id})"))),
    }
}

/// `setPersistentMessage` (message suite V2) on an instance: a status shown on the node until
/// cleared. `Err(kOfxStatErrMissingHostFeature)` when the host lacks it (no V2, or Resolve's
/// NULL function pointer); callers usually fall back to [`message`] with `Log`.
pub fn set_persistent_message(
    effect: &ImageEffect,
    kind: MessageType,
    id: &str,
    text: &str,
) -> Result<()> {
    let f = effect
        .suites()
        .message_v2
        .and_then(|s| s.setPersistentMessage)
        .ok_or_else(|| OfxError::missing("the host has no setPersistentMessage"))?;
    let id_c = c_string(id);
    let text_c = c_string(text);
    // SAFETY: as in `message`: literal "%s" format and one `char *` vararg.
    let status = unsafe {
        f(
            effect.handle() as *mut c_void,
            kind.as_cstr().as_ptr(),
            id_c.as_ptr(),
            c"%s".as_ptr(),
            text_c.as_ptr(),
        )
    };
    OfxError::check(status, || format!("setPersistentMessage({id})"))
}

pub fn clear_persistent_message(effect: &ImageEffect) -> Result<()> {
    let f = effect
        .suites()
        .message_v2
        .and_then(|s| s.clearPersistentMessage)
        .ok_or_else(|| OfxError::missing("the host has no clearPersistentMessage"))?;
    // SAFETY: valid instance token.
    let status = unsafe { f(effect.handle() as *mut c_void) };
    OfxError::check(status, || "clearPersistentMessage".into())
}
