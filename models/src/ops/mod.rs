//! Fused kernels for inference, composed equivalents for training.
//!
//! candle's fused softmax, RMS norm, layer norm and interleaved RoPE have no backward pass. The
//! demo-model trainer runs the same layers inside [`with_autograd`], which switches these ops to
//! compositions of differentiable primitives on the current thread, and stride-1 convolutions to
//! [`conv2d`], whose backward pass is as fast as its forward pass.

mod conv2d;
#[cfg(feature = "cuda")]
pub mod conv_gemm;
#[cfg(feature = "cuda")]
pub mod cuda_kernels;
mod expand_rows;
mod gelu;
pub mod linear;
pub mod rowwise;

pub use conv2d::{conv2d, Conv2d};
pub use expand_rows::{add_rows, expand_rows, mul_rows};
pub use gelu::gelu_tanh;

use candle_core::{DType, Result, Tensor, D};
use std::cell::Cell;

thread_local! {
    static AUTOGRAD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with differentiable (composed) ops on this thread.
pub fn with_autograd<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            AUTOGRAD.with(|a| a.set(self.0));
        }
    }
    let _restore = Restore(AUTOGRAD.with(|a| a.replace(true)));
    f()
}

pub fn autograd() -> bool {
    AUTOGRAD.with(Cell::get)
}

pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if autograd() {
        candle_nn::ops::softmax(x, D::Minus1)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// Softmax over the last dim for the transformer's attention. In training the max it subtracts
/// carries no gradient (the softmax does not depend on it), which spares candle's backward pass
/// through `max` (several passes over the scores). The VAE keeps [`softmax_last_dim`]: the
/// shipped demo VAE was trained through it.
pub fn attention_softmax(x: &Tensor) -> Result<Tensor> {
    if autograd() {
        let e = x
            .broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?
            .exp()?;
        e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    if autograd() {
        let normed = (x
            .to_dtype(DType::F32)?
            .broadcast_div(&(mean_square(x)? + eps as f64)?.sqrt()?))?
        .to_dtype(x.dtype())?;
        mul_rows(&normed, weight)
    } else {
        candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps)
    }
}

pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if autograd() {
        add_rows(&mul_rows(&centred_normalised(x, eps)?, weight)?, bias)
    } else {
        candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, eps)
    }
}

/// Layer norm over the last dim without affine parameters.
pub fn layer_norm_no_affine(x: &Tensor, eps: f32) -> Result<Tensor> {
    if autograd() {
        centred_normalised(x, eps)
    } else {
        let dim = x.dim(D::Minus1)?;
        let ones = Tensor::ones(dim, x.dtype(), x.device())?;
        let zeros = Tensor::zeros(dim, x.dtype(), x.device())?;
        candle_nn::ops::layer_norm(&x.contiguous()?, &ones, &zeros, eps)
    }
}

/// The mean of the squares over the last dim (kept), in f32.
fn mean_square(x: &Tensor) -> Result<Tensor> {
    x.to_dtype(DType::F32)?.sqr()?.mean_keepdim(D::Minus1)
}

/// `(x - mean) / sqrt(var + eps)` over the last dim, statistics in f32, composed of
/// differentiable ops.
fn centred_normalised(x: &Tensor, eps: f32) -> Result<Tensor> {
    let x32 = x.to_dtype(DType::F32)?;
    let centred = x32.broadcast_sub(&x32.mean_keepdim(D::Minus1)?)?;
    centred
        .broadcast_div(&(mean_square(&centred)? + eps as f64)?.sqrt()?)?
        .to_dtype(x.dtype())
}

/// Rotation of interleaved pairs, `x` `[B, H, T, D]`, `cos`/`sin` `[T, D/2]`.
pub fn rope_i(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if autograd() {
        candle_nn::rotary_emb::rope_i_slow(x, cos, sin)
    } else {
        candle_nn::rotary_emb::rope_i(x, cos, sin)
    }
}

/// The f32 values of a contiguous CPU tensor, for the training ops' kernels.
fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => candle_core::bail!("{op}: needs a contiguous input"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The gradients of `sum(y * probe)`: a loss whose gradient at `y` is `probe`.
    pub(crate) fn probe_grads(y: &Tensor, probe: &Tensor) -> candle_core::backprop::GradStore {
        (y * probe).unwrap().sum_all().unwrap().backward().unwrap()
    }

    /// The largest absolute difference between two tensors of one shape.
    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn composed_ops_match_fused_and_have_gradients() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (2, 3, 5, 8), &dev).unwrap();
        let w = Tensor::randn(0f32, 1., 8, &dev).unwrap();
        let b = Tensor::randn(0f32, 1., 8, &dev).unwrap();
        let cos = Tensor::randn(0f32, 1., (5, 4), &dev).unwrap();
        let sin = Tensor::randn(0f32, 1., (5, 4), &dev).unwrap();
        let fused = [
            softmax_last_dim(&x).unwrap(),
            attention_softmax(&x).unwrap(),
            layer_norm_no_affine(&x, 1e-6).unwrap(),
            rms_norm(&x, &w, 1e-6).unwrap(),
            layer_norm(&x, &w, &b, 1e-6).unwrap(),
            rope_i(&x, &cos, &sin).unwrap(),
        ];
        with_autograd(|| {
            let composed = [
                softmax_last_dim(&x).unwrap(),
                attention_softmax(&x).unwrap(),
                layer_norm_no_affine(&x, 1e-6).unwrap(),
                rms_norm(&x, &w, 1e-6).unwrap(),
                layer_norm(&x, &w, &b, 1e-6).unwrap(),
                rope_i(&x, &cos, &sin).unwrap(),
            ];
            for (f, c) in fused.iter().zip(&composed) {
                assert!(max_diff(f, c) < 1e-5);
                let loss = c.sqr().unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                assert!(grads.get(&x).is_some());
            }
        });
        assert!(!autograd());
    }

    /// The training compositions back-propagate like candle's own (`softmax`, `rms_norm_slow`,
    /// `layer_norm_slow`).
    #[test]
    fn composed_ops_have_candles_gradients() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (2, 3, 5, 8), &dev).unwrap();
        let w = Var::randn(0f32, 1., 8, &dev).unwrap();
        let b = Var::randn(0f32, 1., 8, &dev).unwrap();
        let probe = Tensor::randn(0f32, 1., (2, 3, 5, 8), &dev).unwrap();
        let candles = [
            candle_nn::ops::softmax(&x, D::Minus1).unwrap(),
            candle_nn::ops::rms_norm_slow(&x, &w, 1e-6).unwrap(),
            candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-6).unwrap(),
        ];
        let ours = with_autograd(|| {
            [
                attention_softmax(&x).unwrap(),
                rms_norm(&x, &w, 1e-6).unwrap(),
                layer_norm(&x, &w, &b, 1e-6).unwrap(),
            ]
        });
        for (theirs, ours) in candles.iter().zip(&ours) {
            assert!(max_diff(theirs, ours) < 1e-5);
            let (theirs, ours) = (probe_grads(theirs, &probe), probe_grads(ours, &probe));
            for var in [&x, &w, &b] {
                match (theirs.get(var), ours.get(var)) {
                    (Some(t), Some(o)) => assert!(max_diff(t, o) < 1e-4, "{}", max_diff(t, o)),
                    (None, None) => {}
                    _ => panic!("a gradient on one side only"),
                }
            }
        }
    }
}
