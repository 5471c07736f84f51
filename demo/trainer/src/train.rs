//! The trainer: a tiny Wan2.2 VAE on crops of the synthetic world, then a tiny transformer and
//! umT5 text encoder together with flow matching on latents encoded once, then export to the
//! diffusers folder layout the real model loads from.
//!
//! Every random choice comes from generators seeded by the preset, so a run is reproducible on
//! a given machine.

use crate::collapsed_text::CollapsedText;
use crate::configs::{DitSchedule, Preset};
use crate::init::initialise;
use crate::kernels::training_kernels;
use crate::latent_basis::{background_cells, LatentBasis};
use crate::world::{caption, Layout, Scene, Split, Subset, MOTIONS};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use t2v_models::dit::{DitConfig, TokenTimesteps, WanTransformer};
use t2v_models::text::{PromptTokenizer, Umt5Encoder, MAX_SEQUENCE_LENGTH};
use t2v_models::vae::{VaeConfig, WanVae};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Model(#[from] t2v_models::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The stages of a run, in order. A stage reads what the earlier ones left in the work folder,
/// so a run can be resumed from any stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Vae,
    /// Judges VAE reconstructions of the evaluation clips (what the transformer can reach).
    VaeCheck,
    Encode,
    Dit,
    Export,
    Eval,
    /// A diagnostic of the text conditioning: the trained weights' flow-matching loss on training
    /// clips with their own caption and with the caption of the opposite motion.
    CaptionCheck,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Vae,
        Stage::VaeCheck,
        Stage::Encode,
        Stage::Dit,
        Stage::Export,
        Stage::Eval,
        Stage::CaptionCheck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Vae => "vae",
            Stage::VaeCheck => "vae-check",
            Stage::Encode => "encode",
            Stage::Dit => "dit",
            Stage::Export => "export",
            Stage::Eval => "eval",
            Stage::CaptionCheck => "caption-check",
        }
    }

    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Where a run writes: intermediate files in `work`, the finished checkpoint in `out`.
#[derive(Debug, Clone)]
pub struct RunPaths {
    pub work: PathBuf,
    pub out: PathBuf,
    /// Start the VAE stage at this phase (0-based), from the weights an earlier run left in `work`.
    pub vae_from_phase: usize,
    /// Start the transformer stage from the weights an earlier run left in `work` (its last
    /// snapshot) instead of from scratch; the optimiser and the schedule start afresh.
    pub dit_resume: bool,
}

impl RunPaths {
    fn vae_weights(&self) -> PathBuf {
        self.work.join("vae.safetensors")
    }
    fn latents(&self) -> PathBuf {
        self.work.join("latents.safetensors")
    }
    fn transformer_weights(&self) -> PathBuf {
        self.work.join("transformer.safetensors")
    }
    fn text_encoder_weights(&self) -> PathBuf {
        self.work.join("text_encoder.safetensors")
    }
    fn tokenizer(&self) -> PathBuf {
        self.work.join("tokenizer.json")
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Loss of every optimiser step.
    pub vae_losses: Vec<f32>,
    pub dit_losses: Vec<f32>,
    pub vae_seconds: f64,
    pub encode_seconds: f64,
    pub dit_seconds: f64,
    pub eval: Option<crate::eval::EvalSummary>,
    /// VAE reconstructions of the evaluation clips that pass the judge: (passed, total).
    pub vae_check: Option<(usize, usize)>,
}

/// Prints a line with the time since the start of the run.
pub struct Log {
    start: Instant,
}

impl Log {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
    pub fn line(&self, text: &str) {
        use std::io::Write;
        let secs = self.start.elapsed().as_secs();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "[{:02}:{:02}:{:02}] {text}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        let _ = out.flush();
    }
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}

/// Linear warm-up, then cosine decay to a tenth of the peak.
pub fn learning_rate(step: usize, steps: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (steps - warmup).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos()))
}

/// Linear warm-up over `warmup` steps, then cosine decay to zero (the demo decoders' and
/// upscaler's schedule).
pub fn cosine_to_zero(step: usize, steps: usize, warmup: usize, peak: f64) -> f64 {
    let warm = ((step + 1) as f64 / warmup.max(1) as f64).min(1.0);
    peak * warm * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / steps.max(1) as f64).cos())
}

fn normal_tensor(rng: &mut ChaCha8Rng, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

pub(crate) fn adamw(vars: Vec<Var>, lr: f64) -> Result<AdamW> {
    Ok(AdamW::new(
        vars,
        ParamsAdamW {
            lr,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    )?)
}

/// Runs `job` on each input in `workers` threads (inputs `w`, `w + workers`, ... go to worker
/// `w`), each building its own graph (of layers built with [`training_kernels`]) and
/// backpropagating its summed losses; returns the summed loss and the summed gradients of
/// `vars`.
///
/// candle's own CPU parallelism spins on a barrier, which wastes most of two shared cores; the
/// trainer runs candle single-threaded (see [`single_threaded_candle`]) and parallelises here, over
/// independent parts of the batch.
pub(crate) fn parallel_grads<T: Sync>(
    inputs: &[T],
    workers: usize,
    vars: &[Var],
    job: impl Fn(&T) -> Result<Tensor> + Sync,
) -> Result<(f32, GradStore)> {
    let workers = workers.clamp(1, inputs.len().max(1));
    let results = crate::workers::run_workers(workers, |w| -> Result<(f32, GradStore)> {
        let mut total: Option<Tensor> = None;
        for input in inputs.iter().skip(w).step_by(workers) {
            let loss = job(input)?;
            total = Some(match total {
                None => loss,
                Some(t) => (t + loss)?,
            });
        }
        let total = total.expect("every worker has an input");
        Ok((total.to_scalar::<f32>()?, total.backward()?))
    });
    let mut loss = 0f32;
    let mut stores = Vec::with_capacity(results.len());
    for r in results {
        let (l, g) = r?;
        loss += l;
        stores.push(g);
    }
    let mut merged = stores.pop().expect("one worker");
    for store in &stores {
        for var in vars {
            if let Some(g) = store.get(var.as_tensor()) {
                let sum = match merged.remove(var.as_tensor()) {
                    Some(m) => (m + g)?,
                    None => g.clone(),
                };
                merged.insert(var.as_tensor(), sum);
            }
        }
    }
    Ok((loss, merged))
}

/// Makes candle's CPU kernels single-threaded; call before any tensor operation. The trainer
/// parallelises over the batch instead (see [`parallel_grads`]).
pub fn single_threaded_candle() {
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "1");
        }
    }
}

/// Keeps freed memory in the process: glibc returns every large block to the kernel, and the
/// trainer allocates and frees the same large activations every step, which then cost a page
/// fault per page (a third of the transformer stage's time). Call before any tensor operation.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Clips the global gradient norm to `max_norm` and steps every optimiser (each updates its own
/// variables).
pub(crate) fn clipped_step(
    opts: &mut [&mut AdamW],
    vars: &[Var],
    mut grads: GradStore,
    max_norm: f64,
) -> Result<f64> {
    let mut total = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * scale)?);
            }
        }
    }
    for opt in opts.iter_mut() {
        opt.step(&grads)?;
    }
    Ok(norm)
}

/// Variables of a map with their names, sorted by name.
pub(crate) fn named_vars(map: &VarMap) -> Vec<(String, Var)> {
    let data = map.data().lock().expect("var map poisoned");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// A map's trained weights by name, detached from the graph: what a weight file holds.
pub fn weights_by_name(map: &VarMap) -> BTreeMap<String, Tensor> {
    named_vars(map)
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().detach()))
        .collect()
}

/// Where a training crop of `size` x `size` cells at `(y, x)` sits in a `(h, w)` grid when it
/// is run with up to `margin` cells of context on each side (clipped at the grid's edges) and
/// judged on the crop alone.
pub(crate) struct ContextCrop {
    /// The context window's first row and column, and its height and width.
    pub y0: usize,
    pub x0: usize,
    pub height: usize,
    pub width: usize,
    /// The crop's offset inside the window, and its height and width.
    pub dy: usize,
    pub dx: usize,
    pub crop_h: usize,
    pub crop_w: usize,
}

impl ContextCrop {
    pub(crate) fn new(
        (y, x): (usize, usize),
        size: usize,
        margin: usize,
        (h, w): (usize, usize),
    ) -> Self {
        let (y0, x0) = (y.saturating_sub(margin), x.saturating_sub(margin));
        ContextCrop {
            y0,
            x0,
            height: (y + size + margin).min(h) - y0,
            width: (x + size + margin).min(w) - x0,
            dy: y - y0,
            dx: x - x0,
            crop_h: size.min(h),
            crop_w: size.min(w),
        }
    }
}

pub fn save_tensors(tensors: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
    candle_core::safetensors::save(
        &tensors
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        path,
    )?;
    Ok(())
}

fn load_into(map: &VarMap, path: &Path) -> Result<()> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
    for (name, var) in named_vars(map) {
        let t = tensors
            .get(&name)
            .ok_or_else(|| TrainError::Other(format!("{}: no tensor `{name}`", path.display())))?;
        var.set(&t.to_dtype(DType::F32)?)?;
    }
    Ok(())
}

fn map_tensors(map: &VarMap) -> BTreeMap<String, Tensor> {
    named_vars(map)
        .into_iter()
        .map(|(k, v)| (k, v.as_tensor().clone()))
        .collect()
}

/// Runs `stages` of `preset`.
pub fn run(
    preset: &Preset,
    paths: &RunPaths,
    stages: &[Stage],
    workers: usize,
    log: &Log,
) -> Result<Report> {
    std::fs::create_dir_all(&paths.work).map_err(io_error(&paths.work))?;
    let mut report = Report::default();
    let device = Device::Cpu;
    crate::vocab::save_tokenizer(&paths.tokenizer()).map_err(TrainError::Other)?;
    let vae_cfg = preset.sizes.vae();

    if stages.contains(&Stage::Vae) {
        let start = Instant::now();
        let (map, losses) = train_vae(
            preset,
            &vae_cfg,
            workers,
            paths.vae_from_phase,
            &paths.vae_weights(),
            log,
        )?;
        save_tensors(&map_tensors(&map), &paths.vae_weights())?;
        report.vae_losses = losses;
        report.vae_seconds = start.elapsed().as_secs_f64();
        log.line(&format!("vae: done in {:.0} s", report.vae_seconds));
    }

    if stages.contains(&Stage::VaeCheck)
        && preset.eval_prompts > 0
        && preset.dataset.subset.is_none()
    {
        let map = VarMap::new();
        let vae = WanVae::new(&vae_cfg, VarBuilder::from_varmap(&map, DType::F32, &device))?;
        load_into(&map, &paths.vae_weights())?;
        report.vae_check = Some(crate::eval::vae_reconstruction_check(
            &vae,
            preset.eval_prompts,
            workers,
            log,
        )?);
    }

    if stages.contains(&Stage::Encode) {
        let start = Instant::now();
        let map = VarMap::new();
        let vae = WanVae::new(&vae_cfg, VarBuilder::from_varmap(&map, DType::F32, &device))?;
        load_into(&map, &paths.vae_weights())?;
        let latents = encode_dataset(preset, &vae, workers, log)?;
        let scenes = dataset_scenes(preset);
        let coverage = dataset_coverage(preset, &scenes, &latents, workers)?;
        let basis =
            LatentBasis::of_backgrounds(latents.dim(1)?, &background_cells(&latents, &coverage)?)?;
        log.line(&format!(
            "encode: latent channels rotated so that the backgrounds vary in the first ones (variance per channel: {})",
            basis
                .background_variance
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
        save_tensors(
            &BTreeMap::from([
                ("latents".to_string(), basis.rotate_latents(&latents)?),
                (LatentBasis::TENSOR_NAME.to_string(), basis.to_tensor()?),
                (COVERAGE_TENSOR.to_string(), coverage),
            ]),
            &paths.latents(),
        )?;
        report.encode_seconds = start.elapsed().as_secs_f64();
        log.line(&format!("encode: done in {:.0} s", report.encode_seconds));
    }

    if stages.contains(&Stage::Dit) {
        let start = Instant::now();
        let mut encoded = candle_core::safetensors::load(paths.latents(), &device)?;
        let latents = encoded
            .remove("latents")
            .ok_or_else(|| TrainError::Other("latents file without `latents`".into()))?;
        let tokenizer = PromptTokenizer::from_file(&paths.tokenizer())
            .map_err(|e| TrainError::Other(e.to_string()))?;
        let coverage = encoded.remove(COVERAGE_TENSOR);
        let (text, transformer, losses) =
            train_dit(preset, &latents, coverage, &tokenizer, workers, paths, log)?;
        save_tensors(&text, &paths.text_encoder_weights())?;
        save_tensors(&transformer, &paths.transformer_weights())?;
        report.dit_losses = losses;
        report.dit_seconds = start.elapsed().as_secs_f64();
        log.line(&format!("dit: done in {:.0} s", report.dit_seconds));
    }

    if stages.contains(&Stage::Export) {
        let mut encoded = candle_core::safetensors::load(paths.latents(), &device)?;
        let latents = encoded
            .remove("latents")
            .ok_or_else(|| TrainError::Other("latents file without `latents`".into()))?;
        let (mean, std) = latent_statistics(&latents)?;
        let mut vae_tensors: BTreeMap<String, Tensor> =
            candle_core::safetensors::load(paths.vae_weights(), &device)?
                .into_iter()
                .collect();
        // The latents are in the background basis (encode stage): the exported VAE works in it.
        if let Some(basis) = encoded.remove(LatentBasis::TENSOR_NAME) {
            LatentBasis::from_tensor(&basis)?.rotate_vae(&mut vae_tensors)?;
        }
        let vae_cfg = VaeConfig {
            latents_mean: mean,
            latents_std: std,
            ..vae_cfg.clone()
        };
        crate::export::write_checkpoint(
            &paths.out,
            preset,
            &vae_cfg,
            &vae_tensors,
            &candle_core::safetensors::load(paths.transformer_weights(), &device)?
                .into_iter()
                .collect(),
            &candle_core::safetensors::load(paths.text_encoder_weights(), &device)?
                .into_iter()
                .collect(),
        )?;
        log.line(&format!("export: wrote {}", paths.out.display()));
    }

    if stages.contains(&Stage::Eval) && preset.eval_prompts > 0 {
        let summary = match &preset.dataset.subset {
            Some(subset) => {
                crate::eval::evaluate_subset(&paths.out, subset, preset.eval_prompts, workers, log)?
            }
            None => {
                // A run trained on a slice only is judged on prompts inside it.
                let slice = preset
                    .dit
                    .curriculum
                    .as_ref()
                    .filter(|c| c.steps >= preset.dit.steps)
                    .map(|c| &c.slice);
                crate::eval::evaluate(&paths.out, preset.eval_prompts, slice, workers, log)?
            }
        };
        report.eval = Some(summary);
    }

    if stages.contains(&Stage::CaptionCheck) {
        caption_check(preset, paths, workers, log)?;
    }
    Ok(report)
}

/// One piece of a VAE training step: clips `[b, 3, F, H, W]`, the noise their latents get, and
/// the per-pixel loss weights `[b, 1, F, H, W]`.
type VaePiece = (Tensor, Tensor, Tensor);

/// The clips of one VAE training step, one piece per worker: crops of random training scenes, or
/// whole single frames. Pixels that differ from the background (objects and their edges) weigh
/// `s.object_weight` in the loss, the background 1.
fn vae_step_inputs(
    preset: &Preset,
    s: &crate::configs::VaeSchedule,
    cfg: &VaeConfig,
    rng: &mut ChaCha8Rng,
    full_frame: bool,
    workers: usize,
) -> Result<Vec<VaePiece>> {
    let (world_w, world_h) = (preset.dataset.width, preset.dataset.height);
    let clip_frames = preset.dataset.frames;
    let (batch, frames, cw, ch) = if full_frame {
        (
            workers,
            if s.frames > 9 { 1 } else { 5.min(clip_frames) },
            world_w,
            world_h,
        )
    } else {
        (s.batch, s.frames, s.crop.0, s.crop.1)
    };
    let pieces = workers.min(batch).max(1);
    let mut out = Vec::with_capacity(pieces);
    for p in 0..pieces {
        let n = batch / pieces + usize::from(p < batch % pieces);
        let mut data = Vec::with_capacity(n * 3 * frames * cw * ch);
        let mut weights = Vec::with_capacity(n * frames * cw * ch);
        for _ in 0..n {
            let scene = Scene::sample(
                rng,
                Split::Train,
                preset.dataset.two_objects,
                Layout::Anywhere,
                world_w,
                world_h,
            );
            let first = rng.random_range(0..=clip_frames - frames);
            // Objects cover a few percent of a frame: most crops are centred on one, or the VAE
            // learns the backgrounds only.
            let (x0, y0) = if cw < world_w && rng.random::<f32>() < 0.8 {
                let object = &scene.objects[rng.random_range(0..scene.objects.len())];
                let t =
                    (first + rng.random_range(0..frames)) as f32 / (clip_frames - 1).max(1) as f32;
                let ((cx, cy), _) = object.at(t);
                let jitter = cw as f32 / 4.0;
                let x = cx - cw as f32 / 2.0 + rng.random_range(-jitter..jitter);
                let y = cy - ch as f32 / 2.0 + rng.random_range(-jitter..jitter);
                (
                    x.clamp(0.0, (world_w - cw) as f32) as usize,
                    y.clamp(0.0, (world_h - ch) as f32) as usize,
                )
            } else {
                (
                    rng.random_range(0..=world_w - cw),
                    rng.random_range(0..=world_h - ch),
                )
            };
            let pixels = scene.render(clip_frames, first, frames, (x0, y0, cw, ch));
            weights.extend(scene.object_mask(&pixels).into_iter().map(|object| {
                if object {
                    s.object_weight as f32
                } else {
                    1.0
                }
            }));
            data.extend(pixels);
        }
        let video = Tensor::from_vec(data, (n, 3, frames, ch, cw), &Device::Cpu)?;
        let sf = cfg.scale_factor_spatial;
        let noise = normal_tensor(rng, &[n, cfg.z_dim, (frames - 1) / 4 + 1, ch / sf, cw / sf])?;
        let weights = Tensor::from_vec(weights, (n, 1, frames, ch, cw), &Device::Cpu)?;
        out.push((video, noise, weights));
    }
    Ok(out)
}

/// Trains the VAE phase by phase, starting at phase `from_phase` (earlier phases' weights are
/// read from `resume`); each phase has its own optimiser and its own seeded generator, so a
/// resumed run gives the same weights as an uninterrupted one.
fn train_vae(
    preset: &Preset,
    cfg: &VaeConfig,
    workers: usize,
    from_phase: usize,
    resume: &Path,
    log: &Log,
) -> Result<(VarMap, Vec<f32>)> {
    let map = VarMap::new();
    let vae = WanVae::new_with_kernels(
        cfg,
        VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
        &training_kernels(),
    )?;
    initialise(&map, preset.seed ^ 0x5641_4500, preset.sizes.text_d_kv)?;
    if from_phase > 0 {
        load_into(&map, resume)?;
        log.line(&format!(
            "vae: resuming at phase {} from {}",
            from_phase + 1,
            resume.display()
        ));
    }
    let vars: Vec<Var> = named_vars(&map).into_iter().map(|(_, v)| v).collect();
    let params: usize = vars.iter().map(|v| v.elem_count()).sum();
    let smoke = preset.name == "smoke";
    let mut losses = Vec::new();
    for (phase, s) in preset.vae.iter().enumerate().skip(from_phase) {
        log.line(&format!(
            "vae phase {}: {params} parameters, {} steps of {} crops {}x{}x{} on {workers} workers",
            phase + 1,
            s.steps,
            s.batch,
            s.crop.0,
            s.crop.1,
            s.frames
        ));
        let mut opt = adamw(vars.clone(), s.lr)?;
        let mut rng = ChaCha8Rng::seed_from_u64(preset.seed ^ 0x5641_4501 ^ ((phase as u64) << 32));
        let first_inputs = vae_step_inputs(preset, s, cfg, &mut rng, false, workers)?;
        let mut window = Instant::now();
        for step in 0..s.steps {
            let full_frame =
                s.full_frame_every > 0 && step % s.full_frame_every == s.full_frame_every - 1;
            let inputs = if smoke {
                first_inputs.clone()
            } else {
                vae_step_inputs(preset, s, cfg, &mut rng, full_frame, workers)?
            };
            let pieces = inputs.len() as f64;
            opt.set_learning_rate(learning_rate(step, s.steps, 50.min(s.steps / 10), s.lr));
            let (value, grads) =
                parallel_grads(&inputs, workers, &vars, |(video, noise, weights)| {
                    let mu = vae.encode(video)?;
                    let recon = vae.decode(&(&mu + (noise * s.latent_noise)?)?)?;
                    let diff = (recon - video)?;
                    let reconstruction = if s.object_weight == 1.0 {
                        (diff.sqr()?.mean_all()? + diff.abs()?.mean_all()?)?
                    } else {
                        let per_pixel = (diff.sqr()? + diff.abs()?)?.broadcast_mul(weights)?;
                        (per_pixel.mean_all()? / weights.mean_all()?.to_scalar::<f32>()? as f64)?
                    };
                    let loss = (reconstruction + (mu.sqr()?.mean_all()? * s.latent_penalty)?)?;
                    Ok((loss / pieces)?)
                })?;
            if !value.is_finite() {
                return Err(TrainError::Other(format!(
                    "vae: loss became {value} at step {step}"
                )));
            }
            clipped_step(&mut [&mut opt], &vars, grads, 1.0)?;
            losses.push(value);
            if (step + 1) % 50 == 0 || step + 1 == s.steps {
                let recent = &losses[losses.len().saturating_sub(50)..];
                let mean = recent.iter().sum::<f32>() / recent.len() as f32;
                log.line(&format!(
                    "vae phase {}: step {}/{} loss {mean:.4} ({:.2} s/step)",
                    phase + 1,
                    step + 1,
                    s.steps,
                    window.elapsed().as_secs_f64() / recent.len() as f64
                ));
                window = Instant::now();
            }
        }
    }
    Ok((map, losses))
}

/// The training scenes, regenerated from the seed: scene `i` is the same in every stage.
pub fn dataset_scenes(preset: &Preset) -> Vec<Scene> {
    let d = &preset.dataset;
    (0..d.clips)
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(
                preset.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
            );
            match &d.subset {
                Some(subset) => subset.scene(&mut rng, i, d.width, d.height),
                None => {
                    let family = i / MOTIONS.len();
                    let mut family_rng = ChaCha8Rng::seed_from_u64(
                        preset
                            .seed
                            .wrapping_mul(2_000_003)
                            .wrapping_add(family as u64),
                    );
                    Scene::family_member(
                        &mut family_rng,
                        &mut rng,
                        i % MOTIONS.len(),
                        d.two_objects,
                        d.width,
                        d.height,
                    )
                }
            }
        })
        .collect()
}

/// Encodes every training clip once: `[N, z, F', h, w]` posterior means (not normalised).
fn encode_dataset(preset: &Preset, vae: &WanVae, workers: usize, log: &Log) -> Result<Tensor> {
    let d = &preset.dataset;
    let scenes = dataset_scenes(preset);
    let start = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let encode_one = |scene: &Scene| -> Result<Tensor> {
        let video = Tensor::from_vec(
            scene.render(d.frames, 0, d.frames, (0, 0, d.width, d.height)),
            (1, 3, d.frames, d.height, d.width),
            &Device::Cpu,
        )?;
        // The weights are variables: without `detach` each latent would keep its whole graph.
        let mu = vae.encode(&video)?.detach();
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_multiple_of(100) || n == scenes.len() {
            log.line(&format!(
                "encode: {n}/{} clips ({:.2} s/clip)",
                scenes.len(),
                start.elapsed().as_secs_f64() / n as f64
            ));
        }
        Ok(mu)
    };
    let latents = crate::workers::map_items(&scenes, workers, encode_one)
        .into_iter()
        .collect::<Result<Vec<Tensor>>>()?;
    Ok(Tensor::cat(&latents, 0)?)
}

/// Per-channel mean and standard deviation of latents `[N, z, F', h, w]`.
pub fn latent_statistics(latents: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let z = latents.dim(1)?;
    let per_channel = latents.transpose(0, 1)?.contiguous()?.reshape((z, ()))?;
    let mean = per_channel.mean_keepdim(1)?;
    let var = per_channel.broadcast_sub(&mean)?.sqr()?.mean_keepdim(1)?;
    let mean: Vec<f32> = mean.flatten_all()?.to_vec1()?;
    let std: Vec<f32> = var.sqrt()?.flatten_all()?.to_vec1()?;
    Ok((
        mean.iter().map(|&m| m as f64).collect(),
        std.iter().map(|&s| (s as f64).max(1e-4)).collect(),
    ))
}

/// The caption ids a training sample is conditioned on: a caption of its scene (or, for
/// classifier-free guidance, the empty prompt), sometimes with an unknown token inserted.
fn training_ids(
    tokenizer: &PromptTokenizer,
    scene: &Scene,
    s: &DitSchedule,
    subset: Option<&Subset>,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<u32>> {
    let text = if rng.random::<f64>() < s.text_dropout {
        String::new()
    } else {
        match subset {
            Some(subset) => subset.caption(rng, scene),
            None => caption(rng, scene),
        }
    };
    augmented_ids(tokenizer, &text, s.unknown_insertion, rng)
}

/// The ids of `text` as training sees it: capitalisation varied, and (with probability
/// `unknown_insertion`, for a non-empty text) an unknown token inserted somewhere.
pub(crate) fn augmented_ids(
    tokenizer: &PromptTokenizer,
    text: &str,
    unknown_insertion: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<u32>> {
    let text = augment_case(text, rng);
    let mut ids = tokenizer
        .encode(&text)
        .map_err(|e| TrainError::Other(e.to_string()))?;
    if !text.is_empty() && rng.random::<f64>() < unknown_insertion {
        let at = rng.random_range(0..ids.len());
        ids.insert(at, crate::vocab::UNK_ID);
    }
    Ok(ids)
}

/// Lower-cases the first word or capitalises other words now and then, so that every word is
/// learnt in both forms the tokenizer has.
fn augment_case(text: &str, rng: &mut ChaCha8Rng) -> String {
    let words: Vec<String> = text
        .split(' ')
        .enumerate()
        .map(|(i, w)| {
            let r = rng.random::<f32>();
            if i == 0 && r < 0.3 {
                w.to_lowercase()
            } else if i > 0 && r < 0.08 {
                crate::world::capitalise_first(w)
            } else {
                w.to_string()
            }
        })
        .collect();
    words.join(" ")
}

/// One group of a transformer training step: clips that share one noise level.
#[derive(Clone)]
struct DitGroup {
    /// Normalised clean latents `[b, z, F', h, w]` and the noise `[b, z, F', h, w]`.
    x0: Tensor,
    noise: Tensor,
    ids: Vec<Vec<u32>>,
    sigma: f64,
    /// Loss weight of each latent cell `[b, 1, F', h, w]`.
    weights: Tensor,
}

/// The flow-matching loss of one group: `x_t = (1-s) x0 + s eps`, target `eps - x0`, timestep
/// `s * 1000`.
fn group_loss(
    encoder: &Umt5Encoder,
    transformer: &TrainedTransformer,
    group: &DitGroup,
    train_text: bool,
) -> Result<Tensor> {
    let mut encoded = Vec::with_capacity(group.ids.len());
    for sample in &group.ids {
        let ids = Tensor::new(sample.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let text = encoder.forward(&ids)?;
        encoded.push(if train_text { text } else { text.detach() });
    }
    // The pipeline pads the text with zeros to 512 rows; one zero row per prompt stands for
    // them all here (the same attention, ~40% fewer FLOPs per step).
    let text = CollapsedText::new(&encoded, MAX_SEQUENCE_LENGTH)?;
    let transformer = text.transformer(&transformer.config, &transformer.vars)?;
    let context = transformer.prepare_context(&text.text)?;
    let sigma = group.sigma;
    let xt = ((&group.x0 * (1.0 - sigma))? + (&group.noise * sigma)?)?;
    let target = (&group.noise - &group.x0)?;
    let (_, _, f, h, w) = group.x0.dims5()?;
    let (gf, gh, gw) = transformer.token_grid(f, h, w);
    let timesteps = TokenTimesteps::uniform(gf * gh * gw, sigma * 1000.0);
    let pred = transformer.forward(&xt, &timesteps, &context)?;
    let weighted = (pred - target)?.sqr()?.broadcast_mul(&group.weights)?;
    Ok((weighted.mean_all()? / group.weights.mean_all()?.to_scalar::<f32>()? as f64)?)
}

/// How much of each latent cell `[1, F', h, w]` of scene `scene`'s clip its objects cover (0 to 1):
/// latent frame 0 is frame 0, latent frame `k` frames `4k-3..=4k`, a cell `scale` x `scale` pixels.
fn object_coverage(
    scene: &Scene,
    d: &crate::configs::DatasetSpec,
    latent: (usize, usize, usize),
) -> Vec<f32> {
    let (lf, lh, lw) = latent;
    let scale = d.width / lw;
    let mask = scene.object_mask(&scene.render(d.frames, 0, d.frames, (0, 0, d.width, d.height)));
    let mut sums = vec![0f32; lf * lh * lw];
    let mut counts = vec![0f32; lf * lh * lw];
    for f in 0..d.frames {
        let t = f.div_ceil(4).min(lf - 1);
        for y in 0..d.height {
            for x in 0..d.width {
                let i = (f * d.height + y) * d.width + x;
                let cell = (t * lh + (y / scale).min(lh - 1)) * lw + (x / scale).min(lw - 1);
                sums[cell] += mask[i] as u8 as f32;
                counts[cell] += 1.0;
            }
        }
    }
    sums.iter()
        .zip(&counts)
        .map(|(s, c)| s / c.max(1.0))
        .collect()
}

/// The name of the object coverage ([`dataset_coverage`]) in the encode stage's latents file.
pub const COVERAGE_TENSOR: &str = "object_coverage";

/// [`object_coverage`] of every clip of the dataset: `[N, 1, F', h, w]`, for latents `[N, ...]`.
pub fn dataset_coverage(
    preset: &Preset,
    scenes: &[Scene],
    latents: &Tensor,
    workers: usize,
) -> Result<Tensor> {
    let (n, _, lf, lh, lw) = latents.dims5()?;
    let coverage: Vec<f32> = crate::workers::map_items(&scenes[..n], workers, |scene| {
        object_coverage(scene, &preset.dataset, (lf, lh, lw))
    })
    .concat();
    Ok(Tensor::from_vec(
        coverage,
        (n, 1, lf, lh, lw),
        &Device::Cpu,
    )?)
}

type Tensors = BTreeMap<String, Tensor>;

fn dit_step_inputs(
    preset: &Preset,
    normalised: &Tensor,
    weights: &Tensor,
    scenes: &[Scene],
    pool: &[usize],
    tokenizer: &PromptTokenizer,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<DitGroup>> {
    let s = &preset.dit;
    let per_group = (s.batch / s.groups).max(1);
    let smoke = preset.name == "smoke";
    let mut groups = Vec::with_capacity(s.groups);
    for g in 0..s.groups {
        let indices: Vec<usize> = if smoke {
            (0..per_group)
                .map(|i| pool[(g * per_group + i) % pool.len()])
                .collect()
        } else {
            (0..per_group)
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect()
        };
        let u: f64 = rng.random();
        let sigma = t2v_models::sampling::shift_sigma(u, s.timestep_shift).clamp(1e-3, 1.0);
        let ids = indices
            .iter()
            .map(|&i| {
                training_ids(
                    tokenizer,
                    &scenes[i],
                    s,
                    preset.dataset.subset.as_ref(),
                    rng,
                )
            })
            .collect::<Result<_>>()?;
        let index = Tensor::new(
            indices
                .iter()
                .map(|&i| i as u32)
                .collect::<Vec<_>>()
                .as_slice(),
            &Device::Cpu,
        )?;
        let x0 = normalised.index_select(&index, 0)?;
        let noise = normal_tensor(rng, x0.dims())?;
        let weights = ((weights.index_select(&index, 0)? * s.object_weight)? + 1.0)?;
        groups.push(DitGroup {
            x0,
            noise,
            ids,
            sigma,
            weights,
        });
    }
    Ok(groups)
}

/// The indices of `scenes` the transformer draws its clips from: every clip once, and each clip
/// with a bouncing object `bounce_repeats` times.
fn training_pool(scenes: &[Scene], bounce_repeats: usize) -> Vec<usize> {
    scenes
        .iter()
        .enumerate()
        .flat_map(|(i, scene)| {
            let bounces = scene.has_motion(crate::world::Motion::Bounce);
            std::iter::repeat_n(i, if bounces { bounce_repeats.max(1) } else { 1 })
        })
        .collect()
}

/// The clips (indices into the dataset) the transformer's step `step` draws from: the
/// curriculum's slice (`easy`) during its first steps, then every clip (`all`).
fn step_pool<'a>(
    step: usize,
    curriculum: Option<&crate::configs::Curriculum>,
    easy: &'a [usize],
    all: &'a [usize],
) -> &'a [usize] {
    match curriculum {
        Some(c) if step < c.steps => easy,
        _ => all,
    }
}

/// The motion a caption-swap check names instead of `m`.
fn opposite(m: crate::world::Motion) -> crate::world::Motion {
    use crate::world::Motion::*;
    match m {
        Left => Right,
        Right => Left,
        Up => Down,
        Down => Up,
        Grow => Shrink,
        Shrink => Grow,
        Bounce => Up,
    }
}

/// Loads the trained text encoder and transformer from the work folder and, for up to 64
/// single-object training clips, compares the weighted flow-matching loss (same noise, at each
/// of [`CHECK_SIGMAS`]) with the clip's own caption and with the same caption naming the
/// opposite motion (left/right, up/down, grow/shrink, bounce/up). A transformer that uses the
/// motion word has a lower loss with its own caption.
fn caption_check(preset: &Preset, paths: &RunPaths, workers: usize, log: &Log) -> Result<()> {
    let device = Device::Cpu;
    let latents = candle_core::safetensors::load(paths.latents(), &device)?
        .remove("latents")
        .ok_or_else(|| TrainError::Other("latents file without `latents`".into()))?;
    let (mean, std) = latent_statistics(&latents)?;
    let z = mean.len();
    let as_tensor = |v: Vec<f64>| {
        Tensor::from_vec(
            v.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            (1, z, 1, 1, 1),
            &device,
        )
    };
    let normalised = latents
        .broadcast_sub(&as_tensor(mean)?)?
        .broadcast_div(&as_tensor(std)?)?;
    let (_, _, lf, lh, lw) = latents.dims5()?;
    let tokenizer = PromptTokenizer::from_file(&paths.tokenizer())
        .map_err(|e| TrainError::Other(e.to_string()))?;
    let (text_map, encoder, transformer) = text_encoder_and_transformer(preset, &device)?;
    load_into(&text_map, &paths.text_encoder_weights())?;
    load_into(&transformer.vars, &paths.transformer_weights())?;
    let scenes = dataset_scenes(preset);
    let single = |i: &usize| scenes[*i].objects.len() == 1;
    let available = scenes.len().min(latents.dim(0)?);
    // Single-object clips, and (with a curriculum) those of the curriculum's slice as well.
    let mut checks: Vec<(&str, Vec<usize>)> =
        vec![("", (0..available).filter(single).take(64).collect())];
    if let Some(c) = &preset.dit.curriculum {
        let in_slice = c.slice.indices(&scenes[..available]);
        checks.push((
            " of the curriculum's slice",
            in_slice.into_iter().filter(single).take(64).collect(),
        ));
    }
    let subset = preset.dataset.subset.as_ref();
    let check_one = |&i: &usize| -> Result<Vec<(f32, f32)>> {
        let scene = &scenes[i];
        let mut swapped = scene.clone();
        swapped.objects[0].motion = opposite(scene.objects[0].motion);
        let text = |scene: &Scene| {
            // The same generator for both: the same wording, only the motion differs.
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            match subset {
                Some(subset) => subset.caption(&mut rng, scene),
                None => caption(&mut rng, scene),
            }
        };
        let ids = |text: String| {
            tokenizer
                .encode(&text)
                .map_err(|e| TrainError::Other(e.to_string()))
        };
        let (own, other) = (ids(text(scene))?, ids(text(&swapped))?);
        let x0 = normalised.narrow(0, i, 1)?;
        let cover = object_coverage(scene, &preset.dataset, (lf, lh, lw));
        let weights = ((Tensor::from_vec(cover, (1, 1, lf, lh, lw), &device)?
            * preset.dit.object_weight)?
            + 1.0)?;
        let mut rng = ChaCha8Rng::seed_from_u64(0xC4EC ^ i as u64);
        CHECK_SIGMAS
            .iter()
            .map(|&sigma| -> Result<(f32, f32)> {
                let noise = normal_tensor(&mut rng, x0.dims())?;
                let loss = |ids: &Vec<u32>| -> Result<f32> {
                    let group = DitGroup {
                        x0: x0.clone(),
                        noise: noise.clone(),
                        ids: vec![ids.clone()],
                        sigma,
                        weights: weights.clone(),
                    };
                    Ok(group_loss(&encoder, &transformer, &group, false)?
                        .detach()
                        .to_scalar::<f32>()?)
                };
                Ok((loss(&own)?, loss(&other)?))
            })
            .collect::<Result<Vec<_>>>()
    };
    for (label, picked) in &checks {
        let results = crate::workers::map_items(picked, workers, check_one)
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let n = results.len().max(1) as f32;
        for (k, sigma) in CHECK_SIGMAS.iter().enumerate() {
            let own: f32 = results.iter().map(|r| r[k].0).sum::<f32>() / n;
            let other: f32 = results.iter().map(|r| r[k].1).sum::<f32>() / n;
            let better = results.iter().filter(|r| r[k].0 < r[k].1).count();
            log.line(&format!(
                "caption check: noise {sigma}: {} clips{label}: loss with own caption {own:.4}, with the opposite motion's {other:.4} ({:+.1}%); own caption lower for {better}/{}",
                results.len(),
                (other - own) / own * 100.0,
                results.len()
            ));
        }
    }
    Ok(())
}

/// Noise levels of the caption-swap check.
const CHECK_SIGMAS: [f64; 5] = [0.3, 0.6, 0.9, 0.97, 1.0];

/// Splits the moving-average weights into (text encoder, transformer) tensors by name.
fn split_ema(named: &[(bool, String, Var)], ema: &[Tensor]) -> (Tensors, Tensors) {
    let mut text = Tensors::new();
    let mut dit = Tensors::new();
    for ((is_text, name, _), e) in named.iter().zip(ema) {
        if *is_text {
            text.insert(name.clone(), e.clone());
        } else {
            dit.insert(name.clone(), e.clone());
        }
    }
    (text, dit)
}

/// `decay * average + (1 - decay) * var`, detached: an average that kept its op graph would keep
/// every earlier average alive (the first full run grew by ~15 MB a step until it was killed).
fn ema_update(average: &Tensor, var: &Var, decay: f64) -> Result<Tensor> {
    Ok(((average * decay)? + (var.as_tensor().detach() * (1.0 - decay))?)?.detach())
}

/// Steps between snapshots of the moving-average weights in the work folder, so that a long run
/// can be exported and judged before it ends.
const SNAPSHOT_EVERY: usize = 500;

/// Trains the transformer on `latents`; `coverage` is [`dataset_coverage`] of them as the
/// encode stage saved it (computed here for a latents file written without it).
fn train_dit(
    preset: &Preset,
    latents: &Tensor,
    coverage: Option<Tensor>,
    tokenizer: &PromptTokenizer,
    workers: usize,
    paths: &RunPaths,
    log: &Log,
) -> Result<(Tensors, Tensors, Vec<f32>)> {
    let s = &preset.dit;
    let device = Device::Cpu;
    let (mean, std) = latent_statistics(latents)?;
    let z = mean.len();
    let mean = Tensor::from_vec(
        mean.iter().map(|&m| m as f32).collect::<Vec<_>>(),
        (1, z, 1, 1, 1),
        &device,
    )?;
    let std = Tensor::from_vec(
        std.iter().map(|&m| m as f32).collect::<Vec<_>>(),
        (1, z, 1, 1, 1),
        &device,
    )?;
    let normalised = latents.broadcast_sub(&mean)?.broadcast_div(&std)?;
    let scenes = dataset_scenes(preset);
    let n = latents.dim(0)?;
    let coverage = match coverage {
        Some(c) if c.dims5()? == (n, 1, latents.dim(2)?, latents.dim(3)?, latents.dim(4)?) => c,
        _ => {
            let start = Instant::now();
            let c = dataset_coverage(preset, &scenes, latents, workers)?;
            log.line(&format!(
                "dit: object coverage of {n} clips in {:.0} s (mean {:.3})",
                start.elapsed().as_secs_f64(),
                c.mean_all()?.to_scalar::<f32>()?
            ));
            c
        }
    };

    let (text_map, encoder, transformer) = text_encoder_and_transformer(preset, &device)?;
    let dit_map = &transformer.vars;
    initialise(&text_map, preset.seed ^ 0x5435_0000, preset.sizes.text_d_kv)?;
    initialise(dit_map, preset.seed ^ 0x4449_5400, preset.sizes.text_d_kv)?;
    if paths.dit_resume {
        load_into(&text_map, &paths.text_encoder_weights())?;
        load_into(dit_map, &paths.transformer_weights())?;
        log.line(&format!(
            "dit: resuming from the weights in {}",
            paths.work.display()
        ));
    }
    if s.text_pretrain_steps > 0 && !paths.dit_resume {
        crate::text_pretraining::pretrain_text_encoder(
            preset, &encoder, &text_map, tokenizer, workers, log,
        )?;
    }
    let train_text = s.text_lr_scale > 0.0;
    let named: Vec<(bool, String, Var)> = named_vars(&text_map)
        .into_iter()
        .map(|(n, v)| (true, n, v))
        .chain(named_vars(dit_map).into_iter().map(|(n, v)| (false, n, v)))
        .collect();
    let vars: Vec<Var> = named.iter().map(|(_, _, v)| v.clone()).collect();
    let text_params: usize = named.iter().filter(|n| n.0).map(|n| n.2.elem_count()).sum();
    let dit_params: usize = named
        .iter()
        .filter(|n| !n.0)
        .map(|n| n.2.elem_count())
        .sum();
    log.line(&format!(
        "dit: {dit_params} transformer + {text_params} text-encoder parameters, {} clips, {} steps of {} clips in {} groups on {workers} workers",
        scenes.len(),
        s.steps,
        s.batch,
        s.groups
    ));
    let mut ema: Vec<Tensor> = vars
        .iter()
        .map(|v| v.as_tensor().detach().copy())
        .collect::<candle_core::Result<_>>()?;
    let text_vars: Vec<Var> = named.iter().filter(|n| n.0).map(|n| n.2.clone()).collect();
    let dit_vars: Vec<Var> = named.iter().filter(|n| !n.0).map(|n| n.2.clone()).collect();
    let mut text_opt = adamw(text_vars, s.lr * s.text_lr_scale)?;
    let mut opt = adamw(dit_vars.clone(), s.lr)?;
    // A frozen text encoder gets no gradients, and no optimiser steps.
    let trained_vars = if train_text { vars.clone() } else { dit_vars };
    if !train_text {
        log.line("dit: the text encoder is frozen");
    }
    let all = training_pool(&scenes[..n], s.bounce_repeats);
    if all.len() > n {
        let bouncing = scenes[..n]
            .iter()
            .filter(|scene| scene.has_motion(crate::world::Motion::Bounce))
            .count();
        log.line(&format!(
            "dit: the {bouncing} clips with a bouncing object are drawn {}x as often ({} of {} in the pool)",
            s.bounce_repeats,
            bouncing * s.bounce_repeats,
            all.len()
        ));
    }
    let easy: Vec<usize> = match &s.curriculum {
        Some(c) => {
            let easy = c.slice.indices(&scenes);
            if easy.is_empty() {
                return Err(TrainError::Other(
                    "dit: the curriculum's slice holds none of the dataset's clips".into(),
                ));
            }
            log.line(&format!(
                "dit: curriculum: the first {} steps on {} of {n} clips ({:?})",
                c.steps,
                easy.len(),
                c.slice
            ));
            easy
        }
        None => Vec::new(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(preset.seed ^ 0x4449_5401);
    let smoke = preset.name == "smoke";
    let first_inputs = dit_step_inputs(
        preset,
        &normalised,
        &coverage,
        &scenes,
        step_pool(0, s.curriculum.as_ref(), &easy, &all),
        tokenizer,
        &mut rng,
    )?;
    let mut losses = Vec::with_capacity(s.steps);
    let mut window = Instant::now();
    for step in 0..s.steps {
        let lr = learning_rate(step, s.steps, s.warmup, s.lr);
        opt.set_learning_rate(lr);
        text_opt.set_learning_rate(lr * s.text_lr_scale);
        let inputs = if smoke {
            first_inputs.clone()
        } else {
            let pool = step_pool(step, s.curriculum.as_ref(), &easy, &all);
            if s.curriculum.as_ref().is_some_and(|c| step == c.steps) {
                log.line(&format!(
                    "dit: curriculum over at step {step}: every clip from now on"
                ));
            }
            dit_step_inputs(
                preset,
                &normalised,
                &coverage,
                &scenes,
                pool,
                tokenizer,
                &mut rng,
            )?
        };
        let groups = inputs.len() as f64;
        let (value, grads) = parallel_grads(&inputs, workers, &trained_vars, |group| {
            Ok((group_loss(&encoder, &transformer, group, train_text)? / groups)?)
        })?;
        if !value.is_finite() {
            return Err(TrainError::Other(format!(
                "dit: loss became {value} at step {step}"
            )));
        }
        if train_text {
            clipped_step(&mut [&mut text_opt, &mut opt], &trained_vars, grads, 1.0)?;
        } else {
            clipped_step(&mut [&mut opt], &trained_vars, grads, 1.0)?;
        }
        // The exponential moving average of the weights is what ships; it warms up so that it
        // follows the fast early changes.
        let decay = s.ema_decay.min((1.0 + step as f64) / (10.0 + step as f64));
        for (e, v) in ema.iter_mut().zip(&vars) {
            *e = ema_update(e, v, decay)?;
        }
        losses.push(value);
        if (step + 1) % 25 == 0 || step + 1 == s.steps {
            let recent = &losses[losses.len().saturating_sub(25)..];
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            log.line(&format!(
                "dit: step {}/{} loss {mean:.4} ({:.2} s/step)",
                step + 1,
                s.steps,
                window.elapsed().as_secs_f64() / recent.len() as f64
            ));
            window = Instant::now();
        }
        if (step + 1) % SNAPSHOT_EVERY == 0 && step + 1 < s.steps {
            let (text, dit) = split_ema(&named, &ema);
            save_tensors(&text, &paths.text_encoder_weights())?;
            save_tensors(&dit, &paths.transformer_weights())?;
            log.line(&format!(
                "dit: snapshot of step {} in {}",
                step + 1,
                paths.work.display()
            ));
        }
    }
    let (text, dit) = split_ema(&named, &ema);
    Ok((text, dit, losses))
}

/// The transformer under training: its config and variables. Each group of prompts gets a
/// transformer over these variables built for its collapsed text
/// ([`CollapsedText::transformer`]).
struct TrainedTransformer {
    config: DitConfig,
    vars: VarMap,
}

/// The trainable text encoder (with its `VarMap`) and transformer of `preset`, built with the
/// training kernels, their variables created.
fn text_encoder_and_transformer(
    preset: &Preset,
    device: &Device,
) -> Result<(VarMap, Umt5Encoder, TrainedTransformer)> {
    let text_map = VarMap::new();
    let encoder = Umt5Encoder::new_with_kernels(
        &preset.sizes.text_encoder(),
        VarBuilder::from_varmap(&text_map, DType::F32, device),
        &training_kernels(),
    )?;
    let transformer = TrainedTransformer {
        config: preset.sizes.transformer(),
        vars: VarMap::new(),
    };
    // Building it once creates the variables.
    WanTransformer::new_with_kernels(
        &transformer.config,
        VarBuilder::from_varmap(&transformer.vars, DType::F32, device),
        training_kernels(),
    )?;
    Ok((text_map, encoder, transformer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_crop_keeps_its_margin_inside_the_grid_and_knows_where_the_crop_is() {
        // Interior: the full margin on both sides.
        let c = ContextCrop::new((5, 6), 4, 2, (20, 30));
        assert_eq!((c.y0, c.x0, c.height, c.width), (3, 4, 8, 8));
        assert_eq!((c.dy, c.dx, c.crop_h, c.crop_w), (2, 2, 4, 4));
        // At the top-left corner: no context before the crop.
        let c = ContextCrop::new((0, 1), 4, 2, (20, 30));
        assert_eq!((c.y0, c.x0, c.height, c.width), (0, 0, 6, 7));
        assert_eq!((c.dy, c.dx), (0, 1));
        // At the bottom-right edge: no context after it.
        let c = ContextCrop::new((16, 26), 4, 2, (20, 30));
        assert_eq!((c.y0, c.x0, c.height, c.width), (14, 24, 6, 6));
        assert_eq!((c.dy, c.dx), (2, 2));
        // A crop larger than the grid is the whole grid.
        let c = ContextCrop::new((0, 0), 8, 2, (5, 6));
        assert_eq!((c.height, c.width, c.crop_h, c.crop_w), (5, 6, 5, 6));
    }

    #[test]
    fn clips_with_a_bounce_are_in_the_pool_as_often_as_asked() {
        let scenes = dataset_scenes(&Preset::full());
        let bounces = |scene: &Scene| scene.has_motion(crate::world::Motion::Bounce);
        let bouncing = scenes.iter().filter(|s| bounces(s)).count();
        assert!(
            bouncing > 100,
            "{bouncing} of {} clips bounce",
            scenes.len()
        );
        assert_eq!(
            training_pool(&scenes, 1),
            (0..scenes.len()).collect::<Vec<_>>()
        );
        let pool = training_pool(&scenes, 3);
        assert_eq!(pool.len(), scenes.len() + 2 * bouncing);
        for (i, scene) in scenes.iter().enumerate() {
            let times = pool.iter().filter(|&&j| j == i).count();
            assert_eq!(times, if bounces(scene) { 3 } else { 1 }, "clip {i}");
        }
    }

    /// Regression: the moving average must not hold on to earlier averages through its graph.
    #[test]
    fn the_moving_average_keeps_no_history() {
        let var = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let mut average = var.as_tensor().detach().copy().unwrap();
        for _ in 0..3 {
            var.set(&(var.as_tensor() + 1.0).unwrap()).unwrap();
            average = ema_update(&average, &var, 0.5).unwrap();
            assert!(!average.track_op(), "the average carries an op graph");
        }
        let values: Vec<f32> = average.to_vec1().unwrap();
        // 1 -> (1+2)/2=1.5 -> (1.5+3)/2=2.25 -> (2.25+4)/2=3.125
        assert_eq!(values[0], 3.125);
    }

    #[test]
    fn the_curriculum_draws_from_its_slice_then_from_every_clip() {
        let easy = [3, 7];
        let all = [0, 1, 2, 3, 4, 5, 6, 7];
        let c = crate::configs::Curriculum {
            steps: 2,
            slice: crate::world::Slice::motion_first(),
        };
        assert_eq!(step_pool(0, Some(&c), &easy, &all), &easy);
        assert_eq!(step_pool(1, Some(&c), &easy, &all), &easy);
        assert_eq!(step_pool(2, Some(&c), &easy, &all), &all);
        assert_eq!(step_pool(0, None, &easy, &all), &all);
    }

    /// The default slice is a usable part of the full preset's already-encoded clips: one object
    /// on one background, every motion and shape, enough clips for each motion.
    #[test]
    fn the_motion_first_slice_covers_every_motion_of_the_full_dataset() {
        use crate::world::{MOTIONS, SHAPES};
        let preset = Preset::full();
        let scenes = dataset_scenes(&preset);
        let slice = crate::world::Slice::motion_first();
        let picked = slice.indices(&scenes);
        assert!(picked.len() >= 50, "{} clips", picked.len());
        for &i in &picked {
            assert_eq!(scenes[i].objects.len(), 1);
            assert!(slice.contains(&scenes[i]));
        }
        for m in MOTIONS {
            let count = picked
                .iter()
                .filter(|&&i| scenes[i].objects[0].motion == m)
                .count();
            assert!(count >= 4, "{m:?}: {count} clips");
        }
        for shape in SHAPES {
            assert!(picked.iter().any(|&i| scenes[i].objects[0].shape == shape));
        }
        // Scenes outside the slice: two objects, another background, another colour.
        let outside = (0..scenes.len()).filter(|i| !picked.contains(i)).count();
        assert_eq!(outside + picked.len(), scenes.len());
    }
}
