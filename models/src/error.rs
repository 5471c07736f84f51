//! Errors a user can act on: each names the file, tensor or value to change.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", candle_message(.0))]
    Candle(#[from] candle_core::Error),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint file that can't be read, or isn't what it was expected to be.
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },

    /// A model folder that lacks a component or holds something unexpected.
    #[error("model folder {path}: {message}")]
    ModelFolder { path: PathBuf, message: String },

    /// A generation request that can't be run as asked; the message names the valid choices.
    #[error("{0}")]
    InvalidRequest(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The caller asked to stop (for example the user pressed Cancel).
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

/// candle's message without the backtrace it may carry: users see what went wrong, not where.
fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        other => other.to_string(),
    }
}

impl Error {
    pub fn checkpoint(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn folder(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::ModelFolder {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
