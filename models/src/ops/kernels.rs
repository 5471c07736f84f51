//! [`Kernels`]: the operations whose implementation a layer can be given, and [`Fused`], the one
//! inference runs.

use candle_core::{DType, Result, Tensor};
use std::sync::Arc;

/// The operations of the transformer, the VAE and the text encoder that have more than one
/// sensible implementation: a fused kernel for inference, a composition of differentiable ops
/// for training. Each layer holds the implementation it was built with.
pub trait Kernels: Send + Sync + std::fmt::Debug {
    /// Softmax over the last dim (the text encoder's and the VAE's attention).
    fn softmax_last_dim(&self, x: &Tensor) -> Result<Tensor>;

    /// `softmax(q k^T * scale) v` with the softmax in f32, q `[B, H, N, d]`, k and v
    /// `[B, H, M, d]`: the transformer's self-attention.
    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor>;

    /// The transformer's cross-attention from the tokens (q) to the text (k, v); by default
    /// [`Self::attention`].
    fn cross_attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        self.attention(q, k, v, scale)
    }

    /// `x / sqrt(mean(x²) + eps) * weight` over the last dim.
    fn rms_norm(&self, x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor>;

    /// Layer norm over the last dim, `* weight + bias`.
    fn layer_norm(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor>;

    /// Layer norm over the last dim without affine parameters.
    fn layer_norm_no_affine(&self, x: &Tensor, eps: f32) -> Result<Tensor>;

    /// Rotation of interleaved pairs, `x` `[B, H, T, D]`, `cos`/`sin` `[T, D/2]`.
    fn rope_i(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor>;

    /// GELU, tanh approximation.
    fn gelu_tanh(&self, x: &Tensor) -> Result<Tensor>;

    /// `x` `[N, C, H, W]` convolved with `w` `[O, C, kh, kw]` (no bias, no dilation, one group).
    fn conv2d(&self, x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor>;

    /// `x + bias` with `bias` `[D]` broadcast over the rows of `x` `[.., D]`, in `x`'s dtype.
    fn bias_add(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor>;

    /// `x * (1 + scale) + shift` computed in f32 (`x` f32, `scale`/`shift` f32 broadcast rows),
    /// rounded once to `dtype`.
    fn modulate(&self, x: &Tensor, shift: &Tensor, scale: &Tensor, dtype: DType) -> Result<Tensor>;

    /// `x + y * gate` computed in f32 (`gate` f32 broadcast rows), rounded once to `x`'s dtype.
    fn gated_residual(&self, x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor>;

    /// `layer_norm(x) * (1 + scale) + shift` (no affine norm parameters, statistics and
    /// modulation in f32), cast to `x`'s dtype.
    fn norm_modulate(&self, x: &Tensor, shift: &Tensor, scale: &Tensor, eps: f64)
        -> Result<Tensor>;
}

/// The inference kernels: candle's fused kernels ([`super::fused`]), and on CUDA (bf16/f16) the
/// row kernels ([`super::rowwise`]), the convolution GEMM and the fused attention. Forward only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fused;

/// [`Fused`], shared: what every inference constructor uses.
pub fn fused_kernels() -> Arc<dyn Kernels> {
    Arc::new(Fused)
}

impl Kernels for Fused {
    fn softmax_last_dim(&self, x: &Tensor) -> Result<Tensor> {
        super::fused::softmax_last_dim(x)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        crate::dit::attention::sdpa(q, k, v, scale)
    }

    fn rms_norm(&self, x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
        super::fused::rms_norm(x, weight, eps)
    }

    fn layer_norm(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
        super::fused::layer_norm(x, weight, bias, eps)
    }

    fn layer_norm_no_affine(&self, x: &Tensor, eps: f32) -> Result<Tensor> {
        super::fused::layer_norm_no_affine(x, eps)
    }

    fn rope_i(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        super::fused::rope_i(x, cos, sin)
    }

    fn gelu_tanh(&self, x: &Tensor) -> Result<Tensor> {
        super::fused::gelu_tanh(x)
    }

    fn conv2d(&self, x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
        super::fused::conv2d(x, w, padding, stride)
    }

    fn bias_add(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        super::rowwise::bias_add(x, bias)
    }

    fn modulate(&self, x: &Tensor, shift: &Tensor, scale: &Tensor, dtype: DType) -> Result<Tensor> {
        super::rowwise::modulate(x, shift, scale, dtype)
    }

    fn gated_residual(&self, x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
        super::rowwise::gated_residual(x, y, gate)
    }

    fn norm_modulate(
        &self,
        x: &Tensor,
        shift: &Tensor,
        scale: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        super::rowwise::norm_modulate(x, shift, scale, eps)
    }
}
