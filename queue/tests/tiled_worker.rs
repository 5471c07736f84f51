//! A worker whose memory plan tiles the VAE decode (a small GPU; forced here through
//! `ServiceConfig::mechanisms`) serves the jobs clients send it, against a real server (see
//! `t2v_queue::local_server`; under CI a missing server fails instead of skipping).
//!
//! Regression: the worker checked a job's key against its own planned key, which a tiled decode
//! keys apart, so every job on such a worker was refused as "the clients and worker disagree".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t2v_bridge::{
    ClipCache, DeviceChoice, GenerationParams, ModelSpec, Precision, Request, Service,
    ServiceConfig,
};
use t2v_models::residency::{DecodeMode, Mechanisms};
use t2v_queue::local_server::LocalServer;
use t2v_queue::{QueueClient, QueueConfig, QueueWorker, RemoteRequest};

fn tiny_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/tiny-diffusers")
}

fn tiled_service(cache: Option<&std::path::Path>) -> Service {
    Service::new(ServiceConfig {
        device: DeviceChoice::Cpu,
        use_disk_cache: cache.is_some(),
        cache_dir: cache.map(PathBuf::from),
        mechanisms: Some(Mechanisms {
            decode: DecodeMode::Tiled,
            ..Mechanisms::FASTEST
        }),
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_worker_that_tiles_its_decode_serves_the_clients_key() {
    let Some(server) = LocalServer::for_test() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let models = BTreeMap::from([("tiny".to_string(), ModelSpec::folder(tiny_model()))]);
    let worker = QueueWorker::start(
        QueueConfig::new(server.url()),
        tiled_service(Some(&cache)),
        models,
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let serving = std::thread::spawn(move || worker.serve(&flag));

    let client = QueueClient::connect(QueueConfig::new(server.url())).unwrap();
    let params = GenerationParams {
        prompt: "a red ball, decoded in tiles".into(),
        width: 64,
        height: 64,
        frames: 5,
        steps: 2,
        seed: 3,
        ..Default::default()
    };
    let request = RemoteRequest {
        model_id: "tiny".into(),
        params: params.clone(),
        precision: Precision::Auto,
        image: None,
        decoder: Default::default(),
    };
    let job = client.submit(&request).unwrap();
    let clip = job
        .wait_timeout(Duration::from_secs(60))
        .expect("the job ends")
        .expect("the worker makes the clip");

    // The frames a local service with the same plan makes.
    let local = tiled_service(None);
    let mut here = Request::new(ModelSpec::folder(tiny_model()), params);
    here.precision = Precision::F32;
    let expected = local.submit(here.clone()).unwrap().wait().unwrap();
    assert_eq!(clip.frames, expected.frames);
    // The job is known by the request's key; the shared cache holds the tiled clip under the
    // tiled decode's own key, so no whole-decode request is ever served tiled frames from it.
    let tiled_key = local.key_for(&here).unwrap();
    assert_eq!(job.key(), local.request_key(&here).unwrap());
    assert_ne!(job.key(), tiled_key);
    let shared = ClipCache::open(&cache, u64::MAX).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shared.contains(&tiled_key) {
        assert!(
            Instant::now() < deadline,
            "the tiled clip is not in the cache"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!shared.contains(&job.key()));

    stop.store(true, Ordering::SeqCst);
    serving.join().unwrap().unwrap();
}
