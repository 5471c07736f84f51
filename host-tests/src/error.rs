use ofx_bindings::status_name;
use ofx_bindings::sys::OfxStatus;
use std::path::PathBuf;

/// Everything that can go wrong while hosting a plugin, phrased for the person running tests.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot load {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: {what}")]
    Bundle { path: PathBuf, what: String },
    #[error("no plugin {0:?} in the bundle")]
    NoSuchPlugin(String),
    #[error("plugin {plugin}: {action} returned {} ({status})", status_name(*status))]
    Action {
        plugin: String,
        action: String,
        status: OfxStatus,
    },
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("no parameter {0:?}")]
    NoSuchParam(String),
    #[error("parameter {name:?}: {what}")]
    ParamValue { name: String, what: String },
    #[error("the plugin wrote outside its image at time {time}: {what}")]
    OutOfBounds { time: f64, what: String },
    #[error(
        "the plugin did not release {count} image(s) fetched during the render at time {time}"
    )]
    ImagesNotReleased { time: f64, count: usize },
    #[error("building the fixture failed: {0}")]
    Fixture(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl HostError {
    /// The OFX status of a failed action, if that is what this is.
    pub fn status(&self) -> Option<OfxStatus> {
        match self {
            HostError::Action { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, HostError>;
