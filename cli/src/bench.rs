//! `t2v bench`: the real-size architecture with random weights (no download) timed per stage,
//! with achieved TFLOP/s against the reference's FLOP counts. On the CPU only a tiny
//! configuration is practical.

use candle_core::{DType, Device, Tensor};
use serde_json::json;
use std::time::Instant;
use t2v_models::dit::attention::{sdpa, sdpa_with_budget, SCORE_BUDGET_BYTES};
use t2v_models::dit::flops::forward_flops;
use t2v_models::dit::{DitConfig, TokenTimesteps};
use t2v_models::preview::LatentRgb;
use t2v_models::taehv::TaehvConfig;
use t2v_models::text::Umt5Config;
use t2v_models::vae::VaeConfig;
use t2v_models::weights::{ModelConfigs, RandomWeights};

/// One clip size to measure.
#[derive(Debug, Clone, Copy)]
pub struct BenchSize {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
}

impl BenchSize {
    pub fn label(&self) -> String {
        format!("{}x{}x{}", self.width, self.height, self.frames)
    }

    /// The latent grid `(frames, height, width)`: 4x temporal, 16x spatial compression.
    pub fn latent_grid(&self) -> (usize, usize, usize) {
        ((self.frames - 1) / 4 + 1, self.height / 16, self.width / 16)
    }

    /// The transformer's tokens for this size: the latent grid over its patch size.
    pub(crate) fn tokens(&self, dit_cfg: &DitConfig) -> usize {
        let (f, h, w) = self.latent_grid();
        let [pf, ph, pw] = dit_cfg.patch_size;
        (f / pf) * (h / ph) * (w / pw)
    }

    /// Standard-normal latents `[1, C, F', H/16, W/16]` with `channels` channels.
    pub(crate) fn random_latents(
        &self,
        channels: usize,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let (f, h, w) = self.latent_grid();
        Tensor::randn(0f32, 1.0, (1, channels, f, h, w), dev)
    }
}

/// Which model sizes to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchModel {
    /// Wan2.2 TI2V-5B's real configuration (needs a large GPU).
    Real,
    /// A small configuration of the same architecture, for CPUs.
    Tiny,
}

/// The parts of the bench, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchStage {
    Text,
    Transformer,
    Attention,
    Vae,
    Generation,
    /// The Real-ESRGAN networks (see [`crate::bench_upscale`]).
    Upscale,
    /// The live preview (latent-to-RGB projection) and the fast decoder (taew2_2's layers).
    Preview,
}

impl BenchStage {
    pub const ALL: [BenchStage; 7] = [
        BenchStage::Text,
        BenchStage::Transformer,
        BenchStage::Attention,
        BenchStage::Vae,
        BenchStage::Generation,
        BenchStage::Upscale,
        BenchStage::Preview,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BenchStage::Text => "text",
            BenchStage::Transformer => "transformer",
            BenchStage::Attention => "attention",
            BenchStage::Vae => "vae",
            BenchStage::Generation => "generation",
            BenchStage::Upscale => "upscale",
            BenchStage::Preview => "preview",
        }
    }
}

impl std::str::FromStr for BenchStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        BenchStage::ALL
            .into_iter()
            .find(|st| st.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<_> = BenchStage::ALL.iter().map(|s| s.name()).collect();
                format!("unknown stage `{s}`: use {}", names.join(", "))
            })
    }
}

pub struct BenchOptions {
    pub model: BenchModel,
    /// Which stages to run (all by default).
    pub stages: Vec<BenchStage>,
    pub sizes: Vec<BenchSize>,
    pub device: Device,
    pub dtype: DType,
    /// Timed repetitions per measurement (after one warm-up).
    pub repeats: usize,
    /// Prompt length in tokens for text encoding.
    pub prompt_tokens: usize,
    /// The published upscalers the `upscale` stage times (names of
    /// `t2v_models::upscale::Architecture::PUBLISHED`).
    pub upscalers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct BenchRow {
    pub size: String,
    pub stage: String,
    pub seconds: f64,
    /// Reference FLOPs of the stage, where known.
    pub flops: Option<f64>,
}

impl BenchRow {
    pub fn tflops_per_second(&self) -> Option<f64> {
        self.flops.map(|f| f / self.seconds / 1e12)
    }
}

pub struct BenchReport {
    pub device: String,
    pub dtype: DType,
    pub model: BenchModel,
    pub rows: Vec<BenchRow>,
    pub peak_memory_bytes: Option<u64>,
    pub peak_memory_kind: &'static str,
    /// Peak memory of each size's whole-generation stage (all three models resident, as in the
    /// default mode), with the size label.
    pub generation_peaks: Vec<(String, u64)>,
}

/// Median seconds of `repeats` runs of `f` after one warm-up; `sync` waits for the device.
pub(crate) fn time<T>(
    repeats: usize,
    device: &Device,
    mut f: impl FnMut() -> candle_core::Result<T>,
) -> candle_core::Result<f64> {
    f()?;
    device.synchronize()?;
    let mut times = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        f()?;
        device.synchronize()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Peak memory while the bench runs: on CUDA the GPU's memory in use (total minus free, the
/// whole device, as nvidia-smi shows it) sampled every 5 ms on a thread of its own; on the CPU
/// the process's peak resident memory.
pub(crate) struct MemoryMeter {
    #[cfg(feature = "cuda")]
    gpu: Option<gpu_meter::GpuMeter>,
}

impl MemoryMeter {
    pub(crate) fn start(device: &Device) -> Self {
        #[cfg(feature = "cuda")]
        {
            Self {
                gpu: gpu_meter::GpuMeter::start(device),
            }
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = device;
            Self {}
        }
    }

    fn kind(&self) -> &'static str {
        #[cfg(feature = "cuda")]
        if self.gpu.is_some() {
            return "peak device memory in use (whole GPU, sampled every 5 ms)";
        }
        "peak resident host memory (VmHWM)"
    }

    /// The peak so far; `since_reset` gives the peak since the last [`Self::reset`] on CUDA.
    pub(crate) fn peak(&self, since_reset: bool) -> Option<u64> {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            return Some(gpu.peak(since_reset));
        }
        let _ = since_reset;
        peak_rss_bytes()
    }

    pub(crate) fn reset(&self) {
        #[cfg(feature = "cuda")]
        if let Some(gpu) = &self.gpu {
            gpu.reset();
        }
    }
}

#[cfg(feature = "cuda")]
mod gpu_meter {
    use candle_core::Device;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    pub struct GpuMeter {
        stop: Arc<AtomicBool>,
        peak: Arc<AtomicU64>,
        since_reset: Arc<AtomicU64>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl GpuMeter {
        pub fn start(device: &Device) -> Option<Self> {
            let Device::Cuda(dev) = device else {
                return None;
            };
            let context = dev.cuda_stream().context().clone();
            let stop = Arc::new(AtomicBool::new(false));
            let peak = Arc::new(AtomicU64::new(0));
            let since_reset = Arc::new(AtomicU64::new(0));
            let (s, p, r) = (stop.clone(), peak.clone(), since_reset.clone());
            let thread = std::thread::spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    if let Ok((free, total)) = context.mem_get_info() {
                        let used = total.saturating_sub(free) as u64;
                        p.fetch_max(used, Ordering::Relaxed);
                        r.fetch_max(used, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            Some(Self {
                stop,
                peak,
                since_reset,
                thread: Some(thread),
            })
        }

        pub fn peak(&self, since_reset: bool) -> u64 {
            // One more sample's worth of time so the latest allocations are seen.
            std::thread::sleep(Duration::from_millis(20));
            if since_reset {
                self.since_reset.load(Ordering::Relaxed)
            } else {
                self.peak.load(Ordering::Relaxed)
            }
        }

        pub fn reset(&self) {
            self.since_reset.store(0, Ordering::Relaxed);
        }
    }

    impl Drop for GpuMeter {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Peak resident memory of this process (Linux `VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

pub fn run(opts: &BenchOptions, log: &mut dyn FnMut(&str)) -> candle_core::Result<BenchReport> {
    let configs = match opts.model {
        BenchModel::Real => ModelConfigs::wan22_ti2v_5b(),
        BenchModel::Tiny => ModelConfigs::tiny(),
    };
    let (dit_cfg, vae_cfg, text_cfg) = (configs.transformer, configs.vae, configs.text_encoder);
    let dev = &opts.device;
    let dtype = opts.dtype;
    let vae_dtype = t2v_models::checkpoint::vae_dtype(dtype, dev);
    let text_dtype = t2v_models::checkpoint::text_encoder_dtype(dtype);
    let mut rows = Vec::new();
    let meter = MemoryMeter::start(dev);

    let wants = |stage: BenchStage| opts.stages.contains(&stage);
    let ids: Vec<u32> = (0..opts.prompt_tokens as u32)
        .map(|i| 3 + i % 100)
        .collect();
    let ids = Tensor::new(ids.as_slice(), dev)?.unsqueeze(0)?;
    if wants(BenchStage::Text) {
        log("building the text encoder (random weights)");
        let text = RandomWeights::text_encoder(&text_cfg, text_dtype, dev)?;
        let seconds = time(opts.repeats, dev, || text.forward(&ids))?;
        rows.push(BenchRow {
            size: format!("{} tokens", opts.prompt_tokens),
            stage: "text encoding".into(),
            seconds,
            flops: None,
        });
    }

    if wants(BenchStage::Transformer) {
        transformer_rows(opts, &dit_cfg, &mut rows, log)?;
    }
    if wants(BenchStage::Attention) {
        attention_rows(opts, &dit_cfg, &mut rows, log)?;
    }
    if wants(BenchStage::Vae) {
        vae_rows(opts, &vae_cfg, vae_dtype, &mut rows, log)?;
    }
    let mut generation_peaks = Vec::new();
    if wants(BenchStage::Generation) {
        generation_rows(
            opts,
            (&dit_cfg, &vae_cfg, &text_cfg),
            (&ids, text_dtype, vae_dtype),
            &meter,
            (&mut rows, &mut generation_peaks),
            log,
        )?;
    }
    if wants(BenchStage::Upscale) {
        crate::bench_upscale::upscale_rows(opts, &mut rows, log)?;
    }
    if wants(BenchStage::Preview) {
        preview_rows(opts, &vae_cfg, vae_dtype, &mut rows, log)?;
    }
    Ok(BenchReport {
        device: format!("{dev:?}"),
        dtype,
        model: opts.model,
        rows,
        peak_memory_bytes: meter.peak(false),
        peak_memory_kind: meter.kind(),
        generation_peaks,
    })
}

fn transformer_rows(
    opts: &BenchOptions,
    dit_cfg: &DitConfig,
    rows: &mut Vec<BenchRow>,
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let (dev, dtype) = (&opts.device, opts.dtype);
    log("building the transformer (random weights)");
    let dit = RandomWeights::transformer(dit_cfg, dtype, dev)?;
    let context = Tensor::randn(0f32, 1.0, (1, 512, dit_cfg.text_dim), dev)?.to_dtype(dtype)?;
    let prompt = dit.prepare_context(&context)?;
    for size in &opts.sizes {
        let latents = size.random_latents(dit_cfg.in_channels, dev)?;
        let tokens = size.tokens(dit_cfg);
        let steps = TokenTimesteps::uniform(tokens, 500.0);
        log(&format!("timing a transformer forward at {}", size.label()));
        let seconds = time(opts.repeats, dev, || dit.forward(&latents, &steps, &prompt))?;
        let flops = forward_flops(dit_cfg, tokens, 512).total();
        rows.push(BenchRow {
            size: size.label(),
            stage: "transformer step (no CFG)".into(),
            seconds,
            flops: Some(flops),
        });
        rows.push(BenchRow {
            size: size.label(),
            stage: "transformer step (CFG)".into(),
            seconds: 2.0 * seconds,
            flops: Some(2.0 * flops),
        });
    }
    Ok(())
}

fn attention_rows(
    opts: &BenchOptions,
    dit_cfg: &DitConfig,
    rows: &mut Vec<BenchRow>,
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let (dev, dtype) = (&opts.device, opts.dtype);
    for size in &opts.sizes {
        let tokens = size.tokens(dit_cfg);
        // One block's self-attention alone: the default path (the fused kernel on CUDA) and
        // the query-chunked path every device can take.
        let heads = dit_cfg.num_attention_heads;
        let qkv = Tensor::randn(
            0f32,
            1.0,
            (3, heads, tokens, dit_cfg.attention_head_dim),
            dev,
        )?
        .to_dtype(dtype)?;
        let (q, k, v) = (
            qkv.get(0)?.unsqueeze(0)?,
            qkv.get(1)?.unsqueeze(0)?,
            qkv.get(2)?.unsqueeze(0)?,
        );
        let scale = 1.0 / (dit_cfg.attention_head_dim as f64).sqrt();
        let attention_flops =
            4.0 * (tokens as f64).powi(2) * (heads * dit_cfg.attention_head_dim) as f64;
        log(&format!("timing self-attention at {}", size.label()));
        let seconds = time(opts.repeats, dev, || sdpa(&q, &k, &v, scale))?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "self-attention, one block".into(),
            seconds,
            flops: Some(attention_flops),
        });
        let seconds = time(opts.repeats, dev, || {
            sdpa_with_budget(&q, &k, &v, scale, SCORE_BUDGET_BYTES)
        })?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "self-attention, chunked".into(),
            seconds,
            flops: Some(attention_flops),
        });
    }
    Ok(())
}

fn vae_rows(
    opts: &BenchOptions,
    vae_cfg: &VaeConfig,
    vae_dtype: DType,
    rows: &mut Vec<BenchRow>,
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let dev = &opts.device;
    log("building the VAE decoder (random weights)");
    let vae = RandomWeights::vae_decoder(vae_cfg, vae_dtype, dev)?;
    for size in &opts.sizes {
        let (latent_frames, _, _) = size.latent_grid();
        let z = size.random_latents(vae_cfg.z_dim, dev)?;
        log(&format!("timing VAE decode at {}", size.label()));
        let two = z.narrow(2, 0, latent_frames.min(2))?;
        // The second latent frame is a steady-state chunk (4 frames); the first is a single frame.
        let two_frames = time(opts.repeats, dev, || vae.decode(&two))?;
        let first = time(opts.repeats, dev, || vae.decode(&z.narrow(2, 0, 1)?))?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "VAE decode, one 4-frame chunk".into(),
            seconds: (two_frames - first).max(0.0),
            flops: None,
        });
        let whole = time(1, dev, || vae.decode(&z))?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "VAE decode, whole clip".into(),
            seconds: whole,
            flops: None,
        });
    }
    Ok(())
}

/// A live preview (the sampler's estimate through the latent-to-RGB projection, upsampled to
/// the clip size) and the fast decode of the whole clip with `taew2_2`'s layers (random
/// weights).
fn preview_rows(
    opts: &BenchOptions,
    vae_cfg: &VaeConfig,
    vae_dtype: DType,
    rows: &mut Vec<BenchRow>,
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let dev = &opts.device;
    let projection = LatentRgb::wan22();
    let tiny = RandomWeights::tiny_decoder(
        &TaehvConfig {
            latent_channels: vae_cfg.z_dim,
            ..TaehvConfig::taew2_2()
        },
        vae_dtype,
        dev,
    )?;
    let sub_error = |e: t2v_models::Error| candle_core::Error::Msg(e.to_string());
    for size in &opts.sizes {
        let z = size.random_latents(vae_cfg.z_dim, dev)?;
        log(&format!(
            "timing a preview and the fast decode at {}",
            size.label()
        ));
        let seconds = time(opts.repeats, dev, || {
            projection
                .images(&z, size.height, size.width)
                .map_err(sub_error)
        })?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "preview: latent-to-RGB projection".into(),
            seconds,
            flops: None,
        });
        let seconds = time(1, dev, || tiny.decode(&z).map_err(sub_error))?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "fast decode (taew2_2), whole clip".into(),
            seconds,
            flops: None,
        });
    }
    Ok(())
}

/// One whole generation as the service runs it by default: the transformer and VAE stay on the
/// device between jobs, the text encoder is loaded next to them for a new prompt and freed
/// after encoding; then one CFG step and the whole clip decoded. The peak covers both phases.
fn generation_rows(
    opts: &BenchOptions,
    (dit_cfg, vae_cfg, text_cfg): (&DitConfig, &VaeConfig, &Umt5Config),
    (ids, text_dtype, vae_dtype): (&Tensor, DType, DType),
    meter: &MemoryMeter,
    (rows, peaks): (&mut Vec<BenchRow>, &mut Vec<(String, u64)>),
    log: &mut dyn FnMut(&str),
) -> candle_core::Result<()> {
    let (dev, dtype) = (&opts.device, opts.dtype);
    log("building the transformer and VAE for the whole-generation stage");
    let dit = RandomWeights::transformer(dit_cfg, dtype, dev)?;
    let vae = RandomWeights::vae(vae_cfg, vae_dtype, dev)?;
    for size in &opts.sizes {
        log(&format!(
            "one generation step and decode at {}",
            size.label()
        ));
        dev.synchronize()?;
        meter.reset();
        let start = Instant::now();
        let text = RandomWeights::text_encoder(text_cfg, text_dtype, dev)?;
        let ctx = t2v_models::text::pad_to_length(&text.forward(ids)?, 512)?.to_dtype(dtype)?;
        dev.synchronize()?;
        drop(text);
        let (prompt, negative) = (dit.prepare_context(&ctx)?, dit.prepare_context(&ctx)?);
        let latents = size.random_latents(dit_cfg.in_channels, dev)?;
        let steps = TokenTimesteps::uniform(size.tokens(dit_cfg), 500.0);
        let cond = dit.forward(&latents, &steps, &prompt)?;
        let uncond = dit.forward(&latents, &steps, &negative)?;
        let z = (&uncond + ((&cond - &uncond)? * 5.0)?)?;
        vae.decode(&z.to_dtype(vae_dtype)?)?;
        dev.synchronize()?;
        rows.push(BenchRow {
            size: size.label(),
            stage: "generation: encode, 1 CFG step, decode".into(),
            seconds: start.elapsed().as_secs_f64(),
            flops: None,
        });
        if let Some(peak) = meter.peak(true) {
            peaks.push((size.label(), peak));
        }
    }
    Ok(())
}

impl BenchReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "device: {}, dtype: {:?}, model: {:?}\n",
            self.device, self.dtype, self.model
        );
        out += &format!(
            "{:<18} {:<32} {:>12} {:>12}\n",
            "size", "stage", "seconds", "TFLOP/s"
        );
        for r in &self.rows {
            let tf = r
                .tflops_per_second()
                .map_or("-".to_string(), |t| format!("{t:.4}"));
            out += &format!(
                "{:<18} {:<32} {:>12.4} {:>12}\n",
                r.size, r.stage, r.seconds, tf
            );
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        if let Some(b) = self.peak_memory_bytes {
            out += &format!("{}: {:.2} GiB\n", self.peak_memory_kind, gib(b));
        }
        for (size, b) in &self.generation_peaks {
            out += &format!(
                "whole generation at {size} (default mode): {:.2} GiB\n",
                gib(*b)
            );
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "device": self.device,
            "dtype": format!("{:?}", self.dtype),
            "model": format!("{:?}", self.model),
            "rows": self.rows.iter().map(|r| json!({
                "size": r.size, "stage": r.stage, "seconds": r.seconds,
                "reference_flops": r.flops, "achieved_tflops_per_second": r.tflops_per_second(),
            })).collect::<Vec<_>>(),
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_kind": self.peak_memory_kind,
            "generation_peak_memory_bytes": self.generation_peaks.iter()
                .map(|(size, b)| json!({"size": size, "bytes": b})).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_bench_runs_on_cpu_and_reports_every_stage() {
        let opts = BenchOptions {
            model: BenchModel::Tiny,
            sizes: vec![BenchSize {
                width: 64,
                height: 32,
                frames: 5,
            }],
            stages: BenchStage::ALL.to_vec(),
            device: Device::Cpu,
            dtype: DType::F32,
            repeats: 1,
            prompt_tokens: 8,
            upscalers: vec!["realesr-animevideov3".into()],
        };
        let report = run(&opts, &mut |_| {}).unwrap();
        let stages: Vec<&str> = report.rows.iter().map(|r| r.stage.as_str()).collect();
        assert_eq!(
            stages,
            [
                "text encoding",
                "transformer step (no CFG)",
                "transformer step (CFG)",
                "self-attention, one block",
                "self-attention, chunked",
                "VAE decode, one 4-frame chunk",
                "VAE decode, whole clip",
                "generation: encode, 1 CFG step, decode",
                "upscale one frame, realesr-animevideov3",
                "upscale one frame, realesr-animevideov3",
                "preview: latent-to-RGB projection",
                "fast decode (taew2_2), whole clip",
            ]
        );
        assert!(report
            .rows
            .iter()
            .all(|r| r.seconds.is_finite() && r.seconds >= 0.0));
        assert!(report.rows[1].tflops_per_second().unwrap() > 0.0);
        assert!(report.table().contains("transformer step (CFG)"));
        assert_eq!(report.json()["rows"].as_array().unwrap().len(), 12);
        // 64x32 to a 720 and a 1080 short side.
        assert_eq!(report.rows[8].size, "64x32 -> 1440x720");
        assert_eq!(report.rows[9].size, "64x32 -> 2160x1080");
        // On the CPU the memory figure is the process's peak resident memory.
        assert!(report.peak_memory_bytes.unwrap() > 0);
        assert_eq!(report.peak_memory_kind, "peak resident host memory (VmHWM)");
    }
}
