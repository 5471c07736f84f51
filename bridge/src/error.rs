//! The service's error: a kind that decides what the caller does (and the CLI's exit code) and a
//! message that says what to change. Cloneable, because merged submitters share one outcome.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request, a file or a setting is wrong: the message names what to change.
    BadInput,
    /// Something failed while generating or reading/writing files.
    Failed,
    /// The job was cancelled (by its submitters, Ctrl-C or the service shutting down).
    Cancelled,
    /// The service already has as many jobs waiting as it takes
    /// ([`crate::ServiceConfig::max_queued_jobs`]): try again once some have finished.
    QueueFull,
}

/// Serialises as `{"kind": "bad_input", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The queue already holds `waiting` jobs, its limit.
    pub fn queue_full(waiting: usize) -> Self {
        Error {
            kind: ErrorKind::QueueFull,
            message: format!(
                "the generation queue is full ({waiting} clips waiting): try again once some have \
                 finished, or cancel some"
            ),
        }
    }
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }
    /// The `t2v` exit code: 2 for bad input, 1 for a failure, 130 for a cancelled job, 75
    /// (`EX_TEMPFAIL`: try again later) for a full queue.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::BadInput => 2,
            ErrorKind::Failed => 1,
            ErrorKind::Cancelled => 130,
            ErrorKind::QueueFull => 75,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_json_with_their_kind() {
        for e in [
            Error::bad_input("width 33 is not a multiple of 32"),
            Error::failed("disk full"),
            Error::cancelled(),
            Error::queue_full(4),
        ] {
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<Error>(&json).unwrap(), e);
        }
        assert_eq!(
            serde_json::to_string(&Error::bad_input("x")).unwrap(),
            r#"{"kind":"bad_input","message":"x"}"#
        );
        let full = Error::queue_full(4);
        assert!(full.message.contains("4 clips waiting"), "{full}");
        assert_eq!(full.exit_code(), 75);
    }
}
