//! The `t2v` command line: argument definitions, dispatch and exit codes (0 success, 1
//! failure, 2 bad input, 75 queue full, 130 cancelled), the commands, and the writers for what
//! it exports: PNG sequences ([`frames_out`]), OpenEXR ([`exr_out`]), animated previews
//! ([`preview`]), contact sheets ([`contact_sheet`]). The work is done by the `t2v_bridge`
//! generation service.

pub mod bench;
pub mod bench_budget;
pub mod bench_upscale;
pub mod contact_sheet;
pub mod exr_out;
pub mod frames_out;
pub mod preview;
mod progress_bar;

/// One module per command.
mod commands {
    pub(crate) use crate::progress_bar;
    pub(crate) use crate::{bad_input, failure, Failure, ModelArgs};

    pub(crate) mod bench;
    pub(crate) mod cache;
    pub(crate) mod calibrate;
    pub mod generate;
    pub(crate) mod info;
    pub(crate) mod presets;
    pub mod remote;
    pub(crate) mod worker;
}

pub use commands::generate;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use t2v_bridge::ModelSpec;

/// Which model: a folder, and/or per-component files that override the folder's.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A diffusers folder, or a folder holding original/ComfyUI single files.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Transformer weights file (any supported layout), overriding the model folder's.
    #[arg(long)]
    pub transformer: Option<PathBuf>,
    /// VAE weights file, overriding the model folder's.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// umT5 text encoder weights file, overriding the model folder's.
    #[arg(long = "text-encoder")]
    pub text_encoder: Option<PathBuf>,
    /// tokenizer.json, overriding the model folder's.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

impl ModelArgs {
    /// The model at `path` (the folder, or the one standing in for it) with these overrides.
    pub fn spec(&self, path: Option<PathBuf>) -> ModelSpec {
        ModelSpec {
            path,
            overrides: t2v_bridge::Overrides {
                transformer: self.transformer.clone(),
                vae: self.vae.clone(),
                text_encoder: self.text_encoder.clone(),
                tokenizer: self.tokenizer.clone(),
                ..Default::default()
            },
            loras: Vec::new(),
        }
    }

    pub fn overrides(&self) -> t2v_models::checkpoint::Overrides {
        self.spec(None).overrides.to_models()
    }

    /// No folder and no weights file at all.
    pub fn is_empty(&self) -> bool {
        self.model.is_none()
            && self.transformer.is_none()
            && self.vae.is_none()
            && self.text_encoder.is_none()
    }

    /// Without a folder, all three weights files are needed.
    pub fn is_complete(&self) -> bool {
        self.model.is_some()
            || (self.transformer.is_some() && self.vae.is_some() && self.text_encoder.is_some())
    }
}

#[derive(Parser)]
#[command(
    name = "t2v",
    version,
    about = "Wan2.2 TI2V-5B text-to-video, locally",
    after_help = "Exit codes: 0 success, 1 failure, 2 bad input (the message says what to change),\n\
                  75 the generation queue is full (try again later), 130 cancelled (Ctrl-C or SIGTERM).\n\
                  Environment: T2V_CACHE_DIR (clip cache folder), T2V_CACHE_MAX_GB (cache size cap),\n\
                  T2V_PRESETS (a prompt presets file extending the shipped ones)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

use commands::{bench as bench_command, cache, calibrate, info, presets, worker};

#[derive(Subcommand)]
enum Command {
    /// Generate a clip (or read it from the clip cache) and write its frames.
    Generate(Box<generate::GenerateArgs>),
    /// Show the devices found and, with --model, the checkpoint layout and dtypes.
    Info(info::InfoArgs),
    /// Inspect or clear the clip cache.
    Cache(cache::CacheArgs),
    /// List the prompt presets: styles (--style, --styles) and tags (--tag).
    Presets(presets::PresetsArgs),
    /// Time each stage with random weights (no model files needed).
    Bench(bench_command::BenchArgs),
    /// Measure the model's magnitude ratios for --step-cache (MagCache) on one run with
    /// generate's settings; writes the model folder's step_cache.json (or --out).
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// Serve a studio's shared queue as one GPU worker (see docs/studio.md).
    Worker(worker::WorkerArgs),
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl From<t2v_bridge::Error> for Failure {
    fn from(e: t2v_bridge::Error) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.message,
        }
    }
}

impl From<t2v_models::Error> for Failure {
    fn from(e: t2v_models::Error) -> Self {
        t2v_bridge::Error::from(e).into()
    }
}

pub fn bad_input(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

pub fn failure(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate::run(*args),
        Command::Info(args) => info::run(args),
        Command::Cache(args) => cache::run(args),
        Command::Presets(args) => presets::run(args),
        Command::Bench(args) => bench_command::run(args),
        Command::Calibrate(args) => calibrate::run(*args),
        Command::Worker(args) => worker::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
