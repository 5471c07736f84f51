//! The arithmetic of a LoRA, written once: a module's change at its strength, either formed
//! densely (to merge into a weight) or applied to a layer's input on the fly
//! (`y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ`), which never forms the `[out, in]` matrix and so works over a base
//! weight stored in any format.

use candle_core::{DType, Result, Tensor};

/// One module's change to its weight, strength and `alpha / rank` folded into `scale`.
#[derive(Debug, Clone)]
pub enum WeightDelta {
    /// `scale · B·A`, `A` (`down`) `[rank, in..]`, `B` (`up`) `[out, rank, 1..]`.
    LowRank {
        down: Tensor,
        up: Tensor,
        scale: f64,
    },
    /// `scale · D`, `D` of the weight's own shape.
    Full { diff: Tensor, scale: f64 },
}

impl WeightDelta {
    /// The change as a dense f32 tensor of `shape` (the weight's), for merging.
    pub fn dense(&self, shape: &[usize]) -> Result<Tensor> {
        let d = match self {
            WeightDelta::LowRank { down, up, scale } => {
                let rank = down.dim(0)?;
                let down = down.to_dtype(DType::F32)?.reshape((rank, ()))?;
                let up = up.to_dtype(DType::F32)?.reshape((up.dim(0)?, rank))?;
                (up.matmul(&down)? * *scale)?
            }
            WeightDelta::Full { diff, scale } => (diff.to_dtype(DType::F32)? * *scale)?,
        };
        d.reshape(shape)
    }

    /// `x·ΔWᵀ` for a linear layer's input `x` `[.., in]`, in `x`'s dtype.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let Some((&k, lead)) = dims.split_last() else {
            candle_core::bail!("LoRA: scalar input")
        };
        let rows: usize = lead.iter().product();
        let x2 = x.reshape((rows, k))?;
        let dtype = x.dtype();
        let y = match self {
            WeightDelta::LowRank { down, up, scale } => {
                let rank = down.dim(0)?;
                let down = down.to_dtype(dtype)?.reshape((rank, ()))?;
                let up = up.to_dtype(dtype)?.reshape((up.dim(0)?, rank))?;
                (x2.matmul(&down.t()?)?.matmul(&up.t()?)? * *scale)?
            }
            WeightDelta::Full { diff, scale } => {
                let diff = diff.to_dtype(dtype)?;
                (x2.matmul(&diff.t()?)? * *scale)?
            }
        };
        let mut shape = lead.to_vec();
        shape.push(y.dim(1)?);
        y.reshape(shape)
    }
}

/// A linear layer's changes: to its weight and to its bias (`scale · diff_b`).
#[derive(Debug, Clone, Default)]
pub struct LinearDeltas {
    pub weight: Vec<WeightDelta>,
    pub bias: Vec<(Tensor, f64)>,
}

impl LinearDeltas {
    pub fn is_empty(&self) -> bool {
        self.weight.is_empty() && self.bias.is_empty()
    }

    /// The bytes its tensors take.
    pub fn bytes(&self) -> usize {
        let size = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let weight: usize = self
            .weight
            .iter()
            .map(|d| match d {
                WeightDelta::LowRank { down, up, .. } => size(down) + size(up),
                WeightDelta::Full { diff, .. } => size(diff),
            })
            .sum();
        weight + self.bias.iter().map(|(b, _)| size(b)).sum::<usize>()
    }

    /// The same changes on `device`.
    pub fn to_device(&self, device: &candle_core::Device) -> Result<Self> {
        let weight = self
            .weight
            .iter()
            .map(|d| {
                Ok(match d {
                    WeightDelta::LowRank { down, up, scale } => WeightDelta::LowRank {
                        down: down.to_device(device)?,
                        up: up.to_device(device)?,
                        scale: *scale,
                    },
                    WeightDelta::Full { diff, scale } => WeightDelta::Full {
                        diff: diff.to_device(device)?,
                        scale: *scale,
                    },
                })
            })
            .collect::<Result<_>>()?;
        let bias = self
            .bias
            .iter()
            .map(|(b, s)| Ok((b.to_device(device)?, *s)))
            .collect::<Result<_>>()?;
        Ok(LinearDeltas { weight, bias })
    }

    /// `base_out` (the layer's output for `x`) plus every change, in `base_out`'s dtype.
    pub fn add_to(&self, x: &Tensor, base_out: &Tensor) -> Result<Tensor> {
        let mut y = base_out.clone();
        for d in &self.weight {
            y = (y + d.forward(x)?.to_dtype(base_out.dtype())?)?;
        }
        for (diff, scale) in &self.bias {
            let b = (diff.to_dtype(DType::F32)? * *scale)?.to_dtype(base_out.dtype())?;
            y = y.broadcast_add(&b)?;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_core::Module;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>());
        d.unwrap()
    }

    /// On the fly equals merged: the same layer with its weight and bias changed in place.
    #[test]
    fn on_the_fly_equals_merged_within_1e_5() {
        let dev = Device::Cpu;
        let (inp, out, rank) = (24, 16, 4);
        let w = Tensor::randn(0f32, 0.2, (out, inp), &dev).unwrap();
        let b = Tensor::randn(0f32, 0.2, out, &dev).unwrap();
        let deltas = LinearDeltas {
            weight: vec![
                WeightDelta::LowRank {
                    down: Tensor::randn(0f32, 0.3, (rank, inp), &dev).unwrap(),
                    up: Tensor::randn(0f32, 0.3, (out, rank), &dev).unwrap(),
                    scale: 0.7 * 8.0 / rank as f64,
                },
                WeightDelta::LowRank {
                    down: Tensor::randn(0f32, 0.3, (2, inp), &dev).unwrap(),
                    up: Tensor::randn(0f32, 0.3, (out, 2), &dev).unwrap(),
                    scale: -1.25,
                },
                WeightDelta::Full {
                    diff: Tensor::randn(0f32, 0.05, (out, inp), &dev).unwrap(),
                    scale: 0.5,
                },
            ],
            bias: vec![(Tensor::randn(0f32, 0.1, out, &dev).unwrap(), 0.5)],
        };
        let x = Tensor::randn(0f32, 1.0, (2, 5, inp), &dev).unwrap();

        let base_out = candle_nn::Linear::new(w.clone(), Some(b.clone()))
            .forward(&x)
            .unwrap();
        let on_the_fly = deltas.add_to(&x, &base_out).unwrap();

        let mut merged_w = w.clone();
        for d in &deltas.weight {
            merged_w = (merged_w + d.dense(&[out, inp]).unwrap()).unwrap();
        }
        let merged_b = (&b + (&deltas.bias[0].0 * 0.5).unwrap()).unwrap();
        let merged = candle_nn::Linear::new(merged_w, Some(merged_b))
            .forward(&x)
            .unwrap();
        let base = candle_nn::Linear::new(w, Some(b)).forward(&x).unwrap();

        assert!(max_diff(&on_the_fly, &merged) < 1e-5);
        assert!(
            max_diff(&base, &merged) > 0.1,
            "the LoRA changes the output"
        );
    }

    #[test]
    fn a_conv_shaped_pair_forms_the_weights_shape() {
        let dev = Device::Cpu;
        let down = Tensor::ones((2, 3, 1, 2, 2), DType::F32, &dev).unwrap();
        let up = Tensor::ones((5, 2, 1, 1, 1), DType::F32, &dev).unwrap();
        let d = WeightDelta::LowRank {
            down,
            up,
            scale: 0.5,
        }
        .dense(&[5, 3, 1, 2, 2])
        .unwrap();
        assert_eq!(d.dims(), &[5, 3, 1, 2, 2]);
        let v: Vec<f32> = d.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|&x| x == 1.0), "2 (rank) · 0.5");
    }
}
