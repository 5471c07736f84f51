//! Shutting the service down leaves no thread behind (the OFX plugin's Unload relies on it).
//! One test in its own process, so that counting the service's threads is exact.

mod common;

use common::*;
use std::time::Duration;
use t2v_bridge::JobStage;

/// Threads of this process whose name starts with `t2v-` (the worker and the cache reader).
/// A joined thread can linger in /proc for a moment while the kernel finishes its exit: count
/// again until the number is stable at what the test expects, or a generous deadline passes.
fn service_threads_settled(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = service_threads();
        if n == expected || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn service_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| t.ok())
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim().starts_with("t2v-"))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn shutdown_cancels_work_and_joins_every_thread() {
    let linux = cfg!(target_os = "linux");
    // Compute pools (rayon, gemm) start lazily and their threads inherit the name of the thread
    // that first computes: start them here, so that they don't pass for the service's threads.
    reference_frames(&request("warm up the compute pools"));
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    if linux {
        assert_eq!(
            service_threads_settled(2),
            2,
            "the worker and the cache reader"
        );
    }
    let (gate, observer) = Gate::new(|p| matches!(p.stage, JobStage::Denoising { step: 1, .. }));
    let mut r = request("shut down mid-way");
    r.params.steps = 10;
    let running = service.submit_observed(r, Some(observer)).unwrap();
    let queued = service.submit(request("queued")).unwrap();
    gate.wait_reached();
    // Shutdown flags the running job first; the worker sees it as soon as the gate opens.
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        gate.open();
    });
    service.shutdown();
    opener.join().unwrap();
    assert!(running.wait().unwrap_err().is_cancelled());
    assert!(queued.wait().unwrap_err().is_cancelled());
    assert!(
        service.submit(request("late")).is_err(),
        "a shut-down service takes no work"
    );
    assert!(
        service.cache().unwrap().entries().is_empty(),
        "cancelled work cached nothing"
    );
    if linux {
        assert_eq!(service_threads_settled(0), 0);
    }
}
