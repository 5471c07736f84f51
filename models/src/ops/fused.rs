//! The inference implementations of the [`super::Kernels`]: candle's fused kernels, and on CUDA
//! (bf16/f16) the convolution GEMM.

use candle_core::{Result, Tensor, D};

pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax_last_dim(x)
}

pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps)
}

pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, eps)
}

/// Layer norm over the last dim without affine parameters.
pub fn layer_norm_no_affine(x: &Tensor, eps: f32) -> Result<Tensor> {
    let dim = x.dim(D::Minus1)?;
    let ones = Tensor::ones(dim, x.dtype(), x.device())?;
    let zeros = Tensor::zeros(dim, x.dtype(), x.device())?;
    candle_nn::ops::layer_norm(&x.contiguous()?, &ones, &zeros, eps)
}

/// Rotation of interleaved pairs, `x` `[B, H, T, D]`, `cos`/`sin` `[T, D/2]`.
pub fn rope_i(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    candle_nn::rotary_emb::rope_i(x, cos, sin)
}

/// GELU, tanh approximation (Wan2.2's feed-forward and text embedding).
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    x.gelu()
}

/// `x` `[N, C, H, W]` convolved with `w` `[O, C, kh, kw]` (no bias, no dilation, one group).
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if stride == 1 && super::conv_gemm::eligible(x) {
        let (_, _, kh, kw) = w.dims4()?;
        let padded = x
            .pad_with_zeros(2, padding, padding)?
            .pad_with_zeros(3, padding, padding)?;
        let taps = super::conv_gemm::taps_2d(w)?;
        return super::conv_gemm::conv_valid(&padded, &taps, [1, kh, kw])?.to_dtype(x.dtype());
    }
    x.conv2d(w, padding, stride, 1, 1)
}
