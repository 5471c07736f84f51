//! The `remote` device: the node's clips are made by the studio's GPU worker pool
//! (docs/studio.md) through the `t2v-queue` crate's plain client, with progress, cancel and
//! frames streamed into the host as they arrive. A clip in the clip cache is shown without
//! touching the queue, as for a local device.
//!
//! The queue is the `queue` setting, else `$T2V_QUEUE_URL` (farm machines); the credentials
//! file the `credentials` setting, else `$T2V_QUEUE_CREDS`. With the remote device, Model Path
//! names a model by its id in the workers' configuration (empty: the demo model, `demo`): a
//! worker never opens a path sent by a client.

use crate::params::Settings;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use t2v_bridge::clip_cache::default_cache_dir;
use t2v_bridge::preview::Preview;
use t2v_bridge::{
    Clip, ClipCache, Error, Frame, FrameKind, GenerationParams, Image, JobHandle, JobProgress,
    Precision, StreamedFrame,
};
use t2v_queue::offline::{self, Found};
use t2v_queue::{
    Credentials, DecoderChoice, KnownModels, QueueClient, QueueConfig, RemoteJob, RemoteRequest,
    TlsOptions, QUEUE_CREDS_ENV, QUEUE_TLS_CA_ENV, QUEUE_TLS_CERT_ENV, QUEUE_TLS_KEY_ENV,
    QUEUE_URL_ENV,
};

/// A job of a local service or of the worker pool, behind one set of calls.
pub enum ClipJob {
    Local(JobHandle),
    Remote(RemoteJob),
    /// A clip the remote device found in the clip cache: no job at all.
    Ready(Arc<Clip>),
}

impl ClipJob {
    pub fn progress(&self) -> JobProgress {
        match self {
            ClipJob::Local(j) => j.progress(),
            ClipJob::Remote(j) => j.progress(),
            ClipJob::Ready(c) => JobProgress {
                stage: t2v_bridge::JobStage::Done,
                fraction: 1.0,
                eta: None,
                steps_done: c.metadata.steps,
                frames_done: c.frames.len(),
            },
        }
    }
    pub fn frame(&self, index: usize) -> Option<Frame> {
        match self {
            ClipJob::Local(j) => j.frame(index),
            ClipJob::Remote(j) => j.frame(index),
            ClipJob::Ready(c) => c.frames.get(index).cloned(),
        }
    }
    /// The decoded frame `index`, else the latest live preview of it (local jobs make them).
    pub fn latest_frame(&self, index: usize) -> Option<StreamedFrame> {
        match self {
            ClipJob::Local(j) => j.latest_frame(index),
            _ => self.frame(index).map(|frame| StreamedFrame {
                index,
                kind: FrameKind::Decoded,
                frame,
            }),
        }
    }
    pub fn preview(&self) -> Option<Arc<Preview>> {
        match self {
            ClipJob::Local(j) => j.preview(),
            _ => None,
        }
    }
    pub fn wait_frame(&self, index: usize, timeout: Duration) -> Option<Frame> {
        match self {
            ClipJob::Local(j) => j.wait_frame(index, timeout),
            ClipJob::Remote(j) => j.wait_frame(index, timeout),
            ClipJob::Ready(c) => c.frames.get(index).cloned(),
        }
    }
    pub fn wait_for_change(&self, timeout: Duration) {
        match self {
            ClipJob::Local(j) => j.wait_for_change(timeout),
            ClipJob::Remote(j) => j.wait_for_change(timeout),
            ClipJob::Ready(_) => {}
        }
    }
    pub fn wait_timeout(&self, timeout: Duration) -> Option<t2v_bridge::Result<Arc<Clip>>> {
        match self {
            ClipJob::Local(j) => j.wait_timeout(timeout),
            ClipJob::Remote(j) => j.wait_timeout(timeout),
            ClipJob::Ready(c) => Some(Ok(c.clone())),
        }
    }
    pub fn is_finished(&self) -> bool {
        match self {
            ClipJob::Local(j) => j.is_finished(),
            ClipJob::Remote(j) => j.is_finished(),
            ClipJob::Ready(_) => true,
        }
    }
    pub fn cancel(&self) {
        match self {
            ClipJob::Local(j) => j.cancel(),
            ClipJob::Remote(j) => j.cancel(),
            ClipJob::Ready(_) => {}
        }
    }
}

/// The model id for `settings`: Model Path's text, or `demo` when it is empty.
pub fn model_id(settings: &Settings) -> String {
    match settings.model.trim() {
        "" => "demo".to_string(),
        id => id.to_string(),
    }
}

/// The queue configuration `settings` (and the environment) name.
pub fn config(settings: &Settings) -> Result<QueueConfig, Error> {
    config_from(&settings.queue, &settings.credentials, |name| {
        std::env::var(name).ok()
    })
}

/// The queue and credentials settings win; empty ones fall back to `$T2V_QUEUE_URL` and
/// `$T2V_QUEUE_CREDS` (as `env` gives them), as on farm machines. A private CA and a client
/// certificate come from the environment only (`$T2V_QUEUE_TLS_CA`, `_CERT`, `_KEY`): a
/// studio sets them once for every machine.
fn config_from(
    queue: &str,
    credentials: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<QueueConfig, Error> {
    let setting_or_env = |setting: &str, var: &str| {
        Some(setting.trim().to_string())
            .filter(|v| !v.is_empty())
            .or_else(|| {
                env(var)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            })
    };
    let url = setting_or_env(queue, QUEUE_URL_ENV).ok_or_else(|| {
        Error::bad_input(format!(
            "Device is remote but no queue is set: set Queue to nats://HOST:PORT (or ${QUEUE_URL_ENV})"
        ))
    })?;
    let mut config = QueueConfig::new(url);
    if let Some(file) = setting_or_env(credentials, QUEUE_CREDS_ENV) {
        config.credentials = Credentials::File(PathBuf::from(file));
    }
    let file = |var| setting_or_env("", var).map(PathBuf::from);
    config.tls = TlsOptions::from_files(
        file(QUEUE_TLS_CA_ENV),
        file(QUEUE_TLS_CERT_ENV),
        file(QUEUE_TLS_KEY_ENV),
    )
    .map_err(Error::bad_input)?;
    Ok(config)
}

type Clients = Vec<(QueueConfig, Arc<QueueClient>)>;
static CLIENTS: Mutex<Clients> = Mutex::new(Vec::new());

/// One client per queue, credentials and TLS files for the whole process, connected on first
/// use.
pub fn client(config: QueueConfig) -> Result<Arc<QueueClient>, Error> {
    let mut clients = t2v_support::lock(&CLIENTS);
    if let Some((_, c)) = clients.iter().find(|(known, _)| *known == config) {
        return Ok(c.clone());
    }
    let url = config.url.clone();
    let client = Arc::new(QueueClient::connect(config.clone())?);
    crate::log!("queue: connected to {url} as {}", client.id());
    clients.push((config, client.clone()));
    Ok(client)
}

/// The request for the pool.
pub fn request(
    settings: &Settings,
    params: GenerationParams,
    image: Option<Image>,
) -> RemoteRequest {
    RemoteRequest {
        model_id: model_id(settings),
        params,
        precision: Precision::Auto,
        image,
        decoder: decoder_choice(settings),
    }
}

/// The decoder asked of the pool: the style's preference (fast only where the pool's model has
/// a tiny decoder, as for a local model), else the node's `decoder` choice.
fn decoder_choice(settings: &Settings) -> DecoderChoice {
    match settings.style_decoder {
        Some(preference) => DecoderChoice::preferring(preference),
        None => settings.decoder.into(),
    }
}

/// The clip cache the local devices use too (`$T2V_CACHE_DIR`, else the platform's), when
/// the node's `cache` setting is on and it can be opened; with the pool's model identities
/// remembered beside it.
fn cache(settings: &Settings) -> Option<(ClipCache, KnownModels)> {
    if !settings.cache {
        return None;
    }
    let config = t2v_bridge::ServiceConfig::from_env();
    if !config.use_disk_cache {
        return None;
    }
    let dir = config.cache_dir.or_else(default_cache_dir)?;
    let known = KnownModels::beside(&dir);
    Some((ClipCache::open(dir, config.cache_max_bytes).ok()?, known))
}

/// Whether the clip of `settings` is in the clip cache (no job is submitted; the pool's model
/// registry is read only when this machine has not seen the model's identity yet).
pub fn is_cached(settings: &Settings, params: Option<GenerationParams>) -> bool {
    let (Some(params), Some((cache, known)), Ok(config)) =
        (params, cache(settings), config(settings))
    else {
        return false;
    };
    let request = request(settings, params, None);
    let pool = config.pool.clone();
    let found = offline::find(
        Some(&known),
        &pool,
        &request,
        |key| Ok(cache.contains(&key).then_some(())),
        || client(config),
    );
    matches!(found, Ok(Found::Cached(())))
}

/// The clip for `request`: from the clip cache when it is there (named from the model identity
/// this machine remembers, with no connection, else from the pool's registry), else submitted
/// to the pool (or joined to the identical job).
pub fn submit(settings: &Settings, request: &RemoteRequest) -> Result<ClipJob, Error> {
    let config = config(settings)?;
    let pool = config.pool.clone();
    let cache = cache(settings);
    let found = offline::find(
        cache.as_ref().map(|(_, known)| known),
        &pool,
        request,
        |key| match &cache {
            Some((cache, _)) => offline::cached_clip(cache, key),
            None => Ok(None),
        },
        || client(config),
    )?;
    Ok(match found {
        Found::Cached(clip) => ClipJob::Ready(Arc::new(clip)),
        Found::Job(client, message) => {
            ClipJob::Remote(client.submit_prepared(*message, request.image.as_ref())?)
        }
    })
}

/// Forgets the clients (Unload): their connections close once no job holds them.
pub fn disconnect_all() {
    t2v_support::lock(&CLIENTS).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn empty_settings_take_the_farm_machine_s_environment() {
        let farm = [
            (QUEUE_URL_ENV, "nats://queue.farm:4222"),
            (QUEUE_CREDS_ENV, "/etc/t2v/farm.creds"),
        ];
        let c = config_from(" ", "", env(&farm)).unwrap();
        assert_eq!(c.url, "nats://queue.farm:4222");
        assert_eq!(
            c.credentials,
            Credentials::File(PathBuf::from("/etc/t2v/farm.creds"))
        );
        // The node's own settings win over the environment.
        let c = config_from("nats://gpu-01:4222", "/home/me/me.creds", env(&farm)).unwrap();
        assert_eq!(c.url, "nats://gpu-01:4222");
        assert_eq!(
            c.credentials,
            Credentials::File(PathBuf::from("/home/me/me.creds"))
        );
        // Neither: no credentials, and no queue is a message naming both ways to set it.
        let c = config_from("nats://gpu-01:4222", "", env(&[])).unwrap();
        assert_eq!(c.credentials, Credentials::None);
        let e = config_from("", "", env(&[(QUEUE_URL_ENV, "  ")])).unwrap_err();
        assert!(e.message.contains("set Queue") && e.message.contains(QUEUE_URL_ENV));
    }

    #[test]
    fn a_studio_s_private_ca_and_client_certificate_come_from_the_environment() {
        let url = "tls://queue.studio:4222";
        assert_eq!(
            config_from(url, "", env(&[])).unwrap().tls,
            TlsOptions::default()
        );
        let studio = [
            (QUEUE_TLS_CA_ENV, "/etc/t2v/ca.pem"),
            (QUEUE_TLS_CERT_ENV, "/etc/t2v/node.pem"),
            (QUEUE_TLS_KEY_ENV, "/etc/t2v/node-key.pem"),
        ];
        let tls = config_from(url, "", env(&studio)).unwrap().tls;
        assert!(tls.require);
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/t2v/ca.pem")));
        assert_eq!(
            tls.client_cert,
            Some((
                PathBuf::from("/etc/t2v/node.pem"),
                PathBuf::from("/etc/t2v/node-key.pem")
            ))
        );
        let e = config_from(url, "", env(&studio[1..2])).unwrap_err();
        assert!(e.message.contains(QUEUE_TLS_KEY_ENV), "{e}");
    }
}
