//! Shared helpers: the tiny model, small requests, services on temporary caches.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use t2v_bridge::GenerationParams;
use t2v_bridge::{JobProgress, ModelSpec, ProgressObserver, Request, Service, ServiceConfig};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures")
}

pub fn tiny_model() -> PathBuf {
    fixtures().join("tiny-diffusers")
}

pub fn params(prompt: &str) -> GenerationParams {
    GenerationParams {
        prompt: prompt.into(),
        width: 64,
        height: 64,
        frames: 9,
        steps: 3,
        guidance: 5.0,
        ..Default::default()
    }
}

pub fn request(prompt: &str) -> Request {
    Request::new(ModelSpec::folder(tiny_model()), params(prompt))
}

pub fn no_cache() -> ServiceConfig {
    ServiceConfig {
        use_disk_cache: false,
        idle_unload: None,
        ..Default::default()
    }
}

pub fn with_cache(dir: &std::path::Path) -> ServiceConfig {
    ServiceConfig {
        cache_dir: Some(dir.to_path_buf()),
        idle_unload: None,
        cache_max_bytes: u64::MAX,
        ..Default::default()
    }
}

pub fn service(config: ServiceConfig) -> Service {
    Service::new(config).expect("service starts")
}

/// An observer that, the first time `when` holds, tells the test and then waits until the test
/// says go: the worker is held at a known point, deterministically.
pub struct Gate {
    pub reached: Receiver<JobProgress>,
    go: Sender<()>,
}

impl Gate {
    pub fn new(
        when: impl Fn(&JobProgress) -> bool + Send + Sync + 'static,
    ) -> (Gate, ProgressObserver) {
        let (reached_tx, reached) = channel();
        let (go, go_rx) = channel::<()>();
        let state = Mutex::new(Some((reached_tx, go_rx)));
        let observer: ProgressObserver = Arc::new(move |p: &JobProgress| {
            if !when(p) {
                return;
            }
            let taken = state.lock().unwrap().take();
            if let Some((tx, rx)) = taken {
                tx.send(p.clone()).unwrap();
                let _ = rx.recv();
            }
        });
        (Gate { reached, go }, observer)
    }

    pub fn wait_reached(&self) -> JobProgress {
        self.reached
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the worker reached the gate")
    }

    pub fn open(&self) {
        let _ = self.go.send(());
    }
}

/// Holds the worker busy until the returned gate is opened: jobs submitted meanwhile queue up.
pub fn block_worker(service: &Service) -> (Gate, t2v_bridge::JobHandle) {
    let (gate, observer) = Gate::new(|p| matches!(p.stage, t2v_bridge::JobStage::EncodingPrompt));
    let mut r = request("the blocker");
    r.params.steps = 1;
    r.params.frames = 1;
    let handle = service.submit_observed(r, Some(observer)).unwrap();
    gate.wait_reached();
    (gate, handle)
}

/// Reference frames straight from the models' pipeline, quantised as the service does.
pub fn reference_frames(request: &Request) -> Vec<Vec<u16>> {
    t2v_bridge::Frame::split(&pipeline_frames(request))
        .unwrap()
        .iter()
        .map(|f| f.rgb16().to_vec())
        .collect()
}

/// The frames `[F, H, W, 3]` f32 the models' pipeline makes for `request`.
pub fn pipeline_frames(request: &Request) -> candle_core::Tensor {
    use t2v_models::checkpoint::{load_models, ModelFiles};
    let files = ModelFiles::resolve(
        request.model.path.as_deref(),
        &request.model.overrides.to_models(),
    )
    .unwrap();
    let dtype = request.precision.dtype();
    let models = load_models(&files, dtype, &candle_core::Device::Cpu).unwrap();
    let out = t2v_models::pipeline::generate(
        &models,
        &request.params.to_models(),
        Default::default(),
        &mut t2v_models::pipeline::NoProgress,
    )
    .unwrap();
    out.frames
}

pub fn assert_frames_close(got: &[t2v_bridge::Frame], want: &[Vec<u16>]) {
    assert_eq!(got.len(), want.len(), "frame count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let worst = g
            .rgb16()
            .iter()
            .zip(w)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 2, "frame {i} differs by {worst}/65535");
    }
}
