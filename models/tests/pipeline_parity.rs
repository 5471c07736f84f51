//! The whole generation against diffusers' `WanPipeline` / `WanImageToVideoPipeline`
//! (`expand_timesteps=True`) on the tiny checkpoint: prompt embeddings, timesteps, every step's
//! latents, the final latents, the image condition and the decoded frames.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{self, GenerationParams, Models, Progress, RunInputs, Stage};
use t2v_models::sampling::SamplerKind;

struct Recorder {
    steps: Vec<Tensor>,
    stages: Vec<Stage>,
    first_frames: Vec<usize>,
}

impl Progress for Recorder {
    fn stage(&mut self, stage: Stage) -> t2v_models::Result<()> {
        self.stages.push(stage);
        Ok(())
    }
    fn step(&mut self, _i: usize, _n: usize, latents: &Tensor) -> t2v_models::Result<()> {
        self.steps.push(latents.clone());
        Ok(())
    }
    fn frames(&mut self, first: usize, _frames: &Tensor) -> t2v_models::Result<()> {
        self.first_frames.push(first);
        Ok(())
    }
}

fn models(root: &std::path::Path) -> Models {
    let files = ModelFiles::resolve(Some(root), &Overrides::default()).expect("resolve");
    load_models(&files, DType::F32, &Device::Cpu).expect("load models")
}

fn params_of(meta: &serde_json::Value) -> GenerationParams {
    GenerationParams {
        prompt: meta["prompt"].as_str().unwrap().into(),
        negative_prompt: Some(meta["negative_prompt"].as_str().unwrap().into()),
        width: meta["width"].as_u64().unwrap() as usize,
        height: meta["height"].as_u64().unwrap() as usize,
        frames: meta["num_frames"].as_u64().unwrap() as usize,
        steps: meta["num_inference_steps"].as_u64().unwrap() as usize,
        guidance: meta["guidance_scale"].as_f64().unwrap(),
        shift: meta["shift"].as_f64().unwrap(),
        sampler: meta["scheduler"]
            .as_str()
            .unwrap()
            .parse::<SamplerKind>()
            .unwrap(),
        seed: 0,
        step_cache: Default::default(),
        step_cache_method: Default::default(),
    }
}

fn check_case(models: &Models, case: &str, tol: f32) {
    let meta = json(&format!("pipeline_{case}.json"));
    let fx = load(&format!("pipeline_{case}.safetensors"));
    let params = params_of(&meta);

    // Prompt embeddings.
    let text = pipeline::encode_text(
        &models.tokenizer,
        &models.text_encoder,
        &params,
        &Device::Cpu,
    )
    .unwrap();
    assert_close(
        &format!("{case} prompt_embeds"),
        &text.prompt,
        &fx["prompt_embeds"],
        tol,
    );
    match (&text.negative, fx.get("negative_prompt_embeds")) {
        (Some(n), Some(r)) => assert_close(&format!("{case} negative_prompt_embeds"), n, r, tol),
        (None, None) => {}
        _ => panic!("{case}: guidance branches differ from the reference"),
    }

    // Timesteps.
    let sampler = params
        .sampler
        .build(params.steps, params.shift, params.seed);
    let want: Vec<f32> = fx["timesteps"].to_vec1().unwrap();
    for (a, b) in sampler.timesteps().iter().zip(&want) {
        assert!((*a as f32 - b).abs() <= 1e-3, "{case}: timestep {a} vs {b}");
    }

    // The image condition.
    let image = meta["image"]
        .as_str()
        .map(|name| image::open(fixtures().join("parity").join(name)).expect("png"));
    if let Some(image) = &image {
        let cond = pipeline::encode_first_frame(&models.vae, image, &params, &Device::Cpu).unwrap();
        assert_close(
            &format!("{case} condition_latents"),
            &cond,
            &fx["condition_latents"],
            tol,
        );
    }

    let mut rec = Recorder {
        steps: vec![],
        stages: vec![],
        first_frames: vec![],
    };
    let run = RunInputs {
        image,
        init_latents: Some(fx["init_latents"].clone()),
        ..Default::default()
    };
    let out = pipeline::generate(models, &params, run, &mut rec).unwrap();
    for (i, latents) in rec.steps.iter().enumerate() {
        assert_close(
            &format!("{case} step{i}.latents"),
            latents,
            &fx[&format!("step{i}.latents")],
            tol,
        );
    }
    assert_eq!(rec.steps.len(), params.steps);
    assert_close(
        &format!("{case} final_latents"),
        &out.latents,
        &fx["final_latents"],
        tol,
    );
    assert_close(&format!("{case} frames"), &out.frames, &fx["frames"], tol);
    assert_eq!(rec.stages.last(), Some(&Stage::Decoding));
    let expected_starts: Vec<usize> = (0..params.latent_frames())
        .map(|i| if i == 0 { 0 } else { 1 + 4 * (i - 1) })
        .collect();
    assert_eq!(
        rec.first_frames, expected_starts,
        "{case}: frames stream one chunk per latent frame"
    );
}

#[test]
fn text_to_video_with_guidance_unipc() {
    check_case(&models(&tiny_diffusers()), "t2v_cfg_unipc", 1e-4);
}

#[test]
fn text_to_video_without_guidance_euler_non_square() {
    check_case(&models(&tiny_diffusers()), "t2v_nocfg_euler", 1e-4);
}

#[test]
fn text_to_video_euler_with_shift() {
    check_case(&models(&tiny_diffusers()), "t2v_cfg_euler_shift", 1e-4);
}

#[test]
fn image_to_video_with_guidance_unipc() {
    check_case(&models(&tiny_diffusers()), "i2v_cfg_unipc", 1e-4);
}

#[test]
fn original_layout_single_files_give_the_same_clip() {
    // fp16 transformer, bf16 umT5 and original-named VAE, computed in f32: the files hold the
    // reference's exact (fp16/bf16-representable) weights.
    check_case(&models(&tiny_original()), "t2v_cfg_unipc", 1e-4);
}

#[test]
fn same_seed_same_clip_other_seed_other_clip() {
    let models = models(&tiny_diffusers());
    let params = small_request();
    let a = pipeline::generate(
        &models,
        &params,
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    let b = pipeline::generate(
        &models,
        &params,
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    assert_eq!(max_abs_diff(&a.frames, &b.frames), 0.0);
    let other = GenerationParams { seed: 43, ..params };
    let c = pipeline::generate(
        &models,
        &other,
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    assert!(max_abs_diff(&a.frames, &c.frames) > 1e-3);
    assert_eq!(a.frames.dims(), &[5, 32, 64, 3]);
}

#[test]
fn reduced_precision_runs_and_stays_close_to_f32() {
    let files = ModelFiles::resolve(Some(&tiny_diffusers()), &Overrides::default()).unwrap();
    let params = small_request();
    let reference = {
        let m = load_models(&files, DType::F32, &Device::Cpu).unwrap();
        pipeline::generate(&m, &params, RunInputs::default(), &mut pipeline::NoProgress)
            .unwrap()
            .frames
    };
    // Measured on the tiny model: bf16 2.2e-3, f16 4.4e-4 mean absolute difference in [0, 1] pixels.
    for (dtype, mean_tol) in [(DType::BF16, 0.03f32), (DType::F16, 0.01)] {
        let m = load_models(&files, dtype, &Device::Cpu).unwrap();
        let frames =
            pipeline::generate(&m, &params, RunInputs::default(), &mut pipeline::NoProgress)
                .unwrap()
                .frames;
        let mean = mean_abs_diff(&frames, &reference);
        println!("{dtype:?}: mean |diff| vs f32 = {mean:.2e}");
        assert!(mean < mean_tol, "{dtype:?}: mean |diff| {mean}");
    }
}

#[test]
fn cancelling_from_progress_stops_at_the_next_step() {
    struct CancelAfter(usize, usize);
    impl Progress for CancelAfter {
        fn step(&mut self, i: usize, _n: usize, _l: &Tensor) -> t2v_models::Result<()> {
            self.1 += 1;
            if i + 1 >= self.0 {
                Err(t2v_models::Error::Cancelled)
            } else {
                Ok(())
            }
        }
    }
    let models = models(&tiny_diffusers());
    let params = GenerationParams {
        steps: 10,
        ..small_request()
    };
    let mut p = CancelAfter(2, 0);
    let r = pipeline::generate(&models, &params, RunInputs::default(), &mut p);
    assert!(matches!(r, Err(t2v_models::Error::Cancelled)));
    assert_eq!(p.1, 2, "no step ran after the cancel");
}
