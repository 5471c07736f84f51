//! Few-step DMD sampling, as FastVideo runs its DMD-distilled models (FastWan2.2-TI2V-5B: three
//! steps, no guidance). Read from hao-ai-lab/FastVideo at commit
//! 2f3d4074064e4d86f99dc784ebbaa296e6f5925f:
//!
//! - `fastvideo/configs/pipelines/wan.py`, `FastWan2_2_TI2V_5B_Config`: the timesteps
//!   `dmd_denoising_steps = [1000, 757, 522]`;
//! - `fastvideo/pipelines/stages/denoising.py`, `DmdDenoisingStage`: the loop. It builds its own
//!   `FlowMatchEulerDiscreteScheduler(shift=8.0)` (whatever the pipeline's `flow_shift`), feeds
//!   each timestep as is to the model, turns the flow prediction into clean latents and, before
//!   every step but the last, noises them again to the next timestep with fresh noise from the
//!   clip's one generator (the same one that drew the initial latents);
//! - `fastvideo/models/utils.py`, `pred_noise_to_pred_video`: `x0 = x - sigma_t * v`, computed in
//!   f64, with `sigma_t` the schedule's sigma at the training timestep nearest to `t`;
//! - `fastvideo/models/schedulers/scheduling_flow_match_euler_discrete.py`: the training
//!   schedule (timesteps 1000..1 shifted, in f32) and `add_noise`:
//!   `(1 - sigma) * x0 + sigma * noise`, with the same nearest-timestep sigma.
//!
//! Step counts other than three use evenly spaced timesteps `1000 * (1 - k / steps)`, the form
//! of FastVideo's four-step list (`[1000, 750, 500, 250]`, `Wan2_2_T2V_A14B_Config`).

use super::{Sampler, NUM_TRAIN_TIMESTEPS};
use crate::pipeline::noise::NoiseStream;
use candle_core::{Result, Tensor};
use std::collections::VecDeque;

/// FastWan2.2-TI2V-5B's distilled timesteps.
pub const FASTWAN_TIMESTEPS: [u32; 3] = [1000, 757, 522];
/// The shift of the schedule DMD looks sigmas up in (`DmdDenoisingStage`'s own scheduler).
pub const DMD_SHIFT: f64 = 8.0;
/// DMD-distilled models run without classifier-free guidance (1 turns it off).
pub const DMD_GUIDANCE: f64 = 1.0;

/// The timesteps of a `steps`-step DMD run.
pub fn dmd_timesteps(steps: usize) -> Vec<u32> {
    if steps == FASTWAN_TIMESTEPS.len() {
        return FASTWAN_TIMESTEPS.to_vec();
    }
    let n = NUM_TRAIN_TIMESTEPS as f64;
    (0..steps)
        .map(|k| (n * (1.0 - k as f64 / steps as f64)).round() as u32)
        .collect()
}

/// The training schedule's sigma at the timestep nearest to `t` (the first on a tie, as
/// `torch.argmin`), with the schedule built in f32 as the reference builds it.
pub fn nearest_training_sigma(t: f64, shift: f64) -> f32 {
    let n = NUM_TRAIN_TIMESTEPS;
    let (shift32, n32) = (shift as f32, n as f32);
    let mut best = (f64::INFINITY, 0f32);
    // linspace(1, n, n)[::-1]: n, n-1, ..., 1.
    for k in (1..=n).rev() {
        let s = k as f32 / n32;
        let sigma = shift32 * s / (1.0 + (shift32 - 1.0) * s);
        let distance = ((sigma * n32) as f64 - t).abs();
        if distance < best.0 {
            best = (distance, sigma);
        }
    }
    best.1
}

/// Where the noise of each re-noising comes from.
enum Renoise {
    /// The clip's seeded stream, continued after the initial latents' draw.
    Seeded {
        seed: u64,
        stream: Option<Box<NoiseStream>>,
    },
    /// Given tensors, one per re-noising, in order (to replay a reference run).
    Given(VecDeque<Tensor>),
}

pub struct Dmd {
    timesteps: Vec<f64>,
    /// The looked-up sigma of each timestep, then 0.
    sigmas: Vec<f32>,
    step_index: usize,
    renoise: Renoise,
}

impl Dmd {
    /// `steps` DMD steps whose re-noising continues the noise stream of `seed` (the stream whose
    /// first draw is the clip's initial latents, also when the caller starts from other latents,
    /// so that saved initial noise replays the same clip).
    pub fn new(steps: usize, shift: f64, seed: u64) -> Self {
        Self::with_renoise(steps, shift, Renoise::Seeded { seed, stream: None })
    }

    /// As [`Dmd::new`], re-noising with `noises` (one per step but the last), e.g. the noise a
    /// reference implementation drew.
    pub fn with_noises(steps: usize, shift: f64, noises: Vec<Tensor>) -> Self {
        Self::with_renoise(steps, shift, Renoise::Given(noises.into()))
    }

    fn with_renoise(steps: usize, shift: f64, renoise: Renoise) -> Self {
        let timesteps: Vec<f64> = dmd_timesteps(steps).iter().map(|&t| t as f64).collect();
        let mut sigmas: Vec<f32> = timesteps
            .iter()
            .map(|&t| nearest_training_sigma(t, shift))
            .collect();
        sigmas.push(0.0);
        Self {
            timesteps,
            sigmas,
            step_index: 0,
            renoise,
        }
    }

    fn noise_like(&mut self, sample: &Tensor) -> Result<Tensor> {
        match &mut self.renoise {
            Renoise::Seeded { seed, stream } => {
                let stream = stream.get_or_insert_with(|| {
                    let mut s = NoiseStream::new(*seed);
                    s.skip(sample.elem_count());
                    Box::new(s)
                });
                stream
                    .next(sample.dims(), sample.device())?
                    .to_dtype(sample.dtype())
            }
            Renoise::Given(noises) => match noises.pop_front() {
                Some(n) => n.to_device(sample.device())?.to_dtype(sample.dtype()),
                None => candle_core::bail!("DMD: no re-noising tensor left for this step"),
            },
        }
    }
}

impl Sampler for Dmd {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    fn step(&mut self, model_output: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let i = self.step_index;
        let steps = self.timesteps.len();
        if i >= steps {
            candle_core::bail!("DMD: all {steps} steps already taken");
        }
        self.step_index += 1;
        let sigma = self.sigmas[i] as f64;
        let x0 = (sample - (model_output * sigma)?)?;
        if i + 1 == steps {
            return Ok(x0);
        }
        let next = self.sigmas[i + 1] as f64;
        let noise = self.noise_like(sample)?;
        (x0 * (1.0 - next))? + (noise * next)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fastwan_timesteps_and_even_spacing() {
        assert_eq!(dmd_timesteps(3), vec![1000, 757, 522]);
        assert_eq!(dmd_timesteps(4), vec![1000, 750, 500, 250]);
        assert_eq!(dmd_timesteps(1), vec![1000]);
    }

    #[test]
    fn sigmas_are_the_nearest_training_sigmas() {
        let d = Dmd::new(3, DMD_SHIFT, 0);
        assert_eq!(d.sigmas[0], 1.0);
        // The shift-8 grid is about one timestep apart near 757 and 522.
        assert!((d.sigmas[1] - 0.757).abs() < 1e-3, "{:?}", d.sigmas);
        assert!((d.sigmas[2] - 0.522).abs() < 2e-3, "{:?}", d.sigmas);
        assert_eq!(d.sigmas[3], 0.0);
    }

    #[test]
    fn renoising_continues_the_seeded_stream_after_the_initial_noise() {
        let shape = [1, 2, 1, 2, 3];
        let mut stream = NoiseStream::new(5);
        let initial = stream.next(&shape, &Device::Cpu).unwrap();
        let renoise = stream.next(&shape, &Device::Cpu).unwrap();
        let flow = Tensor::ones(&shape[..], candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut seeded = Dmd::new(3, DMD_SHIFT, 5);
        let mut given = Dmd::with_noises(3, DMD_SHIFT, vec![renoise]);
        let a = seeded.step(&flow, &initial).unwrap();
        let b = given.step(&flow, &initial).unwrap();
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.flatten_all().unwrap().to_vec1().unwrap(),
            b.flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn the_last_step_returns_the_clean_prediction() {
        let x = Tensor::new(&[2.0f32, -1.0], &Device::Cpu).unwrap();
        let v = Tensor::new(&[1.0f32, 1.0], &Device::Cpu).unwrap();
        let mut d = Dmd::with_noises(1, DMD_SHIFT, vec![]);
        let out: Vec<f32> = d.step(&v, &x).unwrap().to_vec1().unwrap();
        assert_eq!(out, vec![1.0, -2.0]);
        assert!(d.step(&v, &x).is_err());
    }
}
