//! The node's parameters: their script names (a public API for TDs: short, lower-case and
//! stable; documented in docs/node.md), how they are described, and how their values are read
//! into [`Settings`].

use crate::colour::Colour;
use ofx_bindings::descriptor::{ParamDescriptor, StringMode};
use ofx_bindings::param::ParamSet;
use ofx_bindings::sys::OfxTime;
use ofx_bindings::Result;
pub use t2v_bridge::params::{MAX_FRAMES, MAX_SIDE, MAX_STEPS};
use t2v_bridge::request::LoraSpec;
pub use t2v_bridge::upscale::MAX_OUTPUT_SIDE;
use t2v_bridge::{
    Decoder, DeviceChoice, MemoryBudget, Sampler, Sampling, StepCache, StepCacheMethod, Upscale,
    UpscaleTarget,
};

pub const PROMPT: &str = "prompt";
pub const NEGATIVE: &str = "negative";
pub const STYLE: &str = "style";
/// Secret: the `style` preset's name, what scripts keep (the `style` menu's indices move when
/// the presets change).
pub const STYLE_NAME: &str = "style_name";
pub const TAGS: &str = "tags";
pub const SEED: &str = "seed";
pub const STEPS: &str = "steps";
pub const GUIDANCE: &str = "guidance";
pub const SHIFT: &str = "shift";
pub const SAMPLER: &str = "sampler";
pub const CACHE_STEPS: &str = "cache_steps";
pub const RESOLUTION: &str = "resolution";
pub const WIDTH: &str = "width";
pub const HEIGHT: &str = "height";
pub const FRAMES: &str = "frames";
pub const FIRST_FRAME: &str = "first_frame";
pub const UPSCALE: &str = "upscale";
pub const UPSCALER: &str = "upscaler";
pub const MODEL: &str = "model";
pub const LORAS: &str = "loras";
pub const DEVICE: &str = "device";
pub const MEMORY: &str = "memory";
pub const QUEUE: &str = "queue";
pub const CREDENTIALS: &str = "credentials";
pub const COLOUR: &str = "colour";
pub const CACHE: &str = "cache";
pub const DECODER: &str = "decoder";
pub const CACHE_STEPS_METHOD: &str = "cache_steps_method";
pub const GENERATE: &str = "generate";
pub const CANCEL: &str = "cancel";
pub const STATUS: &str = "status";
/// Secret counter bumped on the main thread when frames arrive, so the host re-renders.
pub const GENERATION: &str = "generation";

const PAGE: &str = "page_main";
const GROUP_TEXT: &str = "group_text";
const GROUP_SAMPLING: &str = "group_sampling";
const GROUP_SIZE: &str = "group_size";
const GROUP_SETUP: &str = "group_setup";

/// The `resolution` choices, in order; `None` is `custom` (the `width`/`height` params).
pub const RESOLUTIONS: &[(&str, Option<(usize, usize)>)] = &[
    ("832x480", Some((832, 480))),
    ("480x832", Some((480, 832))),
    ("1280x704", Some((1280, 704))),
    ("704x1280", Some((704, 1280))),
    ("custom", None),
];
/// The `upscale` choices, in order; `None` is `off`.
pub const UPSCALES: &[(&str, Option<UpscaleTarget>)] = &[
    ("off", None),
    ("1.5x", Some(UpscaleTarget::X1_5)),
    ("2x", Some(UpscaleTarget::X2)),
    ("4x", Some(UpscaleTarget::X4)),
    ("to 720P", Some(UpscaleTarget::To720p)),
    ("to 1080P", Some(UpscaleTarget::To1080p)),
];
/// The `sampler` choices; new ones go at the end so that saved indices keep their meaning.
pub const SAMPLERS: &[(&str, Sampler)] = &[
    ("unipc", Sampler::UniPc),
    ("euler", Sampler::Euler),
    ("dmd", Sampler::Dmd),
];
/// The `cache_steps` choices.
pub const STEP_CACHES: &[(&str, StepCache)] = &[
    ("off", StepCache::Off),
    ("fast", StepCache::Fast),
    ("faster", StepCache::Faster),
];
/// The `cache_steps_method` choices: the first, the default, is the method that measured best
/// (docs/benchmarks.md); new ones go at the end.
pub const STEP_CACHE_METHODS: &[(&str, StepCacheMethod)] = &[
    ("easycache", StepCacheMethod::EasyCache),
    ("magcache", StepCacheMethod::MagCache),
];
/// New decoders go at the end: a saved choice is its index.
pub const DECODERS: &[(&str, Decoder)] = &[("full", Decoder::Full), ("fast", Decoder::Fast)];
pub const DEVICES: &[(&str, DeviceChoice)] = &[
    ("auto", DeviceChoice::Auto),
    ("CUDA", DeviceChoice::Cuda(0)),
    ("CPU", DeviceChoice::Cpu),
];
/// The `memory` choices: the GPU memory a generation may use (see docs/node.md).
pub const MEMORIES: &[(&str, MemoryBudget)] = &[
    ("auto", MemoryBudget::Auto),
    ("24 GB", MemoryBudget::Gib(24)),
    ("16 GB", MemoryBudget::Gib(16)),
    ("12 GB", MemoryBudget::Gib(12)),
    ("8 GB", MemoryBudget::Gib(8)),
];
/// The `device` choice after [`DEVICES`]: the studio's worker pool (see [`crate::remote`]).
pub const REMOTE_DEVICE: &str = "remote";

/// The `colour` choices; `None` is `auto`, the host's working space (see [`crate::working_space`]).
/// `auto` is last so that the indices saved in scripts before it existed keep their meaning.
pub const COLOURS: &[(&str, Option<Colour>)] = &[
    ("sRGB display", Some(Colour::SrgbDisplay)),
    ("linear", Some(Colour::Linear)),
    ("Rec.709", Some(Colour::Rec709)),
    ("auto", None),
];
/// The index of `auto` in [`COLOURS`]: the default.
pub const COLOUR_AUTO: i32 = 3;

fn labels<T>(options: &[(&'static str, T)]) -> Vec<&'static str> {
    options.iter().map(|(l, _)| *l).collect()
}

/// Every parameter, described once per context (`DescribeInContext`).
pub fn describe(set: &ParamSet) -> Result<()> {
    let max_side = MAX_SIDE as i32;
    ParamDescriptor::page(
        PAGE,
        &[
            GENERATE,
            CANCEL,
            STATUS,
            PROMPT,
            STYLE,
            TAGS,
            NEGATIVE,
            SEED,
            STEPS,
            GUIDANCE,
            SHIFT,
            SAMPLER,
            CACHE_STEPS,
            RESOLUTION,
            WIDTH,
            HEIGHT,
            FRAMES,
            FIRST_FRAME,
            UPSCALE,
            UPSCALER,
            MODEL,
            LORAS,
            DEVICE,
            MEMORY,
            QUEUE,
            CREDENTIALS,
            COLOUR,
            CACHE,
            DECODER,
            CACHE_STEPS_METHOD,
        ],
    )
    .label("Text to Video")
    .define(set)?;

    // Controls first: they are what the user reaches for.
    ParamDescriptor::push_button(GENERATE)
        .label("Generate")
        .hint("Generate the clip with the current settings (editing a parameter never starts a generation)")
        .define(set)?;
    ParamDescriptor::push_button(CANCEL)
        .label("Cancel")
        .hint("Stop this node's generation")
        .define(set)?;
    // A disabled single-line string, not IsLabel: Nuke neither saves nor updates labels.
    ParamDescriptor::string(STATUS, StringMode::SingleLine)
        .label("Status")
        .hint("What the node is doing; read-only")
        .enabled(false)
        .persistent(false)
        .evaluate_on_change(false)
        .animates(false)
        .define(set)?;
    ParamDescriptor::int(GENERATION)
        .label("Generation")
        .hint("Bumped when new frames arrive, so that the host renders again")
        .range_int(0, i32::MAX)
        .display_range_int(0, 1000)
        .animates(false)
        .secret(true)
        .define(set)?;

    ParamDescriptor::group(GROUP_TEXT)
        .label("Text")
        .define(set)?;
    ParamDescriptor::string(PROMPT, StringMode::MultiLine)
        .label("Prompt")
        .hint("What the clip shows")
        .animates(false)
        .parent(GROUP_TEXT)
        .define(set)?;
    let style_names = style_options();
    ParamDescriptor::choice(
        STYLE,
        &style_names.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .label("Style")
    .hint("A style preset whose words are appended to the prompt (t2v presets lists them)")
    .animates(false)
    .parent(GROUP_TEXT)
    .define(set)?;
    ParamDescriptor::string(STYLE_NAME, StringMode::SingleLine)
        .label("Style Name")
        .hint("The style preset's name, kept in the script; Style shows it")
        .animates(false)
        .secret(true)
        .parent(GROUP_TEXT)
        .define(set)?;
    ParamDescriptor::string(TAGS, StringMode::SingleLine)
        .label("Tags")
        .hint("Names from the tag library, comma-separated (golden-hour, dolly-in, ...): each appends its words to the prompt")
        .animates(false)
        .parent(GROUP_TEXT)
        .define(set)?;
    ParamDescriptor::string(NEGATIVE, StringMode::MultiLine)
        .label("Negative Prompt")
        .hint("What to steer away from; empty uses the Wan2.2 default negative prompt")
        .animates(false)
        .parent(GROUP_TEXT)
        .define(set)?;

    ParamDescriptor::group(GROUP_SAMPLING)
        .label("Sampling")
        .define(set)?;
    ParamDescriptor::int(SEED)
        .label("Seed")
        .hint("The same seed and settings give the same clip")
        .range_int(0, i32::MAX)
        .display_range_int(0, 100_000)
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;
    ParamDescriptor::int(STEPS)
        .label("Steps")
        .hint("Denoising steps: more is slower and usually cleaner")
        .default_int(50)
        .range_int(1, MAX_STEPS as i32)
        .display_range_int(1, 100)
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;
    ParamDescriptor::double(GUIDANCE)
        .label("Guidance")
        .hint("How strongly the prompt steers (classifier-free guidance); 1 or less turns it off")
        .default_double(5.0)
        .range_double(0.0, 100.0)
        .display_range_double(1.0, 10.0)
        .increment(0.1)
        .digits(2)
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;
    ParamDescriptor::double(SHIFT)
        .label("Shift")
        .hint("Noise schedule shift")
        .default_double(5.0)
        .range_double(0.01, 100.0)
        .display_range_double(1.0, 10.0)
        .increment(0.1)
        .digits(2)
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;
    ParamDescriptor::choice(SAMPLER, &labels(SAMPLERS))
        .label("Sampler")
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;
    ParamDescriptor::choice(CACHE_STEPS, &labels(STEP_CACHES))
        .label("Step Cache")
        .hint("Skip the transformer evaluations predicted to change little (by Step Cache Method's rule): fast saves about a quarter of them, faster about half, at some cost in detail")
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;

    ParamDescriptor::group(GROUP_SIZE)
        .label("Size")
        .define(set)?;
    ParamDescriptor::choice(RESOLUTION, &labels(RESOLUTIONS))
        .label("Resolution")
        .hint("Frame size; custom uses Width and Height")
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;
    ParamDescriptor::int(WIDTH)
        .label("Width")
        .hint("Custom width, a multiple of 32")
        .default_int(832)
        .range_int(32, max_side)
        .display_range_int(32, 1280)
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;
    ParamDescriptor::int(HEIGHT)
        .label("Height")
        .hint("Custom height, a multiple of 32")
        .default_int(480)
        .range_int(32, max_side)
        .display_range_int(32, 1280)
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;
    ParamDescriptor::int(FRAMES)
        .label("Frames")
        .hint("Clip length: 4k+1 frames (81 = 3.4 s, 121 = 5 s at 24 fps)")
        .default_int(81)
        .range_int(1, MAX_FRAMES as i32)
        .display_range_int(1, 121)
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;
    ParamDescriptor::int(FIRST_FRAME)
        .label("First Frame")
        .hint("The timeline frame that shows the clip's first frame")
        .default_int(1)
        .range_int(-1_000_000, 1_000_000)
        .display_range_int(0, 1000)
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;

    ParamDescriptor::choice(UPSCALE, &labels(UPSCALES))
        .label("Upscale")
        .hint("Upscale every frame as it is decoded with the Upscaler network (Real-ESRGAN): by a factor, or to a 720 or 1080 pixel short side. The node's output size follows")
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;
    ParamDescriptor::string(UPSCALER, StringMode::FilePath)
        .label("Upscaler")
        .hint("A Real-ESRGAN network file (.pth or .safetensors: RealESRGAN_x4plus, RealESRGAN_x2plus, realesr-animevideov3, realesr-general-x4v3); it runs at its own scale, then frames are resized to the exact size. Empty: the model folder's upscaler/ (the demo model ships a 2x one)")
        .animates(false)
        .parent(GROUP_SIZE)
        .define(set)?;

    ParamDescriptor::group(GROUP_SETUP)
        .label("Setup")
        .define(set)?;
    ParamDescriptor::string(MODEL, StringMode::DirectoryPath)
        .label("Model Path")
        .hint("A Wan2.2 TI2V-5B folder (diffusers or original files); empty uses the default model")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::string(LORAS, StringMode::MultiLine)
        .label("LoRAs")
        .hint("LoRA files merged into the model, one per line: FILE or FILE:STRENGTH (strength 1 when left out); lines starting with # are skipped. diffusers/PEFT, Wan/ComfyUI and kohya files load")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    let mut devices = labels(DEVICES);
    devices.push(REMOTE_DEVICE);
    ParamDescriptor::choice(DEVICE, &devices)
        .label("Device")
        .hint("Where the model runs; auto picks CUDA when available; remote: the studio's GPU pool (Queue), where Model Path names a model id of the workers (empty: the demo model)")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::choice(MEMORY, &labels(MEMORIES))
        .label("GPU Memory")
        .hint("The GPU memory a generation may use: auto (what is free on the GPU, less a margin for the host) or your card's size. Smaller budgets keep the text encoder off the GPU, stream the transformer's blocks and decode in tiles: slower, same clip")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::string(QUEUE, StringMode::SingleLine)
        .label("Queue")
        .hint("For the remote device: the queue server, nats://HOST:PORT or tls://HOST:PORT (empty: $T2V_QUEUE_URL)")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::string(CREDENTIALS, StringMode::FilePath)
        .label("Credentials")
        .hint("For the remote device: a NATS credentials file (.creds) (empty: $T2V_QUEUE_CREDS, else none)")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::choice(COLOUR, &labels(COLOURS))
        .label("Output Colour")
        .hint("auto: the host's working space (linear in Nuke and Natron, the model's sRGB in Resolve, what a colour-managed host asks for); sRGB display: the model's pixels as they are; linear: sRGB decoded; Rec.709: the BT.709 curve. The Source input is read in the same colour")
        .default_int(COLOUR_AUTO)
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::boolean(CACHE)
        .label("Clip Cache")
        .hint("Keep finished clips on disk and reuse them")
        .default_int(1)
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::choice(DECODER, &labels(DECODERS))
        .label("Decoder")
        .hint("full: the model's VAE; fast: a tiny decoder (taew2_2, in the model folder's tiny_decoder/; the demo model ships its own), a quick draft. A tiny decoder also makes the live previews")
        .animates(false)
        .parent(GROUP_SETUP)
        .define(set)?;
    ParamDescriptor::choice(CACHE_STEPS_METHOD, &labels(STEP_CACHE_METHODS))
        .label("Step Cache Method")
        .hint("The rule Step Cache skips by: easycache measures the change while the clip is made (no calibration; more detail kept at the same skips); magcache predicts it from the model's calibration (t2v calibrate)")
        .animates(false)
        .parent(GROUP_SAMPLING)
        .define(set)?;
    Ok(())
}

/// The sampling settings that replace the node's Steps, Guidance and Shift whatever they say:
/// the `sampler` menu's choice when it brings its own (`dmd`), else the Model Path folder's
/// declared ones (FastWan's `WanDMDPipeline`); `None` when the parameters are used.
pub fn fixed_sampling(set: &ParamSet) -> Result<Option<Sampling>> {
    let sampler = pick(SAMPLERS, set.param(SAMPLER)?.get_int(None)?);
    if let Some(sampling) = Sampling::recommended_for(sampler) {
        return Ok(Some(sampling));
    }
    let model = set.param(MODEL)?.get_string(None)?;
    Ok(match model.trim() {
        "" => None,
        model => declared_sampling(model),
    })
}

/// The presets (built-in, then the user's own from the config folder or `$T2V_PRESETS`), read
/// once per process: the `style` menu is described from them.
pub fn presets() -> &'static t2v_presets::Presets {
    static PRESETS: std::sync::OnceLock<t2v_presets::Presets> = std::sync::OnceLock::new();
    PRESETS.get_or_init(|| {
        t2v_presets::Presets::load().unwrap_or_else(|e| {
            crate::log!("presets: {e}; using the built-in presets only");
            t2v_presets::Presets::shipped()
        })
    })
}

/// The `style` choices: `none`, the built-in styles in the presets file's order, then the
/// user's own.
pub fn style_options() -> Vec<String> {
    std::iter::once("none".to_string())
        .chain(presets().styles.iter().map(|s| s.name.clone()))
        .collect()
}

/// The style a node uses: the name it keeps, else (a script from before `style_name`) the
/// menu entry; `None` for `none`.
fn style_of(name: &str, index: i32) -> Option<String> {
    let name = match name.trim() {
        "" => style_options().get(index.max(0) as usize)?.clone(),
        name => name.to_string(),
    };
    (name != "none").then_some(name)
}

/// The user picked a `style` entry: keep its name.
pub fn keep_style_name(set: &ParamSet) -> Result<()> {
    let index = set.param(STYLE)?.get_int(None)?.max(0) as usize;
    let name = style_options().get(index).cloned().unwrap_or_default();
    let param = set.param(STYLE_NAME)?;
    if param.get_string(None)? != name {
        param.set_string(&name)?;
    }
    Ok(())
}

/// CreateInstance: the `style` menu shows the kept name where the presets still have it (an
/// older script without a name gets its menu entry's). A name the presets lost stays, and
/// generating says it is unknown.
pub fn show_style_name(set: &ParamSet) -> Result<()> {
    let name = set.param(STYLE_NAME)?.get_string(None)?;
    if name.trim().is_empty() {
        return keep_style_name(set);
    }
    let choice = set.param(STYLE)?;
    if let Some(index) = style_options().iter().position(|o| *o == name) {
        if choice.get_int(None)? != index as i32 {
            choice.set_int(index as i32)?;
        }
    }
    Ok(())
}

/// The parameter values that shape the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The prompt as typed; [`Settings::full_prompt`] adds the style's and tags' words.
    pub prompt: String,
    /// The style preset's name, `None` for `none`.
    pub style: Option<String>,
    /// Tag names, as typed (comma-separated).
    pub tags: String,
    pub negative: String,
    pub seed: u64,
    pub steps: usize,
    pub guidance: f64,
    pub shift: f64,
    pub sampler: Sampler,
    pub step_cache: StepCache,
    pub step_cache_method: StepCacheMethod,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub first_frame: i32,
    /// `None`: `off`.
    pub upscale: Option<UpscaleTarget>,
    /// The Real-ESRGAN file, as typed.
    pub upscaler: String,
    pub model: String,
    /// LoRAs as typed: `FILE[:STRENGTH]` per line.
    pub loras: String,
    pub device: DeviceChoice,
    pub memory: MemoryBudget,
    /// The `remote` device: the studio's worker pool makes the clip.
    pub remote: bool,
    pub queue: String,
    pub credentials: String,
    /// `None`: `auto`, the host's working space.
    pub colour: Option<Colour>,
    pub cache: bool,
    pub decoder: Decoder,
    /// The decoder the style prefers (`draft`: fast when the model has a tiny decoder); when
    /// set it replaces `decoder` as the request is made (see [`t2v_bridge::preferred_decoder`]).
    pub style_decoder: Option<Decoder>,
    /// The `model` parameter is empty and the bundle's demo model stands in, with its own
    /// size, frame count and sampling settings.
    pub uses_demo: bool,
}

/// [`Sampling::declared_by`] for a model folder, read once per folder and process: settings
/// are read on every render.
fn declared_sampling(model: &str) -> Option<Sampling> {
    static DECLARED: std::sync::Mutex<Vec<(String, Option<Sampling>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut known = t2v_support::lock(&DECLARED);
    if let Some((_, s)) = known.iter().find(|(m, _)| m == model) {
        return *s;
    }
    let s = Sampling::declared_by(std::path::Path::new(model));
    known.push((model.to_string(), s));
    s
}

fn pick<T: Copy>(options: &[(&str, T)], index: i32) -> T {
    options[(index.max(0) as usize).min(options.len() - 1)].1
}

impl Settings {
    /// The clip's size as the host is told it (region of definition, clip format): bounded by
    /// the largest size the model takes, since hosts need not enforce the parameters' ranges
    /// and a host allocates what the node asks for.
    ///
    /// With an upscale, the upscaled size (bounded by [`MAX_OUTPUT_SIDE`]).
    pub fn clip_size(&self) -> (usize, usize) {
        let side = |v: usize| v.clamp(1, MAX_SIDE);
        let (width, height) = (side(self.width), side(self.height));
        match self.upscale {
            Some(target) => {
                let (w, h) = target.output_size(width, height);
                (w.min(MAX_OUTPUT_SIDE), h.min(MAX_OUTPUT_SIDE))
            }
            None => (width, height),
        }
    }

    /// The request's upscale for the model folder `model`: the Upscaler file, else the model
    /// folder's own upscaler (the demo model ships one); an upscale with neither is an error
    /// that says so.
    pub fn upscale_request(
        &self,
        model: &std::path::Path,
    ) -> std::result::Result<Option<Upscale>, t2v_bridge::Error> {
        let Some(target) = self.upscale else {
            return Ok(None);
        };
        match self.upscaler.trim() {
            "" => match t2v_bridge::upscale::model_upscaler(model) {
                Some(file) => Ok(Some(Upscale::new(target, file))),
                None => Err(t2v_bridge::Error::bad_input(format!(
                    "Upscale is {} but no Upscaler file is set and the model has none: choose \
                     a Real-ESRGAN .pth or .safetensors file, or set Upscale to off",
                    target
                ))),
            },
            file => Ok(Some(Upscale::new(target, file))),
        }
    }

    /// Reads every parameter (`time`: `None` for the current time, on the main thread).
    pub fn read(set: &ParamSet, time: Option<OfxTime>) -> Result<Settings> {
        let int = |name: &str| set.param(name)?.get_int(time);
        let resolution = pick(RESOLUTIONS, int(RESOLUTION)?);
        let (width, height) = match resolution {
            Some(size) => size,
            None => (int(WIDTH)?.max(0) as usize, int(HEIGHT)?.max(0) as usize),
        };
        let settings = Settings {
            prompt: set.param(PROMPT)?.get_string(time)?,
            style: style_of(&set.param(STYLE_NAME)?.get_string(time)?, int(STYLE)?),
            tags: set.param(TAGS)?.get_string(time)?,
            negative: set.param(NEGATIVE)?.get_string(time)?,
            seed: int(SEED)?.max(0) as u64,
            steps: int(STEPS)?.max(0) as usize,
            guidance: set.param(GUIDANCE)?.get_double(time)?,
            shift: set.param(SHIFT)?.get_double(time)?,
            sampler: pick(SAMPLERS, int(SAMPLER)?),
            step_cache: pick(STEP_CACHES, int(CACHE_STEPS)?),
            step_cache_method: pick(STEP_CACHE_METHODS, int(CACHE_STEPS_METHOD)?),
            width,
            height,
            frames: int(FRAMES)?.max(0) as usize,
            first_frame: int(FIRST_FRAME)?,
            upscale: pick(UPSCALES, int(UPSCALE)?),
            upscaler: set.param(UPSCALER)?.get_string(time)?,
            model: set.param(MODEL)?.get_string(time)?,
            loras: set.param(LORAS)?.get_string(time)?,
            device: pick(DEVICES, int(DEVICE)?),
            memory: pick(MEMORIES, int(MEMORY)?),
            remote: int(DEVICE)?.max(0) as usize == DEVICES.len(),
            queue: set.param(QUEUE)?.get_string(time)?,
            credentials: set.param(CREDENTIALS)?.get_string(time)?,
            colour: pick(COLOURS, int(COLOUR)?),
            cache: set.param(CACHE)?.get_bool(time)?,
            decoder: pick(DECODERS, int(DECODER)?),
            style_decoder: None,
            uses_demo: false,
        };
        Ok(settings
            .with_demo_defaults()
            .with_sampler_settings()
            .with_style_sampling()
            .with_declared_sampling())
    }

    /// The prompt with the style's and each tag's words appended, as `t2v --style --tag` does.
    pub fn full_prompt(&self) -> std::result::Result<String, t2v_bridge::Error> {
        let tags: Vec<String> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if self.style.is_none() && tags.is_empty() {
            return Ok(self.prompt.clone());
        }
        presets()
            .apply(&self.prompt, self.style.as_deref(), &tags)
            .map_err(|e| t2v_bridge::Error::bad_input(e.to_string()))
    }

    /// The LoRAs the style names, then those of the `loras` lines; an error names a bad line.
    pub fn loras(&self) -> std::result::Result<Vec<LoraSpec>, t2v_bridge::Error> {
        let named = presets()
            .style_loras(self.style.as_deref())
            .map_err(|e| t2v_bridge::Error::bad_input(e.to_string()))?;
        let own = LoraSpec::parse_lines(&self.loras)?;
        Ok(named
            .into_iter()
            .map(|l| LoraSpec {
                path: l.file,
                strength: l.strength,
            })
            .chain(own)
            .collect())
    }

    /// With an empty `model`, the demo model's trained settings replace the node's size, frame
    /// count and sampling settings (prompt, seed, colour and the rest stay the user's).
    fn with_demo_defaults(mut self) -> Settings {
        if !self.model.trim().is_empty() {
            return self;
        }
        let Some(demo) = crate::services::demo_model() else {
            return self;
        };
        let d = &demo.settings;
        self.width = d.width;
        self.height = d.height;
        self.frames = d.frames;
        self.steps = d.steps;
        self.guidance = d.guidance;
        self.shift = d.shift;
        self.sampler = d.sampler.parse().unwrap_or(self.sampler);
        if self.negative.trim().is_empty() {
            self.negative = d.negative_prompt.clone();
        }
        self.uses_demo = true;
        self
    }

    /// A sampler made for its own settings (`dmd`: its timesteps are the steps, guidance off,
    /// its shift) replaces the node's Steps, Guidance and Shift with them, as `t2v --sampler dmd`
    /// does ([`Sampling::recommended_for`]); the demo model keeps its own.
    fn with_sampler_settings(mut self) -> Settings {
        if self.uses_demo {
            return self;
        }
        if let Some(sampling) = Sampling::recommended_for(self.sampler) {
            self.steps = sampling.steps;
            self.guidance = sampling.guidance;
            self.shift = sampling.shift;
        }
        self
    }

    /// A style that sets sampling (`draft`: few steps, the step cache) replaces the node's
    /// sampling parameters with the values it sets. A style whose settings can't be read is
    /// logged and its sampling left out (its words still apply; Generate names a lost style).
    fn with_style_sampling(mut self) -> Settings {
        let Some(sampling) = self
            .style
            .as_deref()
            .and_then(|name| presets().style(name).ok())
            .and_then(|style| style.sampling.clone())
        else {
            return self;
        };
        match (
            sampling.sampler::<Sampler>(),
            sampling.step_cache::<StepCache>(),
            sampling.decoder::<Decoder>(),
        ) {
            (Ok(sampler), Ok(step_cache), Ok(decoder)) => {
                self.sampler = sampler.unwrap_or(self.sampler);
                self.step_cache = step_cache.unwrap_or(self.step_cache);
                self.style_decoder = decoder;
                self.steps = sampling.steps.unwrap_or(self.steps);
                self.guidance = sampling.guidance.unwrap_or(self.guidance);
                self.shift = sampling.shift.unwrap_or(self.shift);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                crate::log!("style {:?}: {e}", self.style)
            }
        }
        self
    }

    /// A model folder that declares its own sampling (a DMD-distilled model such as
    /// FastWan2.2-TI2V-5B) has it replace the node's sampler, steps, guidance and shift, as the
    /// demo model's settings do.
    fn with_declared_sampling(mut self) -> Settings {
        let model = self.model.trim();
        if self.uses_demo || model.is_empty() {
            return self;
        }
        if let Some(sampling) = declared_sampling(model) {
            self.sampler = sampling.sampler;
            self.steps = sampling.steps;
            self.guidance = sampling.guidance;
            self.shift = sampling.shift;
            // DMD's three steps have none to skip.
            self.step_cache = StepCache::Off;
        }
        self
    }

    /// The clip frame shown at timeline `time`: frames before the clip hold its first frame,
    /// frames after it hold its last.
    pub fn frame_index(&self, time: f64) -> usize {
        let i = time.round() as i64 - self.first_frame as i64;
        i.clamp(0, self.frames.max(1) as i64 - 1) as usize
    }
}
