//! What the plugin told the host: messages, persistent messages, progress.

/// A message from the plugin, after `printf` formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The OFX message type, e.g. `OfxMessageError`.
    pub kind: String,
    pub id: String,
    pub text: String,
}

impl Message {
    pub fn message_type(&self) -> Option<ofx_bindings::MessageType> {
        ofx_bindings::MessageType::from_name(&self.kind)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    Start { label: String, id: Option<String> },
    Update(f64),
    End,
}

#[derive(Debug, Default)]
pub(crate) struct Records {
    pub messages: Vec<Message>,
    pub persistent: Option<Message>,
    pub progress: Vec<ProgressEvent>,
}
