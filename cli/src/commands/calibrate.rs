//! `t2v calibrate`: measures a model's magnitude ratios for the step cache (MagCache) on one
//! run with `generate`'s settings, and writes them where the step cache reads them: the model
//! folder's `step_cache.json` (or `--out`).

use super::generate::{self, GenerateArgs};
use super::{bad_input, Failure};
use clap::Args;
use std::path::PathBuf;
use t2v_models::checkpoint::{load_models, ModelFiles};
use t2v_models::pipeline::step_cache::CALIBRATION_FILE;
use t2v_models::pipeline::{self, Progress, RunInputs};

#[derive(Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    generate: GenerateArgs,
    /// Where to write the ratios [default: step_cache.json in the model folder, where the step
    /// cache reads them].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Prints each step on stderr.
struct StepLines {
    quiet: bool,
}

impl Progress for StepLines {
    fn step(
        &mut self,
        index: usize,
        steps: usize,
        _: &candle_core::Tensor,
    ) -> t2v_models::Result<()> {
        if !self.quiet {
            eprintln!("calibrating: step {}/{steps}", index + 1);
        }
        Ok(())
    }
}

pub fn run(args: CalibrateArgs) -> Result<(), Failure> {
    let request = generate::request(&args.generate)?;
    if args.out.is_none() && args.generate.uses_demo() {
        return Err(bad_input(
            "the built-in demo model ships its calibration: name --out FILE to measure it again, or --model DIR for another model",
        ));
    }
    let out = match (&args.out, &request.model.path) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => dir.join(CALIBRATION_FILE),
        (None, None) => {
            return Err(bad_input(
                "without a model folder, name the calibration file with --out FILE",
            ))
        }
    };
    let device = generate::service_config(&args.generate)?.device.resolve()?;
    let dtype = request.precision.resolve(&device).dtype();
    let files = ModelFiles::resolve(
        request.model.path.as_deref(),
        &request.model.overrides.to_models(),
    )?;
    let models = load_models(&files, dtype, &device)?;
    let run = RunInputs {
        image: request.image.as_ref().map(|i| i.to_dynamic()),
        init_latents: request
            .init_latents
            .as_ref()
            .map(|l| l.to_tensor(&candle_core::Device::Cpu))
            .transpose()?,
        model_dir: request.model.path.clone(),
    };
    let quiet = args.generate.is_quiet();
    let ratios = pipeline::calibrate(
        &models,
        &request.params.to_models(),
        run,
        &mut StepLines { quiet },
    )?;
    ratios.write(&out)?;
    if !quiet {
        let (lo, hi) = ratios
            .cond
            .iter()
            .chain(&ratios.uncond)
            .skip(1)
            .fold((f64::INFINITY, 0f64), |(lo, hi), r| {
                (lo.min(*r), hi.max(*r))
            });
        eprintln!(
            "wrote {}: magnitude ratios of {} steps ({} guidance branches), {lo:.4} to {hi:.4}",
            out.display(),
            ratios.cond.len(),
            if ratios.uncond.is_empty() { 1 } else { 2 },
        );
    }
    Ok(())
}
