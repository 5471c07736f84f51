//! The step cache (MagCache) on the tiny model: off is the plain denoising loop bit for bit;
//! on, the evaluations skipped are exactly the ones MagCache's rule predicts from the
//! calibrated ratios, and their blocks really don't run.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::dit::TokenTimesteps;
use t2v_models::pipeline::step_cache::{MagCacheSettings, MagRatios, StepCacheChoice};
use t2v_models::pipeline::{self, GenerationParams, Models, Progress, RunInputs, Stage};
use t2v_models::sampling::SamplerKind;

fn tiny() -> Models {
    let files = ModelFiles::resolve(Some(&tiny_diffusers()), &Overrides::default()).unwrap();
    load_models(&files, DType::F32, &Device::Cpu).unwrap()
}

fn params(step_cache: StepCacheChoice) -> GenerationParams {
    GenerationParams {
        prompt: "a red circle moves to the right".into(),
        negative_prompt: Some("blurry".into()),
        width: 64,
        height: 32,
        frames: 5,
        steps: 20,
        guidance: 4.0,
        shift: 5.0,
        sampler: SamplerKind::UniPc,
        seed: 9,
        step_cache,
    }
}

/// Counts the block boundaries the transformer asks about while denoising: every evaluation
/// that runs asks once per block, a skipped one once.
#[derive(Default)]
struct BlockCount {
    denoising: bool,
    asked: std::cell::Cell<usize>,
}

impl Progress for BlockCount {
    fn cancelled(&self) -> bool {
        if self.denoising {
            self.asked.set(self.asked.get() + 1);
        }
        false
    }
    fn stage(&mut self, stage: Stage) -> t2v_models::Result<()> {
        self.denoising = stage == Stage::Denoising;
        Ok(())
    }
}

#[test]
fn off_is_the_plain_loop_bit_for_bit() {
    let models = tiny();
    let p = params(StepCacheChoice::Off);
    let out =
        pipeline::generate(&models, &p, RunInputs::default(), &mut pipeline::NoProgress).unwrap();

    // The loop as it was before the step cache: one forward per branch, guidance, a step.
    let device = Device::Cpu;
    let text = pipeline::encode_text(&models.tokenizer, &models.text_encoder, &p, &device).unwrap();
    let tr = &models.transformer;
    let cond_ctx = tr.prepare_context(&text.prompt).unwrap();
    let uncond_ctx = tr.prepare_context(text.negative.as_ref().unwrap()).unwrap();
    let shape = pipeline::latent_shape(&p, tr.config().in_channels, 16);
    let mut latents = pipeline::noise::seeded_noise(p.seed, &shape, &device).unwrap();
    let (gf, gh, gw) = tr.token_grid(shape[2], shape[3], shape[4]);
    let mut sampler = p.sampler.build(p.steps, p.shift, p.seed);
    for t in sampler.timesteps().to_vec() {
        let ts = TokenTimesteps::uniform(gf * gh * gw, t);
        let cond = tr.forward(&latents, &ts, &cond_ctx).unwrap();
        let uncond = tr.forward(&latents, &ts, &uncond_ctx).unwrap();
        let flow = (&uncond + ((cond - &uncond).unwrap() * p.guidance).unwrap()).unwrap();
        latents = sampler.step(&flow, &latents).unwrap();
    }
    assert_eq!(max_abs_diff(&out.latents, &latents), 0.0);
}

/// MagCache's rule, written out again from `magcache_forward` (independently of
/// `MagCache`): which (step, branch) evaluations it skips, given the ratios and that every
/// branch has a cached residual once it has run.
fn predicted_skips(
    s: MagCacheSettings,
    ratios: &MagRatios,
    steps: usize,
    branches: usize,
) -> Vec<(usize, usize)> {
    let mut acc_ratio = [1.0f64; 2];
    let mut acc_steps = [0usize; 2];
    let mut acc_err = [0.0f64; 2];
    let mut has_residual = [false; 2];
    let mut skips = Vec::new();
    let retained = ((steps * branches) as f64 * s.retention) as usize;
    for step in 0..steps {
        for b in 0..branches {
            let cnt = step * branches + b;
            let mut skip = false;
            if cnt >= retained {
                let r = if b == 0 {
                    ratios.cond[step]
                } else {
                    ratios.uncond[step]
                };
                acc_ratio[b] *= r;
                acc_steps[b] += 1;
                acc_err[b] += (1.0 - acc_ratio[b]).abs();
                if acc_err[b] < s.threshold && acc_steps[b] <= s.max_skips && has_residual[b] {
                    skip = true;
                } else {
                    acc_err[b] = 0.0;
                    acc_steps[b] = 0;
                    acc_ratio[b] = 1.0;
                }
            }
            if skip {
                skips.push((step, b));
            }
            has_residual[b] = true;
        }
    }
    skips
}

#[test]
fn the_skipped_evaluations_are_the_ones_magcache_predicts() {
    let models = tiny();
    let layers = models.transformer.config().num_layers;
    let dir = std::env::temp_dir().join(format!("t2v-step-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Calibrate on the run itself, as `t2v calibrate` does.
    let base = params(StepCacheChoice::Off);
    let ratios = pipeline::calibrate(
        &models,
        &base,
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    assert_eq!((ratios.cond.len(), ratios.uncond.len()), (20, 20));
    assert_eq!((ratios.cond[0], ratios.uncond[0]), (1.0, 1.0));
    assert!(ratios.cond[1..].iter().all(|r| r.is_finite() && *r > 0.0));
    ratios
        .write(&dir.join(pipeline::step_cache::CALIBRATION_FILE))
        .unwrap();

    let mut full = BlockCount::default();
    let reference = pipeline::generate(&models, &base, RunInputs::default(), &mut full).unwrap();
    assert_eq!(
        full.asked.get(),
        20 * 2 * layers,
        "every evaluation runs every block"
    );

    for choice in [StepCacheChoice::Fast, StepCacheChoice::Faster] {
        let settings = choice.settings().unwrap();
        let predicted = predicted_skips(settings, &ratios, 20, 2);
        let mut count = BlockCount::default();
        let run = RunInputs {
            model_dir: Some(dir.clone()),
            ..Default::default()
        };
        let cached = pipeline::generate(&models, &params(choice), run, &mut count).unwrap();
        let skipped = predicted.len();
        let ran = 20 * 2 - skipped;
        assert_eq!(
            count.asked.get(),
            ran * layers + skipped,
            "{choice}: {skipped} evaluations predicted skipped ({predicted:?})"
        );
        assert!(skipped > 0, "{choice}: the tiny model's ratios allow skips");
        let diff = max_abs_diff(&cached.frames, &reference.frames);
        assert!(diff > 0.0, "{choice}: skipping changes the clip");
        println!("{choice}: skipped {skipped}/40 evaluations; frames differ by at most {diff:.4}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_calibration_a_small_model_says_how_to_make_one() {
    let models = tiny();
    let e = pipeline::generate(
        &models,
        &params(StepCacheChoice::Fast),
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .err()
    .expect("no calibration for the tiny model")
    .to_string();
    assert!(e.contains("t2v calibrate"), "{e}");
}

#[test]
fn a_skipped_evaluation_adds_the_cached_residual() {
    // With the residual of the same input, a skipped evaluation gives the flow of a full one.
    let models = tiny();
    let tr = &models.transformer;
    let fx = load("dmd.safetensors");
    let ctx = tr.prepare_context(&fx["prompt_embeds"]).unwrap();
    let latents: Tensor = fx["init_latents"].clone();
    let (gf, gh, gw) = tr.token_grid(3, 4, 6);
    let ts = TokenTimesteps::uniform(gf * gh * gw, 500.0);
    let never = || false;
    use t2v_models::dit::BlockPass;
    let (flow, residual) = tr
        .forward_pass(&latents, &ts, &ctx, &never, BlockPass::Record)
        .unwrap()
        .unwrap();
    let residual = residual.unwrap();
    let (reused, none) = tr
        .forward_pass(&latents, &ts, &ctx, &never, BlockPass::Reuse(&residual))
        .unwrap()
        .unwrap();
    assert!(none.is_none());
    assert!(max_abs_diff(&flow, &reused) < 1e-5);
    assert_eq!(
        max_abs_diff(&flow, &tr.forward(&latents, &ts, &ctx).unwrap()),
        0.0
    );
}
