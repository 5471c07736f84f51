//! Samplers: pure arithmetic on latents, with no knowledge of the model (as diffusers'
//! schedulers). Each turns a step count and a shift into a schedule of timesteps and sigmas, and
//! advances latents from one sigma to the next given the model's flow prediction.

pub mod dmd;
pub mod euler;
pub mod unipc;

use candle_core::{Result, Tensor};
use std::fmt;
use std::str::FromStr;

pub use dmd::Dmd;
pub use euler::FlowEuler;
pub use unipc::UniPc;

pub const NUM_TRAIN_TIMESTEPS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SamplerKind {
    /// UniPC multistep (bh2, order 2, flow prediction): the reference default.
    #[default]
    UniPc,
    /// Flow-matching Euler.
    Euler,
    /// Few-step DMD (FastWan2.2's distilled sampler): clean prediction, then fresh noise.
    Dmd,
}

impl SamplerKind {
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::UniPc => "unipc",
            SamplerKind::Euler => "euler",
            SamplerKind::Dmd => "dmd",
        }
    }

    /// The sampler for `steps` steps at `shift`; `seed` is the clip's, for samplers that draw
    /// noise of their own as they go (DMD).
    pub fn build(self, steps: usize, shift: f64, seed: u64) -> Box<dyn Sampler> {
        match self {
            SamplerKind::UniPc => Box::new(UniPc::new(steps, shift)),
            SamplerKind::Euler => Box::new(FlowEuler::new(steps, shift)),
            SamplerKind::Dmd => Box::new(Dmd::new(steps, shift, seed)),
        }
    }

    /// The settings a model made for this sampler runs with, where it has its own (DMD: three
    /// steps, no guidance, its lookup shift); `None` for the general samplers.
    pub fn recommended(self) -> Option<SamplingSettings> {
        match self {
            SamplerKind::Dmd => Some(SamplingSettings {
                sampler: self,
                steps: dmd::FASTWAN_TIMESTEPS.len(),
                guidance: dmd::DMD_GUIDANCE,
                shift: dmd::DMD_SHIFT,
            }),
            SamplerKind::UniPc | SamplerKind::Euler => None,
        }
    }
}

impl fmt::Display for SamplerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SamplerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "unipc" => Ok(SamplerKind::UniPc),
            "euler" => Ok(SamplerKind::Euler),
            "dmd" => Ok(SamplerKind::Dmd),
            other => Err(format!(
                "unknown sampler `{other}`: use `unipc`, `euler` or `dmd` (for DMD-distilled models)"
            )),
        }
    }
}

/// The sampling settings a model folder declares for itself (see
/// [`crate::checkpoint::declared_sampling`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingSettings {
    pub sampler: SamplerKind,
    pub steps: usize,
    pub guidance: f64,
    pub shift: f64,
}

pub trait Sampler: Send {
    /// The timestep fed to the model at each step.
    fn timesteps(&self) -> &[f64];
    /// `steps + 1` sigmas, ending at 0.
    fn sigmas(&self) -> &[f32];
    /// Advances `sample` by one step given the model's flow prediction at the current step.
    fn step(&mut self, model_output: &Tensor, sample: &Tensor) -> Result<Tensor>;
}

/// `shift * s / (1 + (shift - 1) * s)`: the flow-matching time shift.
pub fn shift_sigma(s: f64, shift: f64) -> f64 {
    shift * s / (1.0 + (shift - 1.0) * s)
}
