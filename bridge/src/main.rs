//! `t2v`: text (and image) to video from the command line.

use candle_core::{DType, Device, Tensor};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use t2v_bridge::frames_out;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{self, GenerationParams, Progress, RunInputs, Stage};
use t2v_models::sampling::SamplerKind;
use t2v_models::Error;

#[derive(Parser)]
#[command(name = "t2v", version, about = "Wan2.2 TI2V-5B text-to-video, locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a clip and write its frames.
    Generate(GenerateArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// A diffusers folder, or a folder holding original/ComfyUI single files.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Transformer weights file (any supported layout), overriding the model folder's.
    #[arg(long)]
    transformer: Option<PathBuf>,
    /// VAE weights file, overriding the model folder's.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// umT5 text encoder weights file, overriding the model folder's.
    #[arg(long = "text-encoder")]
    text_encoder: Option<PathBuf>,
    /// tokenizer.json, overriding the model folder's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long)]
    prompt: String,
    /// Defaults to the Wan2.2 release's negative prompt; "" means an empty one.
    #[arg(long = "negative-prompt")]
    negative_prompt: Option<String>,
    #[arg(long, default_value_t = 832)]
    width: usize,
    #[arg(long, default_value_t = 480)]
    height: usize,
    /// Frame count of the form 4k+1.
    #[arg(long, default_value_t = 81)]
    frames: usize,
    #[arg(long, default_value_t = 50)]
    steps: usize,
    #[arg(long, default_value_t = 5.0)]
    guidance: f64,
    /// Flow shift of the sampler's schedule.
    #[arg(long, default_value_t = 5.0)]
    shift: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// unipc or euler.
    #[arg(long, default_value = "unipc")]
    sampler: SamplerKind,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// First frame (image-to-video); resized and centre-cropped to the output size.
    #[arg(long)]
    image: Option<PathBuf>,
    /// safetensors with tensor `latents` [1,48,F',H/16,W/16] f32, used instead of seeded noise.
    #[arg(long = "init-latents")]
    init_latents: Option<PathBuf>,
    /// Writes the final latents (before un-normalising) as safetensors tensor `latents`.
    #[arg(long = "save-latents")]
    save_latents: Option<PathBuf>,
    /// Writes the frames [F,H,W,3] f32 in [0,1] as safetensors tensor `frames`.
    #[arg(long = "save-frames")]
    save_frames: Option<PathBuf>,
    /// Frame file pattern, e.g. out/frame.%04d.png (8-bit PNG).
    #[arg(long, default_value = "out/frame.%04d.png")]
    output: String,
}

/// A failure with its exit code: 2 for input the user should change, 1 otherwise.
struct Failure {
    code: u8,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidRequest(_) | Error::ModelFolder { .. } | Error::Checkpoint { .. } | Error::Tokenizer(_) => 2,
            Error::Io { .. } => 2,
            Error::Cancelled => 130,
            Error::Candle(_) => 1,
        };
        Failure { code, message: e.to_string() }
    }
}

fn bad_input(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

fn parse_dtype(s: &str) -> Result<DType, Failure> {
    match s {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        "f16" => Ok(DType::F16),
        other => Err(bad_input(format!("unknown --dtype `{other}`: use f32, bf16 or f16"))),
    }
}

fn parse_device(s: &str) -> Result<Device, Failure> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0).map_err(|e| {
            bad_input(format!("--device cuda is not available ({e}); use --device cpu"))
        }),
        other => Err(bad_input(format!("unknown --device `{other}`: use cpu or cuda"))),
    }
}

/// Prints progress to stderr and writes frames as each chunk is decoded.
struct CliProgress {
    output: String,
    steps: usize,
    written: usize,
}

impl Progress for CliProgress {
    fn stage(&mut self, stage: Stage) -> t2v_models::Result<()> {
        let label = match stage {
            Stage::EncodingPrompt => "encoding prompt",
            Stage::EncodingImage => "encoding first frame",
            Stage::Denoising => "denoising",
            Stage::Decoding => "decoding",
        };
        eprintln!("{label}...");
        Ok(())
    }
    fn step(&mut self, index: usize, steps: usize, _latents: &Tensor) -> t2v_models::Result<()> {
        self.steps = steps;
        eprintln!("  step {}/{steps}", index + 1);
        Ok(())
    }
    fn frames(&mut self, first: usize, frames: &Tensor) -> t2v_models::Result<()> {
        let paths = frames_out::write_png_frames(&self.output, first, frames).map_err(Error::InvalidRequest)?;
        self.written += paths.len();
        Ok(())
    }
}

fn generate(args: GenerateArgs) -> Result<(), Failure> {
    let dtype = parse_dtype(&args.dtype)?;
    let device = parse_device(&args.device)?;
    frames_out::frame_path(&args.output, 0).map_err(bad_input)?;
    let params = GenerationParams {
        prompt: args.prompt,
        negative_prompt: args.negative_prompt,
        width: args.width,
        height: args.height,
        frames: args.frames,
        steps: args.steps,
        guidance: args.guidance,
        shift: args.shift,
        sampler: args.sampler,
        seed: args.seed,
    };
    params.validate()?;
    if args.model.is_none() && (args.transformer.is_none() || args.vae.is_none() || args.text_encoder.is_none()) {
        return Err(bad_input("no model given: pass --model PATH (a diffusers folder or a folder of Wan2.2 files)"));
    }
    let overrides = Overrides {
        transformer: args.transformer,
        vae: args.vae,
        text_encoder: args.text_encoder,
        tokenizer: args.tokenizer,
    };
    let image = match &args.image {
        Some(p) => Some(image::open(p).map_err(|e| bad_input(format!("--image {}: {e}", p.display())))?),
        None => None,
    };
    let init_latents = match &args.init_latents {
        Some(p) => {
            let mut tensors = candle_core::safetensors::load(p, &Device::Cpu)
                .map_err(|e| bad_input(format!("--init-latents {}: {e}", p.display())))?;
            Some(tensors.remove("latents").ok_or_else(|| {
                bad_input(format!("--init-latents {}: no tensor named `latents`", p.display()))
            })?)
        }
        None => None,
    };
    let files = ModelFiles::resolve(args.model.as_deref(), &overrides)?;
    eprintln!("loading model...");
    let models = load_models(&files, dtype, &device)?;
    let mut progress = CliProgress { output: args.output.clone(), steps: 0, written: 0 };
    let out = pipeline::generate(&models, &params, RunInputs { image, init_latents }, &mut progress)?;
    let save = |path: &PathBuf, name: &str, t: &Tensor| -> Result<(), Failure> {
        frames_out::ensure_parent(path).map_err(bad_input)?;
        t.to_dtype(DType::F32)
            .and_then(|t| t.save_safetensors(name, path))
            .map_err(|e| Failure { code: 1, message: format!("{}: {e}", path.display()) })
    };
    if let Some(p) = &args.save_latents {
        save(p, "latents", &out.latents)?;
    }
    if let Some(p) = &args.save_frames {
        save(p, "frames", &out.frames)?;
    }
    eprintln!("wrote {} frames to {}", progress.written, args.output);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => generate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
