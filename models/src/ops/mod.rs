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
pub mod linear;
pub mod rowwise;

pub use conv2d::{conv2d, Conv2d};

use candle_core::{Result, Tensor, D};
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

pub fn rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
    if autograd() {
        candle_nn::ops::rms_norm_slow(x, weight, eps)
    } else {
        candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps)
    }
}

pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    if autograd() {
        candle_nn::ops::layer_norm_slow(x, weight, bias, eps)
    } else {
        candle_nn::ops::layer_norm(&x.contiguous()?, weight, bias, eps)
    }
}

/// Rotation of interleaved pairs, `x` `[B, H, T, D]`, `cos`/`sin` `[T, D/2]`.
pub fn rope_i(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if autograd() {
        candle_nn::rotary_emb::rope_i_slow(x, cos, sin)
    } else {
        candle_nn::rotary_emb::rope_i(x, cos, sin)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

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
            rms_norm(&x, &w, 1e-6).unwrap(),
            layer_norm(&x, &w, &b, 1e-6).unwrap(),
            rope_i(&x, &cos, &sin).unwrap(),
        ];
        with_autograd(|| {
            let composed = [
                softmax_last_dim(&x).unwrap(),
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
        let _ = DType::F32;
    }
}
