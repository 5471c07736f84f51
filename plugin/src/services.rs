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
    t2v_support::lock(&POOL)
}

/// The model used when the `model` parameter is empty: the demo model shipped in the bundle.
/// The plugin never downloads anything.
pub fn default_model_path() -> Option<PathBuf> {
    demo_model().map(|d| d.dir.clone())
}

/// The message shown when there is no model to use.
pub const NO_MODEL_MESSAGE: &str = "No model: set Model Path to a Wan2.2 TI2V-5B folder";

/// The bundle's demo model: a tiny model of the same architecture, trained on moving shapes.
#[derive(Debug)]
pub struct DemoModel {
    pub dir: PathBuf,
    /// The settings it was trained for (size, frames, steps, guidance, shift, sampler,
    /// negative prompt); they replace the node's while the demo model is in use.
    pub settings: t2v_demo::DemoSettings,
}

/// Where the bundle keeps the demo model, relative to `Contents/<arch>/TextToVideo.ofx`.
pub const DEMO_MODEL_RESOURCE: &str = "../Resources/demo-model";

/// The demo model: `Resources/demo-model` of the bundle this binary is in, else the one in the
/// source tree this binary was built from (development builds).
pub fn demo_model() -> Option<&'static DemoModel> {
    static DEMO: std::sync::OnceLock<Option<DemoModel>> = std::sync::OnceLock::new();
    DEMO.get_or_init(|| {
        let in_bundle = ofx_bindings::entry::binary_path()
            .and_then(|bin| bin.parent().map(|arch| arch.join(DEMO_MODEL_RESOURCE)));
        let dir = in_bundle
            .into_iter()
            .chain([t2v_demo::model_dir()])
            .find(|d| d.join("model_index.json").is_file())?;
        let settings = t2v_demo::shipped::settings_in(&dir)
            .unwrap_or_else(|_| t2v_demo::recommended_settings());
        crate::log!("demo model: {}", dir.display());
        Some(DemoModel { dir, settings })
    })
    .as_ref()
}

/// The service for `choice`, started on first use with [`ServiceConfig::from_env`] (cache
/// folder `$T2V_CACHE_DIR` or the platform cache; idle unload `$T2V_IDLE_UNLOAD_SECS`). When
/// the cache folder can't be used, the service runs without the disk cache.
pub fn service(choice: ServiceChoice) -> Result<Arc<Service>, Error> {
    let mut pool = pool();
    pool.retain(|(_, s)| !s.is_shut_down());
    if let Some((_, s)) = pool.iter().find(|(c, _)| *c == choice) {
        return Ok(s.clone());
    }
    if let (DeviceChoice::Cuda(_), Some(why)) = (choice.device, crate::engine::cpu_reason()) {
        return Err(Error::bad_input(format!(
            "CUDA is not available: {why}. Set Device to Auto or CPU."
        )));
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
            Service::new(ServiceConfig {
                use_disk_cache: false,
                ..config
            })?
        }
        Err(e) => return Err(e),
    };
    let service = Arc::new(service);
    crate::log!(
        "service started: device {}, cache {}",
        service.device_name(),
        service
            .cache()
            .map_or("off".to_string(), |c| c.root().display().to_string())
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
}

/// A node instance was created (CreateInstance succeeded).
pub fn instance_created() {
    let live = LIVE_INSTANCES.fetch_add(1, Ordering::SeqCst) + 1;
    crate::log!("instances: {live} live");
}

/// A node instance was destroyed; the last one going unloads the models. The count never goes
/// below zero, whatever the host sends.
pub fn instance_destroyed() {
    let before =
        LIVE_INSTANCES.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    match before {
        Ok(1) => {
            crate::log!("instances: 0 live; models unloaded");
            unload_models();
        }
        Ok(n) => crate::log!("instances: {} live", n - 1),
        Err(_) => crate::log!("instances: a destroy with none live ignored"),
    }
}

/// How many node instances are live.
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(Ordering::SeqCst)
}
