//! Trains the demo model and writes it in the diffusers layout.
//!
//! ```sh
//! cargo run --release -p t2v-demo-trainer --bin t2v-train-demo -- --out demo/model
//! ```

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use t2v_demo_trainer::configs::Preset;
use t2v_demo_trainer::train::{run, Log, RunPaths, Stage};

#[derive(Parser)]
#[command(
    about = "Train the demo model (a tiny Wan2.2 on a synthetic world of moving shapes) on the CPU"
)]
struct Args {
    /// Where the finished checkpoint goes (a diffusers-layout folder).
    #[arg(long, default_value = "demo/model")]
    out: PathBuf,
    /// Where intermediate files go (VAE weights, encoded latents, unexported weights).
    #[arg(long, default_value = "target/demo-train")]
    work: PathBuf,
    /// `full` (the shipped model), `smoke` (a few steps on tiny clips) or `left-right` (a
    /// diagnostic: the full model on red circles moving left or right on blue; needs a full
    /// run's `vae.safetensors` in --work).
    #[arg(long, default_value = "full")]
    preset: String,
    /// Stages to run, comma-separated: vae, vae-check, encode, dit, export, eval, and the
    /// diagnostic caption-check (not in the default). A later stage reads what earlier ones left
    /// in --work, so a run can be resumed.
    #[arg(long, default_value = "vae,vae-check,encode,dit,export,eval")]
    stages: String,
    /// Override the number of optimiser steps of the VAE / transformer stages (for timing).
    #[arg(long)]
    vae_steps: Option<usize>,
    #[arg(long)]
    dit_steps: Option<usize>,
    #[arg(long)]
    clips: Option<usize>,
    /// Curriculum: train the transformer's first K steps only on the dataset's clips in
    /// `--slice`, then on every clip.
    #[arg(long, value_name = "K")]
    curriculum_steps: Option<usize>,
    /// The curriculum's slice: `motion-first` (the default: one object on black in red, yellow,
    /// blue or white, every shape and motion), `left-right-any-look` (one object of any look
    /// moving left or right), `one-background` (one object of any colour on black) or
    /// `one-colour` (one red object on either background). With K = all steps, a diagnostic run
    /// on the slice alone, judged on prompts inside it.
    #[arg(long, default_value = "motion-first")]
    slice: String,
    /// Pretrain the text encoder for N steps before the transformer stage (reading each
    /// object's colour, shape and motion from its noun; `text_pretraining`).
    #[arg(long, value_name = "N")]
    text_pretrain_steps: Option<usize>,
    /// The text encoder's learning rate as a multiple of the transformer's (0 freezes it).
    #[arg(long, value_name = "X")]
    text_lr_scale: Option<f64>,
    /// How many times each clip with a bouncing object is in the transformer's draw pool
    /// (1: as often as the others).
    #[arg(long, value_name = "N")]
    bounce_repeats: Option<usize>,
    /// The transformer's peak learning rate.
    #[arg(long)]
    dit_lr: Option<f64>,
    /// Evaluation prompts with trained combinations (the eval stage; half as many held-out
    /// ones). The first 40 are the ones the shipped model's tests use.
    #[arg(long, value_name = "N")]
    eval_prompts: Option<usize>,
    /// The shift of the transformer's training noise levels (1: uniform).
    #[arg(long)]
    timestep_shift: Option<f64>,
    /// Resume the VAE stage at this phase (1-based) from the VAE weights in --work.
    #[arg(long, default_value_t = 1)]
    vae_phase: usize,
    /// Start the transformer stage from the weights in --work (an earlier run's last snapshot)
    /// instead of from scratch.
    #[arg(long)]
    dit_resume: bool,
    /// Worker threads (each runs candle single-threaded); defaults to the number of cores.
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    t2v_demo_trainer::train::single_threaded_candle();
    t2v_demo_trainer::train::keep_freed_memory();
    let args = Args::parse();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let Some(mut preset) = Preset::by_name(&args.preset) else {
        eprintln!(
            "error: unknown preset `{}`: use `full`, `smoke` or `left-right`",
            args.preset
        );
        return ExitCode::FAILURE;
    };
    if let Some(n) = args.vae_steps {
        for phase in &mut preset.vae {
            phase.steps = n;
        }
    }
    if let Some(n) = args.dit_steps {
        preset.dit.steps = n;
    }
    if let Some(n) = args.clips {
        preset.dataset.clips = n;
    }
    if let Some(n) = args.text_pretrain_steps {
        preset.dit.text_pretrain_steps = n;
    }
    if let Some(lr) = args.dit_lr {
        preset.dit.lr = lr;
    }
    if let Some(shift) = args.timestep_shift {
        preset.dit.timestep_shift = shift;
    }
    if let Some(n) = args.eval_prompts {
        preset.eval_prompts = n;
    }
    if let Some(x) = args.text_lr_scale {
        preset.dit.text_lr_scale = x;
    }
    if let Some(n) = args.bounce_repeats {
        preset.dit.bounce_repeats = n;
    }
    if let Some(k) = args.curriculum_steps {
        preset.dit.curriculum = Some(t2v_demo_trainer::configs::Curriculum {
            steps: k,
            slice: match t2v_demo_trainer::world::Slice::by_name(&args.slice) {
                Some(slice) => slice,
                None => {
                    eprintln!(
                        "error: unknown slice `{}`: use one of {}",
                        args.slice,
                        t2v_demo_trainer::world::Slice::names()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    return ExitCode::FAILURE;
                }
            },
        });
    }
    let mut stages = Vec::new();
    for name in args
        .stages
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match Stage::parse(name) {
            Some(s) => stages.push(s),
            None => {
                eprintln!("error: unknown stage `{name}`: use vae, vae-check, encode, dit, export, eval or caption-check");
                return ExitCode::FAILURE;
            }
        }
    }
    let log = Log::new();
    log.line(&format!(
        "preset {} (seed {}), stages {}, {workers} workers",
        preset.name, preset.seed, args.stages
    ));
    match run(
        &preset,
        &RunPaths {
            work: args.work,
            out: args.out,
            vae_from_phase: args.vae_phase.saturating_sub(1),
            dit_resume: args.dit_resume,
        },
        &stages,
        workers,
        &log,
    ) {
        Ok(report) => {
            if let Some(eval) = report.eval {
                println!(
                    "pass rates: trained {:.1}% ({}/{}), held-out {:.1}% ({}/{})",
                    eval.trained_rate() * 100.0,
                    eval.trained_passed,
                    eval.trained_total,
                    eval.held_out_rate() * 100.0,
                    eval.held_out_passed,
                    eval.held_out_total
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
