//! Time and text conditioning (diffusers `condition_embedder`).

use crate::ops::Kernels;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};
use std::sync::Arc;

/// Sinusoidal embedding of integer timesteps, `[cos | sin]`, computed in f32 as the reference.
pub fn timestep_sinusoid(timesteps: &[f64], freq_dim: usize, device: &Device) -> Result<Tensor> {
    let half = freq_dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10_000f32.ln()) * i as f32 / half as f32).exp())
        .collect();
    let mut data = Vec::with_capacity(timesteps.len() * freq_dim);
    for &t in timesteps {
        let t = t as f32;
        data.extend(freqs.iter().map(|f| (t * f).cos()));
        data.extend(freqs.iter().map(|f| (t * f).sin()));
    }
    Tensor::from_vec(data, (timesteps.len(), freq_dim), device)
}

/// `linear_2(silu(linear_1(x)))`, kept in f32 like the reference's `time_embedder`.
#[derive(Debug, Clone)]
pub struct TimeEmbedder {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimeEmbedder {
    pub fn new(freq_dim: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        let vb = vb.to_dtype(DType::F32);
        Ok(Self {
            linear_1: linear(freq_dim, dim, vb.pp("linear_1"))?,
            linear_2: linear(dim, dim, vb.pp("linear_2"))?,
        })
    }

    pub fn forward(&self, sinusoid: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(
            &self
                .linear_1
                .forward(&sinusoid.to_dtype(DType::F32)?)?
                .silu()?,
        )
    }
}

/// `linear_2(gelu_tanh(linear_1(x)))` over all 512 text positions, zero pads included.
#[derive(Debug, Clone)]
pub struct TextEmbedder {
    linear_1: Linear,
    linear_2: Linear,
    kernels: Arc<dyn Kernels>,
}

impl TextEmbedder {
    pub fn new(
        text_dim: usize,
        dim: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        Ok(Self {
            linear_1: linear(text_dim, dim, vb.pp("linear_1"))?,
            linear_2: linear(dim, dim, vb.pp("linear_2"))?,
            kernels: kernels.clone(),
        })
    }

    pub fn forward(&self, text: &Tensor) -> Result<Tensor> {
        self.linear_2
            .forward(&self.kernels.gelu_tanh(&self.linear_1.forward(text)?)?)
    }
}
