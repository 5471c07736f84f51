//! The service's error: a kind that decides what the caller does (and the CLI's exit code) and a
//! message that says what to change. Cloneable, because merged submitters share one outcome.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request, a file or a setting is wrong: the message names what to change.
    BadInput,
    /// Something failed while generating or reading/writing files.
    Failed,
    /// The job was cancelled (by its submitters, Ctrl-C or the service shutting down).
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::BadInput,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }
    pub fn cancelled() -> Self {
        Error {
            kind: ErrorKind::Cancelled,
            message: "cancelled".into(),
        }
    }
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }
    /// The `t2v` exit code: 2 for bad input, 1 for a failure, 130 for a cancelled job.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::BadInput => 2,
            ErrorKind::Failed => 1,
            ErrorKind::Cancelled => 130,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<t2v_models::Error> for Error {
    fn from(e: t2v_models::Error) -> Self {
        use t2v_models::Error as M;
        let kind = match &e {
            M::InvalidRequest(_)
            | M::ModelFolder { .. }
            | M::Checkpoint { .. }
            | M::Tokenizer(_)
            | M::Io { .. } => ErrorKind::BadInput,
            M::Cancelled => ErrorKind::Cancelled,
            M::Candle(_) => ErrorKind::Failed,
        };
        Error {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        t2v_models::Error::from(e).into()
    }
}

pub type Result<T> = std::result::Result<T, Error>;
