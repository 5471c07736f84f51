//! Few-step DMD sampling against FastVideo's own `DmdDenoisingStage` (its code imported from a
//! checkout by `fixtures/make_dmd.py`, in f32 on the CPU) on the tiny transformer: the looked-up
//! sigmas, every step's latents and the final latents, with FastVideo's initial latents and
//! re-noising draws replayed from the fixture. Also: a folder laid out as the FastWan2.2
//! release (diffusers, single-file transformer, `WanDMDPipeline`) loads through the diffusers
//! layout and declares DMD.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::checkpoint::{declared_sampling, load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{self, DenoiseInputs, GenerationParams, Progress, RunInputs};
use t2v_models::sampling::{dmd, Dmd, Sampler, SamplerKind};

struct Steps(Vec<Tensor>);

impl Progress for Steps {
    fn step(&mut self, _i: usize, _n: usize, latents: &Tensor) -> t2v_models::Result<()> {
        self.0.push(latents.clone());
        Ok(())
    }
}

fn load_tiny(root: &std::path::Path) -> pipeline::Models {
    let files = ModelFiles::resolve(Some(root), &Overrides::default()).expect("resolve");
    load_models(&files, DType::F32, &Device::Cpu).expect("load models")
}

#[test]
fn dmd_matches_fastvideo_on_the_tiny_transformer() {
    let meta = json("dmd.json");
    let fx = load("dmd.safetensors");
    let steps = meta["timesteps"].as_array().unwrap().len();
    let shift = meta["shift"].as_f64().unwrap();
    assert_eq!(shift, dmd::DMD_SHIFT);
    let renoise: Vec<Tensor> = (0..steps - 1)
        .map(|i| fx[&format!("renoise.{i}")].clone())
        .collect();
    let mut sampler = Dmd::with_noises(steps, shift, renoise);
    let want_t: Vec<f64> = meta["timesteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    assert_eq!(sampler.timesteps(), want_t.as_slice());
    for (i, want) in meta["sigmas"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            sampler.sigmas()[i] as f64,
            want.as_f64().unwrap(),
            "sigma {i}"
        );
    }

    let models = load_tiny(&tiny_diffusers());
    let prompt = models
        .transformer
        .prepare_context(&fx["prompt_embeds"])
        .unwrap();
    let inputs = DenoiseInputs {
        latents: fx["init_latents"].clone(),
        prompt: &prompt,
        negative: None,
        guidance: 1.0,
        first_frame: None,
    };
    let mut recorded = Steps(vec![]);
    let out = pipeline::denoise(&models.transformer, &mut sampler, inputs, &mut recorded).unwrap();
    assert_eq!(recorded.0.len(), steps);
    for (i, latents) in recorded.0.iter().enumerate() {
        assert_close(
            &format!("dmd step{i}.latents"),
            latents,
            &fx[&format!("step{i}.latents")],
            1e-4,
        );
    }
    assert_close("dmd final_latents", &out, &fx["final_latents"], 1e-4);
}

/// Copies the tiny diffusers model into `dir` as FastWan2.2 ships: `model_index.json` naming
/// `WanDMDPipeline`, the transformer in one `diffusion_pytorch_model.safetensors`.
fn fastwan_like_folder(dir: &std::path::Path) {
    let src = tiny_diffusers();
    for part in ["text_encoder", "tokenizer", "vae", "scheduler"] {
        std::fs::create_dir_all(dir.join(part)).unwrap();
        for entry in std::fs::read_dir(src.join(part)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(part).join(entry.file_name())).unwrap();
        }
    }
    let transformer = dir.join("transformer");
    std::fs::create_dir_all(&transformer).unwrap();
    std::fs::copy(
        src.join("transformer/config.json"),
        transformer.join("config.json"),
    )
    .unwrap();
    let mut all = std::collections::HashMap::new();
    for entry in std::fs::read_dir(src.join("transformer")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            all.extend(candle_core::safetensors::load(&path, &Device::Cpu).unwrap());
        }
    }
    candle_core::safetensors::save(
        &all,
        transformer.join("diffusion_pytorch_model.safetensors"),
    )
    .unwrap();
    let index = std::fs::read_to_string(src.join("model_index.json"))
        .unwrap()
        .replace("\"WanPipeline\"", "\"WanDMDPipeline\"");
    assert!(index.contains("WanDMDPipeline"));
    std::fs::write(dir.join("model_index.json"), index).unwrap();
}

#[test]
fn a_fastwan_folder_loads_through_the_diffusers_layout_and_runs_dmd() {
    let dir = std::env::temp_dir().join(format!("t2v-fastwan-like-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fastwan_like_folder(&dir);
    let declared = declared_sampling(&dir).expect("the folder declares its sampling");
    assert_eq!(declared.sampler, SamplerKind::Dmd);
    assert_eq!(declared.steps, 3);
    assert!(declared.guidance <= 1.0, "no guidance");

    let fastwan = load_tiny(&dir);
    let plain = load_tiny(&tiny_diffusers());
    let params = GenerationParams {
        prompt: "a red circle moves to the right".into(),
        negative_prompt: Some(String::new()),
        width: 64,
        height: 32,
        frames: 5,
        steps: declared.steps,
        guidance: declared.guidance,
        shift: declared.shift,
        sampler: declared.sampler,
        seed: 3,
        step_cache: Default::default(),
        step_cache_method: Default::default(),
    };
    let run = |models| {
        pipeline::generate(
            models,
            &params,
            RunInputs::default(),
            &mut pipeline::NoProgress,
        )
        .unwrap()
    };
    let (a, b) = (run(&fastwan), run(&plain));
    assert_eq!(
        max_abs_diff(&a.frames, &b.frames),
        0.0,
        "one file or shards: the same weights"
    );
    assert!(max_abs(&a.latents) > 0.0);
    // The seed's stream drives the re-noising: another seed, another clip.
    let other = pipeline::generate(
        &fastwan,
        &GenerationParams {
            seed: 4,
            ..params.clone()
        },
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    assert!(max_abs_diff(&a.frames, &other.frames) > 0.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn seeded_dmd_replays_from_saved_initial_noise() {
    // `--init-latents` with the seed's own noise gives the same clip: the re-noising stream
    // continues after the initial draw either way.
    let models = load_tiny(&tiny_diffusers());
    let params = GenerationParams {
        prompt: "a blue square".into(),
        negative_prompt: Some(String::new()),
        width: 32,
        height: 32,
        frames: 5,
        steps: 3,
        guidance: 1.0,
        shift: dmd::DMD_SHIFT,
        sampler: SamplerKind::Dmd,
        seed: 11,
        step_cache: Default::default(),
        step_cache_method: Default::default(),
    };
    let seeded = pipeline::generate(
        &models,
        &params,
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    let noise = pipeline::noise::seeded_noise(11, &[1, 48, 2, 2, 2], &Device::Cpu).unwrap();
    let replay = pipeline::generate(
        &models,
        &params,
        RunInputs {
            init_latents: Some(noise),
            ..Default::default()
        },
        &mut pipeline::NoProgress,
    )
    .unwrap();
    assert_eq!(max_abs_diff(&seeded.latents, &replay.latents), 0.0);
}
