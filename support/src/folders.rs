//! The product's folders in the platform's standard places (through the `directories` crate):
//!
//! | folder | Linux | macOS | Windows |
//! |---|---|---|---|
//! | [`cache_dir`] | `$XDG_CACHE_HOME/text-to-video` or `~/.cache/text-to-video` | `~/Library/Caches/text-to-video` | `%LOCALAPPDATA%\text-to-video` |
//! | [`config_dir`] | `$XDG_CONFIG_HOME/text-to-video` or `~/.config/text-to-video` | `~/Library/Application Support/text-to-video` | `%APPDATA%\text-to-video` |
//! | [`log_dir`] | `$XDG_STATE_HOME/text-to-video` or `~/.local/state/text-to-video` | `~/Library/Logs/text-to-video` | `%LOCALAPPDATA%\text-to-video` |
//!
//! Each is `None` where the platform gives no home folder (a farm account without one).

use directories::BaseDirs;
use std::path::PathBuf;

/// The folder name under each platform folder.
pub const APP_FOLDER: &str = "text-to-video";

pub fn cache_dir() -> Option<PathBuf> {
    BaseDirs::new().map(|d| d.cache_dir().join(APP_FOLDER))
}

pub fn config_dir() -> Option<PathBuf> {
    BaseDirs::new().map(|d| d.config_dir().join(APP_FOLDER))
}

pub fn log_dir() -> Option<PathBuf> {
    let dirs = BaseDirs::new()?;
    let base = if cfg!(target_os = "macos") {
        dirs.home_dir().join("Library").join("Logs")
    } else {
        match dirs.state_dir() {
            Some(state) => state.to_path_buf(),
            None => dirs.data_local_dir().to_path_buf(),
        }
    };
    Some(base.join(APP_FOLDER))
}
