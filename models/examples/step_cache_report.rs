//! The step cache's speed and quality on one model: the same clip with every evaluation (off),
//! then with MagCache and EasyCache at each setting; prints a Markdown table of evaluations skipped, denoising
//! time, time saved and the PSNR of the frames against the full run (docs/benchmarks.md).
//!
//! ```sh
//! cargo run --release -p t2v-models --example step_cache_report -- MODEL_DIR \
//!     [--size 256x160x17] [--steps 16] [--guidance 4] [--shift 3] [--sweep] [--prompt TEXT]
//! ```
//!
//! The model folder's `step_cache.json` is used; without one the ratios are first measured on
//! this very run (as `t2v calibrate` does). `--sweep` adds thresholds and skip limits around
//! the presets, to choose them; `--easy-sweep 0.02,0.05,...` runs EasyCache at those
//! thresholds (to match MagCache's skip counts).

use candle_core::{DType, Device, Tensor};
use std::time::Instant;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::pipeline::easy_cache::{EasyCache, EasyCacheSettings};
use t2v_models::pipeline::step_cache::{
    calibration_file, MagCache, MagCacheSettings, MagRatios, StepCache, StepCacheChoice,
};
use t2v_models::pipeline::{self, GenerationParams, Progress, RunInputs, Stage};

/// The CPU time of this process so far (all threads; Linux `/proc/self/stat`), in seconds:
/// unlike the wall time it hardly moves when other processes share the machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Times the denoising stage: wall time and CPU time.
#[derive(Default)]
struct Timer {
    started: Option<(Instant, f64)>,
    denoise_s: f64,
    denoise_cpu_s: f64,
}

impl Progress for Timer {
    fn stage(&mut self, stage: Stage) -> t2v_models::Result<()> {
        match stage {
            Stage::Denoising => self.started = Some((Instant::now(), cpu_seconds())),
            Stage::Decoding => {
                if let Some((t, cpu)) = self.started.take() {
                    self.denoise_s = t.elapsed().as_secs_f64();
                    self.denoise_cpu_s = cpu_seconds() - cpu;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn psnr(a: &Tensor, b: &Tensor) -> f64 {
    let mse = (a - b)
        .and_then(|d| d.sqr())
        .and_then(|d| d.mean_all())
        .and_then(|d| d.to_dtype(DType::F64))
        .and_then(|d| d.to_scalar::<f64>())
        .expect("frames compare");
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

fn arg<T: std::str::FromStr>(args: &[String], flag: &str, default: T) -> T {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} {v}: not a value"))
        })
        .unwrap_or(default)
}

fn main() -> t2v_models::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(
        args.first()
            .expect("usage: step_cache_report MODEL_DIR [flags]"),
    );
    let size: String = arg(&args, "--size", "256x160x17".to_string());
    let dims: Vec<usize> = size.split('x').map(|v| v.parse().expect("WxHxF")).collect();
    let params = GenerationParams {
        prompt: arg(
            &args,
            "--prompt",
            "A red circle moves to the right on a black background.".to_string(),
        ),
        negative_prompt: Some(String::new()),
        width: dims[0],
        height: dims[1],
        frames: dims[2],
        steps: arg(&args, "--steps", 16),
        guidance: arg(&args, "--guidance", 4.0),
        shift: arg(&args, "--shift", 3.0),
        seed: arg(&args, "--seed", 0),
        ..Default::default()
    };
    let files = ModelFiles::resolve(Some(&dir), &Overrides::default())?;
    let models = load_models(&files, DType::F32, &Device::Cpu)?;
    let run = || RunInputs {
        model_dir: Some(dir.clone()),
        ..Default::default()
    };

    // Timings are the fastest of `--repeats` runs, after one warm-up run.
    let repeats: usize = arg(&args, "--repeats", 2);
    type Timed = (pipeline::Generated, f64, f64, usize);
    let timed =
        |cache: &mut dyn FnMut() -> Option<Box<dyn StepCache>>| -> t2v_models::Result<Timed> {
            let mut best = f64::INFINITY;
            let mut best_cpu = f64::INFINITY;
            let mut last = None;
            for _ in 0..repeats.max(1) {
                let mut timer = Timer::default();
                let mut c = cache();
                let out = pipeline::generate_with(
                    &models,
                    &params,
                    run(),
                    c.as_mut().map(|c| c.as_mut() as &mut dyn StepCache),
                    &mut timer,
                )?;
                best = best.min(timer.denoise_s);
                best_cpu = best_cpu.min(timer.denoise_cpu_s);
                last = Some((out, c.map_or(0, |c| c.skipped())));
            }
            let (out, skipped) = last.expect("ran");
            Ok((out, best, best_cpu, skipped))
        };
    pipeline::generate(&models, &params, run(), &mut pipeline::NoProgress)?;
    let (full, full_s, full_cpu, _) = timed(&mut || None)?;
    let ratios = match calibration_file(&dir) {
        Some(file) => MagRatios::read(&file)?,
        None => pipeline::calibrate(&models, &params, run(), &mut pipeline::NoProgress)?,
    };
    let branches = if params.uses_guidance() { 2 } else { 1 };
    let evaluations = params.steps * branches;

    let mut settings: Vec<(String, MagCacheSettings)> =
        [StepCacheChoice::Fast, StepCacheChoice::Faster]
            .into_iter()
            .map(|c| (c.name().to_string(), c.settings().expect("on")))
            .collect();
    if args.iter().any(|a| a == "--sweep") {
        for threshold in [0.1, 0.15, 0.2, 0.3] {
            for max_skips in [2, 3] {
                let s = MagCacheSettings {
                    threshold,
                    max_skips,
                    retention: 0.2,
                };
                settings.push((format!("t={threshold} K={max_skips}"), s));
            }
        }
    }
    println!(
        "{} at {}x{}x{}, {} steps, guidance {}, {} evaluations; full run: denoising {full_s:.2} s ({full_cpu:.2} s of CPU)\n",
        dir.display(),
        params.width,
        params.height,
        params.frames,
        params.steps,
        params.guidance,
        evaluations
    );
    println!("| method | setting | threshold | K | skipped | denoising, wall (s) | denoising, CPU (s) | CPU time saved | PSNR vs full (dB) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!("| | off | | | 0/{evaluations} | {full_s:.2} | {full_cpu:.2} | | inf |");
    let row = |method: &str,
               name: &str,
               threshold: f64,
               k: String,
               make: &mut dyn FnMut() -> Option<Box<dyn StepCache>>|
     -> t2v_models::Result<()> {
        let (out, denoise_s, denoise_cpu, skipped) = timed(make)?;
        println!(
            "| {method} | {name} | {threshold} | {k} | {skipped}/{evaluations} | {denoise_s:.2} | {denoise_cpu:.2} | {:.0}% | {:.1} |",
            100.0 * (1.0 - denoise_cpu / full_cpu),
            psnr(&out.frames, &full.frames)
        );
        Ok(())
    };
    for (name, s) in settings {
        row(
            "magcache",
            &name,
            s.threshold,
            s.max_skips.to_string(),
            &mut || {
                Some(Box::new(MagCache::new(
                    s,
                    &ratios,
                    params.steps,
                    params.uses_guidance(),
                )))
            },
        )?;
    }
    let mut easy: Vec<(String, EasyCacheSettings)> =
        [StepCacheChoice::Fast, StepCacheChoice::Faster]
            .into_iter()
            .map(|c| (c.name().to_string(), c.easycache().expect("on")))
            .collect();
    let sweep: String = arg(&args, "--easy-sweep", String::new());
    for threshold in sweep.split(',').filter(|t| !t.is_empty()) {
        let threshold: f64 = threshold.parse().expect("--easy-sweep: thresholds");
        easy.push((
            format!("t={threshold}"),
            EasyCacheSettings {
                threshold,
                warmup: 0.2,
            },
        ));
    }
    for (name, s) in easy {
        row("easycache", &name, s.threshold, String::new(), &mut || {
            Some(Box::new(EasyCache::new(s, params.steps)))
        })?;
    }
    Ok(())
}
