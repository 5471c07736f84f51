//! The `t2v` commands: argument definitions, dispatch and exit codes
//! (0 success, 1 failure, 2 bad input, 130 cancelled).

mod bench;
mod cache;
mod generate;
mod info;
mod presets;
mod progress_bar;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use t2v_models::checkpoint::Overrides;

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
    pub fn overrides(&self) -> Overrides {
        Overrides {
            transformer: self.transformer.clone(),
            vae: self.vae.clone(),
            text_encoder: self.text_encoder.clone(),
            tokenizer: self.tokenizer.clone(),
        }
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
    after_help = "Exit codes: 0 success, 1 failure, 2 bad input (the message says what to change), 130 cancelled.\n\
                  Environment: T2V_CACHE_DIR (clip cache folder), T2V_CACHE_MAX_GB (cache size cap),\n\
                  T2V_PRESETS (a prompt presets file extending the shipped ones)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

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
    Bench(bench::BenchArgs),
}

/// A failure with its exit code.
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
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
