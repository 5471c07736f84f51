//! Generation: prompt embeddings, seeded noise, the denoising loop with classifier-free guidance
//! and first-frame conditioning, and the streaming decode. Each stage is a function of its own
//! so that a caller (the generation service) can cache embeddings, release models between
//! stages, report progress and cancel; [`generate`] runs them all.

pub mod easy_cache;
pub mod first_frame;
pub mod noise;
pub mod request;
pub mod step_cache;

pub use request::{GenerationParams, DEFAULT_NEGATIVE_PROMPT};

use crate::dit::{PromptContext, TokenTimesteps, WanTransformer};
use crate::sampling::Sampler;
use crate::text::{PromptTokenizer, Umt5Encoder};
use crate::vae::WanVae;
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use image::DynamicImage;
use step_cache::StepCache;

/// Where a generation is; reported to [`Progress::stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    EncodingPrompt,
    EncodingImage,
    Denoising,
    Decoding,
}

/// Receives progress and decoded frames. Returning an error (usually [`Error::Cancelled`])
/// stops the generation at the next step or chunk; [`Progress::cancelled`] stops it sooner.
pub trait Progress {
    /// Asked before every transformer block and every VAE chunk: `true` ends the generation
    /// with [`Error::Cancelled`] there, within about a second even for the real model. Called
    /// often: it must be cheap (an atomic load).
    fn cancelled(&self) -> bool {
        false
    }
    fn stage(&mut self, _stage: Stage) -> Result<()> {
        Ok(())
    }
    /// Called after each denoising step with the latents it produced.
    fn step(&mut self, _index: usize, _steps: usize, _latents: &Tensor) -> Result<()> {
        Ok(())
    }
    /// Whether [`Progress::denoised`] should be called after step `index` (asked before it).
    fn wants_denoised(&self, _index: usize, _steps: usize) -> bool {
        false
    }
    /// After step `index` (and [`Progress::step`]), when [`Progress::wants_denoised`] said so:
    /// the sampler's estimate of the clean latents at that step, `x0 = x_t - sigma_t * flow`
    /// (normalised, `[1, C, F', h, w]` f32, the image condition in frame 0): what a preview shows.
    fn denoised(&mut self, _index: usize, _steps: usize, _denoised: &Tensor) -> Result<()> {
        Ok(())
    }
    /// Frames `[n, H, W, 3]`, f32 in [0, 1] on the CPU, starting at frame `first`.
    fn frames(&mut self, _first: usize, _frames: &Tensor) -> Result<()> {
        Ok(())
    }
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

/// The prompt embeddings `[1, 512, D]` for both guidance branches.
#[derive(Debug, Clone)]
pub struct TextEmbeddings {
    pub prompt: Tensor,
    /// Present only when guidance is on.
    pub negative: Option<Tensor>,
}

pub fn encode_text(
    tokenizer: &PromptTokenizer,
    encoder: &Umt5Encoder,
    params: &GenerationParams,
    device: &Device,
) -> Result<TextEmbeddings> {
    let encode = |text: &str| {
        crate::text::encode_prompt(tokenizer, encoder, text, device).map_err(Error::from)
    };
    let prompt = encode(&params.prompt)?;
    let negative = if params.uses_guidance() {
        Some(encode(params.negative_prompt())?)
    } else {
        None
    };
    Ok(TextEmbeddings { prompt, negative })
}

/// Latent shape `[1, C, F', H/16, W/16]` for a request.
pub fn latent_shape(
    params: &GenerationParams,
    channels: usize,
    spatial_factor: usize,
) -> [usize; 5] {
    [
        1,
        channels,
        params.latent_frames(),
        params.height / spatial_factor,
        params.width / spatial_factor,
    ]
}

/// Encodes the first frame and normalises it into the transformer's latent space
/// (`[1, C, 1, h, w]`).
pub fn encode_first_frame(
    vae: &WanVae,
    image: &DynamicImage,
    params: &GenerationParams,
    device: &Device,
) -> Result<Tensor> {
    let frame = first_frame::first_frame_tensor(image, params.width, params.height, device)?;
    let mu = vae.encode(&frame)?;
    Ok(vae.normalize_latents(&mu)?)
}

/// Everything the denoising loop needs besides the models.
pub struct DenoiseInputs<'a> {
    /// Initial noise `[1, C, F', h, w]`, f32.
    pub latents: Tensor,
    pub prompt: &'a PromptContext,
    /// The negative prompt, when guidance is on.
    pub negative: Option<&'a PromptContext>,
    pub guidance: f64,
    /// Normalised first-frame latents `[1, C, 1, h, w]` for image-to-video.
    pub first_frame: Option<Tensor>,
}

/// Replaces latent frame 0 with the image condition.
fn with_first_frame(latents: &Tensor, first: &Tensor) -> Result<Tensor> {
    let frames = latents.dim(2)?;
    if frames == 1 {
        return Ok(first.clone());
    }
    Ok(Tensor::cat(
        &[first, &latents.narrow(2, 1, frames - 1)?],
        2,
    )?)
}

/// Runs the sampler to the end; returns the final latents `[1, C, F', h, w]` (f32, normalised).
pub fn denoise(
    transformer: &WanTransformer,
    sampler: &mut dyn Sampler,
    inputs: DenoiseInputs<'_>,
    progress: &mut dyn Progress,
) -> Result<Tensor> {
    denoise_with(
        transformer,
        sampler,
        inputs,
        &mut step_cache::NoStepCache,
        progress,
    )
}

/// [`denoise`] with a step cache deciding, evaluation by evaluation, whether the transformer's
/// blocks run (MagCache) or what they are watched for (calibration).
pub fn denoise_with(
    transformer: &WanTransformer,
    sampler: &mut dyn Sampler,
    inputs: DenoiseInputs<'_>,
    cache: &mut dyn StepCache,
    progress: &mut dyn Progress,
) -> Result<Tensor> {
    let mut latents = inputs.latents.to_dtype(DType::F32)?;
    let (_, _, f, h, w) = latents.dims5()?;
    let (gf, gh, gw) = transformer.token_grid(f, h, w);
    let tokens = gf * gh * gw;
    let first_frame_tokens = gh * gw;
    let timesteps: Vec<f64> = sampler.timesteps().to_vec();
    progress.stage(Stage::Denoising)?;
    for (i, &t) in timesteps.iter().enumerate() {
        let (model_input, token_timesteps) = match &inputs.first_frame {
            Some(first) => (
                with_first_frame(&latents, first)?,
                TokenTimesteps::image_conditioned(tokens, first_frame_tokens, t),
            ),
            None => (latents.clone(), TokenTimesteps::uniform(tokens, t)),
        };
        let mut predict = |prompt: &PromptContext, branch: usize| -> Result<Tensor> {
            if let Some(flow) = cache.reuse(i, branch, &model_input)? {
                if progress.cancelled() {
                    return Err(Error::Cancelled);
                }
                return Ok(flow);
            }
            let interrupted = || progress.cancelled();
            let pass = cache.pass(i, branch);
            let (flow, residual) = transformer
                .forward_pass(&model_input, &token_timesteps, prompt, &interrupted, pass)?
                .ok_or(Error::Cancelled)?;
            cache.evaluated(i, branch, residual)?;
            cache.output(i, branch, &model_input, &flow)?;
            Ok(flow)
        };
        let cond = predict(inputs.prompt, 0)?;
        let flow = match inputs.negative {
            Some(negative) => {
                let uncond = predict(negative, 1)?;
                (&uncond + ((cond - &uncond)? * inputs.guidance)?)?
            }
            None => cond,
        };
        let denoised = if progress.wants_denoised(i, timesteps.len()) {
            let sigma = sampler.sigmas()[i] as f64;
            let x0 = (&latents - (&flow * sigma)?)?;
            Some(match &inputs.first_frame {
                Some(first) => with_first_frame(&x0, first)?,
                None => x0,
            })
        } else {
            None
        };
        latents = sampler.step(&flow, &latents)?;
        progress.step(i, timesteps.len(), &latents)?;
        if let Some(denoised) = denoised {
            progress.denoised(i, timesteps.len(), &denoised)?;
        }
    }
    if let Some(first) = &inputs.first_frame {
        latents = with_first_frame(&latents, first)?;
    }
    Ok(latents)
}

/// Decodes normalised latents chunk by chunk, handing `[n, H, W, 3]` frames in [0, 1] to
/// `progress` as each chunk exists.
pub fn decode(vae: &WanVae, latents: &Tensor, progress: &mut dyn Progress) -> Result<()> {
    decode_as(vae, latents, None, progress)
}

/// [`decode`], in spatial tiles when `tiling` is given (see [`crate::vae::Tiling`]).
pub fn decode_as(
    vae: &WanVae,
    latents: &Tensor,
    tiling: Option<crate::vae::Tiling>,
    progress: &mut dyn Progress,
) -> Result<()> {
    progress.stage(Stage::Decoding)?;
    if progress.cancelled() {
        return Err(Error::Cancelled);
    }
    let z = vae.denormalize_latents(latents)?;
    let mut on_chunk = |first, chunk: Tensor| {
        progress.frames(first, &video_to_frames(&chunk)?)?;
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    };
    match tiling {
        None => vae.decode_streaming(&z, &mut on_chunk),
        Some(tiling) => vae.decode_tiled_streaming(&z, tiling, &mut on_chunk),
    }
}

/// [`decode`] with a tiny decoder instead of the VAE's: the same normalised latents, the same
/// streamed chunks.
pub fn decode_fast(
    tiny: &crate::taehv::TaehvDecoder,
    latents: &Tensor,
    progress: &mut dyn Progress,
) -> Result<()> {
    progress.stage(Stage::Decoding)?;
    if progress.cancelled() {
        return Err(Error::Cancelled);
    }
    tiny.decode_streaming(latents, &mut |first, frames| {
        progress.frames(first, &frames)?;
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        Ok(())
    })
}

/// The VAE's video `[1, 3, n, H, W]` in [-1, 1] as frames `[n, H, W, 3]` in [0, 1] (f32, on the
/// CPU).
pub fn video_to_frames(video: &Tensor) -> Result<Tensor> {
    Ok(((video.to_dtype(DType::F32)? * 0.5)? + 0.5)?
        .clamp(0f32, 1f32)?
        .squeeze(0)?
        .permute((1, 2, 3, 0))?
        .to_device(&Device::Cpu)?
        .contiguous()?)
}

/// The loaded components of a model.
pub struct Models {
    pub tokenizer: PromptTokenizer,
    pub text_encoder: Umt5Encoder,
    pub transformer: WanTransformer,
    pub vae: WanVae,
}

/// What [`generate`] produced.
pub struct Generated {
    /// Final latents before un-normalising, `[1, C, F', h, w]` f32.
    pub latents: Tensor,
    /// `[F, H, W, 3]` f32 in [0, 1] on the CPU.
    pub frames: Tensor,
}

/// Collects streamed frames while forwarding everything to an inner observer.
struct Collect<'a> {
    inner: &'a mut dyn Progress,
    chunks: Vec<Tensor>,
}

impl Progress for Collect<'_> {
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
    fn stage(&mut self, stage: Stage) -> Result<()> {
        self.inner.stage(stage)
    }
    fn step(&mut self, index: usize, steps: usize, latents: &Tensor) -> Result<()> {
        self.inner.step(index, steps, latents)
    }
    fn wants_denoised(&self, index: usize, steps: usize) -> bool {
        self.inner.wants_denoised(index, steps)
    }
    fn denoised(&mut self, index: usize, steps: usize, denoised: &Tensor) -> Result<()> {
        self.inner.denoised(index, steps, denoised)
    }
    fn frames(&mut self, first: usize, frames: &Tensor) -> Result<()> {
        self.chunks.push(frames.clone());
        self.inner.frames(first, frames)
    }
}

/// Options of a run that are not part of [`GenerationParams`].
#[derive(Default)]
pub struct RunInputs {
    /// The first frame, for image-to-video.
    pub image: Option<DynamicImage>,
    /// Starting latents to use instead of seeded noise, `[1, C, F', h, w]`.
    pub init_latents: Option<Tensor>,
    /// The model's folder, where its step-cache calibration is (when the step cache is on).
    pub model_dir: Option<std::path::PathBuf>,
}

/// The step cache `params` ask for (MagCache with the model's calibration, or EasyCache);
/// `None` when it is off.
pub fn step_cache_for(
    params: &GenerationParams,
    transformer: &WanTransformer,
    model_dir: Option<&std::path::Path>,
    image_to_video: bool,
) -> Result<Option<Box<dyn StepCache>>> {
    match params.step_cache_method {
        step_cache::StepCacheMethod::MagCache => {
            let Some(settings) = params.step_cache.settings() else {
                return Ok(None);
            };
            let is_ti2v_5b = *transformer.config() == crate::dit::DitConfig::wan22_ti2v_5b();
            let ratios = step_cache::calibration_for(model_dir, is_ti2v_5b, image_to_video)?;
            Ok(Some(Box::new(step_cache::MagCache::new(
                settings,
                &ratios,
                params.steps,
                params.uses_guidance(),
            ))))
        }
        step_cache::StepCacheMethod::EasyCache => Ok(params
            .step_cache
            .easycache()
            .map(|s| Box::new(easy_cache::EasyCache::new(s, params.steps)) as Box<dyn StepCache>)),
    }
}

/// Text (and image) to video, end to end.
pub fn generate(
    models: &Models,
    params: &GenerationParams,
    run: RunInputs,
    progress: &mut dyn Progress,
) -> Result<Generated> {
    generate_with(models, params, run, None, progress)
}

/// [`generate`] with `cache` deciding which evaluations run, instead of the step cache
/// `params` ask for (for measuring other settings).
pub fn generate_with(
    models: &Models,
    params: &GenerationParams,
    run: RunInputs,
    cache: Option<&mut dyn StepCache>,
    progress: &mut dyn Progress,
) -> Result<Generated> {
    let latents = denoised(models, params, run, cache, progress)?;
    let mut collect = Collect {
        inner: progress,
        chunks: Vec::new(),
    };
    decode(&models.vae, &latents, &mut collect)?;
    let frames = Tensor::cat(&collect.chunks, 0)?;
    Ok(Generated { latents, frames })
}

/// Measures the model's magnitude ratios for the step cache on the run `params` describe
/// (every evaluation runs; nothing is decoded).
pub fn calibrate(
    models: &Models,
    params: &GenerationParams,
    run: RunInputs,
    progress: &mut dyn Progress,
) -> Result<step_cache::MagRatios> {
    let mut calibration = step_cache::Calibration::default();
    let params = GenerationParams {
        step_cache: step_cache::StepCacheChoice::Off,
        ..params.clone()
    };
    denoised(models, &params, run, Some(&mut calibration), progress)?;
    Ok(calibration.ratios())
}

/// The final latents of a run: prompt, image, noise, then the denoising loop with the step
/// cache `params` ask for, or `cache` instead.
fn denoised(
    models: &Models,
    params: &GenerationParams,
    run: RunInputs,
    cache: Option<&mut dyn StepCache>,
    progress: &mut dyn Progress,
) -> Result<Tensor> {
    params.validate()?;
    let device = models.transformer.device();
    progress.stage(Stage::EncodingPrompt)?;
    let text = encode_text(&models.tokenizer, &models.text_encoder, params, &device)?;
    let prompt = models.transformer.prepare_context(&text.prompt)?;
    let negative = text
        .negative
        .as_ref()
        .map(|n| models.transformer.prepare_context(n))
        .transpose()?;

    let first_frame = match &run.image {
        Some(image) => {
            progress.stage(Stage::EncodingImage)?;
            Some(encode_first_frame(&models.vae, image, params, &device)?)
        }
        None => None,
    };
    let shape = latent_shape(
        params,
        models.transformer.config().in_channels,
        models.vae.config().scale_factor_spatial,
    );
    let latents = match run.init_latents {
        Some(l) => {
            if l.dims() != shape {
                return Err(Error::InvalidRequest(format!(
                    "initial latents have shape {:?}; this request needs {shape:?}",
                    l.dims()
                )));
            }
            l.to_dtype(DType::F32)?.to_device(&device)?
        }
        None => noise::seeded_noise(params.seed, &shape, &device)?,
    };
    let mut sampler = params
        .sampler
        .build(params.steps, params.shift, params.seed);
    let mut step_cache = step_cache_for(
        params,
        &models.transformer,
        run.model_dir.as_deref(),
        first_frame.is_some(),
    )?;
    let inputs = DenoiseInputs {
        latents,
        prompt: &prompt,
        negative: negative.as_ref(),
        guidance: params.guidance,
        first_frame,
    };
    let transformer = &models.transformer;
    match (cache, step_cache.as_mut()) {
        (Some(cache), _) => denoise_with(transformer, sampler.as_mut(), inputs, cache, progress),
        (None, Some(cache)) => denoise_with(
            transformer,
            sampler.as_mut(),
            inputs,
            cache.as_mut(),
            progress,
        ),
        (None, None) => denoise(transformer, sampler.as_mut(), inputs, progress),
    }
}
