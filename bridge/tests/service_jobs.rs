//! Queueing, merging, cancellation, streaming, model lifecycle and failure isolation of the
//! generation service, on the tiny model.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use t2v_bridge::{ErrorKind, JobStage};

#[test]
fn identical_requests_merge_and_every_submitter_gets_the_right_frames() {
    let service = Arc::new(service(no_cache()));
    let (gate, blocker) = block_worker(&service);
    // While the worker is held, 4 threads ask for clip A and 2 for clip B.
    let submitters: Vec<_> = ["a cat", "a cat", "a dog", "a cat", "a dog", "a cat"]
        .into_iter()
        .map(|prompt| {
            let service = service.clone();
            std::thread::spawn(move || service.submit(request(prompt)).unwrap())
        })
        .collect();
    let handles: Vec<_> = submitters.into_iter().map(|t| t.join().unwrap()).collect();
    gate.open();
    blocker.wait().unwrap();
    let waiters: Vec<_> = handles
        .into_iter()
        .map(|h| std::thread::spawn(move || (h.key(), h.wait().unwrap())))
        .collect();
    let results: Vec<_> = waiters.into_iter().map(|t| t.join().unwrap()).collect();
    let stats = service.stats();
    assert_eq!(
        stats.generations,
        1 + 2,
        "the blocker, then one generation per distinct clip"
    );
    assert_eq!(stats.jobs_merged, 4);
    let cat = reference_frames(&request("a cat"));
    let dog = reference_frames(&request("a dog"));
    for (key, clip) in &results {
        assert_eq!(*key, clip.key);
        let want = if clip.metadata.prompt == "a cat" {
            &cat
        } else {
            &dog
        };
        assert_frames_close(&clip.frames, want);
    }
}

#[test]
fn cancelling_one_of_two_merged_submitters_keeps_the_job() {
    let service = service(no_cache());
    let (gate, blocker) = block_worker(&service);
    let first = service.submit(request("shared")).unwrap();
    let second = service.submit(request("shared")).unwrap();
    first.cancel();
    assert!(first.wait().unwrap_err().is_cancelled());
    gate.open();
    blocker.wait().unwrap();
    let clip = second
        .wait()
        .expect("the other submitter still gets its clip");
    assert_eq!(clip.frames.len(), 9);
    assert_eq!(service.stats().generations, 2);
}

#[test]
fn cancel_stops_within_one_denoising_step_and_caches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    let mut r = request("cancel me");
    r.params.steps = 20;
    // Hold the worker right after step 2 of 20 (index 1), cancel from here, then let it go.
    let (gate, observer) = Gate::new(|p| matches!(p.stage, JobStage::Denoising { step: 2, .. }));
    let handle = service.submit_observed(r.clone(), Some(observer)).unwrap();
    let at_cancel = gate.wait_reached();
    let watcher = service.submit(r.clone()).unwrap(); // a second submitter, cancelled too
    handle.cancel();
    watcher.cancel();
    gate.open();
    // Jobs run in order: once a probe queued behind it is done, the cancelled job has ended.
    service.submit(request("probe")).unwrap().wait().unwrap();
    let stopped_at = handle.progress();
    assert!(
        stopped_at.steps_done <= at_cancel.steps_done + 1,
        "ran {} steps after cancelling at {}",
        stopped_at.steps_done,
        at_cancel.steps_done
    );
    let stats = service.stats();
    assert_eq!(stats.generations, 1, "only the probe finished");
    let cached: Vec<_> = service
        .cache()
        .unwrap()
        .entries()
        .into_iter()
        .filter_map(|e| e.metadata)
        .collect();
    assert!(
        cached.iter().all(|m| m.prompt != "cancel me"),
        "a cancelled job left a cache entry"
    );
    // The same clip asked again later is generated afresh, not joined to the dead job.
    let again = service.submit(r).unwrap().wait().unwrap();
    assert_eq!(again.frames.len(), 9);
}

#[test]
fn cancel_during_decoding_stops_within_one_vae_chunk() {
    let service = service(no_cache());
    let mut r = request("decode then cancel");
    r.params.frames = 13; // chunks of 1, 4, 4, 4 frames
    let (gate, observer) = Gate::new(|p| matches!(p.stage, JobStage::Decoding { frame: 1, .. }));
    let handle = service.submit_observed(r, Some(observer)).unwrap();
    gate.wait_reached();
    handle.cancel();
    gate.open();
    service.submit(request("probe")).unwrap().wait().unwrap();
    let p = handle.progress();
    assert!(
        p.frames_done <= 1 + 4,
        "decoded {} frames after cancelling at frame 1",
        p.frames_done
    );
    assert_eq!(service.stats().generations, 1);
}

#[test]
fn frames_stream_in_order_before_the_job_ends() {
    let service = service(no_cache());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_in = seen.clone();
    let (gate, gate_observer) =
        Gate::new(|p| matches!(p.stage, JobStage::Decoding { frame: 1, .. }));
    let observer: t2v_bridge::ProgressObserver = Arc::new(move |p| {
        if let JobStage::Decoding { frame, .. } = p.stage {
            seen_in.lock().unwrap().push(frame);
        }
        gate_observer(p);
    });
    let handle = service
        .submit_observed(request("stream"), Some(observer))
        .unwrap();
    gate.wait_reached();
    // The worker is held after the first VAE chunk: frame 0 is readable, the job is not done.
    assert!(!handle.is_finished());
    let so_far = handle.frames_so_far();
    assert_eq!(so_far.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0]);
    assert!(handle.frame(1).is_none());
    assert!(handle.wait_timeout(Duration::ZERO).is_none());
    gate.open();
    let clip = handle.wait().unwrap();
    assert_eq!(
        clip.frames[0], so_far[0].1,
        "the streamed frame is the final frame"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "frames arrived out of order: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&9));
    let progress = handle.progress();
    assert_eq!(progress.stage, JobStage::Done);
    assert_eq!(progress.fraction, 1.0);
}

#[test]
fn progress_reports_stages_fraction_and_eta() {
    let service = service(no_cache());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log_in = log.clone();
    let observer: t2v_bridge::ProgressObserver =
        Arc::new(move |p| log_in.lock().unwrap().push(p.clone()));
    let mut r = request("progress");
    r.params.steps = 6;
    let handle = service.submit_observed(r, Some(observer)).unwrap();
    handle.wait().unwrap();
    assert_eq!(handle.progress().stage, JobStage::Done);
    let log = log.lock().unwrap();
    let stages: Vec<String> = log.iter().map(|p| p.stage.to_string()).collect();
    for expected in [
        "loading model",
        "encoding prompt",
        "denoising 3/6",
        "denoising 6/6",
        "decoding frame 9/9",
    ] {
        assert!(
            stages.iter().any(|s| s == expected),
            "no `{expected}` in {stages:?}"
        );
    }
    assert!(
        log.windows(2)
            .all(|w| w[0].fraction <= w[1].fraction + 1e-6),
        "fraction went backwards"
    );
    assert!(
        log.iter().any(|p| p.eta.is_some()),
        "no time estimate was ever given"
    );
}

#[test]
fn a_queued_job_cancelled_before_it_starts_never_runs() {
    let service = service(no_cache());
    let (gate, blocker) = block_worker(&service);
    let doomed = service.submit(request("never")).unwrap();
    drop(doomed); // dropping the only handle cancels
    gate.open();
    blocker.wait().unwrap();
    service.submit(request("probe")).unwrap().wait().unwrap();
    assert_eq!(service.stats().generations, 2);
}

/// Regression: a cancelled job kept its first frame and latents in memory until the worker got
/// to it, and the queue took any number of jobs.
#[test]
fn cancelled_jobs_free_their_inputs_and_a_full_queue_is_refused() {
    let service = service(t2v_bridge::ServiceConfig {
        max_queued_jobs: 2,
        ..no_cache()
    });
    let (gate, blocker) = block_worker(&service);
    let mut with_inputs = request("with a first frame");
    with_inputs.image = Some(t2v_bridge::Image::from_rgb8(64, 64, vec![128; 64 * 64 * 3]).unwrap());
    with_inputs.init_latents =
        Some(t2v_bridge::Latents::new(vec![1, 48, 3, 4, 4], vec![0.0; 48 * 3 * 16]).unwrap());
    let doomed = service.submit(with_inputs).unwrap();
    let waiting = service.submit(request("waiting")).unwrap();
    let stats = service.stats();
    assert_eq!(stats.queued_jobs, 2);
    assert_eq!(stats.queued_input_bytes, 64 * 64 * 3 + 48 * 3 * 16 * 4);

    let e = service.submit(request("one too many")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::QueueFull);
    assert!(
        e.message.contains("queue is full (2 clips waiting)"),
        "{}",
        e.message
    );
    // Joining a waiting job adds nothing to the queue.
    let joined = service.submit(request("waiting")).unwrap();

    doomed.cancel();
    let stats = service.stats();
    assert_eq!(
        (stats.queued_jobs, stats.queued_input_bytes),
        (1, 0),
        "the cancelled job left the queue and freed its inputs before the worker got to it"
    );
    let next = service.submit(request("room again")).unwrap();
    gate.open();
    blocker.wait().unwrap();
    waiting.wait().unwrap();
    joined.wait().unwrap();
    next.wait().unwrap();
    assert!(doomed.wait().unwrap_err().is_cancelled());
    assert_eq!(service.stats().generations, 3);
    assert_eq!(service.stats().queued_jobs, 0);
}

#[test]
fn a_panicking_job_fails_and_the_worker_lives_on() {
    let config = t2v_bridge::ServiceConfig {
        panic_on_prompt: Some("boom".into()),
        ..no_cache()
    };
    let service = service(config);
    let err = service.submit(request("boom")).unwrap().wait().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Failed);
    assert!(err.message.contains("internal error"), "{}", err.message);
    assert_eq!(
        service
            .submit(request("fine"))
            .unwrap()
            .wait()
            .unwrap()
            .frames
            .len(),
        9
    );
    assert_eq!(service.stats().panics, 1);
}

#[test]
fn models_stay_loaded_reload_on_change_and_unload_on_request() {
    let service = service(t2v_bridge::ServiceConfig {
        low_memory: false,
        ..no_cache()
    });
    service.submit(request("one")).unwrap().wait().unwrap();
    service.submit(request("two")).unwrap().wait().unwrap();
    assert_eq!(service.stats().model_loads, 1, "kept loaded between jobs");
    assert_eq!(service.stats().component_loads, 3);
    // Another model (the single-file layout of the same tiny weights) reloads.
    let mut other = request("one");
    other.model = t2v_bridge::ModelSpec::folder(fixtures().join("tiny-original"));
    service.submit(other).unwrap().wait().unwrap();
    assert_eq!(service.stats().model_loads, 2);
    service.unload();
    service.submit(request("three")).unwrap().wait().unwrap();
    let stats = service.stats();
    assert_eq!(stats.model_loads, 3, "the purge unloaded");
    assert_eq!(stats.unloads, 2);
}

#[test]
fn idle_timeout_unloads() {
    let config = t2v_bridge::ServiceConfig {
        idle_unload: Some(Duration::ZERO),
        ..no_cache()
    };
    let service = service(config);
    service.submit(request("idle")).unwrap().wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while service.stats().unloads == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(service.stats().unloads, 1);
}

#[test]
fn prompt_embeddings_are_reused_and_low_memory_frees_the_text_encoder() {
    let config = no_cache();
    assert!(config.low_memory, "freeing the text encoder is the default");
    let service = service(config);
    let mut r = request("reused prompt");
    service.submit(r.clone()).unwrap().wait().unwrap();
    let after_first = service.stats();
    assert_eq!(
        after_first.embedding_misses, 2,
        "prompt and negative prompt"
    );
    r.params.seed = 7;
    service.submit(r.clone()).unwrap().wait().unwrap();
    let after_second = service.stats();
    assert_eq!(after_second.embedding_hits, 2);
    assert_eq!(
        after_second.component_loads, after_first.component_loads,
        "cached embeddings need no text encoder"
    );
    r.params.prompt = "a new prompt".into();
    service.submit(r).unwrap().wait().unwrap();
    assert_eq!(
        service.stats().component_loads,
        after_first.component_loads + 1,
        "low-memory mode freed the text encoder"
    );
    // Reloading the freed text encoder (here, and between encoding and the transformer of the
    // first job) is a component load, not another model load.
    assert_eq!(service.stats().model_loads, 1);
}
