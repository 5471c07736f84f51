//! How long cancel, unload and shutdown take while a transformer step runs. These tests time
//! the worker, so they live in a test binary of their own: cargo runs test binaries one after
//! another, and no other test competes for the CPU while they measure.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use t2v_bridge::{ErrorKind, JobStage};

/// The long-step tests time the worker: they run one at a time.
static LONG_STEPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A job whose steps take a second or two with the tiny model, and the time one step took, once
/// its second step is under way.
fn long_step_job(service: &t2v_bridge::Service) -> (t2v_bridge::JobHandle, Duration) {
    use std::sync::Mutex;
    use std::time::Instant;
    let mut r = request("a long step");
    // Enough tokens that one step of the tiny model takes a second or two on a CPU.
    (
        r.params.width,
        r.params.height,
        r.params.frames,
        r.params.steps,
    ) = (384, 384, 81, 3);
    let seen: Arc<Mutex<Vec<(Instant, usize)>>> = Arc::default();
    let record = seen.clone();
    let observer: t2v_bridge::ProgressObserver = Arc::new(move |p: &t2v_bridge::JobProgress| {
        if let JobStage::Denoising { .. } = p.stage {
            record.lock().unwrap().push((Instant::now(), p.steps_done));
        }
    });
    let handle = service.submit_observed(r, Some(observer)).unwrap();
    let at = |step: usize| loop {
        if let Some(&(t, _)) = seen.lock().unwrap().iter().find(|(_, s)| *s == step) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let step = at(1) - at(0);
    // Early in step 2: stopping at its end would take most of a step.
    std::thread::sleep(step / 10);
    (handle, step)
}

/// Regression: the service checked for cancellation only after each step, so cancelling (or
/// unloading the plugin, which shuts the service down) waited for the rest of a step: tens of
/// seconds on the real model. Now the transformer asks before every block.
#[test]
fn cancel_mid_step_stops_within_one_block() {
    let _one_at_a_time = LONG_STEPS.lock().unwrap_or_else(|p| p.into_inner());
    let service = service(no_cache());
    let (handle, step) = long_step_job(&service);
    let cancelled_at = std::time::Instant::now();
    handle.cancel();
    // The worker runs jobs in order: once a small probe is done, the cancelled job has ended.
    let mut probe = request("probe");
    (probe.params.steps, probe.params.frames) = (1, 1);
    service.submit(probe).unwrap().wait().unwrap();
    let latency = cancelled_at.elapsed();
    println!("one step: {step:?}; cancel to worker free: {latency:?}");
    assert_eq!(handle.wait().unwrap_err().kind, ErrorKind::Cancelled);
    assert_eq!(handle.progress().steps_done, 1, "step 2 never finished");
    // Stopping at the end of the step would take 9/10 of a step; one block is a quarter of one
    // (other tests share the CPU, hence the margin).
    assert!(
        latency < step * 3 / 4,
        "took {latency:?} to stop; a step takes {step:?} (2 blocks x 2 passes)"
    );
}

/// The host's purge (unload) and the plugin's unload (shutdown) while a step runs: the first
/// returns at once (the models go once the worker is free), the second within one block.
#[test]
fn unload_and_shutdown_mid_step_return_within_one_block() {
    let _one_at_a_time = LONG_STEPS.lock().unwrap_or_else(|p| p.into_inner());
    let service = service(no_cache());
    let (handle, step) = long_step_job(&service);
    let started = std::time::Instant::now();
    service.unload();
    let unload = started.elapsed();
    service.shutdown();
    let shutdown = started.elapsed();
    println!("one step: {step:?}; unload returned in {unload:?}, shutdown in {shutdown:?}");
    assert!(unload < Duration::from_millis(500), "{unload:?}");
    assert!(
        shutdown < step * 3 / 4,
        "shutdown took {shutdown:?}; a step takes {step:?}"
    );
    assert_eq!(handle.wait().unwrap_err().kind, ErrorKind::Cancelled);
    assert_eq!(handle.progress().steps_done, 1);
}
