//! 2D convolution for training, whose backward pass costs about what its forward pass does.
//!
//! candle computes a conv2d's input gradient with its CPU `conv_transpose2d`, a direct loop that
//! is several times slower than the convolution itself. Stride-1 f32 convolutions on the CPU go
//! through [`TrainableConv2d`] instead: the forward pass is im2col and one
//! matrix product, the input gradient is the convolution of the output gradient with the
//! flipped, transposed kernel, and the kernel gradient is one matrix product with the im2col
//! columns.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};

/// `x` `[N, C, H, W]` convolved with `w` `[O, C, kh, kw]` (no bias, no dilation, one group).
pub fn conv2d(x: &Tensor, w: &Tensor, padding: usize, stride: usize) -> Result<Tensor> {
    let (_, _, kh, kw) = w.dims4()?;
    let trainable = stride == 1
        && padding < kh
        && padding < kw
        && x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32;
    if trainable {
        let y = conv_by_matmul(&x.detach(), &w.detach(), (padding, padding))?;
        x.apply_op2(w, TrainableConv2d { y, padding })
    } else {
        x.conv2d(w, padding, stride, 1, 1)
    }
}

/// The im2col columns of `x` `[N, C, H, W]` (f32) for a `kh` x `kw` kernel: `[C*kh*kw, N*Ho*Wo]`,
/// rows in the order of a `[O, C, kh, kw]` kernel's flattened columns. Built row by row with
/// slice copies (a stack of strided views copies element by element, at several times the cost).
fn im2col(x: &Tensor, kh: usize, kw: usize, (ph, pw): (usize, usize)) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ho, wo) = (
        (h + 2 * ph + 1).saturating_sub(kh),
        (w + 2 * pw + 1).saturating_sub(kw),
    );
    if ho == 0 || wo == 0 {
        candle_core::bail!(
            "conv2d: a {kh}x{kw} kernel does not fit a {h}x{w} input padded by ({ph}, {pw})"
        )
    }
    let src: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let mut cols = vec![0f32; c * kh * kw * n * ho * wo];
    let mut rows = cols.chunks_exact_mut(wo);
    for ci in 0..c {
        for i in 0..kh {
            for j in 0..kw {
                // Output columns whose input column `xo + j - pw` lies inside the image.
                let first = pw.saturating_sub(j).min(wo);
                let last = (w + pw).saturating_sub(j).min(wo).max(first);
                for ni in 0..n {
                    let plane = &src[(ni * c + ci) * h * w..][..h * w];
                    for yo in 0..ho {
                        let row = rows.next().expect("im2col rows");
                        let y = yo + i;
                        if y < ph || y - ph >= h || first == last {
                            continue;
                        }
                        let from = (y - ph) * w + first + j - pw;
                        row[first..last].copy_from_slice(&plane[from..from + (last - first)]);
                    }
                }
            }
        }
    }
    Tensor::from_vec(cols, (c * kh * kw, n * ho * wo), x.device())
}

/// The convolution as one matrix product with the im2col columns: `[N, O, Ho, Wo]`.
fn conv_by_matmul(x: &Tensor, w: &Tensor, padding: (usize, usize)) -> Result<Tensor> {
    let (n, _, h, width) = x.dims4()?;
    let (o, c, kh, kw) = w.dims4()?;
    let cols = im2col(x, kh, kw, padding)?;
    let (ho, wo) = (h + 2 * padding.0 + 1 - kh, width + 2 * padding.1 + 1 - kw);
    let y = w.reshape((o, c * kh * kw))?.matmul(&cols)?;
    y.reshape((o, n, ho, wo))?.transpose(0, 1)?.contiguous()
}

/// Reverses dimension `dim` of `t`.
fn flip(t: &Tensor, dim: usize) -> Result<Tensor> {
    let len = t.dim(dim)?;
    let ids: Vec<u32> = (0..len as u32).rev().collect();
    t.contiguous()?
        .index_select(&Tensor::new(ids.as_slice(), t.device())?, dim)
}

/// A stride-1 convolution whose result `y` was computed beforehand (from detached inputs); the
/// op hands it out as its forward result and supplies the gradients.
struct TrainableConv2d {
    y: Tensor,
    padding: usize,
}

impl CustomOp2 for TrainableConv2d {
    fn name(&self) -> &'static str {
        "trainable-conv2d"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // `y` comes from `conv_by_matmul`: a whole buffer of its own (a fresh contiguous copy,
        // or the matrix product's output reshaped), so its storage is the result as it is.
        let (storage, layout) = self.y.storage_and_layout();
        let shape = layout.shape().clone();
        match &*storage {
            Storage::Cpu(cpu)
                if layout.is_contiguous()
                    && layout.start_offset() == 0
                    && cpu.as_slice::<f32>()?.len() == shape.elem_count() =>
            {
                Ok((cpu.clone(), shape))
            }
            _ => candle_core::bail!("trainable conv2d: the result is not a whole f32 CPU buffer"),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, w, grad) = (x.detach(), w.detach(), grad.detach());
        let (o, c, kh, kw) = w.dims4()?;
        let p = self.padding;
        // The transposed convolution as a convolution: flipped kernel, in and out swapped, the
        // padding that restores the input size.
        let flipped = flip(&flip(&w.transpose(0, 1)?, 2)?, 3)?.contiguous()?;
        let grad_x = conv_by_matmul(&grad, &flipped, (kh - 1 - p, kw - 1 - p))?;
        let cols = im2col(&x, kh, kw, (p, p))?;
        let grad_rows = grad.transpose(0, 1)?.contiguous()?.reshape((o, ()))?;
        let grad_w = grad_rows.matmul(&cols.t()?)?.reshape((o, c, kh, kw))?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::max_diff;
    use candle_core::{Device, Var};

    /// Forward results and both gradients match candle's own conv2d and its backward pass.
    #[test]
    fn matches_candle_conv2d_and_its_gradients() {
        let dev = Device::Cpu;
        for &(n, c, o, h, w, k, p) in &[
            (2, 3, 5, 7, 6, 3, 1),
            (1, 4, 2, 5, 5, 1, 0),
            (3, 2, 4, 6, 8, 3, 0),
            (1, 3, 3, 4, 9, 3, 2),
        ] {
            let x = Var::randn(0f32, 1., (n, c, h, w), &dev).unwrap();
            let k_var = Var::randn(0f32, 1., (o, c, k, k), &dev).unwrap();
            let probe = Tensor::randn(0f32, 1., (n, o, h + 2 * p + 1 - k, w + 2 * p + 1 - k), &dev)
                .unwrap();
            let reference = x.conv2d(&k_var, p, 1, 1, 1).unwrap();
            let ref_grads = (&reference * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            {
                let ours = conv2d(&x, &k_var, p, 1).unwrap();
                assert!(
                    max_diff(&ours, &reference) < 1e-4,
                    "forward {n} {c} {o} {h} {w} {k} {p}"
                );
                let grads = (&ours * &probe)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                for var in [x.as_tensor(), k_var.as_tensor()] {
                    let (a, b) = (grads.get(var).unwrap(), ref_grads.get(var).unwrap());
                    assert!(
                        max_diff(a, b) < 1e-3,
                        "gradient {n} {c} {o} {h} {w} {k} {p}: {}",
                        max_diff(a, b)
                    );
                }
            }
        }
    }

    #[test]
    fn strided_convolutions_keep_candle_conv2d() {
        let dev = Device::Cpu;
        let x = Var::randn(0f32, 1., (1, 2, 8, 8), &dev).unwrap();
        let k = Var::randn(0f32, 1., (3, 2, 3, 3), &dev).unwrap();
        let reference = x.conv2d(&k, 0, 2, 1, 1).unwrap();
        {
            let ours = conv2d(&x, &k, 0, 2).unwrap();
            assert_eq!(max_diff(&ours, &reference), 0.0);
            assert!(ours
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(&k)
                .is_some());
        }
    }
}
