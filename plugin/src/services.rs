//! The generation services the node's instances share: one [`Service`] (one worker thread that
//! owns the device and the loaded model) per device and cache choice, for the whole process.
//! Two instances with the same `device` and `cache` settings share one service, hence one
//! loaded model; identical requests from them are merged into one job.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use t2v_bridge::{DeviceChoice, Error, Service, ServiceConfig};

/// What selects a service: the `device` and `cache` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceChoice {
    /// `Auto` leaves the choice to `$T2V_DEVICE` (else CUDA when built with it and present).
    pub device: DeviceChoice,
    pub disk_cache: bool,
}

static POOL: Mutex<Vec<(ServiceChoice, Arc<Service>)>> = Mutex::new(Vec::new());
static LIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

fn pool() -> MutexGuard<'static, Vec<(ServiceChoice, Arc<Service>)>> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The model used when the `model` parameter is empty: the one place where a bundled default
/// model (the demo model, once it ships) plugs in. The plugin never downloads anything.
pub fn default_model_path() -> Option<PathBuf> {
    None
}

/// The message shown when there is no model to use.
pub const NO_MODEL_MESSAGE: &str = "No model: set Model Path to a Wan2.2 TI2V-5B folder";

/// The service for `choice`, started on first use with [`ServiceConfig::from_env`] (cache
/// folder `$T2V_CACHE_DIR` or the platform cache; idle unload `$T2V_IDLE_UNLOAD_SECS`). When
/// the cache folder can't be used, the service runs without the disk cache.
pub fn service(choice: ServiceChoice) -> Result<Arc<Service>, Error> {
    let mut pool = pool();
    pool.retain(|(_, s)| !s.is_shut_down());
    if let Some((_, s)) = pool.iter().find(|(c, _)| *c == choice) {
        return Ok(s.clone());
    }
    let mut config = ServiceConfig::from_env();
    if choice.device != DeviceChoice::Auto {
        config.device = choice.device;
    }
    config.use_disk_cache &= choice.disk_cache;
    let service = match Service::new(config.clone()) {
        Ok(s) => s,
        Err(e) if config.use_disk_cache => {
            crate::log!("the clip cache can't be opened ({e}); running without it");
            Service::new(ServiceConfig { use_disk_cache: false, ..config })?
        }
        Err(e) => return Err(e),
    };
    let service = Arc::new(service);
    crate::log!(
        "service started: device {}, cache {}",
        t2v_bridge::device::device_name(service.device()),
        service.cache().map_or("off".to_string(), |c| c.root().display().to_string())
    );
    pool.push((choice, service.clone()));
    Ok(service)
}

/// PurgeCaches, and the last instance going: every service drops its loaded model once it is
/// between jobs. The next generation loads it again.
pub fn unload_models() {
    for (_, service) in pool().iter() {
        service.unload();
    }
}

/// Unload: cancels all work and joins every service thread before returning, so no thread of
/// ours outlives the binary.
pub fn shutdown_all() {
    let services: Vec<_> = pool().drain(..).collect();
    for (_, service) in services {
        service.shutdown();
    }
    Service::shutdown_global();
}

pub fn instance_created() {
    LIVE_INSTANCES.fetch_add(1, Ordering::SeqCst);
}

pub fn instance_destroyed() {
    if LIVE_INSTANCES.fetch_sub(1, Ordering::SeqCst) == 1 {
        unload_models();
    }
}
