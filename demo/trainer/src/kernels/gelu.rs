//! GELU, tanh approximation (Wan2.2's feed-forward and text embedding), for training.
//!
//! Inference uses candle's `gelu`. In training, on f32 CPU tensors, it is a custom op with the same formula (to a few ulp: its `tanh` is one `exp`) and a backward pass
//! that is one loop: candle's own backward for `gelu` is about fourteen tensor passes, two of
//! them `powf`, and was the largest single cost of a demo-model transformer step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};

pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(GeluTanh)
    } else {
        x.gelu()
    }
}

const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
const CUBIC: f32 = 0.044_715;

/// candle's formula (with [`tanh`] for libm's), so that the trained layers see what inference
/// computes to a few ulp.
#[inline(always)]
fn forward(v: f32) -> f32 {
    0.5 * v * (1.0 + tanh(SQRT_TWO_OVER_PI * v * (1.0 + CUBIC * v * v)))
}

/// `tanh` through one `exp`: libm's `tanhf` (through `expm1f`) was a tenth of a training step.
/// Exact at both tails (`exp` overflowing to infinity gives 1); near 0 the absolute error is a
/// few 1e-8, which GELU multiplies by `v / 2`.
#[inline(always)]
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / ((2.0 * u).exp() + 1.0)
}

/// d/dv of [`forward`]: `0.5 (1 + t) + 0.5 v (1 - t²) u'`, `t = tanh(u)`, `u = c (v + k v³)`.
#[inline(always)]
fn derivative(v: f32) -> f32 {
    let t = tanh(SQRT_TWO_OVER_PI * v * (1.0 + CUBIC * v * v));
    let du = SQRT_TWO_OVER_PI * (1.0 + 3.0 * CUBIC * v * v);
    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du
}

struct GeluTanh;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::contiguous_f32(storage, layout, "gelu-tanh")?;
        let out: Vec<f32> = x.iter().map(|&v| forward(v)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let arg = arg.contiguous()?;
        let grad_res = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&grad_res, &GeluTanhGrad)?))
    }
}

/// `grad * gelu'(x)` in one pass.
struct GeluTanhGrad;

impl CustomOp2 for GeluTanhGrad {
    fn name(&self) -> &'static str {
        "gelu-tanh-grad"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if x_layout.shape() != grad_layout.shape() {
            candle_core::bail!(
                "gelu-tanh-grad: input {:?} and gradient {:?} differ in shape",
                x_layout.shape(),
                grad_layout.shape()
            );
        }
        let x = super::contiguous_f32(x, x_layout, "gelu-tanh-grad")?;
        let grad = super::contiguous_f32(grad, grad_layout, "gelu-tanh-grad")?;
        let out: Vec<f32> = x
            .iter()
            .zip(grad)
            .map(|(&v, &g)| g * derivative(v))
            .collect();
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{max_diff, probe_grads};
    use candle_core::{Device, Var};

    #[test]
    fn matches_candles_gelu_and_its_gradient() {
        let dev = Device::Cpu;
        let values: Vec<f32> = (0..4000).map(|i| (i as f32 - 2000.0) / 250.0).collect();
        let x = Var::from_vec(values, (40, 100), &dev).unwrap();
        let w = Tensor::randn(0f32, 1., (40, 100), &dev).unwrap();

        let reference = x.as_tensor().gelu().unwrap();
        let reference_grad = probe_grads(&reference, &w);
        let reference_grad = reference_grad.get(&x).unwrap();

        let fused = gelu_tanh(x.as_tensor()).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-6);
        let fused_grads = probe_grads(&fused, &w);
        let fused_grad = fused_grads.get(&x).unwrap();
        // candle's backward rounds its constants to six digits.
        let scale = reference_grad.abs().unwrap().max_all().unwrap();
        let scale: f32 = scale.to_scalar().unwrap();
        assert!(
            max_diff(fused_grad, reference_grad) < 1e-4 * scale,
            "{}",
            max_diff(fused_grad, reference_grad)
        );
    }

    #[test]
    fn a_strided_input_gives_candles_values() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 2., (6, 9), &dev).unwrap().t().unwrap();
        let fused = gelu_tanh(&x).unwrap();
        assert!(max_diff(&fused, &x.gelu().unwrap()) < 1e-6);
    }

    #[test]
    fn tanh_through_exp_is_libms_to_a_few_ulp_and_saturates() {
        for i in -4000..=4000 {
            let u = i as f32 / 200.0;
            assert!((tanh(u) - u.tanh()).abs() < 2e-7, "{u}");
        }
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
    }

    #[test]
    fn the_derivative_matches_finite_differences() {
        for &v in &[-6.0f32, -2.5, -1.0, -0.3, 0.0, 0.4, 1.2, 3.0, 7.0] {
            let h = 1e-3f64;
            let f = |x: f64| {
                0.5 * x
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
            };
            let numeric = (f(v as f64 + h) - f(v as f64 - h)) / (2.0 * h);
            assert!(
                (derivative(v) as f64 - numeric).abs() < 1e-5,
                "{v}: {} vs {numeric}",
                derivative(v)
            );
        }
    }
}
