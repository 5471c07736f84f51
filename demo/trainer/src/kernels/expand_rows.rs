//! A row vector (or a few) repeated over the rows of a larger tensor, for training.
//!
//! `x.broadcast_mul(v)` with `v` `[D]` or `[B, 1, D]` back-propagates through candle's generic
//! sum over the broadcast dims, which works element by element with two divisions each and was a
//! fifth of a demo-model transformer step. [`expand_rows`] materialises the repetition instead
//! and sums the gradient back one row at a time.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// `v` repeated to `shape` like `v.broadcast_as(shape)`: `v`'s dims (left-padded with 1s) are
/// each 1 or `shape`'s, and its last dim is `shape`'s. Materialised, with a fast backward pass,
/// for f32 CPU tensors; elsewhere `broadcast_as`.
pub fn expand_rows(v: &Tensor, shape: &Shape) -> Result<Tensor> {
    let rank = shape.rank();
    let fast = v.device().is_cpu()
        && v.dtype() == DType::F32
        && rank >= 1
        && v.rank() <= rank
        && v.dims().last() == shape.dims().last();
    if !fast {
        return v.broadcast_as(shape);
    }
    let mut source = vec![1; rank - v.rank()];
    source.extend_from_slice(v.dims());
    if source
        .iter()
        .zip(shape.dims())
        .any(|(&s, &t)| s != 1 && s != t)
    {
        return v.broadcast_as(shape);
    }
    v.contiguous()?.apply_op1(ExpandRows {
        source,
        target: shape.dims().to_vec(),
    })
}

/// `x * v` with `v` repeated over `x`'s rows ([`expand_rows`]).
pub fn mul_rows(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    x.mul(&expand_rows(v, x.shape())?)
}

/// `x + v` with `v` repeated over `x`'s rows ([`expand_rows`]).
pub fn add_rows(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    x.add(&expand_rows(v, x.shape())?)
}

/// For each row of `target` (all dims but the last), the row of `source` it repeats.
fn source_rows<'a>(source: &'a [usize], target: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let lead = target.len() - 1;
    let rows: usize = target[..lead].iter().product();
    (0..rows).map(move |mut r| {
        let mut src = 0;
        let mut src_stride = 1;
        for d in (0..lead).rev() {
            let i = r % target[d];
            r /= target[d];
            if source[d] != 1 {
                src += i * src_stride;
            }
            src_stride *= source[d];
        }
        src
    })
}

struct ExpandRows {
    source: Vec<usize>,
    target: Vec<usize>,
}

impl CustomOp1 for ExpandRows {
    fn name(&self) -> &'static str {
        "expand-rows"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let v = super::contiguous_f32(storage, layout, "expand-rows")?;
        let d = *self.target.last().unwrap_or(&1);
        let mut out = Vec::with_capacity(self.target.iter().product());
        for src in source_rows(&self.source, &self.target) {
            out.extend_from_slice(&v[src * d..(src + 1) * d]);
        }
        Ok((CpuStorage::F32(out), Shape::from(self.target.clone())))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let summed = grad_res.contiguous()?.apply_op1_no_bwd(&SumRows {
            source: self.source.clone(),
            target: self.target.clone(),
        })?;
        Ok(Some(summed.reshape(arg.shape())?))
    }
}

/// The gradient of [`ExpandRows`]: each row of the `target`-shaped input added into the row of
/// `source` it repeats.
struct SumRows {
    source: Vec<usize>,
    target: Vec<usize>,
}

impl CustomOp1 for SumRows {
    fn name(&self) -> &'static str {
        "sum-rows"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let grad = super::contiguous_f32(storage, layout, "sum-rows")?;
        let d = *self.target.last().unwrap_or(&1);
        let mut out = vec![0f32; self.source.iter().product()];
        for (row, src) in source_rows(&self.source, &self.target).enumerate() {
            let dst = &mut out[src * d..(src + 1) * d];
            for (o, g) in dst.iter_mut().zip(&grad[row * d..(row + 1) * d]) {
                *o += g;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(self.source.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{max_diff, probe_grads};
    use candle_core::{Device, Var};

    /// Forward values and gradients equal those of candle's broadcasting, for every pattern the
    /// transformer uses: a bias `[D]`, a modulation `[B, 1, D]`, a table `[1, 6, D]`.
    #[test]
    fn matches_broadcasting_and_its_gradients() {
        let dev = Device::Cpu;
        let cases: [(&[usize], &[usize]); 5] = [
            (&[8], &[2, 5, 8]),
            (&[2, 1, 8], &[2, 5, 8]),
            (&[1, 5, 8], &[2, 5, 8]),
            (&[1, 8], &[3, 8]),
            (&[3, 1, 4, 8], &[3, 2, 4, 8]),
        ];
        for (small, big) in cases {
            let v = Var::randn(0f32, 1., small, &dev).unwrap();
            let x = Var::randn(0f32, 1., big, &dev).unwrap();
            let w = Tensor::randn(0f32, 1., big, &dev).unwrap();

            let reference = x.as_tensor().broadcast_mul(v.as_tensor()).unwrap();
            let reference_grads = probe_grads(&reference, &w);
            let ours = mul_rows(x.as_tensor(), v.as_tensor()).unwrap();
            assert_eq!(ours.dims(), big);
            assert_eq!(max_diff(&ours, &reference), 0.0, "{small:?} -> {big:?}");
            let grads = probe_grads(&ours, &w);
            for var in [&v, &x] {
                let ours = grads.get(var).unwrap();
                let theirs = reference_grads.get(var).unwrap();
                assert_eq!(ours.dims(), var.dims());
                assert!(max_diff(ours, theirs) < 1e-5, "{small:?} -> {big:?}");
            }
        }
    }

    #[test]
    fn off_the_cpu_or_f32_it_is_a_plain_broadcast() {
        let dev = Device::Cpu;
        let v = Tensor::new(&[1f64, 2., 3.], &dev).unwrap();
        let x = Tensor::ones((2, 3), DType::F64, &dev).unwrap();
        let y = add_rows(&x, &v).unwrap();
        assert_eq!(
            y.to_vec2::<f64>().unwrap(),
            vec![vec![2., 3., 4.], vec![2., 3., 4.]]
        );
    }
}
