//! The plugin's log file, so that a failed load or a crash in a host can be diagnosed.
//!
//! Location: `$T2V_LOG` when set, else `$XDG_STATE_HOME/text-to-video/plugin.log`, else
//! `~/.local/state/text-to-video/plugin.log` (on macOS `~/Library/Logs/text-to-video/plugin.log`,
//! on Windows `%LOCALAPPDATA%\text-to-video\plugin.log`). Lines are appended; a file above
//! 4 MiB is renamed to `plugin.log.1` when the plugin loads. Logging never fails an action.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

pub const LOG_ENV: &str = "T2V_LOG";
const ROTATE_BYTES: u64 = 4 << 20;

static LOG: Mutex<Option<File>> = Mutex::new(None);

/// Where the log goes (see the module documentation).
pub fn log_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(LOG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let env_dir = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let dir = if cfg!(windows) {
        env_dir("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        env_dir("HOME").map(|h| h.join("Library").join("Logs"))
    } else {
        env_dir("XDG_STATE_HOME")
            .or_else(|| env_dir("HOME").map(|h| h.join(".local").join("state")))
    }?;
    Some(dir.join("text-to-video").join("plugin.log"))
}

fn open() -> Option<File> {
    let path = log_path()?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > ROTATE_BYTES) {
        let _ = std::fs::rename(&path, path.with_extension("log.1"));
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()
}

/// Opens the log (at `Load`).
pub fn init() {
    let mut log = t2v_support::lock(&LOG);
    if log.is_none() {
        *log = open();
    }
}

/// Closes the log (at `Unload`).
pub fn close() {
    t2v_support::lock(&LOG).take();
}

/// Appends one line: seconds since the epoch, the thread's name, the text.
pub fn write(text: &str) {
    let mut log = t2v_support::lock(&LOG);
    if log.is_none() {
        *log = open();
    }
    if let Some(file) = log.as_mut() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("host");
        let _ = writeln!(
            file,
            "{}.{:03} [{}:{name}] {text}",
            now.as_secs(),
            now.subsec_millis(),
            std::process::id()
        );
    }
}

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log::write(&format!($($arg)*)) };
}
