//! Flow-matching Euler (diffusers `FlowMatchEulerDiscreteScheduler` as the Wan pipeline uses it):
//! `x += (sigma_next - sigma) * v`, with fractional timesteps.

use super::{shift_sigma, Sampler, NUM_TRAIN_TIMESTEPS};
use candle_core::{Result, Tensor};

pub struct FlowEuler {
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    step_index: usize,
}

impl FlowEuler {
    pub fn new(steps: usize, shift: f64) -> Self {
        let n = NUM_TRAIN_TIMESTEPS as f32;
        // The scheduler's own training sigmas, in f32: their ends bound the inference schedule.
        let sigma_max = shift_sigma(1.0, shift) as f32;
        let sigma_min = shift_sigma((1.0f32 / n) as f64, shift) as f32;
        let (t_max, t_min) = ((sigma_max * n) as f64, (sigma_min * n) as f64);
        let mut sigmas: Vec<f32> = (0..steps)
            .map(|i| {
                let frac = if steps <= 1 {
                    0.0
                } else {
                    i as f64 / (steps - 1) as f64
                };
                let t = t_max + frac * (t_min - t_max);
                shift_sigma(t / NUM_TRAIN_TIMESTEPS as f64, shift) as f32
            })
            .collect();
        let timesteps = sigmas.iter().map(|&s| (s * n) as f64).collect();
        sigmas.push(0.0);
        Self {
            timesteps,
            sigmas,
            step_index: 0,
        }
    }
}

impl Sampler for FlowEuler {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    fn step(&mut self, model_output: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let i = self.step_index;
        if i >= self.timesteps.len() {
            candle_core::bail!("Euler: all {} steps already taken", self.timesteps.len());
        }
        let dt = self.sigmas[i + 1] - self.sigmas[i];
        self.step_index += 1;
        sample + (model_output * dt as f64)?
    }
}
