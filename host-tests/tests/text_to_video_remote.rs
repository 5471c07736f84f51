//! The node's `remote` device through the test host: a real NATS JetStream server of the
//! test's own (`t2v_queue::local_server`; under CI a missing server fails the test) and a
//! worker in this process serving the tiny model as `tiny`, and with a tiny decoder as
//! `tiny-draft`. The node renders the clip the worker makes (pixels equal the generation
//! service's), decodes fast where the pool's model can, shows progress, and cancels.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t2v_bridge::{Decoder, ModelSpec, Request, Service, ServiceConfig};
use t2v_common::*;
use t2v_queue::local_server::LocalServer;
use t2v_queue::{JobState, QueueClient, QueueConfig, QueueWorker, Timings};

/// Index of `remote` in the `device` choice (after auto, CUDA, CPU).
const REMOTE: i32 = 3;

struct Pool {
    server: LocalServer,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn config(server: &LocalServer) -> QueueConfig {
    let mut c = QueueConfig::new(server.url());
    c.timings = Timings {
        ack_wait: Duration::from_secs(2),
        max_deliver: 2,
        interest_ttl: Duration::from_secs(3),
        ..Timings::default()
    };
    c
}

impl Pool {
    /// A server and one worker serving the tiny model, with no clip cache (not the node's), so
    /// every clip is generated.
    fn start() -> Option<Pool> {
        Pool::start_caching_in(None)
    }

    /// As [`Pool::start`], the worker committing its clips to `cache` (a studio's shared
    /// cache folder).
    fn start_caching_in(cache: Option<&std::path::Path>) -> Option<Pool> {
        let server = LocalServer::for_test()?;
        let service = Service::new(ServiceConfig {
            device: t2v_bridge::DeviceChoice::Cpu,
            use_disk_cache: cache.is_some(),
            cache_dir: cache.map(std::path::Path::to_path_buf),
            idle_unload: None,
            ..Default::default()
        })
        .unwrap();
        let models = BTreeMap::from([
            ("tiny".to_string(), ModelSpec::folder(tiny_model())),
            ("tiny-draft".to_string(), tiny_draft()),
        ]);
        let worker = QueueWorker::start(config(&server), service, models).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || worker.serve(&flag).unwrap());
        Some(Pool {
            server,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.server.stop();
    }
}

/// The tiny model with a tiny decoder.
fn tiny_draft() -> ModelSpec {
    let mut spec = ModelSpec::folder(tiny_model());
    spec.overrides.fast_decoder = Some(
        tiny_model()
            .parent()
            .unwrap()
            .join("taehv/taehv-tiny.safetensors"),
    );
    spec
}

fn remote_node(host: &Host, pool: &Pool, prompt: &str, seed: i32) -> (Plugin, Instance) {
    remote_node_at(host, &pool.server.url(), prompt, seed)
}

fn remote_node_at(host: &Host, queue: &str, prompt: &str, seed: i32) -> (Plugin, Instance) {
    let plugin = node_plugin(host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, seed);
    instance.set_param("model", "tiny").unwrap(); // a model id of the workers
    instance.set_param("device", REMOTE).unwrap();
    instance.set_param("queue", queue).unwrap();
    (plugin, instance)
}

/// Enough steps that the job spans several looks at its record (every 200 ms), so the host's
/// bar moves: 40 tiny-model steps could end within one look on an idle machine, and the bar
/// went from 0 to done (seen once in a run beside other tests).
const REMOTE_STEPS: usize = 200;

#[test]
fn the_node_renders_a_clip_made_by_a_worker_with_progress() {
    let Some(pool) = Pool::start() else { return };
    let host = Host::new(HostProfile::natron());
    let prompt = "a lighthouse at dusk, remote";
    let (_plugin, instance) = remote_node(&host, &pool, prompt, 41);
    instance.set_param("steps", REMOTE_STEPS as i32).unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(status.starts_with("Ready: 5 frames"), "{status}");
    let updates: Vec<f64> = instance
        .progress_events()
        .into_iter()
        .filter_map(|e| match e {
            ProgressEvent::Update(f) => Some(f),
            _ => None,
        })
        .collect();
    assert!(
        updates.iter().any(|f| *f > 0.0 && *f < 1.0),
        "progress reached the host's bar: {updates:?}"
    );
    // The same clip from a local service.
    let local = reference_service();
    let request = t2v_bridge::Request::new(
        ModelSpec::folder(tiny_model()),
        params(prompt, 41, REMOTE_STEPS),
    );
    let expected = local.submit(request).unwrap().wait().unwrap();
    for (i, frame) in expected.frames.iter().enumerate() {
        let image = instance
            .render(1.0 + i as f64, PixelDepth::Float, 0)
            .unwrap();
        assert_shows(&image, frame);
    }
    assert!(
        log_text().contains("sent to the worker pool (model tiny"),
        "{}",
        log_text()
    );
}

#[test]
fn cancelling_from_the_progress_bar_stops_the_worker_s_job() {
    let Some(pool) = Pool::start() else { return };
    let host = Host::new(HostProfile::natron());
    let (_plugin, instance) = remote_node(&host, &pool, "a slow remote clip", 42);
    instance.set_param("steps", 400).unwrap();
    host.set_progress_cancel(true);
    instance.push_button("generate").unwrap();
    host.set_progress_cancel(false);
    let status = string_param(&instance, "status");
    assert!(status.starts_with("Cancelled"), "{status}");
    // The worker hears that no client wants the job and stops it.
    let observer = QueueClient::connect(config(&pool.server)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = observer.records().unwrap();
        if records.iter().any(|(_, r)| r.state == JobState::Cancelled) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job was not cancelled: {records:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_remote_node_without_a_queue_says_what_to_set() {
    let host = Host::new(HostProfile::natron());
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "no queue", 1);
    instance.set_param("model", "tiny").unwrap();
    instance.set_param("device", REMOTE).unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(status.contains("no queue is set"), "{status}");
}

#[test]
fn a_remote_node_names_the_credentials_file_it_cannot_use() {
    let Some(pool) = Pool::start() else { return };
    let host = Host::new(HostProfile::natron());
    let (_plugin, instance) = remote_node(&host, &pool, "a clip behind a bad creds file", 43);
    let creds = scratch().join("artist.creds");
    std::fs::write(&creds, "not a NATS credentials file").unwrap();
    instance
        .set_param("credentials", creds.display().to_string().as_str())
        .unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.contains("credentials file") && status.contains("artist.creds"),
        "{status}"
    );
    assert!(instance.render(1.0, PixelDepth::Float, 0).is_err());
}

#[test]
fn a_clip_the_pool_cached_is_shown_with_the_queue_server_down() {
    // The worker commits to the node's own clip cache, as to a studio's shared folder.
    let Some(mut pool) = Pool::start_caching_in(Some(&scratch().join("cache"))) else {
        return;
    };
    let host = Host::new(HostProfile::natron());
    let prompt = "a harbour at night, cached by the pool";
    let (_plugin, made) = remote_node(&host, &pool, prompt, 44);
    made.push_button("generate").unwrap();
    assert!(string_param(&made, "status").starts_with("Ready: 5 frames"));
    let frame = made.render(3.0, PixelDepth::Float, 0).unwrap();

    // The server goes down; a node asking for the same clip names it from the model identity
    // this machine remembers and reads it from the cache, without connecting.
    let url = pool.server.url();
    pool.server.stop();
    let (_plugin, again) = remote_node_at(&host, &url, prompt, 44);
    again.push_button("generate").unwrap();
    let status = string_param(&again, "status");
    assert!(status.starts_with("Ready: 5 frames"), "{status}");
    let shown = again.render(3.0, PixelDepth::Float, 0).unwrap();
    assert!(
        (0..shown.height())
            .all(|y| (0..shown.width()).all(|x| shown.pixel_f32(x, y) == frame.pixel_f32(x, y))),
        "the cached clip is the one made"
    );
    // Another clip needs the server, and the status says it cannot be reached.
    again.set_param("seed", 45).unwrap();
    again.push_button("generate").unwrap();
    let status = string_param(&again, "status");
    assert!(
        status.contains("could not reach the queue server"),
        "{status}"
    );
}

/// Index of `fast` in the `decoder` choice.
const FAST: i32 = 1;

#[test]
fn the_node_decodes_fast_on_the_pool_where_its_model_has_a_tiny_decoder() {
    let Some(pool) = Pool::start() else { return };
    let host = Host::new(HostProfile::natron());
    let prompt = "a lighthouse at dusk, drafted remotely";
    let (_plugin, instance) = remote_node(&host, &pool, prompt, 43);
    instance.set_param("decoder", FAST).unwrap();
    // `tiny` has no tiny decoder on the workers: said at Generate, nothing queued.
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.contains("model `tiny` of pool `default` has none"),
        "{status}"
    );

    instance.set_param("model", "tiny-draft").unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(status.starts_with("Ready: 5 frames"), "{status}");
    let mut request = Request::new(tiny_draft(), params(prompt, 43, STEPS));
    request.decoder = Decoder::Fast;
    let local = reference_service();
    let expected = local.submit(request.clone()).unwrap().wait().unwrap();
    request.decoder = Decoder::Full;
    let full = local.submit(request).unwrap().wait().unwrap();
    assert_ne!(
        expected.frames, full.frames,
        "the fast decode is another clip"
    );
    for (i, frame) in expected.frames.iter().enumerate() {
        let image = instance
            .render(1.0 + i as f64, PixelDepth::Float, 0)
            .unwrap();
        assert_shows(&image, frame);
    }
}
