//! A 2D convolution layer with the weight names of `torch.nn.Conv2d`.

use super::Kernels;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// A 2D convolution layer (`weight`, `bias`) that convolves with its [`Kernels::conv2d`].
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
    stride: usize,
    kernels: Arc<dyn Kernels>,
}

impl Conv2d {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        kernel: usize,
        padding: usize,
        stride: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        Ok(Self {
            weight: vb.get((out_dim, in_dim, kernel, kernel), "weight")?,
            bias: vb.get(out_dim, "bias")?,
            padding,
            stride,
            kernels: kernels.clone(),
        })
    }

    /// `x`: `[N, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self
            .kernels
            .conv2d(x, &self.weight, self.padding, self.stride)?;
        y.broadcast_add(&self.bias.reshape((1, (), 1, 1))?)
    }
}
