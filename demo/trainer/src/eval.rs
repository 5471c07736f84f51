//! Fixed evaluation prompts (trained combinations and held-out ones), generation through the
//! real pipeline, and the pass rates of the pixel judge.

use crate::judge::{centroid_shift, judge, Clip, Expectation, Verdict};
use crate::world::{caption, place_object, Layout, Placement, Scene, Slice, Split, HEIGHT, WIDTH};
use candle_core::{DType, Device};
use rand::SeedableRng;
use std::path::Path;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{generate, GenerationParams, Models, NoProgress, RunInputs};

/// One evaluation prompt and what its clip must show.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCase {
    pub prompt: String,
    pub expect: Expectation,
    pub seed: u64,
    /// The scene the prompt describes (its ground-truth clip).
    pub scene: Option<Scene>,
}

/// `count` single-object prompts of `split`, always the same: trained combinations (with
/// captions in the training wordings) or held-out colour+shape+motion triples.
pub fn evaluation_cases(split: Split, count: usize) -> Vec<EvalCase> {
    evaluation_cases_in(split, count, None)
}

/// Like [`evaluation_cases`], with every scene inside `slice` when one is given (for a
/// diagnostic run trained on a slice only): the held-out triples of the slice's colours and
/// motions, on its backgrounds.
pub fn evaluation_cases_in(split: Split, count: usize, slice: Option<&Slice>) -> Vec<EvalCase> {
    let inside = |scene: &Scene| slice.is_none_or(|s| s.contains(scene));
    let background_inside =
        |scene: &Scene| slice.is_none_or(|s| s.backgrounds.contains(&scene.background));
    let held_out: Vec<_> = crate::world::HELD_OUT
        .into_iter()
        .filter(|(c, _, m)| {
            slice.is_none_or(|s| {
                s.colours.contains(c)
                    && s.motions.contains(m)
                    && s.backgrounds.iter().any(|b| b != c)
            })
        })
        .collect();
    if split == Split::HeldOut && held_out.is_empty() {
        return Vec::new();
    }
    let salt = match split {
        Split::Train => 0xE7A1,
        Split::HeldOut => 0x401D,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(salt);
    (0..count)
        .map(|i| {
            let scene = match split {
                Split::Train => loop {
                    let scene =
                        Scene::sample(&mut rng, Split::Train, 0.0, Layout::Lanes, WIDTH, HEIGHT);
                    if inside(&scene) {
                        break scene;
                    }
                },
                Split::HeldOut => {
                    // Cycle through the held-out triples so each is asked for.
                    let (colour, shape, motion) = held_out[i % held_out.len()];
                    let mut scene = loop {
                        let scene = Scene::sample(
                            &mut rng,
                            Split::HeldOut,
                            0.0,
                            Layout::Lanes,
                            WIDTH,
                            HEIGHT,
                        );
                        if scene.background != colour && background_inside(&scene) {
                            break scene;
                        }
                    };
                    scene.objects = vec![place_object(
                        &mut rng,
                        colour,
                        shape,
                        motion,
                        WIDTH as f32,
                        HEIGHT as f32,
                        Placement::Lane(0.5),
                    )];
                    scene
                }
            };
            let prompt = caption(&mut rng, &scene);
            let expect = Expectation {
                background: scene.background,
                objects: scene.objects.iter().map(|o| (o.colour, o.motion)).collect(),
            };
            EvalCase {
                prompt,
                expect,
                seed: 1000 + i as u64,
                scene: Some(scene),
            }
        })
        .collect()
}

pub fn load(model_dir: &Path) -> t2v_models::Result<Models> {
    let files = ModelFiles::resolve(Some(model_dir), &Overrides::default())?;
    load_models(&files, DType::F32, &Device::Cpu)
}

/// Generation parameters for `prompt` with the model's recommended settings.
pub fn params(
    settings: &crate::configs::DemoSettings,
    prompt: &str,
    seed: u64,
) -> GenerationParams {
    GenerationParams {
        prompt: prompt.to_string(),
        seed,
        ..settings.generation_params().unwrap_or_default()
    }
}

/// Generates one case's clip and judges it. Returns the frames `[F, H, W, 3]` too.
pub fn run_case(
    models: &Models,
    settings: &crate::configs::DemoSettings,
    case: &EvalCase,
) -> t2v_models::Result<(Verdict, Vec<f32>)> {
    let generated = generate(
        models,
        &params(settings, &case.prompt, case.seed),
        RunInputs::default(),
        &mut NoProgress,
    )?;
    let (frames, height, width, _) = generated.frames.dims4()?;
    let data: Vec<f32> = generated.frames.flatten_all()?.to_vec1()?;
    let verdict = judge(
        &Clip {
            frames,
            height,
            width,
            data: &data,
        },
        &case.expect,
    );
    Ok((verdict, data))
}

#[derive(Debug, Clone, Default)]
pub struct EvalSummary {
    pub trained_passed: usize,
    pub trained_total: usize,
    pub held_out_passed: usize,
    pub held_out_total: usize,
}

impl EvalSummary {
    pub fn trained_rate(&self) -> f64 {
        self.trained_passed as f64 / self.trained_total.max(1) as f64
    }
    pub fn held_out_rate(&self) -> f64 {
        self.held_out_passed as f64 / self.held_out_total.max(1) as f64
    }
}

/// Generates and judges `cases` on `workers` threads (each case on one thread, so run candle
/// single-threaded); verdicts in the order of `cases`.
pub fn run_cases(
    models: &Models,
    settings: &crate::configs::DemoSettings,
    cases: &[EvalCase],
    workers: usize,
) -> t2v_models::Result<Vec<Verdict>> {
    crate::workers::map_items(cases, workers, |case| {
        run_case(models, settings, case).map(|(v, _)| v)
    })
    .into_iter()
    .collect()
}

/// The evaluation sets after training: `count` trained and `count / 2` held-out cases (inside
/// `slice`, when given).
pub fn evaluation_sets(count: usize, slice: Option<&Slice>) -> [(Split, Vec<EvalCase>); 2] {
    [
        (
            Split::Train,
            evaluation_cases_in(Split::Train, count, slice),
        ),
        (
            Split::HeldOut,
            evaluation_cases_in(Split::HeldOut, count / 2, slice),
        ),
    ]
}

/// Runs the evaluation sets (inside `slice`, when given) on the model in `model_dir` and logs
/// every verdict and the rates.
pub fn evaluate(
    model_dir: &Path,
    count: usize,
    slice: Option<&Slice>,
    workers: usize,
    log: &crate::train::Log,
) -> crate::train::Result<EvalSummary> {
    let models = load(model_dir)?;
    let settings =
        t2v_demo::shipped::settings_in(model_dir).map_err(crate::train::TrainError::Other)?;
    let mut summary = EvalSummary::default();
    for (split, cases) in evaluation_sets(count, slice) {
        let verdicts = run_cases(&models, &settings, &cases, workers)?;
        for (case, verdict) in cases.iter().zip(&verdicts) {
            let passed = verdict.passed();
            if split == Split::Train {
                summary.trained_total += 1;
                summary.trained_passed += passed as usize;
            } else {
                summary.held_out_total += 1;
                summary.held_out_passed += passed as usize;
            }
            log.line(&format!(
                "eval {:?}: {} \"{}\" ({})",
                split,
                if passed { "pass" } else { "FAIL" },
                case.prompt,
                verdict.notes
            ));
        }
    }
    log.line(&format!(
        "eval: trained {}/{} ({:.0}%), held-out {}/{} ({:.0}%)",
        summary.trained_passed,
        summary.trained_total,
        summary.trained_rate() * 100.0,
        summary.held_out_passed,
        summary.held_out_total,
        summary.held_out_rate() * 100.0
    ));
    Ok(summary)
}

/// Encodes and decodes the ground-truth clips of the trained evaluation cases with `vae` and
/// judges the reconstructions: what the transformer can reach at best. Returns (passed, total).
pub fn vae_reconstruction_check(
    vae: &t2v_models::vae::WanVae,
    count: usize,
    workers: usize,
    log: &crate::train::Log,
) -> crate::train::Result<(usize, usize)> {
    let cases = evaluation_cases(Split::Train, count);
    let judge_case = |case: &EvalCase| -> crate::train::Result<Verdict> {
        let scene = case
            .scene
            .as_ref()
            .expect("evaluation cases keep their scene");
        let video = candle_core::Tensor::from_vec(
            scene.render_clip(),
            (1, 3, crate::world::FRAMES, HEIGHT, WIDTH),
            &Device::Cpu,
        )?;
        let recon = vae.decode(&vae.encode(&video)?.detach())?.detach();
        let frames = t2v_models::pipeline::video_to_frames(&recon)?;
        let (f, h, w, _) = frames.dims4()?;
        let data: Vec<f32> = frames.flatten_all()?.to_vec1()?;
        Ok(judge(
            &Clip {
                frames: f,
                height: h,
                width: w,
                data: &data,
            },
            &case.expect,
        ))
    };
    let verdicts = crate::workers::map_items(&cases, workers, judge_case);
    let mut passed = 0;
    for (case, verdict) in cases.iter().zip(verdicts) {
        let verdict = verdict?;
        if verdict.passed() {
            passed += 1;
        } else {
            log.line(&format!(
                "vae check: FAIL \"{}\" ({})",
                case.prompt, verdict.notes
            ));
        }
    }
    log.line(&format!(
        "vae check: {passed}/{} reconstructions of evaluation clips pass the judge",
        cases.len()
    ));
    Ok((passed, cases.len()))
}

/// `count` prompts of a diagnostic subset (the motions in turn), always the same.
pub fn subset_cases(subset: &crate::world::Subset, count: usize) -> Vec<EvalCase> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5B5E7);
    (0..count)
        .map(|i| {
            let scene = subset.scene(&mut rng, i, WIDTH, HEIGHT);
            let prompt = subset.caption(&mut rng, &scene);
            EvalCase {
                prompt,
                expect: Expectation {
                    background: scene.background,
                    objects: scene.objects.iter().map(|o| (o.colour, o.motion)).collect(),
                },
                seed: 1000 + i as u64,
                scene: Some(scene),
            }
        })
        .collect()
}

/// Generates the prompts of a diagnostic subset with the model in `model_dir` and logs, per
/// prompt, the judge's verdict and the object's horizontal and vertical centroid shift; then,
/// per motion, the mean shift and how many clips move the named way (left: dx < 0, right:
/// dx > 0, others: not counted), and the pass rate (in `trained_*` of the summary).
pub fn evaluate_subset(
    model_dir: &Path,
    subset: &crate::world::Subset,
    count: usize,
    workers: usize,
    log: &crate::train::Log,
) -> crate::train::Result<EvalSummary> {
    use crate::world::Motion;
    let models = load(model_dir)?;
    let settings =
        t2v_demo::shipped::settings_in(model_dir).map_err(crate::train::TrainError::Other)?;
    let cases = subset_cases(subset, count);
    let results = crate::workers::map_items(&cases, workers, |case| {
        run_case(&models, &settings, case).map(|(verdict, data)| {
            let clip = Clip {
                frames: settings.frames,
                height: settings.height,
                width: settings.width,
                data: &data,
            };
            (verdict, centroid_shift(&clip, subset.colour))
        })
    });
    let mut summary = EvalSummary::default();
    // Per motion: cases, summed dx, clips that move the named way.
    let mut per_motion: Vec<(Motion, usize, f32, usize)> =
        subset.motions.iter().map(|&m| (m, 0, 0.0, 0)).collect();
    for (case, result) in cases.iter().zip(results) {
        let (verdict, (dx, dy, visible)) = result?;
        let motion = case.expect.objects[0].1;
        let right_way = visible > 0
            && match motion {
                Motion::Left => dx < 0.0,
                Motion::Right => dx > 0.0,
                _ => false,
            };
        if let Some(m) = per_motion.iter_mut().find(|m| m.0 == motion) {
            m.1 += 1;
            m.2 += dx;
            m.3 += right_way as usize;
        }
        summary.trained_total += 1;
        summary.trained_passed += verdict.passed() as usize;
        log.line(&format!(
            "eval subset: {} {:>5} dx {dx:+6.1} dy {dy:+6.1} (visible in {visible} frames) \"{}\" ({})",
            if verdict.passed() { "pass" } else { "FAIL" },
            motion.name(),
            case.prompt,
            verdict.notes
        ));
    }
    for (motion, n, sum, right) in &per_motion {
        log.line(&format!(
            "eval subset: {}: mean dx {:+.1} px, {right}/{n} move {}",
            motion.name(),
            sum / (*n).max(1) as f32,
            motion.name()
        ));
    }
    let right: usize = per_motion.iter().map(|m| m.3).sum();
    log.line(&format!(
        "eval subset: direction right in {right}/{}, judge passes {}/{} ({:.0}%)",
        summary.trained_total,
        summary.trained_passed,
        summary.trained_total,
        summary.trained_rate() * 100.0
    ));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice's evaluation prompts describe scenes inside it, held-out ones included; without a
    /// slice the cases are the fixed ones.
    #[test]
    fn evaluation_cases_stay_inside_a_slice() {
        let slice = Slice::one_colour();
        let trained = evaluation_cases_in(Split::Train, 12, Some(&slice));
        let held_out = evaluation_cases_in(Split::HeldOut, 12, Some(&slice));
        assert_eq!((trained.len(), held_out.len()), (12, 12));
        for case in trained.iter().chain(&held_out) {
            let scene = case.scene.as_ref().expect("scene");
            assert!(slice.contains(scene), "{scene:?}");
        }
        for (i, case) in held_out.iter().enumerate() {
            let o = &case.scene.as_ref().expect("scene").objects[0];
            assert!(
                crate::world::is_held_out(o.colour, o.shape, o.motion),
                "case {i}"
            );
        }
        assert_eq!(
            evaluation_cases_in(Split::Train, 5, None),
            evaluation_cases(Split::Train, 5)
        );
        // Regression: the black square of the held-out triples has no background on a slice of
        // black backgrounds (drawing one looped for ever).
        let black = Slice::one_background();
        let cases = evaluation_cases_in(Split::HeldOut, 12, Some(&black));
        assert_eq!(cases.len(), 12);
        for case in &cases {
            let scene = case.scene.as_ref().expect("scene");
            assert!(black.contains(scene), "{scene:?}");
        }
    }
}
