use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// diffusers' `WanRMS_norm`: L2-normalises over channels and rescales by `sqrt(C) * gamma`
/// (not a mean-square RMS norm, and not a GroupNorm). Statistics in f32.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    gamma: Tensor,
    dim: usize,
}

const EPS: f64 = 1e-12;

impl RmsNorm {
    /// `images` selects the checkpoint's gamma shape: `[C, 1, 1]` (attention) or `[C, 1, 1, 1]`.
    pub fn new(dim: usize, images: bool, vb: VarBuilder) -> Result<Self> {
        let gamma = if images {
            vb.get((dim, 1, 1), "gamma")?
        } else {
            vb.get((dim, 1, 1, 1), "gamma")?
        };
        Ok(Self { gamma, dim })
    }

    /// `x`: `[B, T, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let norm = x.sqr()?.sum_keepdim(2)?.sqrt()?.maximum(EPS)?;
        let gain = (self.gamma.to_dtype(DType::F32)?.reshape((self.dim, 1, 1))?
            * (self.dim as f64).sqrt())?;
        x.broadcast_div(&norm)?
            .broadcast_mul(&gain)?
            .to_dtype(dtype)
    }
}
