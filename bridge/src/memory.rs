//! Memory budgets: the residency plan of a request on the service's device, decided before
//! anything is loaded, and how it is reported (plain data).
//!
//! The budget is an execution choice, not part of what a clip is: every mechanism a plan picks
//! gives the same frames within float rounding (the text encoder's placement, block streaming
//! and chunked feed-forward), except tiled decode, whose blended tile seams change pixels by a
//! measured tolerance. So the clip key leaves the budget out and includes the decode mode
//! (only when tiled, so that keys of whole-frame decodes are the ones they always were).

use crate::error::Result;
use crate::request::Request;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use t2v_models::checkpoint::ModelFiles;
use t2v_models::residency::{
    self, Budget, DecodeMode, Mechanisms, ModelInventory, PlanRequest, ResidencyPlan,
};

pub use t2v_models::residency::MemoryBudget;

/// A request's plan as the service reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    /// The user's choice.
    pub budget: MemoryBudget,
    /// What it meant on this device; `None`: no limit (the CPU).
    pub budget_bytes: Option<u64>,
    /// The planned peak of device memory, CUDA context and host margin included.
    pub peak_bytes: u64,
    /// Whether the VAE decodes in tiles (it changes pixels slightly: part of the clip key).
    pub tiled_decode: bool,
    /// The printed plan: mechanisms, each stage's memory, and last the planned-peak line.
    pub text: String,
}

impl PlanReport {
    pub fn peak_gib(&self) -> f64 {
        self.peak_bytes as f64 / residency::GIB as f64
    }

    /// The plan's last line: `planned peak: N GiB (stage), budget ...`.
    pub fn peak_line(&self) -> &str {
        self.text.lines().last().unwrap_or("")
    }
}

/// The device's free memory in bytes, `None` on the CPU (where `auto` means no limit).
pub fn free_memory(device: &Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(dev) => dev
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free as u64),
        _ => None,
    }
}

/// The plan of `request` (its precision already decided) for `files`, with `free` bytes of
/// device memory for `auto`, or with `forced` mechanisms. Reads headers and configs only.
pub(crate) fn plan_request(
    files: &ModelFiles,
    request: &Request,
    free: Option<u64>,
    forced: Option<Mechanisms>,
) -> Result<ResidencyPlan> {
    let model = ModelInventory::open(&files.transformer, &files.vae, &files.text_encoder)?;
    let budget = request.memory.resolve(free);
    let p = &request.params;
    let plan_request = PlanRequest {
        width: p.width,
        height: p.height,
        frames: p.frames,
        guidance: p.uses_guidance(),
        dtype: request.precision.dtype(),
    };
    Ok(match forced {
        Some(m) => residency::plan_with(&model, &plan_request, m, budget),
        None => residency::plan(&model, &plan_request, budget)?,
    })
}

/// Whether the plan decodes in tiles (which the clip key records).
pub(crate) fn tiled_decode(plan: &ResidencyPlan) -> bool {
    plan.mechanisms.decode == DecodeMode::Tiled
}

pub(crate) fn report(plan: &ResidencyPlan, choice: MemoryBudget) -> PlanReport {
    PlanReport {
        budget: choice,
        budget_bytes: match plan.budget {
            Budget::Unlimited => None,
            Budget::Bytes(b) => Some(b),
        },
        peak_bytes: plan.peak(),
        tiled_decode: tiled_decode(plan),
        text: plan.to_string(),
    }
}
