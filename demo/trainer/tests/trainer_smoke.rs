//! The trainer end to end on tiny data: a few optimiser steps of each stage, finite and
//! decreasing losses, and a written checkpoint that the real loader loads and generates with.

use candle_core::{DType, Device};
use t2v_demo_trainer::configs::Preset;
use t2v_demo_trainer::train::{run, single_threaded_candle, Log, RunPaths, Stage};
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{generate, NoProgress, RunInputs};

// Candle single-threaded, as the trainer runs it.
t2v_support::before_main!(SINGLE_THREADED_CANDLE, single_threaded_candle);

#[test]
fn smoke_run_trains_exports_and_generates() {
    let dir = tempfile::tempdir().unwrap();
    let paths = RunPaths {
        work: dir.path().join("work"),
        out: dir.path().join("model"),
        vae_from_phase: 0,
        dit_resume: false,
    };
    let preset = Preset::smoke();
    let stages = [Stage::Vae, Stage::Encode, Stage::Dit, Stage::Export];
    let report = run(&preset, &paths, &stages, 2, &Log::new()).unwrap();

    for (name, losses) in [("vae", &report.vae_losses), ("dit", &report.dit_losses)] {
        assert_eq!(
            losses.len(),
            if name == "vae" {
                preset.vae[0].steps
            } else {
                preset.dit.steps
            }
        );
        assert!(losses.iter().all(|l| l.is_finite()), "{name}: {losses:?}");
        // The smoke preset repeats one batch, so the loss must go down.
        assert!(
            losses.last().unwrap() < losses.first().unwrap(),
            "{name} did not decrease: {losses:?}"
        );
    }

    // The encode stage saves the objects' coverage of the latent cells for the dit stage.
    let mut encoded =
        candle_core::safetensors::load(paths.work.join("latents.safetensors"), &Device::Cpu)
            .unwrap();
    let latents = encoded.remove("latents").unwrap();
    let saved = encoded
        .remove(t2v_demo_trainer::train::COVERAGE_TENSOR)
        .unwrap();
    let computed = t2v_demo_trainer::train::dataset_coverage(
        &preset,
        &t2v_demo_trainer::train::dataset_scenes(&preset),
        &latents,
        1,
    )
    .unwrap();
    let (saved, computed): (Vec<f32>, Vec<f32>) = (
        saved.flatten_all().unwrap().to_vec1().unwrap(),
        computed.flatten_all().unwrap().to_vec1().unwrap(),
    );
    assert_eq!(saved, computed);
    assert!(saved.iter().any(|&c| c > 0.0));

    // One seed, one model: a second run writes the same bytes.
    let again = RunPaths {
        work: dir.path().join("work-again"),
        out: dir.path().join("model-again"),
        ..paths.clone()
    };
    run(&preset, &again, &stages, 2, &Log::new()).unwrap();
    for file in [
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    ] {
        let read = |root: &std::path::Path| std::fs::read(root.join(file)).unwrap();
        assert!(
            read(&paths.out) == read(&again.out),
            "{file} differs between two runs with one seed"
        );
    }

    let files = ModelFiles::resolve(Some(&paths.out), &Overrides::default()).unwrap();
    let models = load_models(&files, DType::F32, &Device::Cpu).unwrap();
    let settings = t2v_demo::shipped::settings_in(&paths.out).unwrap();
    assert_eq!(settings, preset.settings);
    let params = t2v_demo_trainer::eval::params(
        &settings,
        "A red circle moves left on a blue background.",
        3,
    );
    let generated = generate(&models, &params, RunInputs::default(), &mut NoProgress).unwrap();
    assert_eq!(
        generated.frames.dims(),
        &[settings.frames, settings.height, settings.width, 3]
    );
    let values: Vec<f32> = generated.frames.flatten_all().unwrap().to_vec1().unwrap();
    assert!(values
        .iter()
        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
}
