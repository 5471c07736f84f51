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
use t2v_bridge::{
    Decoder, DeviceChoice, GenerationParams, Image, JobProgress, Latents, Precision,
    PreviewCadence, ProgressObserver, Request, Sampler, Service, ServiceConfig,
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
}

#[derive(Args, Clone)]
pub struct GenerateArgs {
    #[command(flatten)]
    models: ModelArgs,
    /// What the clip shows.
    #[arg(long)]
    prompt: String,
    /// Append a style preset's words to the prompt (`t2v presets` lists them).
    #[arg(long, conflicts_with = "styles")]
    style: Option<String>,
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
    /// unipc or euler [default: unipc, or the demo model's].
    #[arg(long)]
    sampler: Option<Sampler>,
    /// auto (f32 on the CPU, bf16 on a GPU: the node's choice too, so both share cached
    /// clips), f32, bf16 or f16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// auto (CUDA when built with it and present, else CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
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
    preview_every: Option<u32>,
    /// full (the model's VAE) or fast (a tiny TAEHV decoder: a quick draft). A fast decode is
    /// another clip; the tiny decoder is `tiny_decoder.safetensors` or `taew2_2.safetensors`
    /// / `.pth` beside the model's VAE, or --fast-decoder.
    #[arg(long, default_value = "full")]
    decoder: Decoder,
    /// The tiny decoder file (taew2_2 from madebyollin/taehv: .safetensors or .pth) for
    /// `--decoder fast` and the previews.
    #[arg(long = "fast-decoder", value_name = "FILE")]
    fast_decoder: Option<PathBuf>,
    /// Where to write the clip's metadata JSON. Default: next to the frames, named after the
    /// pattern (out/frame.%04d.png -> out/frame.json).
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// Neither read nor write the clip cache.
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// The clip cache folder (default: $T2V_CACHE_DIR, else the OS cache folder + text-to-video).
    #[arg(long = "cache-dir")]
    cache_dir: Option<PathBuf>,
    /// Free the text encoder after encoding the prompt (the default; kept for scripts).
    #[arg(long = "low-memory", conflicts_with = "keep_text_encoder")]
    low_memory: bool,
    /// Keep the text encoder loaded next to the transformer (about 11 GB more GPU memory with
    /// the real model; only helps a long-running service that encodes many new prompts).
    #[arg(long = "keep-text-encoder")]
    keep_text_encoder: bool,
    /// No progress output (and no notes on stderr).
    #[arg(long, short)]
    quiet: bool,
    /// bar (for people) or json (one JSON line per progress event on stdout, for scripts and
    /// render farms).
    #[arg(long, value_enum, default_value = "bar")]
    progress: ProgressFormat,
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
        if !args.quiet {
            eprintln!("prompt: {}", args.prompt);
        }
    }
    generate_clip(&args, &mut service).map(|_| ())
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
        v.styles.clear();
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
        (false, None) => GenerationParams::default(),
    };
    let params = GenerationParams {
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
    };
    params.validate()?;
    let model_path = if uses_demo {
        Some(t2v_demo::model_dir())
    } else {
        args.models.model.clone()
    };
    let mut request = Request::new(args.models.spec(model_path), params);
    request.precision = precision;
    request.image = args.image.as_deref().map(load_image).transpose()?;
    request.init_latents = args
        .init_latents
        .as_deref()
        .map(load_init_latents)
        .transpose()?;
    request.decoder = args.decoder;
    request.model.overrides.fast_decoder = args.fast_decoder.clone();
    request.preview = args
        .preview_every
        .map(|k| PreviewCadence::Every(k as usize));
    Ok(request)
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

/// Generates one clip with `args` and writes its files; starts `service` when it is needed.
fn generate_clip(
    args: &GenerateArgs,
    service: &mut Option<Service>,
) -> Result<Arc<t2v_bridge::Clip>, Failure> {
    let metadata_path = check_outputs(args)?;
    let request = request(args)?;
    let config = service_config(args)?;
    if service.is_none() {
        *service = Some(Service::new(config)?);
        install_ctrl_c();
    }
    let service = service.as_ref().expect("started above");
    let json = args.progress == ProgressFormat::Json;
    let (observer, events) = progress_channel();
    let job = service.submit_observed(request, json.then_some(observer))?;
    let frame_count = job.frame_count();
    let mut bar = ProgressBar::new(args.quiet || json);
    let mut written = 0usize;
    let write_frame = |i: usize, frame: &t2v_bridge::Frame| -> Result<(), Failure> {
        frames_out::write_png_frame(&args.output, i, frame, args.bit_depth).map_err(failure)?;
        if let Some(exr) = &args.exr {
            exr_out::write_exr_frame(exr, i, frame).map_err(failure)?;
        }
        Ok(())
    };
    let mut last_event: Option<JobProgress> = None;
    let mut previewed_step = 0;
    let outcome = loop {
        if INTERRUPTS.load(Ordering::SeqCst) > 0 {
            job.cancel();
        }
        // Woken by every change (a step, a preview, a frame), so that previews are written as
        // they come.
        job.wait_for_change(Duration::from_millis(100));
        let outcome = job.wait_timeout(Duration::ZERO);
        print_progress(events.try_iter(), &mut last_event);
        // Frames arrive in order: write each as soon as it exists.
        while written < frame_count {
            match job.frame(written) {
                Some(frame) => {
                    write_frame(written, &frame)?;
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
        bar.show(&job.progress());
        if let Some(outcome) = outcome {
            break outcome;
        }
    };
    bar.finish();
    if json {
        // The outcome can be seen before the worker has reported it: end with the final stage.
        print_progress(events.try_iter(), &mut last_event);
        let last = job.progress();
        if last_event.as_ref().is_none_or(|e| e.stage != last.stage) {
            print_progress(std::iter::once(last), &mut last_event);
        }
    }
    let clip = match outcome {
        Ok(clip) => clip,
        Err(e) if e.is_cancelled() => {
            drop(job);
            service.shutdown();
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
        write_frame(i, frame)?;
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
}
