//! The step cache (MagCache, EasyCache) on the tiny model: off is the plain denoising loop bit
//! for bit; on, the evaluations skipped are exactly the ones MagCache's rule predicts from the
//! calibrated ratios, and their blocks really don't run; EasyCache's clip is the one its rule,
//! written out again, makes. On the demo model: the skip counts of docs/benchmarks.md.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::dit::TokenTimesteps;
use t2v_models::pipeline::easy_cache::{EasyCache, EasyCacheSettings};
use t2v_models::pipeline::step_cache::{
    MagCacheSettings, MagRatios, StepCacheChoice, StepCacheMethod,
};
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
        step_cache_method: StepCacheMethod::MagCache,
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

fn mean_abs(t: &Tensor) -> f64 {
    t.abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// The denoising loop with EasyCache's rule written out again from `easycache_forward`
/// (independently of `EasyCache`): returns the final latents and the steps it skipped.
fn easycache_by_hand(
    models: &Models,
    p: &GenerationParams,
    s: EasyCacheSettings,
) -> (Tensor, Vec<usize>) {
    let device = Device::Cpu;
    let text = pipeline::encode_text(&models.tokenizer, &models.text_encoder, p, &device).unwrap();
    let tr = &models.transformer;
    let ctx = [
        tr.prepare_context(&text.prompt).unwrap(),
        tr.prepare_context(text.negative.as_ref().unwrap()).unwrap(),
    ];
    let shape = pipeline::latent_shape(p, tr.config().in_channels, 16);
    let mut latents = pipeline::noise::seeded_noise(p.seed, &shape, &device).unwrap();
    let (gf, gh, gw) = tr.token_grid(shape[2], shape[3], shape[4]);
    let mut sampler = p.sampler.build(p.steps, p.shift, p.seed);
    let ret_steps = (p.steps as f64 * s.warmup) as usize;
    let (mut prev_in, mut prev_prev_in, mut prev_out): (
        Option<Tensor>,
        Option<Tensor>,
        Option<Tensor>,
    ) = (None, None, None);
    let mut k: Option<f64> = None;
    let mut acc = 0.0;
    let mut cache: [Option<Tensor>; 2] = [None, None];
    let mut skipped = Vec::new();
    for (step, t) in sampler.timesteps().to_vec().into_iter().enumerate() {
        let ts = TokenTimesteps::uniform(gf * gh * gw, t);
        let x = latents.clone();
        let calc = if step < ret_steps || step >= p.steps - 1 {
            acc = 0.0;
            true
        } else if let (Some(pi), Some(po), Some(k)) = (&prev_in, &prev_out, k) {
            acc += k * (mean_abs(&(&x - pi).unwrap()) / mean_abs(po));
            if acc < s.threshold {
                false
            } else {
                acc = 0.0;
                true
            }
        } else {
            true
        };
        prev_in = Some(x.clone());
        let mut flows = Vec::new();
        for b in 0..2 {
            let flow = match (&cache[b], calc) {
                (Some(c), false) => (&x + c).unwrap(),
                _ => {
                    let out = tr.forward(&x, &ts, &ctx[b]).unwrap();
                    if b == 0 {
                        if let (Some(po), Some(ppi)) = (&prev_out, &prev_prev_in) {
                            let dout = mean_abs(&(&out - po).unwrap());
                            let din = mean_abs(&(prev_in.as_ref().unwrap() - ppi).unwrap());
                            k = Some(dout / din);
                        }
                        prev_prev_in = prev_in.clone();
                        prev_out = Some(out.clone());
                    }
                    cache[b] = Some((&out - &x).unwrap());
                    out
                }
            };
            flows.push(flow);
        }
        if !calc {
            skipped.push(step);
        }
        let flow = (&flows[1] + ((&flows[0] - &flows[1]).unwrap() * p.guidance).unwrap()).unwrap();
        latents = sampler.step(&flow, &latents).unwrap();
    }
    (latents, skipped)
}

#[test]
fn easycache_makes_the_clip_of_its_rule_and_skips_whole_evaluations() {
    let models = tiny();
    let layers = models.transformer.config().num_layers;
    let mut skipped_by_threshold = Vec::new();
    // The tiny random model's flow changes fast: it needs higher thresholds to skip at all.
    for threshold in [0.15, 0.5, 2.0] {
        let settings = EasyCacheSettings {
            threshold,
            warmup: 0.2,
        };
        let (expected, skipped_steps) =
            easycache_by_hand(&models, &params(StepCacheChoice::Off), settings);
        let mut cache = EasyCache::new(settings, 20);
        let mut count = BlockCount::default();
        // No calibration is needed: the tiny model has none.
        let out = pipeline::generate_with(
            &models,
            &params(StepCacheChoice::Off),
            RunInputs::default(),
            Some(&mut cache),
            &mut count,
        )
        .unwrap();
        assert_eq!(max_abs_diff(&out.latents, &expected), 0.0, "{threshold}");
        let skipped = 2 * skipped_steps.len();
        assert_eq!(cache.skipped, skipped);
        assert_eq!(
            count.asked.get(),
            (40 - skipped) * layers + skipped,
            "{threshold}: a skipped evaluation runs no block ({skipped_steps:?})"
        );
        println!("threshold {threshold}: EasyCache skipped steps {skipped_steps:?}");
        skipped_by_threshold.push(skipped);
    }
    // 0.15 (the `faster` choice) skips nothing of this model, higher ones more and more.
    assert_eq!(skipped_by_threshold, [0, 14, 26]);
    // The choices run EasyCache without a calibration; the rule's answer at their thresholds.
    for choice in [StepCacheChoice::Fast, StepCacheChoice::Faster] {
        let p = GenerationParams {
            step_cache_method: StepCacheMethod::EasyCache,
            ..params(choice)
        };
        let (expected, _) = easycache_by_hand(&models, &p, choice.easycache().unwrap());
        let out = pipeline::generate(&models, &p, RunInputs::default(), &mut pipeline::NoProgress)
            .unwrap();
        assert_eq!(max_abs_diff(&out.latents, &expected), 0.0, "{choice}");
    }
}

/// The demo model at docs/benchmarks.md's step-cache clip: each method's skip counts.
#[test]
fn skip_counts_on_the_demo_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/model");
    let files = ModelFiles::resolve(Some(&dir), &Overrides::default()).unwrap();
    let models = load_models(&files, DType::F32, &Device::Cpu).unwrap();
    let base = GenerationParams {
        prompt: "A red circle moves to the right on a black background.".into(),
        negative_prompt: Some(String::new()),
        width: 256,
        height: 160,
        frames: 17,
        steps: 16,
        guidance: 4.0,
        shift: 3.0,
        seed: 0,
        ..Default::default()
    };
    let mut counts = Vec::new();
    for method in StepCacheMethod::ALL {
        for choice in [StepCacheChoice::Fast, StepCacheChoice::Faster] {
            let p = GenerationParams {
                step_cache: choice,
                step_cache_method: method,
                ..base.clone()
            };
            let mut cache = pipeline::step_cache_for(&p, &models.transformer, Some(&dir), false)
                .unwrap()
                .unwrap();
            let run = RunInputs {
                model_dir: Some(dir.clone()),
                ..Default::default()
            };
            pipeline::generate_with(
                &models,
                &p,
                run,
                Some(cache.as_mut()),
                &mut pipeline::NoProgress,
            )
            .unwrap();
            counts.push((method.name(), choice.name(), cache.skipped()));
        }
    }
    assert_eq!(
        counts,
        [
            ("magcache", "fast", 8),
            ("magcache", "faster", 16),
            ("easycache", "fast", 8),
            ("easycache", "faster", 16),
        ]
    );
}
