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
/// How many jobs may wait for the worker ([`ServiceConfig::max_queued_jobs`]).
pub const MAX_QUEUED_ENV: &str = "T2V_MAX_QUEUED_JOBS";
/// [`ServiceConfig::max_queued_jobs`] unless configured.
pub const DEFAULT_MAX_QUEUED_JOBS: usize = 32;

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
    /// How many jobs may wait (queued or being looked up in the disk cache, not yet started or
    /// cancelled); a submission past it fails with [`crate::ErrorKind::QueueFull`]. Each
    /// waiting job holds its inputs (first frame, starting latents) in memory.
    pub max_queued_jobs: usize,
    /// Runs every job with these mechanisms instead of the ones its memory budget plans (tests
    /// and benchmarks of each mechanism).
    #[doc(hidden)]
    pub mechanisms: Option<t2v_models::residency::Mechanisms>,
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
            max_queued_jobs: DEFAULT_MAX_QUEUED_JOBS,
            mechanisms: None,
            panic_on_prompt: None,
        }
    }
}

/// `Some(true)` for 1/true/yes/on, `Some(false)` for 0/false/no/off, `None` when unset or other.
fn switch(value: Option<String>) -> Option<bool> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl ServiceConfig {
    /// The defaults, adjusted by `T2V_DEVICE`, `T2V_IDLE_UNLOAD_SECS`, `T2V_LOW_MEMORY`,
    /// `T2V_NO_CACHE`, `T2V_MAX_QUEUED_JOBS`, `T2V_CACHE_DIR` and `T2V_CACHE_MAX_GB`.
    /// Unparsable values are ignored.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ServiceConfig::from_env`] over any source of variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut c = ServiceConfig::default();
        if let Some(d) = lookup(DEVICE_ENV).and_then(|v| v.parse().ok()) {
            c.device = d;
        }
        if let Some(v) = lookup(IDLE_UNLOAD_ENV) {
            match v.trim() {
                "0" | "never" => c.idle_unload = None,
                s => {
                    if let Ok(secs) = s.parse::<f64>() {
                        c.idle_unload = Some(Duration::from_secs_f64(secs.max(0.0)));
                    }
                }
            }
        }
        if let Some(on) = switch(lookup(LOW_MEMORY_ENV)) {
            c.low_memory = on;
        }
        c.use_disk_cache = switch(lookup(NO_CACHE_ENV)) != Some(true);
        if let Some(n) = lookup(MAX_QUEUED_ENV).and_then(|v| v.trim().parse().ok()) {
            c.max_queued_jobs = n;
        }
        if let Some(dir) = lookup(clip_cache::CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
            c.cache_dir = Some(PathBuf::from(dir));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> ServiceConfig {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn switches_read_both_ways_and_ignore_noise() {
        for (value, expected) in [
            ("1", Some(true)),
            (" On ", Some(true)),
            ("0", Some(false)),
            ("off", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(switch(Some(value.into())), expected, "{value}");
        }
        assert_eq!(switch(None), None);
        assert!(ServiceConfig::default().low_memory);
    }

    #[test]
    fn variables_adjust_the_defaults() {
        let c = config(&[
            (DEVICE_ENV, "cpu"),
            (IDLE_UNLOAD_ENV, "never"),
            (LOW_MEMORY_ENV, "0"),
            (NO_CACHE_ENV, "yes"),
            (MAX_QUEUED_ENV, "3"),
            (clip_cache::CACHE_DIR_ENV, "/farm/cache"),
        ]);
        assert_eq!(c.device, DeviceChoice::Cpu);
        assert_eq!(c.idle_unload, None);
        assert!(!c.low_memory);
        assert!(!c.use_disk_cache);
        assert_eq!(c.max_queued_jobs, 3);
        assert_eq!(c.cache_dir, Some(PathBuf::from("/farm/cache")));

        let c = config(&[
            (IDLE_UNLOAD_ENV, "2.5"),
            (DEVICE_ENV, "tpu"),
            (MAX_QUEUED_ENV, "many"),
        ]);
        assert_eq!(c.idle_unload, Some(Duration::from_millis(2500)));
        assert_eq!(
            c.device,
            DeviceChoice::Auto,
            "unparsable values are ignored"
        );
        assert_eq!(c.max_queued_jobs, DEFAULT_MAX_QUEUED_JOBS);
        assert!(c.use_disk_cache);
        assert_eq!(c.cache_dir, None);
    }
}
