//! The plan: for a request and a memory budget, the fastest set of mechanisms whose every stage
//! fits, and what each stage holds on the device.

use super::estimates;
use super::inventory::ModelInventory;
use crate::checkpoint::{text_encoder_dtype, Component};
use crate::pipeline::request::{validate_frames, validate_size, FRAME_STRIDE, SIZE_MULTIPLE};
use crate::{Error, Result};
use candle_core::DType;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const GIB: u64 = 1 << 30;
/// The CUDA context, cuBLAS handle and workspace and the loaded kernel modules.
pub const CUDA_CONTEXT_BYTES: u64 = 512 << 20;
/// Left for the host application (Nuke, Resolve, the desktop) and allocator fragmentation.
pub const HOST_MARGIN_BYTES: u64 = 768 << 20;
/// Device slots the streamed transformer blocks rotate through: one runs while the next is copied.
pub const STREAM_SLOTS: usize = 2;
/// Token slices of the feed-forward when the plan chunks it.
pub const FFN_CHUNKS: usize = 4;
/// Tiled decode's tile and stride in pixels (diffusers' `AutoencoderKLWan.enable_tiling`).
pub const TILE_PX: usize = crate::vae::Tiling::DIFFUSERS.tile_px;
pub const TILE_STRIDE_PX: usize = crate::vae::Tiling::DIFFUSERS.stride_px;
/// The budgets offered to users, in GiB.
pub const BUDGET_CHOICES_GIB: [u32; 4] = [24, 16, 12, 8];

fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB as f64
}

/// A user's memory choice: `auto` (the device's free memory) or a card size in GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryBudget {
    #[default]
    Auto,
    /// A card of this many GiB.
    #[serde(untagged)]
    Gib(u32),
}

impl MemoryBudget {
    /// Every choice the node and `--vram` offer, `auto` first.
    pub fn choices() -> Vec<MemoryBudget> {
        std::iter::once(MemoryBudget::Auto)
            .chain(BUDGET_CHOICES_GIB.iter().map(|&g| MemoryBudget::Gib(g)))
            .collect()
    }

    /// The budget on a device: `auto` with `free_bytes` of free memory (measured after this
    /// process's CUDA context exists; `None` on the CPU) is that memory less the host margin;
    /// on the CPU `auto` means no limit.
    pub fn resolve(self, free_bytes: Option<u64>) -> Budget {
        match (self, free_bytes) {
            (MemoryBudget::Gib(g), _) => Budget::Bytes(g as u64 * GIB),
            (MemoryBudget::Auto, None) => Budget::Unlimited,
            // The context is already inside the used memory; the plan counts it again.
            (MemoryBudget::Auto, Some(free)) => Budget::Bytes(free + CUDA_CONTEXT_BYTES),
        }
    }
}

impl fmt::Display for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryBudget::Auto => f.write_str("auto"),
            MemoryBudget::Gib(g) => write!(f, "{g}"),
        }
    }
}

impl std::str::FromStr for MemoryBudget {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if t == "auto" {
            return Ok(MemoryBudget::Auto);
        }
        let digits = t
            .trim_end_matches("gib")
            .trim_end_matches("gb")
            .trim_end_matches('g')
            .trim();
        match digits.parse::<u32>() {
            Ok(g) if (4..=1024).contains(&g) => Ok(MemoryBudget::Gib(g)),
            _ => Err(format!(
                "memory budget `{s}`: use auto or a card size in GB from 4 up (24, 16, 12, 8)"
            )),
        }
    }
}

/// How much device memory a plan may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// No limit (the CPU path): the fastest plan.
    Unlimited,
    Bytes(u64),
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::Unlimited => f.write_str("no limit"),
            Budget::Bytes(b) => write!(f, "{:.2} GiB", gib(*b)),
        }
    }
}

/// The request as the plan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanRequest {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    /// Classifier-free guidance: two prompt contexts.
    pub guidance: bool,
    /// The compute dtype of the transformer.
    pub dtype: DType,
}

/// Where the text encoder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoderPlacement {
    /// Loaded on the device and kept there beside the transformer: fastest for new prompts.
    WithTransformer,
    /// On the device, but alone: the transformer is freed before it loads, and it is freed
    /// after the prompt is encoded.
    Alone,
    /// On the CPU: never on the device.
    Cpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransformerPlacement {
    Resident,
    /// Blocks held in host memory and copied into a ring of `slots` device slots.
    Streamed {
        slots: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodeMode {
    /// Each latent frame decoded whole.
    Whole,
    /// Spatial tiles with blended overlaps ([`TILE_PX`], [`TILE_STRIDE_PX`]).
    Tiled,
}

/// The mechanisms a plan chooses among.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mechanisms {
    pub text_encoder: TextEncoderPlacement,
    pub transformer: TransformerPlacement,
    /// 1: the feed-forward over all tokens at once.
    pub ffn_chunks: usize,
    pub decode: DecodeMode,
}

impl Mechanisms {
    /// Everything resident: the fastest, for budgets that hold it all.
    pub const FASTEST: Mechanisms = Mechanisms {
        text_encoder: TextEncoderPlacement::WithTransformer,
        transformer: TransformerPlacement::Resident,
        ffn_chunks: 1,
        decode: DecodeMode::Whole,
    };
    /// Every memory-saving mechanism on.
    pub const LEANEST: Mechanisms = Mechanisms {
        text_encoder: TextEncoderPlacement::Cpu,
        transformer: TransformerPlacement::Streamed {
            slots: STREAM_SLOTS,
        },
        ffn_chunks: FFN_CHUNKS,
        decode: DecodeMode::Tiled,
    };

    /// Every combination, fastest first (by [`Self::cost`], a ranking of their slowdowns:
    /// chunking the feed-forward costs next to nothing; encoding alone costs a transformer reload
    /// per new prompt; tiles recompute their overlaps; streaming adds copies that the compute
    /// hides only partly; a CPU encode takes tens of seconds per new prompt).
    pub fn candidates() -> Vec<Mechanisms> {
        let mut all = Vec::new();
        for text_encoder in [
            TextEncoderPlacement::WithTransformer,
            TextEncoderPlacement::Alone,
            TextEncoderPlacement::Cpu,
        ] {
            for transformer in [
                TransformerPlacement::Resident,
                TransformerPlacement::Streamed {
                    slots: STREAM_SLOTS,
                },
            ] {
                for ffn_chunks in [1, FFN_CHUNKS] {
                    for decode in [DecodeMode::Whole, DecodeMode::Tiled] {
                        all.push(Mechanisms {
                            text_encoder,
                            transformer,
                            ffn_chunks,
                            decode,
                        });
                    }
                }
            }
        }
        all.sort_by_key(Mechanisms::cost);
        all
    }

    fn cost(&self) -> u32 {
        let text = match self.text_encoder {
            TextEncoderPlacement::WithTransformer => 0,
            TextEncoderPlacement::Alone => 2,
            TextEncoderPlacement::Cpu => 8,
        };
        let transformer = match self.transformer {
            TransformerPlacement::Resident => 0,
            TransformerPlacement::Streamed { .. } => 6,
        };
        let ffn = u32::from(self.ffn_chunks > 1);
        let decode = match self.decode {
            DecodeMode::Whole => 0,
            DecodeMode::Tiled => 3,
        };
        text + transformer + ffn + decode
    }

    /// One line per mechanism, for the plan's printout.
    pub fn describe(&self, model: &ModelInventory, dtype: DType) -> Vec<String> {
        let text = match self.text_encoder {
            TextEncoderPlacement::WithTransformer => {
                "text encoder: on the GPU, kept loaded beside the transformer".to_string()
            }
            TextEncoderPlacement::Alone => "text encoder: on the GPU alone (the transformer is freed while a new prompt is encoded; the encoder is freed before denoising)".to_string(),
            TextEncoderPlacement::Cpu => "text encoder: on the CPU (never on the GPU)".to_string(),
        };
        let blocks = model.transformer.block_count();
        let transformer = match self.transformer {
            TransformerPlacement::Resident => format!("transformer: resident ({blocks} blocks)"),
            TransformerPlacement::Streamed { slots } => format!(
                "transformer: {blocks} blocks of {:.2} GiB streamed from host memory through {slots} GPU slots",
                gib(model.transformer.largest_block_bytes(dtype))
            ),
        };
        let ffn = if self.ffn_chunks > 1 {
            format!("feed-forward: in {} token chunks", self.ffn_chunks)
        } else {
            "feed-forward: all tokens at once".to_string()
        };
        let decode = match self.decode {
            DecodeMode::Whole => "VAE decode: whole frames, one latent frame at a time".to_string(),
            DecodeMode::Tiled => format!(
                "VAE decode: tiled ({TILE_PX} px tiles every {TILE_STRIDE_PX} px, blended overlaps), one latent frame at a time"
            ),
        };
        vec![text, transformer, ffn, decode]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStage {
    TextEncode,
    Denoise,
    Decode,
}

impl PlanStage {
    pub fn label(self) -> &'static str {
        match self {
            PlanStage::TextEncode => "text encode",
            PlanStage::Denoise => "denoise step",
            PlanStage::Decode => "VAE decode",
        }
    }
}

/// Weights, or memory the stage works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Weights,
    Working,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub what: &'static str,
    pub kind: PartKind,
    pub bytes: u64,
}

/// What one stage holds on the device at its peak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMemory {
    pub stage: PlanStage,
    pub parts: Vec<Part>,
}

impl StageMemory {
    fn sum(&self, kind: PartKind) -> u64 {
        self.parts
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.bytes)
            .sum()
    }
    pub fn weights(&self) -> u64 {
        self.sum(PartKind::Weights)
    }
    pub fn working(&self) -> u64 {
        self.sum(PartKind::Working)
    }
    /// Weights and working memory, without the context and margin.
    pub fn total(&self) -> u64 {
        self.weights() + self.working()
    }
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidencyPlan {
    pub request: PlanRequest,
    pub budget: Budget,
    pub mechanisms: Mechanisms,
    pub stages: Vec<StageMemory>,
    /// The CUDA context and the host margin, counted in every stage.
    pub overhead: u64,
    pub tokens: u64,
    pub latent_frames: usize,
    descriptions: Vec<String>,
}

impl ResidencyPlan {
    /// The largest stage with the context and margin.
    pub fn peak(&self) -> u64 {
        self.stages
            .iter()
            .map(StageMemory::total)
            .max()
            .unwrap_or(0)
            + self.overhead
    }

    pub fn peak_stage(&self) -> PlanStage {
        self.stages
            .iter()
            .max_by_key(|s| s.total())
            .map_or(PlanStage::Denoise, |s| s.stage)
    }

    pub fn fits(&self) -> bool {
        match self.budget {
            Budget::Unlimited => true,
            Budget::Bytes(b) => self.peak() <= b,
        }
    }

    pub fn stage(&self, stage: PlanStage) -> &StageMemory {
        self.stages
            .iter()
            .find(|s| s.stage == stage)
            .expect("every plan has every stage")
    }

    /// The last line of the printout.
    pub fn peak_line(&self) -> String {
        format!(
            "planned peak: {:.2} GiB ({}), budget {}",
            gib(self.peak()),
            self.peak_stage().label(),
            self.budget
        )
    }
}

impl fmt::Display for ResidencyPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.request;
        writeln!(
            f,
            "residency plan: {}x{}, {} frames ({} latent frames, {} tokens), guidance {}, {:?}, budget {}",
            r.width,
            r.height,
            r.frames,
            self.latent_frames,
            self.tokens,
            if r.guidance { "on" } else { "off" },
            r.dtype,
            self.budget
        )?;
        for line in &self.descriptions {
            writeln!(f, "  {line}")?;
        }
        writeln!(
            f,
            "  {:<14} {:>9} {:>9} {:>9}   (GiB; totals include {:.2} GiB of CUDA context and host margin)",
            "stage", "weights", "working", "total",
            gib(self.overhead)
        )?;
        for s in &self.stages {
            let parts: Vec<String> = s
                .parts
                .iter()
                .filter(|p| p.bytes > 0)
                .map(|p| format!("{} {:.2}", p.what, gib(p.bytes)))
                .collect();
            writeln!(
                f,
                "  {:<14} {:>9.2} {:>9.2} {:>9.2}   {}",
                s.stage.label(),
                gib(s.weights()),
                gib(s.working()),
                gib(s.total() + self.overhead),
                parts.join(", ")
            )?;
        }
        write!(f, "{}", self.peak_line())
    }
}

/// The sizes a request implies.
struct Geometry {
    latent_frames: usize,
    latent_h: usize,
    latent_w: usize,
    tokens: u64,
    latent_elements: u64,
}

fn geometry(model: &ModelInventory, r: &PlanRequest) -> Geometry {
    let vae = &model.vae_config;
    let latent_frames = (r.frames - 1) / vae.scale_factor_temporal.max(1) + 1;
    let latent_h = r.height / vae.scale_factor_spatial.max(1);
    let latent_w = r.width / vae.scale_factor_spatial.max(1);
    let [pt, ph, pw] = model.dit.patch_size;
    let tokens = (latent_frames / pt.max(1)) as u64
        * (latent_h / ph.max(1)) as u64
        * (latent_w / pw.max(1)) as u64;
    Geometry {
        latent_frames,
        latent_h,
        latent_w,
        tokens,
        latent_elements: (vae.z_dim * latent_frames * latent_h * latent_w) as u64,
    }
}

fn part(what: &'static str, kind: PartKind, bytes: u64) -> Part {
    Part { what, kind, bytes }
}

/// The plan for `request` with the given mechanisms, fitting or not.
pub fn plan_with(
    model: &ModelInventory,
    request: &PlanRequest,
    mechanisms: Mechanisms,
    budget: Budget,
) -> ResidencyPlan {
    use PartKind::*;
    let g = geometry(model, request);
    let dtype = request.dtype;
    let s = dtype.size_in_bytes() as u64;
    let text_dtype = text_encoder_dtype(dtype);
    let text_s = text_dtype.size_in_bytes() as u64;

    let transformer_weights = match mechanisms.transformer {
        TransformerPlacement::Resident => model.transformer.device_bytes(dtype),
        TransformerPlacement::Streamed { slots } => {
            model.transformer.outside_blocks_bytes(dtype)
                + slots as u64 * model.transformer.largest_block_bytes(dtype)
        }
    };
    let dequantize = model.transformer.dequantize_scratch_bytes(dtype);
    let vae_weights = model.vae.device_bytes(dtype);
    let text_weights = model.text_encoder.device_bytes(text_dtype);
    let with_transformer = mechanisms.text_encoder == TextEncoderPlacement::WithTransformer;
    let kept_text = if with_transformer { text_weights } else { 0 };

    let mut encode = Vec::new();
    if mechanisms.text_encoder != TextEncoderPlacement::Cpu {
        encode.push(part("text encoder", Weights, text_weights));
        encode.push(part(
            "encoder dequantize",
            Working,
            model.text_encoder.dequantize_scratch_bytes(text_dtype),
        ));
        encode.push(part(
            "encoder activations",
            Working,
            estimates::text_encoder_activations(&model.text, text_s),
        ));
    }
    if with_transformer {
        encode.push(part("transformer", Weights, transformer_weights));
        encode.push(part("VAE", Weights, vae_weights));
    }

    let prompts = if request.guidance { 2 } else { 1 };
    let denoise = vec![
        part("transformer", Weights, transformer_weights),
        part("text encoder", Weights, kept_text),
        part("VAE", Weights, vae_weights),
        part("dequantize", Working, dequantize),
        part(
            "prompt contexts",
            Working,
            prompts * estimates::prompt_context(&model.dit, s),
        ),
        part("latents", Working, estimates::latents(g.latent_elements)),
        part(
            "activations",
            Working,
            estimates::transformer_activations(
                &model.dit,
                g.tokens,
                s,
                mechanisms.ffn_chunks as u64,
            ),
        ),
        part(
            "attention scores",
            Working,
            estimates::attention_scores(&model.dit, g.tokens),
        ),
    ];

    let (decode_h, decode_w) = match mechanisms.decode {
        DecodeMode::Whole => (g.latent_h, g.latent_w),
        DecodeMode::Tiled => {
            let tile = TILE_PX / model.vae_config.scale_factor_spatial.max(1);
            (g.latent_h.min(tile), g.latent_w.min(tile))
        }
    };
    let decode = vec![
        part("transformer", Weights, transformer_weights),
        part("text encoder", Weights, kept_text),
        part("VAE", Weights, vae_weights),
        part("latents", Working, 2 * g.latent_elements * 4),
        part(
            "decode working set",
            Working,
            estimates::vae_decode_working_set(
                &model.vae_config,
                decode_h as u64,
                decode_w as u64,
                s,
            ),
        ),
    ];

    let overhead = match budget {
        Budget::Unlimited => 0,
        Budget::Bytes(_) => CUDA_CONTEXT_BYTES + HOST_MARGIN_BYTES,
    };
    ResidencyPlan {
        request: *request,
        budget,
        mechanisms,
        stages: vec![
            StageMemory {
                stage: PlanStage::TextEncode,
                parts: encode,
            },
            StageMemory {
                stage: PlanStage::Denoise,
                parts: denoise,
            },
            StageMemory {
                stage: PlanStage::Decode,
                parts: decode,
            },
        ],
        overhead,
        tokens: g.tokens,
        latent_frames: g.latent_frames,
        descriptions: mechanisms.describe(model, dtype),
    }
}

/// The fastest plan whose every stage fits `budget`; an error naming the budget and the largest
/// frame count and size that would fit when none does.
pub fn plan(
    model: &ModelInventory,
    request: &PlanRequest,
    budget: Budget,
) -> Result<ResidencyPlan> {
    validate_size(request.width, request.height)?;
    validate_frames(request.frames)?;
    debug_assert_eq!(model.transformer.component, Component::Transformer);
    if budget == Budget::Unlimited {
        return Ok(plan_with(model, request, Mechanisms::FASTEST, budget));
    }
    if let Some(p) = Mechanisms::candidates()
        .into_iter()
        .map(|m| plan_with(model, request, m, budget))
        .find(ResidencyPlan::fits)
    {
        return Ok(p);
    }
    Err(Error::InvalidRequest(too_large(model, request, budget)))
}

/// The message for a request that no plan fits.
fn too_large(model: &ModelInventory, request: &PlanRequest, budget: Budget) -> String {
    let fits = |width: usize, height: usize, frames: usize| {
        let r = PlanRequest {
            width,
            height,
            frames,
            ..*request
        };
        plan_with(model, &r, Mechanisms::LEANEST, budget).fits()
    };
    let leanest = plan_with(model, request, Mechanisms::LEANEST, budget);
    let (w, h, f) = (request.width, request.height, request.frames);
    let mut message = format!(
        "{w}x{h} with {f} frames needs {:.2} GiB of GPU memory even with every memory-saving mechanism on, more than the {budget} budget",
        gib(leanest.peak())
    );
    let frames = (0..=(f - 1) / FRAME_STRIDE)
        .rev()
        .map(|k| k * FRAME_STRIDE + 1)
        .find(|&frames| fits(w, h, frames));
    match frames {
        Some(frames) => message += &format!("; at {w}x{h} up to {frames} frames fit"),
        None => message += &format!("; at {w}x{h} not even one frame fits"),
    }
    // The largest size of the same shape at the asked frame count.
    let size = (1..=w / SIZE_MULTIPLE).rev().find_map(|k| {
        let sw = k * SIZE_MULTIPLE;
        let sh =
            ((h * sw) as f64 / w as f64 / SIZE_MULTIPLE as f64).round() as usize * SIZE_MULTIPLE;
        (sh >= SIZE_MULTIPLE && fits(sw, sh, f)).then_some((sw, sh))
    });
    if let Some((sw, sh)) = size {
        message += &format!("; {f} frames fit up to {sw}x{sh}");
    }
    message + ": choose a smaller size or fewer frames, or a larger memory budget"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dit::DitConfig;
    use crate::text::Umt5Config;
    use crate::vae::VaeConfig;

    /// The real-size 5B in bf16, from its configurations (broadcast zeros: nothing allocated).
    fn five_b() -> ModelInventory {
        ModelInventory::from_configs(
            &DitConfig::wan22_ti2v_5b(),
            &Umt5Config::umt5_xxl(),
            &VaeConfig::wan22_ti2v_5b(),
            DType::BF16,
        )
        .unwrap()
    }

    fn at_480p() -> PlanRequest {
        PlanRequest {
            width: 832,
            height: 480,
            frames: 121,
            guidance: true,
            dtype: DType::BF16,
        }
    }

    /// What a plan needs of a device's free memory, measured after the CUDA context exists: its
    /// peak less the context, i.e. its largest stage and the host margin.
    fn allocated(p: &ResidencyPlan) -> u64 {
        p.peak() - CUDA_CONTEXT_BYTES
    }

    #[test]
    fn a_card_size_is_that_many_gib_whatever_is_free() {
        for g in BUDGET_CHOICES_GIB {
            let want = Budget::Bytes(g as u64 * GIB);
            assert_eq!(MemoryBudget::Gib(g).resolve(None), want);
            assert_eq!(MemoryBudget::Gib(g).resolve(Some(GIB)), want);
            assert_eq!(MemoryBudget::Gib(g).resolve(Some(80 * GIB)), want);
        }
    }

    #[test]
    fn auto_on_the_cpu_is_unlimited_and_plans_everything_resident() {
        let budget = MemoryBudget::Auto.resolve(None);
        assert_eq!(budget, Budget::Unlimited);
        assert_eq!(MemoryBudget::default(), MemoryBudget::Auto);
        let p = plan(&five_b(), &at_480p(), budget).unwrap();
        assert_eq!(p.mechanisms, Mechanisms::FASTEST);
        assert_eq!(p.overhead, 0, "no context or margin on the CPU");
    }

    /// `auto` hands the plan the free memory plus the context: the free memory was measured
    /// with the context already allocated, and the plan counts the context (and the host margin)
    /// in every stage, so what it adds to the device is the free memory less the host margin.
    #[test]
    fn auto_on_a_gpu_counts_the_context_once_and_leaves_the_host_margin() {
        for free in [0, 1 << 20, 7 * GIB + 123, 23 * GIB, 80 * GIB] {
            assert_eq!(
                MemoryBudget::Auto.resolve(Some(free)),
                Budget::Bytes(free + CUDA_CONTEXT_BYTES)
            );
        }
        let model = five_b();
        let request = at_480p();
        let mut refused = Vec::new();
        for free_gib in [4u64, 6, 7, 8, 10, 12, 14, 16, 20, 24, 40, 80] {
            let free = free_gib * GIB;
            match plan(&model, &request, MemoryBudget::Auto.resolve(Some(free))) {
                Ok(p) => {
                    assert_eq!(p.overhead, CUDA_CONTEXT_BYTES + HOST_MARGIN_BYTES);
                    assert!(allocated(&p) <= free, "{free_gib} GiB free: {p}");
                    for s in &p.stages {
                        assert!(s.total() + HOST_MARGIN_BYTES <= free, "{p}");
                    }
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains("budget"), "{e}");
                    refused.push(free_gib);
                }
            }
        }
        // The leanest plan at 480P adds 5.36 GiB (its largest stage and the host margin).
        assert_eq!(refused, [4], "only 4 GiB free is too little at 480P");
    }

    /// At the boundary: with exactly the fastest plan's allocation plus the host margin free,
    /// the fastest plan is chosen; one byte less and a leaner one is.
    #[test]
    fn auto_fits_the_fastest_plan_to_the_byte_with_the_host_margin_left_free() {
        let model = five_b();
        let request = at_480p();
        let fastest = plan_with(
            &model,
            &request,
            Mechanisms::FASTEST,
            Budget::Bytes(u64::MAX),
        );
        let free = allocated(&fastest);
        assert_eq!(
            free,
            fastest.stages.iter().map(StageMemory::total).max().unwrap() + HOST_MARGIN_BYTES
        );
        let exact = plan(&model, &request, MemoryBudget::Auto.resolve(Some(free))).unwrap();
        assert_eq!(exact.mechanisms, Mechanisms::FASTEST, "{exact}");
        let short = plan(&model, &request, MemoryBudget::Auto.resolve(Some(free - 1))).unwrap();
        assert_ne!(short.mechanisms, Mechanisms::FASTEST, "{short}");
        assert!(allocated(&short) < free, "{short}");
    }

    #[test]
    fn less_free_memory_than_the_host_margin_has_no_plan() {
        let e = plan(
            &five_b(),
            &at_480p(),
            MemoryBudget::Auto.resolve(Some(HOST_MARGIN_BYTES)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("even with every memory-saving mechanism on"),
            "{e}"
        );
    }
}
