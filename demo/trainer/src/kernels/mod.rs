//! The kernels the trainer runs the `t2v-models` layers with ([`Training`]): compositions of
//! differentiable ops where inference uses candle's fused softmax, norms and RoPE (which have no
//! backward pass), and custom ops whose backward pass is fast on the CPU.
//!
//! - [`conv2d`]: stride-1 convolutions as im2col and matrix products, forward and backward;
//! - [`expand_rows`]: a bias, a modulation or a norm weight repeated over the rows, its gradient
//!   summed back row by row;
//! - [`gelu_tanh`]: GELU with a one-loop backward pass;
//! - the transformer's attention softmax subtracts a max that carries no gradient.
//!
//! Inference never runs these: the layers' plain constructors use `t2v_models::ops::Fused`.

mod conv2d;
mod expand_rows;
mod gelu;

pub use conv2d::conv2d;
pub use expand_rows::{add_rows, expand_rows, mul_rows};
pub use gelu::gelu_tanh;

use candle_core::{DType, Result, Tensor, D};
use std::sync::Arc;
use t2v_models::dit::attention::{chunked, SCORE_BUDGET_BYTES};
use t2v_models::ops::Kernels;

/// The differentiable kernels. `cross_key_bias` (`[B, 1, 1, M]` f32), when set, is added to the
/// scores of the transformer's cross-attention: see [`crate::collapsed_text`].
#[derive(Debug, Clone, Default)]
pub struct Training {
    cross_key_bias: Option<Tensor>,
}

impl Training {
    /// Training kernels whose cross-attention adds `key_bias` to each key's score.
    pub fn with_cross_key_bias(key_bias: Tensor) -> Training {
        Training {
            cross_key_bias: Some(key_bias),
        }
    }
}

/// [`Training`] without a key bias, shared: what the trained layers are built with.
pub fn training_kernels() -> Arc<dyn Kernels> {
    Arc::new(Training::default())
}

/// Softmax over the last dim for the transformer's attention. The max it subtracts carries no
/// gradient (the softmax does not depend on it), which spares candle's backward pass through
/// `max` (several passes over the scores). The VAE and the text encoder keep candle's
/// `softmax`: the shipped demo VAE was trained through it.
pub fn attention_softmax(x: &Tensor) -> Result<Tensor> {
    let e = x
        .broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?
        .exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// The mean of the squares over the last dim (kept), in f32.
fn mean_square(x: &Tensor) -> Result<Tensor> {
    x.to_dtype(DType::F32)?.sqr()?.mean_keepdim(D::Minus1)
}

/// `(x - mean) / sqrt(var + eps)` over the last dim, statistics in f32.
fn centred_normalised(x: &Tensor, eps: f32) -> Result<Tensor> {
    let x32 = x.to_dtype(DType::F32)?;
    let centred = x32.broadcast_sub(&x32.mean_keepdim(D::Minus1)?)?;
    centred
        .broadcast_div(&(mean_square(&centred)? + eps as f64)?.sqrt()?)?
        .to_dtype(x.dtype())
}

impl Kernels for Training {
    fn softmax_last_dim(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::softmax(x, D::Minus1)
    }

    fn attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        chunked(q, k, v, scale, attention_softmax, SCORE_BUDGET_BYTES)
    }

    fn cross_attention(&self, q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
        match &self.cross_key_bias {
            None => self.attention(q, k, v, scale),
            Some(bias) => chunked(
                q,
                k,
                v,
                scale,
                |scores| attention_softmax(&scores.broadcast_add(bias)?),
                SCORE_BUDGET_BYTES,
            ),
        }
    }

    fn rms_norm(&self, x: &Tensor, weight: &Tensor, eps: f32) -> Result<Tensor> {
        let normed = (x
            .to_dtype(DType::F32)?
            .broadcast_div(&(mean_square(x)? + eps as f64)?.sqrt()?))?
        .to_dtype(x.dtype())?;
        mul_rows(&normed, weight)
    }

    fn layer_norm(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
        add_rows(&mul_rows(&centred_normalised(x, eps)?, weight)?, bias)
    }

    fn layer_norm_no_affine(&self, x: &Tensor, eps: f32) -> Result<Tensor> {
        centred_normalised(x, eps)
    }

    fn rope_i(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        candle_nn::rotary_emb::rope_i_slow(x, cos, sin)
    }

    fn gelu_tanh(&self, x: &Tensor) -> Result<Tensor> {
        gelu_tanh(x)
    }

    fn conv2d(&self, x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
        conv2d(x, w, padding, stride)
    }

    fn bias_add(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        add_rows(x, bias)
    }

    fn modulate(&self, x: &Tensor, shift: &Tensor, scale: &Tensor, dtype: DType) -> Result<Tensor> {
        add_rows(&mul_rows(x, &(scale + 1.0)?)?, shift)?.to_dtype(dtype)
    }

    fn gated_residual(&self, x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        (x.to_dtype(DType::F32)? + mul_rows(&y.to_dtype(DType::F32)?, gate)?)?.to_dtype(dtype)
    }

    fn norm_modulate(
        &self,
        x: &Tensor,
        shift: &Tensor,
        scale: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        let normed = self.layer_norm_no_affine(&x.to_dtype(DType::F32)?, eps as f32)?;
        self.modulate(&normed, shift, scale, x.dtype())
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
    use t2v_models::dit::attention::sdpa_naive;
    use t2v_models::ops::Fused;

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

    /// Every kernel of `k` on inputs made from `x`, `w` and `b` (and nothing random: both
    /// implementations must see the same ones).
    fn all_ops(k: &dyn Kernels, x: &Tensor, w: &Tensor, b: &Tensor) -> Vec<Tensor> {
        let cos = w
            .narrow(0, 0, 4)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
            .repeat((5, 1))
            .unwrap();
        let sin = (&cos * 0.5).unwrap().sin().unwrap();
        let y = (x * 0.3).unwrap();
        let q = x.narrow(2, 0, 3).unwrap();
        let kernel = Tensor::ones((2, 3, 3, 3), DType::F32, x.device()).unwrap();
        vec![
            k.softmax_last_dim(x).unwrap(),
            k.attention(&q, x, x, 0.3).unwrap(),
            k.cross_attention(&q, x, x, 0.3).unwrap(),
            k.layer_norm_no_affine(x, 1e-6).unwrap(),
            k.rms_norm(x, w, 1e-6).unwrap(),
            k.layer_norm(x, w, b, 1e-6).unwrap(),
            k.rope_i(x, &cos, &sin).unwrap(),
            k.gelu_tanh(x).unwrap(),
            k.conv2d(x, &kernel, 1, 1).unwrap(),
            k.bias_add(x, b).unwrap(),
            k.modulate(x, b, &(w * 0.1).unwrap(), DType::F32).unwrap(),
            k.gated_residual(x, &y, w).unwrap(),
            k.norm_modulate(x, w, b, 1e-6).unwrap(),
        ]
    }

    /// Each training kernel computes what the fused inference kernel does, and back-propagates.
    #[test]
    fn training_kernels_match_the_fused_ones_and_have_gradients() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (2, 3, 5, 8), &dev).unwrap();
        let w = Tensor::randn(0f32, 1., 8, &dev).unwrap();
        let b = Tensor::randn(0f32, 1., 8, &dev).unwrap();
        let fused = all_ops(&Fused, &x, &w, &b);
        let trained = all_ops(&Training::default(), &x, &w, &b);
        for (i, (f, t)) in fused.iter().zip(&trained).enumerate() {
            assert_eq!(f.dims(), t.dims(), "op {i}");
            assert!(max_diff(f, t) < 1e-4, "op {i}: {}", max_diff(f, t));
            let grads = t.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            assert!(grads.get(&x).is_some(), "op {i} has no gradient");
        }
        // The fused kernels have none: a layer built with them cannot train.
        let fused_softmax = Fused.softmax_last_dim(&x).unwrap();
        let grads = fused_softmax.sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
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
        let k = Training::default();
        let ours = [
            attention_softmax(&x).unwrap(),
            k.rms_norm(&x, &w, 1e-6).unwrap(),
            k.layer_norm(&x, &w, &b, 1e-6).unwrap(),
        ];
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

    /// A key with bias ln(n) in the cross-attention weighs as much as n copies of it; the
    /// self-attention has no bias.
    #[test]
    fn a_cross_key_bias_of_ln_n_counts_a_key_n_times() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1., (1, 2, 11, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1., (1, 2, 5, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1., (1, 2, 5, 8), &dev).unwrap();
        // The last key repeated 7 times against it once with bias ln 7.
        let last = |t: &Tensor| t.narrow(2, 4, 1).unwrap().repeat((1, 1, 6, 1)).unwrap();
        let k_rep = Tensor::cat(&[&k, &last(&k)], 2).unwrap();
        let v_rep = Tensor::cat(&[&v, &last(&v)], 2).unwrap();
        let bias = Tensor::new(&[0f32, 0., 0., 0., 7f32.ln()], &dev)
            .unwrap()
            .reshape((1, 1, 1, 5))
            .unwrap();
        let kernels = Training::with_cross_key_bias(bias);
        let a = kernels.cross_attention(&q, &k, &v, 0.3).unwrap();
        let b = sdpa_naive(&q, &k_rep, &v_rep, 0.3).unwrap();
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
        let plain = kernels.attention(&q, &k, &v, 0.3).unwrap();
        assert!(max_diff(&plain, &sdpa_naive(&q, &k, &v, 0.3).unwrap()) < 1e-5);
    }
}
