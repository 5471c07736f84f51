//! The memory budget reaches the service: the plan is reported before anything loads, and the
//! mechanisms it picks run on the CPU path with the tiny model, giving the same frames.

mod common;

use common::{no_cache, request};
use std::sync::{Arc, Mutex, Weak};
use t2v_bridge::{
    ErrorKind, JobProgress, JobStage, MemoryBudget, ProgressObserver, ResidentComponents, Service,
    ServiceConfig,
};
use t2v_models::residency::{Mechanisms, TextEncoderPlacement};

type Log = Arc<Mutex<Vec<(JobStage, ResidentComponents)>>>;

/// A service with `mechanisms` forced, and an observer that records which components are loaded
/// at every progress update.
fn observed(mechanisms: Mechanisms, low_memory: bool) -> (Arc<Service>, Log, ProgressObserver) {
    let service = Arc::new(
        Service::new(ServiceConfig {
            mechanisms: Some(mechanisms),
            low_memory,
            ..no_cache()
        })
        .unwrap(),
    );
    let log: Log = Arc::default();
    let weak: Weak<Service> = Arc::downgrade(&service);
    let sink = log.clone();
    let observer: ProgressObserver = Arc::new(move |p: &JobProgress| {
        if let Some(s) = weak.upgrade() {
            sink.lock().unwrap().push((p.stage, s.stats().resident));
        }
    });
    (service, log, observer)
}

fn frames_of(service: &Service, observer: &ProgressObserver, prompt: &str) -> Vec<Vec<u16>> {
    let clip = service
        .submit_observed(request(prompt), Some(observer.clone()))
        .unwrap()
        .wait()
        .unwrap();
    clip.frames.iter().map(|f| f.rgb16().to_vec()).collect()
}

fn denoising(stage: JobStage) -> bool {
    matches!(stage, JobStage::Denoising { .. })
}

#[test]
fn the_text_encoder_alone_is_never_beside_the_transformer_and_changes_nothing() {
    let with = Mechanisms::FASTEST;
    let alone = Mechanisms {
        text_encoder: TextEncoderPlacement::Alone,
        ..Mechanisms::FASTEST
    };
    // Kept beside the transformer: both are loaded while denoising (the test can tell).
    let (service, log, observer) = observed(with, false);
    let kept_a = frames_of(&service, &observer, "first prompt");
    let kept_b = frames_of(&service, &observer, "second prompt");
    let log_kept = log.lock().unwrap().clone();
    assert!(log_kept
        .iter()
        .any(|(s, r)| denoising(*s) && r.text_encoder && r.transformer));

    // Alone: freed before denoising, and for the second prompt (transformer loaded by the
    // first job) the transformer goes before the encoder loads.
    let (service, log, observer) = observed(alone, false);
    let alone_a = frames_of(&service, &observer, "first prompt");
    let alone_b = frames_of(&service, &observer, "second prompt");
    let log_alone = log.lock().unwrap().clone();
    assert!(
        log_alone.iter().any(|(_, r)| r.text_encoder),
        "it was loaded"
    );
    for (stage, r) in &log_alone {
        assert!(!(r.text_encoder && r.transformer), "{stage:?}: {r:?}");
        if denoising(*stage) {
            assert!(r.transformer && !r.text_encoder, "{stage:?}: {r:?}");
        }
    }
    assert_eq!(kept_a, alone_a, "identical output");
    assert_eq!(kept_b, alone_b, "identical output");
    assert_eq!(
        service.stats().embedding_misses,
        3,
        "two prompts, one negative prompt"
    );
}

#[test]
fn encoding_on_the_cpu_gives_the_same_frames() {
    let (service, _, observer) = observed(Mechanisms::FASTEST, true);
    let reference = frames_of(&service, &observer, "a cpu prompt");
    let cpu = Mechanisms {
        text_encoder: TextEncoderPlacement::Cpu,
        ..Mechanisms::FASTEST
    };
    let (service, log, observer) = observed(cpu, false);
    assert_eq!(frames_of(&service, &observer, "a cpu prompt"), reference);
    // Not kept after encoding, although low-memory mode is off.
    let log = log.lock().unwrap();
    assert!(log.iter().any(|(_, r)| r.text_encoder));
    assert!(log
        .iter()
        .filter(|(s, _)| denoising(*s))
        .all(|(_, r)| !r.text_encoder));
}

#[test]
fn the_plan_is_reported_before_loading_and_a_budget_too_small_is_refused() {
    let service = Service::new(no_cache()).unwrap();
    let mut r = request("planned");
    r.memory = MemoryBudget::Gib(8);
    let report = service.plan(&r).unwrap();
    assert_eq!(report.budget, MemoryBudget::Gib(8));
    assert_eq!(report.budget_bytes, Some(8 << 30));
    assert!(
        report.peak_line().starts_with("planned peak: "),
        "{}",
        report.text
    );
    assert!(report.peak_bytes > 0 && report.peak_bytes < 8 << 30);
    assert!(!report.tiled_decode);
    assert_eq!(service.stats().component_loads, 0, "headers only");
    // On the CPU `auto` means no limit.
    r.memory = MemoryBudget::Auto;
    assert_eq!(service.plan(&r).unwrap().budget_bytes, None);
    // The budget is not part of the clip: the same key under any budget.
    let auto_key = service.key_for(&r).unwrap();
    r.memory = MemoryBudget::Gib(12);
    assert_eq!(service.key_for(&r).unwrap(), auto_key);
    // A budget below the CUDA context and host margin fits nothing: refused at submission,
    // naming the budget.
    r.memory = MemoryBudget::Gib(1);
    let e = service.submit(r).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("1.00 GiB budget"), "{}", e.message);
    assert!(
        e.message.contains("not even one frame fits"),
        "{}",
        e.message
    );
}

#[test]
fn memory_budgets_parse_and_round_trip() {
    for (text, budget) in [
        ("auto", MemoryBudget::Auto),
        ("24", MemoryBudget::Gib(24)),
        ("8GB", MemoryBudget::Gib(8)),
        (" 12g ", MemoryBudget::Gib(12)),
    ] {
        assert_eq!(text.parse::<MemoryBudget>(), Ok(budget), "{text}");
    }
    assert!("2".parse::<MemoryBudget>().is_err());
    assert!("lots".parse::<MemoryBudget>().is_err());
    let json = serde_json::to_string(&MemoryBudget::choices()).unwrap();
    assert_eq!(json, r#"["auto",24,16,12,8]"#);
    assert_eq!(
        serde_json::from_str::<Vec<MemoryBudget>>(&json).unwrap(),
        MemoryBudget::choices()
    );
}

#[test]
fn streamed_blocks_and_chunked_feed_forward_give_the_resident_frames() {
    let (service, _, observer) = observed(Mechanisms::FASTEST, true);
    let reference = frames_of(&service, &observer, "streamed prompt");
    let streamed = Mechanisms {
        transformer: t2v_models::residency::TransformerPlacement::Streamed { slots: 2 },
        ..Mechanisms::FASTEST
    };
    let (service, _, observer) = observed(streamed, true);
    assert_eq!(
        frames_of(&service, &observer, "streamed prompt"),
        reference,
        "bit-identical on the CPU"
    );
    let chunked = Mechanisms {
        ffn_chunks: 4,
        ..streamed
    };
    let (service, _, observer) = observed(chunked, true);
    let frames = frames_of(&service, &observer, "streamed prompt");
    // Token slices of a matmul round the same on the CPU; 16-bit frames may still differ in
    // the last step if any did not.
    let worst = frames
        .iter()
        .flatten()
        .zip(reference.iter().flatten())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 2, "{worst}");
}

#[test]
fn a_tiled_decode_has_a_key_of_its_own() {
    let tiled = Mechanisms {
        decode: t2v_models::residency::DecodeMode::Tiled,
        ..Mechanisms::FASTEST
    };
    let (whole_service, _, observer) = observed(Mechanisms::FASTEST, true);
    let whole = frames_of(&whole_service, &observer, "tiled prompt");
    let (tiled_service, _, observer) = observed(tiled, true);
    let r = request("tiled prompt");
    assert!(tiled_service.plan(&r).unwrap().tiled_decode);
    assert_ne!(
        tiled_service.key_for(&r).unwrap(),
        whole_service.key_for(&r).unwrap(),
        "tiles change pixels: the clip key says so"
    );
    // 64x64 is within one 256 px tile: decoded whole, the same frames.
    assert_eq!(frames_of(&tiled_service, &observer, "tiled prompt"), whole);
}
