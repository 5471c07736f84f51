//! Residency plans: before anything is loaded, which weights, caches and activations are on the
//! device at every stage of a generation (text encode, denoise step, VAE decode), and the peak.
//!
//! Pure data and arithmetic: a plan reads tensor sizes from checkpoint headers
//! ([`ComponentWeights`], fed by any storage format) and the request size, and picks the fastest
//! set of [`Mechanisms`] that fits a memory budget. Nothing is allocated on any device.

mod estimates;
mod inventory;
mod plan;

pub use estimates::TEXT_LEN;
pub use inventory::{block_index, ComponentWeights, ModelInventory, WeightEntry};
pub use plan::{
    plan, plan_with, Budget, DecodeMode, Mechanisms, MemoryBudget, Part, PartKind, PlanRequest,
    PlanStage, ResidencyPlan, StageMemory, TextEncoderPlacement, TransformerPlacement,
    BUDGET_CHOICES_GIB, CUDA_CONTEXT_BYTES, FFN_CHUNKS, GIB, HOST_MARGIN_BYTES, STREAM_SLOTS,
    TILE_PX, TILE_STRIDE_PX,
};
