use super::norm::RmsNorm;
use crate::ops::Conv2d;
use crate::ops::Kernels;
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// diffusers' `WanAttentionBlock`: single-head self-attention over the pixels of each frame.
#[derive(Debug, Clone)]
pub struct AttentionBlock {
    norm: RmsNorm,
    to_qkv: Conv2d,
    proj: Conv2d,
    kernels: Arc<dyn Kernels>,
}

impl AttentionBlock {
    pub fn new(dim: usize, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        Ok(Self {
            norm: RmsNorm::new(dim, true, vb.pp("norm"))?,
            to_qkv: Conv2d::new(dim, 3 * dim, 1, 0, 1, vb.pp("to_qkv"), kernels)?,
            proj: Conv2d::new(dim, dim, 1, 0, 1, vb.pp("proj"), kernels)?,
            kernels: kernels.clone(),
        })
    }

    /// `x`: `[B, T, C, H, W]`; frames are independent.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, c, h, w) = x.dims5()?;
        let n = b * t;
        let normed = self.norm.forward(x)?.reshape((n, c, h, w))?;
        let qkv = self
            .to_qkv
            .forward(&normed)?
            .reshape((n, 3 * c, h * w))?
            .transpose(1, 2)?;
        // Scores and softmax in f32: C is 640/1024 and there are few tokens, so this is cheap.
        let qkv = qkv.to_dtype(DType::F32)?;
        let q = qkv.narrow(2, 0, c)?.contiguous()?;
        let k = qkv.narrow(2, c, c)?.t()?.contiguous()?;
        let v = qkv.narrow(2, 2 * c, c)?.contiguous()?;
        let scores = (q.matmul(&k)? * (1.0 / (c as f64).sqrt()))?;
        let attn = self.kernels.softmax_last_dim(&scores)?.matmul(&v)?;
        let attn = attn
            .to_dtype(x.dtype())?
            .transpose(1, 2)?
            .reshape((n, c, h, w))?;
        let out = self.proj.forward(&attn)?.reshape((b, t, c, h, w))?;
        out + x
    }
}
