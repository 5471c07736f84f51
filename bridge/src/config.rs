//! How a [`crate::Service`] runs: device, model lifetime, caches, memory mode.

use crate::clip_cache;
use crate::device::DeviceChoice;
use std::path::PathBuf;
use std::time::Duration;

/// `auto`, `cpu`, `cuda` or `cuda:N` (for [`ServiceConfig::from_env`]).
pub const DEVICE_ENV: &str = "T2V_DEVICE";
/// Seconds of idleness before the models are unloaded; `0` or `never` keeps them.
pub const IDLE_UNLOAD_ENV: &str = "T2V_IDLE_UNLOAD_SECS";
/// `0` keeps the text encoder loaded next to the transformer (faster for new prompts, about
/// 11 GB more GPU memory with the real model); `1` (the default) frees it after encoding.
pub const LOW_MEMORY_ENV: &str = "T2V_LOW_MEMORY";
/// `1` turns the disk cache off.
pub const NO_CACHE_ENV: &str = "T2V_NO_CACHE";

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub device: DeviceChoice,
    /// Unload the models after this long without a job; `None` keeps them until asked.
    pub idle_unload: Option<Duration>,
    /// The clip cache folder; `None` means [`clip_cache::default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// The disk cache's size cap in bytes; least recently used clips go first.
    pub cache_max_bytes: u64,
    pub use_disk_cache: bool,
    /// Free the text encoder after encoding the prompt, so it never sits in memory next to the
    /// transformer while denoising and decoding (it is reloaded for the next new prompt; cached
    /// prompts need no reload). On by default: it keeps a 480P generation with the real model
    /// under 24 GB of GPU memory.
    pub low_memory: bool,
    /// How many prompt embeddings to keep (on the CPU).
    pub embedding_cache_entries: usize,
    /// Test hook: a job with exactly this prompt panics inside the worker.
    #[doc(hidden)]
    pub panic_on_prompt: Option<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            device: DeviceChoice::Auto,
            idle_unload: Some(Duration::from_secs(600)),
            cache_dir: None,
            cache_max_bytes: clip_cache::default_max_bytes(),
            use_disk_cache: true,
            low_memory: true,
            embedding_cache_entries: 32,
            panic_on_prompt: None,
        }
    }
}

fn env_flag(name: &str) -> bool {
    env_switch(name) == Some(true)
}

/// `Some(true)` for 1/true/yes/on, `Some(false)` for 0/false/no/off, `None` when unset or other.
fn env_switch(name: &str) -> Option<bool> {
    let v = std::env::var(name).ok()?;
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl ServiceConfig {
    /// The defaults, adjusted by `T2V_DEVICE`, `T2V_IDLE_UNLOAD_SECS`, `T2V_LOW_MEMORY`,
    /// `T2V_NO_CACHE`, `T2V_CACHE_DIR` and `T2V_CACHE_MAX_GB`. Unparsable values are ignored.
    pub fn from_env() -> Self {
        let mut c = ServiceConfig::default();
        if let Some(d) = std::env::var(DEVICE_ENV).ok().and_then(|v| v.parse().ok()) {
            c.device = d;
        }
        if let Ok(v) = std::env::var(IDLE_UNLOAD_ENV) {
            match v.trim() {
                "0" | "never" => c.idle_unload = None,
                s => {
                    if let Ok(secs) = s.parse::<f64>() {
                        c.idle_unload = Some(Duration::from_secs_f64(secs.max(0.0)));
                    }
                }
            }
        }
        if let Some(on) = env_switch(LOW_MEMORY_ENV) {
            c.low_memory = on;
        }
        c.use_disk_cache = !env_flag(NO_CACHE_ENV);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_read_both_ways_and_ignore_noise() {
        let name = "T2V_TEST_SWITCH_CONFIG";
        for (value, expected) in [
            ("1", Some(true)),
            (" On ", Some(true)),
            ("0", Some(false)),
            ("off", Some(false)),
            ("maybe", None),
        ] {
            std::env::set_var(name, value);
            assert_eq!(env_switch(name), expected, "{value}");
        }
        std::env::remove_var(name);
        assert_eq!(env_switch(name), None);
        assert!(ServiceConfig::default().low_memory);
    }
}
