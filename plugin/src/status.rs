//! What the node tells the user: the read-only `status` parameter (main thread only) and the
//! host's persistent message on the node. Hosts without persistent messages (no message suite
//! V2, or Resolve's NULL `setPersistentMessage`) get a log message instead.

use crate::params::STATUS;
use ofx_bindings::message;
use ofx_bindings::sys::kOfxStatErrMissingHostFeature;
use ofx_bindings::{ImageEffect, MessageType};

/// Sets the `status` parameter (only when it changes: every set makes the host send an
/// `InstanceChanged`). Main thread only: OFX forbids setting values from render threads.
pub fn set_status(effect: &ImageEffect, text: &str) {
    let Ok(param) = effect.param_set().and_then(|set| set.param(STATUS)) else {
        return;
    };
    if param.get_string(None).is_ok_and(|current| current == text) {
        return;
    }
    if let Err(e) = param.set_string(text) {
        crate::log!("could not set the status parameter: {e}");
    }
}

/// Shows `text` on the node until cleared.
pub fn show(effect: &ImageEffect, kind: MessageType, text: &str) {
    match message::set_persistent_message(effect, kind, "t2v.status", text) {
        Ok(()) => {}
        Err(e) if e.status == kOfxStatErrMissingHostFeature => {
            let _ = message::message(Some(effect), MessageType::Log, "t2v.status", text);
        }
        Err(e) => crate::log!("setPersistentMessage failed: {e}"),
    }
}

pub fn clear(effect: &ImageEffect) {
    let _ = message::clear_persistent_message(effect);
}

/// A line for the host's log (`kOfxMessageLog`) and ours.
pub fn log_message(effect: &ImageEffect, id: &str, text: &str) {
    crate::log!("{id}: {text}");
    let _ = message::message(Some(effect), MessageType::Log, id, text);
}
