//! `t2v generate`: submit one clip to a [`Service`] of our own, stream its frames to disk as
//! they are decoded, then write the extras (EXR, preview, metadata, tensors). `--style` and
//! `--tag` append prompt presets; `--styles` makes one clip per style plus a contact sheet.
//! Ctrl-C and SIGTERM cancel: the frames already written are removed.

use super::progress_bar::ProgressBar;
use super::{bad_input, failure, Failure, ModelArgs};
use crate::contact_sheet;
use crate::frames_out::{self, BitDepth};
use crate::{exr_out, preview};
use candle_core::{DType, Device, Tensor};
use clap::{Args, Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;
use t2v_bridge::request::LoraSpec;
use t2v_bridge::{
    Decoder, DeviceChoice, GenerationParams, Image, JobProgress, Latents, MemoryBudget, Precision,
    PreviewCadence, ProgressObserver, Request, Sampler, Sampling, Service, ServiceConfig,
    StepCache, StepCacheMethod, Upscale, UpscaleTarget,
};
use t2v_presets::Presets;

/// How `t2v generate` reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressFormat {
    /// A bar on a terminal, a line per stage otherwise (stderr).
    Bar,
    /// One JSON object per line on stdout for every progress event (each stage, each
    /// denoising step, each decoded chunk): the service's `JobProgress`.
    Json,
    /// Open Job Description's lines on stdout, which its runtime (AWS Deadline Cloud, `openjd
    /// run`) reads: `openjd_progress: PERCENT` as the job advances and `openjd_status: STAGE`
    /// at each stage.
    Openjd,
}

#[derive(Args, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub(crate) models: ModelArgs,
    /// What the clip shows.
    #[arg(long)]
    prompt: String,
    /// Append a style preset's words to the prompt (`t2v presets` lists them).
    #[arg(long, conflicts_with = "styles")]
    pub(crate) style: Option<String>,
    /// Append a tag's words to the prompt (after the style's); repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// One clip per style, all with the same seed: each style's files go to a folder named after
    /// it, inserted before the file name (out/frame.%04d.png -> out/anime/frame.%04d.png),
    /// plus a contact sheet (rows: styles, columns: sampled frames).
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    styles: Vec<String>,
    /// The contact sheet PNG of --styles [default: contact-sheet.png in the output pattern's
    /// folder].
    #[arg(long = "contact-sheet", requires = "styles")]
    contact_sheet: Option<PathBuf>,
    /// Frames per style in the contact sheet, spread from the first to the last.
    #[arg(long = "sheet-frames", default_value_t = 5, requires = "styles")]
    sheet_frames: usize,
    /// A LoRA to merge into the model, at a strength (1 when left out); repeatable. diffusers/PEFT,
    /// Wan/ComfyUI and kohya files load (docs/user-guide.md).
    #[arg(long = "lora", value_name = "FILE[:STRENGTH]", value_parser = parse_lora)]
    pub(crate) loras: Vec<LoraSpec>,
    /// Defaults to the Wan2.2 release's negative prompt; "" means an empty one.
    #[arg(long = "negative-prompt")]
    negative_prompt: Option<String>,
    /// Multiple of 32 [default: 832, or the demo model's].
    #[arg(long)]
    width: Option<usize>,
    /// Multiple of 32 [default: 480, or the demo model's].
    #[arg(long)]
    height: Option<usize>,
    /// Frame count of the form 4k+1 [default: 81, or the demo model's].
    #[arg(long)]
    frames: Option<usize>,
    /// Denoising steps [default: 50, or the demo model's].
    #[arg(long)]
    steps: Option<usize>,
    /// Classifier-free guidance scale, 1 or less turns it off [default: 5, or the demo model's].
    #[arg(long)]
    guidance: Option<f64>,
    /// Flow shift of the sampler's schedule [default: 5, or the demo model's].
    #[arg(long)]
    shift: Option<f64>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// unipc, euler or dmd (few-step DMD, for DMD-distilled models such as FastWan2.2-TI2V-5B;
    /// it brings 3 steps, guidance 1 and shift 8 for the flags left out) [default: unipc, the
    /// demo model's, or dmd for a folder whose model_index.json names WanDMDPipeline].
    #[arg(long)]
    sampler: Option<Sampler>,
    /// off, fast or faster: skip the transformer evaluations predicted to change little
    /// (see --step-cache-method).
    /// [default: off, or the style's]
    #[arg(long = "step-cache")]
    step_cache: Option<StepCache>,
    /// easycache (measures the change while the clip is made; no calibration) or magcache
    /// (predicts it from the model's calibration: the published one for Wan2.2 TI2V-5B, else
    /// `t2v calibrate`): the rule --step-cache skips by.
    /// [default: easycache, which kept more detail at the same skips in docs/benchmarks.md]
    #[arg(long = "step-cache-method")]
    step_cache_method: Option<StepCacheMethod>,
    /// auto (f32 on the CPU, bf16 on a GPU: the node's choice too, so both share cached
    /// clips), f32, bf16 or f16.
    #[arg(long, default_value = "auto")]
    pub(crate) dtype: String,
    /// auto (CUDA when built with it and present, else CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub(crate) device: String,
    /// GPU memory the generation may use: auto (the GPU's free memory less a margin for the
    /// host; no limit on the CPU) or a card size in GB (24, 16, 12, 8). The fastest plan that
    /// fits is chosen (`t2v info --plan` prints it); the clip is the same under any budget.
    #[arg(long, default_value = "auto")]
    pub(crate) vram: MemoryBudget,
    /// First frame (image-to-video); resized and centre-cropped to the output size.
    #[arg(long)]
    image: Option<PathBuf>,
    /// safetensors with tensor `latents` [1,48,F',H/16,W/16] f32, used instead of seeded noise.
    #[arg(long = "init-latents")]
    pub(crate) init_latents: Option<PathBuf>,
    /// Writes the final latents (before un-normalising) as safetensors tensor `latents`.
    #[arg(long = "save-latents")]
    save_latents: Option<PathBuf>,
    /// Writes the frames [F,H,W,3] f32 in [0,1] as safetensors tensor `frames` (upscaled,
    /// with --upscale).
    #[arg(long = "save-frames")]
    save_frames: Option<PathBuf>,
    /// Upscale every frame as it is decoded: 1.5x, 2x, 4x, or 720p / 1080p (the short side
    /// becomes 720 or 1080 pixels). With --upscaler's network, else the model folder's
    /// upscaler/ (the demo model ships a 2x one).
    #[arg(long, value_name = "1.5x|2x|4x|720p|1080p")]
    pub(crate) upscale: Option<UpscaleTarget>,
    /// The Real-ESRGAN network for --upscale: a .pth or .safetensors file (RealESRGAN_x4plus,
    /// RealESRGAN_x2plus, realesr-animevideov3, realesr-general-x4v3, ...). It runs at its own
    /// scale, then the frames are resized to the exact size.
    #[arg(long, requires = "upscale", value_name = "FILE")]
    upscaler: Option<PathBuf>,
    /// PNG frame file pattern: %04d, %d or #### stands for the frame number.
    #[arg(long, default_value = "out/frame.%04d.png")]
    output: String,
    /// Bits per sample of the PNG frames: 8 or 16.
    #[arg(long = "bit-depth", default_value = "8")]
    bit_depth: BitDepth,
    /// Also write OpenEXR frames (32-bit float, values as in the PNGs), e.g. out/frame.%04d.exr.
    #[arg(long)]
    exr: Option<String>,
    /// Also write an animated preview at 24 fps: FILE.gif or FILE.png (APNG). Default: none.
    #[arg(long)]
    preview: Option<PathBuf>,
    /// While denoising, rewrite the --preview file every K steps with the sampler's current
    /// estimate of the clip (a cheap projection of the latents, not the VAE); the decoded clip
    /// replaces it at the end.
    #[arg(long = "preview-every", value_name = "K", requires = "preview", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) preview_every: Option<u32>,
    /// full (the model's VAE) or fast (a tiny TAEHV decoder: a quick draft). A fast decode is
    /// another clip; the tiny decoder is `tiny_decoder.safetensors` or `taew2_2.safetensors`
    /// / `.pth` beside the model's VAE, or --fast-decoder.
    /// [default: full; a style that prefers fast (`draft`): fast when the model has a tiny
    /// decoder, else full]
    #[arg(long)]
    pub(crate) decoder: Option<Decoder>,
    /// The tiny decoder file (taew2_2 from madebyollin/taehv: .safetensors or .pth) for
    /// `--decoder fast` and the previews.
    #[arg(long = "fast-decoder", value_name = "FILE")]
    pub(crate) fast_decoder: Option<PathBuf>,
    /// Where to write the clip's metadata JSON. Default: next to the frames, named after the
    /// pattern (out/frame.%04d.png -> out/frame.json).
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// Neither read nor write the clip cache.
    #[arg(long = "no-cache")]
    pub(crate) no_cache: bool,
    /// The clip cache folder (default: $T2V_CACHE_DIR, else the OS cache folder + text-to-video).
    #[arg(long = "cache-dir")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Free the text encoder after encoding the prompt (the default; kept for scripts).
    #[arg(long = "low-memory", conflicts_with = "keep_text_encoder")]
    pub(crate) low_memory: bool,
    /// Keep the text encoder loaded next to the transformer (about 11 GB more GPU memory with
    /// the real model; only helps a long-running service that encodes many new prompts).
    #[arg(long = "keep-text-encoder")]
    pub(crate) keep_text_encoder: bool,
    /// No progress output (and no notes on stderr).
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// bar (for people) or json (one JSON line per progress event on stdout, for scripts and
    /// render farms).
    #[arg(long, value_enum, default_value = "bar")]
    progress: ProgressFormat,
    /// Generate on a shared worker pool instead of this machine (see docs/studio.md).
    #[command(flatten)]
    pub(crate) queue: super::remote::QueueArgs,
}

/// `t2v generate`'s arguments on their own, for building requests in tests and tools.
#[derive(Parser)]
#[command(name = "t2v generate")]
struct GenerateCommand {
    #[command(flatten)]
    args: GenerateArgs,
}

impl GenerateArgs {
    /// Parses `t2v generate`'s flags (without the program and command names).
    pub fn parse_from<I, T>(flags: I) -> Result<GenerateArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let argv = std::iter::once("t2v generate".into()).chain(flags.into_iter().map(Into::into));
        GenerateCommand::try_parse_from(argv).map(|c| c.args)
    }
}

impl GenerateArgs {
    /// `--quiet`.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// No `--model` nor component files: the built-in demo model.
    pub fn uses_demo(&self) -> bool {
        self.models.is_empty()
    }
}

/// `out/frame.%04d.png` -> `out/frame.json`: the pattern's file name without its frame number
/// and extension.
pub fn default_metadata_path(pattern: &str) -> Result<PathBuf, String> {
    let token = frames_out::frame_token(pattern)?;
    let path = PathBuf::from(pattern);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let without_ext = match name.rfind('.') {
        Some(dot) if dot > name.find(&token).unwrap_or(0) => &name[..dot],
        _ => name,
    };
    let stem = without_ext.replacen(&token, "", 1);
    let stem = stem.trim_end_matches(['.', '_', '-', ' ']);
    let stem = if stem.is_empty() { "clip" } else { stem };
    Ok(path.with_file_name(format!("{stem}.json")))
}

fn load_image(path: &Path) -> Result<Image, Failure> {
    let image = t2v_models::pipeline::first_frame::load_image(path).map_err(|e| {
        bad_input(format!(
            "--image {}: cannot be read as an image ({e}); use a PNG or JPEG file",
            path.display()
        ))
    })?;
    Ok(Image::from(&image))
}

fn load_init_latents(path: &Path) -> Result<Latents, Failure> {
    let mut tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| bad_input(format!("--init-latents {}: {e}", path.display())))?;
    let latents = tensors.remove("latents").ok_or_else(|| {
        bad_input(format!(
            "--init-latents {}: no tensor named `latents`",
            path.display()
        ))
    })?;
    Ok(Latents::from_tensor(&latents)?)
}

fn save_tensor(path: &Path, name: &str, t: &Tensor) -> Result<(), Failure> {
    frames_out::ensure_parent(path).map_err(bad_input)?;
    t.to_dtype(DType::F32)
        .and_then(|t| t.save_safetensors(name, path))
        .map_err(|e| failure(format!("{}: {e}", path.display())))
}

/// Ctrl-C presses (and SIGTERMs: render farms cancel with it) so far: the first cancels the
/// job, the second exits at once.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

fn install_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
            eprintln!("\ninterrupted again: exiting without waiting");
            std::process::exit(130);
        }
    });
}

/// Where the demo model's settings come from: the built-in model, or a model folder the user
/// named that holds a `demo.json` (a demo model trained with `t2v-train-demo --out DIR`).
enum DemoSource<'a> {
    BuiltIn,
    Folder(&'a Path),
}

/// The demo model's recommended settings, after telling the user that it is a demo model,
/// how to use real weights, and which prompt words it doesn't know.
fn demo_defaults(args: &GenerateArgs, source: DemoSource) -> Result<GenerationParams, Failure> {
    let settings = match source {
        DemoSource::BuiltIn => {
            let dir = t2v_demo::model_dir();
            if !dir.join("model_index.json").is_file() {
                return Err(bad_input(format!(
                    "no --model given, and the built-in demo model is missing from {} (not trained in this build): \
                     pass --model with a Wan2.2 TI2V-5B folder, or train the demo model with \
                     `cargo run --release -p t2v-demo-trainer --bin t2v-train-demo -- --out demo/model`",
                    dir.display()
                )));
            }
            if !args.quiet {
                eprintln!(
                    "using the built-in demo model ({}), a tiny model of the Wan2.2 architecture trained on {}.\n\
                     For real clips, pass --model with a Wan2.2 TI2V-5B folder (see docs/cli.md).",
                    dir.display(),
                    t2v_demo::shipped::capabilities()
                );
            }
            t2v_demo::shipped::settings_in(&dir)
                .unwrap_or_else(|_| t2v_demo::recommended_settings())
        }
        DemoSource::Folder(dir) => {
            // A folder the user named: a broken settings file is theirs to mend, not to guess.
            let settings = t2v_demo::shipped::settings_in(dir).map_err(|e| {
                bad_input(format!(
                    "--model {} holds a demo model whose settings can't be read ({e}): \
                     mend or delete {}",
                    dir.display(),
                    t2v_demo::SETTINGS_FILE
                ))
            })?;
            if !args.quiet {
                eprintln!(
                    "{} is a demo model (a tiny model of the Wan2.2 architecture trained on {}): \
                     the flags left out take its own settings ({}x{}, {} frames, {} steps).",
                    dir.display(),
                    t2v_demo::shipped::capabilities(),
                    settings.width,
                    settings.height,
                    settings.frames,
                    settings.steps
                );
            }
            settings
        }
    };
    if !args.quiet {
        let unknown = t2v_demo::unknown_words(&args.prompt);
        if !unknown.is_empty() {
            eprintln!(
                "warning: the demo model doesn't know: {}. It understands: {}",
                unknown.join(", "),
                t2v_demo::vocabulary().join(" ")
            );
        }
    }
    settings
        .generation_params()
        .map(GenerationParams::from)
        .map_err(failure)
}

pub fn run(mut args: GenerateArgs) -> Result<(), Failure> {
    let mut service = None;
    if !args.styles.is_empty() {
        return run_styles(args, &mut service);
    }
    if args.style.is_some() || !args.tags.is_empty() {
        let presets = Presets::load().map_err(|e| bad_input(e.to_string()))?;
        args.prompt = presets
            .apply(&args.prompt, args.style.as_deref(), &args.tags)
            .map_err(|e| bad_input(e.to_string()))?;
        args.loras = with_style_loras(&presets, args.style.as_deref(), &args.loras)?;
        if !args.quiet {
            eprintln!("prompt: {}", args.prompt);
        }
    }
    generate_clip(&args, &mut service).map(|_| ())
}

/// The LoRAs a style names, then the user's own `--lora`s.
fn with_style_loras(
    presets: &Presets,
    style: Option<&str>,
    loras: &[LoraSpec],
) -> Result<Vec<LoraSpec>, Failure> {
    let named = presets
        .style_loras(style)
        .map_err(|e| bad_input(e.to_string()))?;
    Ok(named
        .into_iter()
        .map(|l| LoraSpec {
            path: l.file,
            strength: l.strength,
        })
        .chain(loras.iter().cloned())
        .collect())
}

/// `path` with a folder named `style` inserted before its file name.
pub fn in_style_folder(path: &Path, style: &str) -> PathBuf {
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    path.parent()
        .unwrap_or(Path::new(""))
        .join(style)
        .join(name)
}

/// The same request once per style, sharing one service (the model loads once), then the
/// contact sheet.
fn run_styles(args: GenerateArgs, service: &mut Option<Service>) -> Result<(), Failure> {
    let presets = Presets::load().map_err(|e| bad_input(e.to_string()))?;
    for (i, style) in args.styles.iter().enumerate() {
        if args.styles[..i].contains(style) {
            return Err(bad_input(format!("--styles: {style:?} is listed twice")));
        }
    }
    if args.sheet_frames == 0 {
        return Err(bad_input("--sheet-frames: at least 1"));
    }
    // Every style is checked before anything is generated.
    let mut variants = Vec::new();
    for style in &args.styles {
        let mut v = args.clone();
        v.prompt = presets
            .apply(&args.prompt, Some(style), &args.tags)
            .map_err(|e| bad_input(format!("--styles: {e}")))?;
        v.loras = with_style_loras(&presets, Some(style), &args.loras)?;
        v.styles.clear();
        // Its sampling settings, if it has any (the prompt already has its words).
        v.style = Some(style.clone());
        let folder = |p: &Path| in_style_folder(p, style);
        let pattern = |p: &str| {
            in_style_folder(Path::new(p), style)
                .to_string_lossy()
                .into_owned()
        };
        v.output = in_style_folder(Path::new(&args.output), style)
            .to_string_lossy()
            .into_owned();
        v.exr = args.exr.as_deref().map(pattern);
        v.preview = args.preview.as_deref().map(folder);
        v.metadata = args.metadata.as_deref().map(folder);
        v.save_latents = args.save_latents.as_deref().map(folder);
        v.save_frames = args.save_frames.as_deref().map(folder);
        variants.push((style, v));
    }
    let sheet_path = args
        .contact_sheet
        .clone()
        .unwrap_or_else(|| Path::new(&args.output).with_file_name("contact-sheet.png"));
    let mut columns = Vec::new();
    let mut rows: Vec<Vec<t2v_bridge::Frame>> = Vec::new();
    for (style, v) in &variants {
        if !args.quiet {
            eprintln!("style {style}: {}", v.prompt);
        }
        let clip = generate_clip(v, service)?;
        columns = contact_sheet::sample_frames(clip.frames.len(), args.sheet_frames);
        // Only the sampled frames are kept: a real clip is ~100 MB.
        rows.push(columns.iter().map(|&i| clip.frames[i].clone()).collect());
    }
    let clips: Vec<&[t2v_bridge::Frame]> = rows.iter().map(|r| r.as_slice()).collect();
    let sampled: Vec<usize> = (0..columns.len()).collect();
    contact_sheet::write_contact_sheet(&sheet_path, &clips, &sampled).map_err(failure)?;
    if !args.quiet {
        let styles = args.styles.join(", ");
        eprintln!(
            "wrote the contact sheet {} (rows: {styles}; columns: frames {columns:?})",
            sheet_path.display()
        );
    }
    Ok(())
}

/// Checks the output flags that can be checked before anything runs.
fn check_outputs(args: &GenerateArgs) -> Result<PathBuf, Failure> {
    frames_out::frame_path(&args.output, 0).map_err(|e| bad_input(format!("--output: {e}")))?;
    if let Some(exr) = &args.exr {
        frames_out::frame_path(exr, 0).map_err(|e| bad_input(format!("--exr: {e}")))?;
    }
    if let (Some(p), Some(_)) = (&args.preview, args.preview_every) {
        frames_out::ensure_parent(p).map_err(bad_input)?;
    }
    if let Some(p) = &args.preview {
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !matches!(ext.as_str(), "gif" | "png" | "apng") {
            return Err(bad_input(format!(
                "--preview {}: use a .gif or .png (animated PNG) file name",
                p.display()
            )));
        }
    }
    match &args.metadata {
        Some(p) => Ok(p.clone()),
        None => default_metadata_path(&args.output).map_err(bad_input),
    }
}

fn parse_lora(text: &str) -> Result<LoraSpec, String> {
    LoraSpec::parse(text).map_err(|e| e.to_string())
}

/// The sampling settings the style `name` sets, if any.
fn style_sampling(name: &str) -> Result<Option<t2v_presets::SamplingPreset>, Failure> {
    let presets = Presets::load().map_err(|e| bad_input(e.to_string()))?;
    let style = presets.style(name).map_err(|e| bad_input(e.to_string()))?;
    Ok(style.sampling.clone())
}

/// `params` with the sampling settings the style `name` sets, if any.
pub(crate) fn with_style_sampling(
    mut params: GenerationParams,
    name: &str,
) -> Result<GenerationParams, Failure> {
    let Some(s) = &style_sampling(name)? else {
        return Ok(params);
    };
    let named = |e: t2v_presets::PresetError| bad_input(format!("style {name}: {e}"));
    if let Some(sampler) = s.sampler::<Sampler>().map_err(named)? {
        params.sampler = sampler;
    }
    if let Some(step_cache) = s.step_cache::<StepCache>().map_err(named)? {
        params.step_cache = step_cache;
    }
    params.steps = s.steps.unwrap_or(params.steps);
    params.guidance = s.guidance.unwrap_or(params.guidance);
    params.shift = s.shift.unwrap_or(params.shift);
    Ok(params)
}

/// Wan2.2's defaults, with the sampling the model folder declares for itself (a DMD-distilled
/// model such as FastWan2.2-TI2V-5B: DMD, 3 steps, no guidance).
fn declared_defaults(args: &GenerateArgs) -> GenerationParams {
    let defaults = GenerationParams::default();
    let Some(dir) = args.models.model.as_deref() else {
        return defaults;
    };
    let Some(sampling) = Sampling::declared_by(dir) else {
        return defaults;
    };
    if !args.quiet {
        eprintln!(
            "{} is a DMD-distilled model: the flags left out take its settings \
             (--sampler {} --steps {} --guidance {} --shift {}).",
            dir.display(),
            sampling.sampler,
            sampling.steps,
            sampling.guidance,
            sampling.shift
        );
    }
    defaults.with_sampling(sampling)
}

/// The request `args` describe: the model (or the demo model), the parameters with the
/// model's defaults for the flags left out, the precision and the inputs.
pub fn request(args: &GenerateArgs) -> Result<Request, Failure> {
    let precision: Precision = args
        .dtype
        .parse()
        .map_err(|e: String| bad_input(format!("--dtype: {e}")))?;
    let uses_demo = args.models.is_empty();
    if !uses_demo && !args.models.is_complete() {
        return Err(bad_input(
            "without --model, pass all of --transformer, --vae and --text-encoder (or none of them for the demo model)",
        ));
    }
    // The flags left out take the model's defaults: Wan2.2's, or the demo model's own.
    let named_demo = args
        .models
        .model
        .as_deref()
        .filter(|dir| dir.join(t2v_demo::SETTINGS_FILE).is_file());
    let defaults = match (uses_demo, named_demo) {
        (true, _) => demo_defaults(args, DemoSource::BuiltIn)?,
        (false, Some(dir)) => demo_defaults(args, DemoSource::Folder(dir))?,
        (false, None) => declared_defaults(args),
    };
    // A style's sampling settings (`draft`: few steps, the step cache) come next.
    let defaults = match &args.style {
        Some(style) => with_style_sampling(defaults, style)?,
        None => defaults,
    };
    // A sampler made for its own settings (DMD) brings them for the flags left out.
    let defaults = match args.sampler.and_then(Sampling::recommended_for) {
        Some(sampling) if defaults.sampler != sampling.sampler => defaults.with_sampling(sampling),
        _ => defaults,
    };
    let params = params_with_defaults(args, defaults);
    params.validate()?;
    let model_path = if uses_demo {
        Some(t2v_demo::model_dir())
    } else {
        args.models.model.clone()
    };
    let mut request = Request::new(args.models.spec(model_path), params);
    request.model.loras = args.loras.clone();
    request.precision = precision;
    request.memory = args.vram;
    request.image = args.image.as_deref().map(load_image).transpose()?;
    request.init_latents = args
        .init_latents
        .as_deref()
        .map(load_init_latents)
        .transpose()?;
    if let Some(target) = args.upscale {
        let file = match &args.upscaler {
            Some(file) => file.clone(),
            None => model_upscaler_or_error(request.model.path.as_deref())?,
        };
        let upscale = Upscale::new(target, file);
        upscale.output_size(request.params.width, request.params.height)?;
        upscale
            .fingerprint()
            .map_err(|e| bad_input(format!("--upscaler: {}", e.message)))?;
        request.upscale = Some(upscale);
    }
    request.model.overrides.fast_decoder = args.fast_decoder.clone();
    request.decoder = decoder(args, &request.model)?;
    request.preview = args
        .preview_every
        .map(|k| PreviewCadence::Every(k as usize));
    Ok(request)
}

/// The decoder: `--decoder`, else the style's preference for this model (fast only when the
/// model has a tiny decoder), else full.
fn decoder(
    args: &GenerateArgs,
    model: &t2v_bridge::request::ModelSpec,
) -> Result<Decoder, Failure> {
    if let Some(decoder) = args.decoder {
        return Ok(decoder);
    }
    let Some(preference) = style_decoder(args)? else {
        return Ok(Decoder::Full);
    };
    let decoder = t2v_bridge::preferred_decoder(preference, model);
    if decoder != preference && !args.quiet {
        eprintln!(
            "style {}: the model has no tiny decoder (tiny_decoder/ in its folder, or --fast-decoder FILE), so the full decoder decodes",
            args.style.as_deref().unwrap_or_default()
        );
    }
    Ok(decoder)
}

/// The decoder `--style`'s style prefers (`draft`: fast), if it names one.
pub(crate) fn style_decoder(args: &GenerateArgs) -> Result<Option<Decoder>, Failure> {
    let Some(name) = &args.style else {
        return Ok(None);
    };
    match &style_sampling(name)? {
        Some(s) => s
            .decoder::<Decoder>()
            .map_err(|e| bad_input(format!("style {name}: {e}"))),
        None => Ok(None),
    }
}

/// The upscaler of `--upscale` without `--upscaler`: the model folder's own (its
/// `upscaler/`), or an error that says what to pass.
fn model_upscaler_or_error(model: Option<&Path>) -> Result<PathBuf, Failure> {
    let folder = t2v_bridge::upscale::UPSCALER_FOLDER;
    model
        .filter(|m| m.is_dir())
        .and_then(t2v_bridge::upscale::model_upscaler)
        .ok_or_else(|| {
            bad_input(format!(
                "--upscale needs a network: pass --upscaler FILE (a Real-ESRGAN .pth or \
                 .safetensors file such as realesr-animevideov3.pth), or use a model folder \
                 that has one in its {folder}/ folder (the demo model does)"
            ))
        })
}

/// The built-in demo model's settings (after the notes about it), as `t2v generate` uses them
/// when no model is named.
pub(crate) fn builtin_demo_defaults(args: &GenerateArgs) -> Result<GenerationParams, Failure> {
    demo_defaults(args, DemoSource::BuiltIn)
}

pub(crate) fn load_first_frame(args: &GenerateArgs) -> Result<Option<Image>, Failure> {
    args.image.as_deref().map(load_image).transpose()
}

/// The parameters the flags ask for, `defaults` standing in for the flags left out.
pub(crate) fn params_with_defaults(
    args: &GenerateArgs,
    defaults: GenerationParams,
) -> GenerationParams {
    GenerationParams {
        prompt: args.prompt.clone(),
        negative_prompt: args.negative_prompt.clone().or(defaults.negative_prompt),
        width: args.width.unwrap_or(defaults.width),
        height: args.height.unwrap_or(defaults.height),
        frames: args.frames.unwrap_or(defaults.frames),
        steps: args.steps.unwrap_or(defaults.steps),
        guidance: args.guidance.unwrap_or(defaults.guidance),
        shift: args.shift.unwrap_or(defaults.shift),
        sampler: args.sampler.unwrap_or(defaults.sampler),
        seed: args.seed,
        step_cache: args.step_cache.unwrap_or(defaults.step_cache),
        step_cache_method: args.step_cache_method.unwrap_or(defaults.step_cache_method),
    }
}

/// The service `args` ask for.
pub fn service_config(args: &GenerateArgs) -> Result<ServiceConfig, Failure> {
    let device: DeviceChoice = args
        .device
        .parse()
        .map_err(|e: String| bad_input(format!("--device: {e}")))?;
    Ok(ServiceConfig {
        device,
        idle_unload: None,
        cache_dir: args.cache_dir.clone(),
        use_disk_cache: !args.no_cache,
        low_memory: args.low_memory || !args.keep_text_encoder,
        ..ServiceConfig::default()
    })
}

/// Progress events from the worker, for `--progress json`.
fn progress_channel() -> (ProgressObserver, Receiver<JobProgress>) {
    let (tx, rx) = channel();
    let tx = std::sync::Mutex::new(tx);
    let observer: ProgressObserver = Arc::new(move |p: &JobProgress| {
        let _ = t2v_support::lock(&tx).send(p.clone());
    });
    (observer, rx)
}

/// Prints progress events as JSON lines on stdout, remembering the last.
fn print_progress(events: impl Iterator<Item = JobProgress>, last: &mut Option<JobProgress>) {
    for event in events {
        println!(
            "{}",
            serde_json::to_string(&event).expect("progress serialises")
        );
        *last = Some(event);
    }
}

/// `--progress openjd`: a line whenever the whole percent or the stage changes.
#[derive(Default)]
struct OpenJdProgress {
    percent: Option<u32>,
    stage: Option<String>,
}

impl OpenJdProgress {
    fn show(&mut self, p: &JobProgress) {
        let stage = match p.stage {
            // A line per stage, not per step or frame.
            t2v_bridge::JobStage::Denoising { .. } => "denoising".to_string(),
            t2v_bridge::JobStage::Decoding { .. } => "decoding".to_string(),
            s => s.to_string(),
        };
        if self.stage.as_deref() != Some(stage.as_str()) {
            println!("openjd_status: {stage}");
            self.stage = Some(stage);
        }
        let percent = (p.fraction.clamp(0.0, 1.0) * 100.0).floor() as u32;
        if self.percent != Some(percent) {
            println!("openjd_progress: {percent}");
            self.percent = Some(percent);
        }
    }
}

/// Removes the frames of a cancelled run, so that nothing half-done is left to be taken for
/// a finished clip. Returns how many files were removed.
fn remove_written(args: &GenerateArgs, written: usize) -> usize {
    let mut removed = 0;
    for i in 0..written {
        let patterns = std::iter::once(&args.output).chain(args.exr.as_ref());
        for pattern in patterns {
            if let Ok(path) = frames_out::frame_path(pattern, i) {
                removed += std::fs::remove_file(path).is_ok() as usize;
            }
        }
    }
    removed
}

/// What `t2v generate` follows while a clip is made: a job of its own service, or one in the
/// shared queue.
pub(crate) trait FollowedJob {
    fn frame_count(&self) -> usize;
    fn frame(&self, index: usize) -> Option<t2v_bridge::Frame>;
    fn progress(&self) -> JobProgress;
    fn wait_timeout(&self, timeout: Duration) -> Option<t2v_bridge::Result<Arc<t2v_bridge::Clip>>>;
    fn cancel(&self);
    /// The latest live preview, where the job makes them.
    fn preview(&self) -> Option<Arc<t2v_bridge::preview::Preview>> {
        None
    }
}

impl FollowedJob for t2v_bridge::JobHandle {
    fn frame_count(&self) -> usize {
        self.frame_count()
    }
    fn frame(&self, index: usize) -> Option<t2v_bridge::Frame> {
        self.frame(index)
    }
    fn progress(&self) -> JobProgress {
        self.progress()
    }
    fn wait_timeout(&self, timeout: Duration) -> Option<t2v_bridge::Result<Arc<t2v_bridge::Clip>>> {
        self.wait_timeout(timeout)
    }
    fn cancel(&self) {
        self.cancel()
    }
    fn preview(&self) -> Option<Arc<t2v_bridge::preview::Preview>> {
        self.preview()
    }
}

fn write_frame(args: &GenerateArgs, i: usize, frame: &t2v_bridge::Frame) -> Result<(), Failure> {
    frames_out::write_png_frame(&args.output, i, frame, args.bit_depth).map_err(failure)?;
    if let Some(exr) = &args.exr {
        exr_out::write_exr_frame(exr, i, frame).map_err(failure)?;
    }
    Ok(())
}

/// Starts the Ctrl-C / SIGTERM handler once; later presses are counted in [`interrupted`].
pub(crate) fn watch_interrupts() {
    install_ctrl_c();
}

/// Whether Ctrl-C or SIGTERM arrived.
pub(crate) fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// Follows `job` to its end: writes each frame as soon as it exists, shows progress (`events`
/// are the service's progress events; without them progress is printed when it changes), and
/// cancels on Ctrl-C. Returns the outcome and how many frames were written.
pub(crate) fn follow_job(
    args: &GenerateArgs,
    job: &dyn FollowedJob,
    events: Option<&Receiver<JobProgress>>,
) -> Result<(t2v_bridge::Result<Arc<t2v_bridge::Clip>>, usize), Failure> {
    let json = args.progress == ProgressFormat::Json;
    let mut openjd = (args.progress == ProgressFormat::Openjd).then(OpenJdProgress::default);
    let frame_count = job.frame_count();
    let mut bar = ProgressBar::new(args.quiet || json || openjd.is_some());
    let mut written = 0usize;
    let mut last_event: Option<JobProgress> = None;
    let mut previewed_step = 0;
    let outcome = loop {
        if interrupted() {
            job.cancel();
        }
        let outcome = job.wait_timeout(Duration::from_millis(100));
        let progress = job.progress();
        if json {
            match events {
                Some(events) => print_progress(events.try_iter(), &mut last_event),
                None if last_event.as_ref() != Some(&progress) => {
                    print_progress(std::iter::once(progress.clone()), &mut last_event)
                }
                None => {}
            }
        }
        // Frames arrive in order: write each as soon as it exists.
        while written < frame_count {
            match job.frame(written) {
                Some(frame) => {
                    write_frame(args, written, &frame)?;
                    written += 1;
                }
                None => break,
            }
        }
        if let (Some(path), Some(preview)) = (&args.preview, job.preview()) {
            if preview.step != previewed_step {
                previewed_step = preview.step;
                preview::write_preview(path, &preview.frames, preview::PREVIEW_FPS)
                    .map_err(failure)?;
                if !args.quiet && !json {
                    eprintln!(
                        "\rpreview after step {} of {}: {}",
                        preview.step,
                        preview.steps,
                        path.display()
                    );
                }
            }
        }
        bar.show(&progress);
        if let Some(openjd) = &mut openjd {
            match events {
                Some(events) => events.try_iter().for_each(|e| openjd.show(&e)),
                None => openjd.show(&progress),
            }
        }
        if let Some(outcome) = outcome {
            break outcome;
        }
    };
    bar.finish();
    if let Some(openjd) = &mut openjd {
        if let Some(events) = events {
            events.try_iter().for_each(|e| openjd.show(&e));
        }
        openjd.show(&job.progress());
    }
    if json {
        // The outcome can be seen before the worker has reported it: end with the final stage.
        if let Some(events) = events {
            print_progress(events.try_iter(), &mut last_event);
        }
        let last = job.progress();
        if last_event.as_ref().is_none_or(|e| e.stage != last.stage) {
            print_progress(std::iter::once(last), &mut last_event);
        }
    }
    Ok((outcome, written))
}

/// Generates on this machine's own service (started when first needed).
fn generate_local(
    args: &GenerateArgs,
    service: &mut Option<Service>,
) -> Result<(t2v_bridge::Result<Arc<t2v_bridge::Clip>>, usize), Failure> {
    let request = request(args)?;
    let config = service_config(args)?;
    if service.is_none() {
        *service = Some(Service::new(config)?);
        install_ctrl_c();
    }
    let service = service.as_ref().expect("started above");
    let json = args.progress == ProgressFormat::Json;
    // JSON and the farm's status lines see every event: a stage can pass between two polls.
    let observed = json || args.progress == ProgressFormat::Openjd;
    if !args.quiet && !json {
        // The plan the service will run (its errors come from submit, below).
        if let Ok(plan) = service.plan(&request) {
            eprintln!("memory budget {}: {}", args.vram, plan.peak_line());
        }
    }
    let (observer, events) = progress_channel();
    let job = service.submit_observed(request, observed.then_some(observer))?;
    follow_job(args, &job, Some(&events))
}

/// Generates one clip with `args` and writes its files; starts `service` when it is needed.
fn generate_clip(
    args: &GenerateArgs,
    service: &mut Option<Service>,
) -> Result<Arc<t2v_bridge::Clip>, Failure> {
    let metadata_path = check_outputs(args)?;
    let (outcome, written) = match args.queue.url() {
        Some(url) => super::remote::generate(args, &url)?,
        None => generate_local(args, service)?,
    };
    let clip = match outcome {
        Ok(clip) => clip,
        Err(e) if e.is_cancelled() => {
            if let Some(service) = service.as_ref() {
                service.shutdown();
            }
            let removed = remove_written(args, written);
            return Err(Failure {
                code: 130,
                message: format!(
                    "cancelled; the {removed} frame files already written were removed; the clip cache is unchanged"
                ),
            });
        }
        Err(e) => return Err(e.into()),
    };
    for (i, frame) in clip.frames.iter().enumerate().skip(written) {
        write_frame(args, i, frame)?;
    }
    if let Some(p) = &args.preview {
        preview::write_preview(p, &clip.frames, preview::PREVIEW_FPS).map_err(failure)?;
    }
    frames_out::ensure_parent(&metadata_path).map_err(bad_input)?;
    let mut metadata = serde_json::to_value(&clip.metadata).expect("metadata serialises");
    metadata["from_cache"] = serde_json::Value::Bool(clip.from_cache);
    metadata["output"] = serde_json::Value::String(args.output.clone());
    std::fs::write(
        &metadata_path,
        serde_json::to_string_pretty(&metadata).expect("json"),
    )
    .map_err(|e| failure(format!("{}: {e}", metadata_path.display())))?;
    if let Some(p) = &args.save_latents {
        let latents = clip
            .latents
            .as_ref()
            .ok_or_else(|| failure("this cached clip has no latents; rerun with --no-cache"))?;
        save_tensor(p, "latents", &latents.to_tensor(&Device::Cpu)?)?;
    }
    if let Some(p) = &args.save_frames {
        let frames = t2v_bridge::frame::frames_to_tensor(&clip.frames)
            .map_err(|e| failure(e.to_string()))?;
        save_tensor(p, "frames", &frames)?;
    }
    if !args.quiet {
        let source = if clip.from_cache {
            " (from the clip cache)"
        } else {
            ""
        };
        eprintln!(
            "wrote {} frames to {}{source}",
            clip.frames.len(),
            args.output
        );
    }
    Ok(clip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_sits_next_to_the_frames() {
        assert_eq!(
            default_metadata_path("out/frame.%04d.png").unwrap(),
            PathBuf::from("out/frame.json")
        );
        assert_eq!(
            default_metadata_path("shot_###.png").unwrap(),
            PathBuf::from("shot.json")
        );
        assert_eq!(
            default_metadata_path("a/%d.png").unwrap(),
            PathBuf::from("a/clip.json")
        );
    }

    #[test]
    fn style_folders_go_before_the_file_name() {
        assert_eq!(
            in_style_folder(Path::new("out/frame.%04d.png"), "anime"),
            PathBuf::from("out/anime/frame.%04d.png")
        );
        assert_eq!(
            in_style_folder(Path::new("frame.%04d.png"), "flat"),
            PathBuf::from("flat/frame.%04d.png")
        );
        assert_eq!(
            in_style_folder(Path::new("/a/b/c.json"), "noir"),
            PathBuf::from("/a/b/noir/c.json")
        );
    }

    fn params_for(flags: &[&str]) -> GenerationParams {
        let args = GenerateArgs::parse_from(flags.iter().copied()).unwrap();
        request(&args).unwrap().params
    }

    fn tiny_model() -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/tests/fixtures/tiny-diffusers")
            .display()
            .to_string()
    }

    #[test]
    fn dmd_brings_its_own_settings_for_the_flags_left_out() {
        let model = tiny_model();
        let base = ["--quiet", "--prompt", "a ball", "--model", model.as_str()];
        let plain = params_for(&base);
        assert_eq!((plain.sampler, plain.steps), (Sampler::UniPc, 50));
        let dmd = params_for(&[&base[..], &["--sampler", "dmd"]].concat());
        assert_eq!(
            (dmd.sampler, dmd.steps, dmd.guidance, dmd.shift),
            (Sampler::Dmd, 3, 1.0, 8.0)
        );
        let four = params_for(&[&base[..], &["--sampler", "dmd", "--steps", "4"]].concat());
        assert_eq!((four.steps, four.guidance), (4, 1.0));
    }

    #[test]
    fn the_draft_style_brings_few_steps_and_the_step_cache_unless_flags_say_otherwise() {
        let model = tiny_model();
        let base = ["--quiet", "--prompt", "a ball", "--model", model.as_str()];
        let draft = params_for(&[&base[..], &["--style", "draft"]].concat());
        assert_eq!((draft.steps, draft.step_cache), (10, StepCache::Fast));
        let mine = params_for(
            &[
                &base[..],
                &["--style", "draft", "--steps", "6", "--step-cache", "off"],
            ]
            .concat(),
        );
        assert_eq!((mine.steps, mine.step_cache), (6, StepCache::Off));
        let anime = params_for(&[&base[..], &["--style", "anime"]].concat());
        assert_eq!((anime.steps, anime.step_cache), (50, StepCache::Off));
    }

    #[test]
    fn a_folder_of_wan_dmd_pipeline_runs_dmd_unless_told_otherwise() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("model_index.json"),
            r#"{"_class_name": "WanDMDPipeline"}"#,
        )
        .unwrap();
        let model = tmp.path().display().to_string();
        let base = ["--quiet", "--prompt", "a ball", "--model", model.as_str()];
        let p = params_for(&base);
        assert_eq!(
            (p.sampler, p.steps, p.guidance, p.shift),
            (Sampler::Dmd, 3, 1.0, 8.0)
        );
        let p = params_for(&[&base[..], &["--sampler", "euler", "--steps", "20"]].concat());
        assert_eq!((p.sampler, p.steps), (Sampler::Euler, 20));
    }
}
