use super::causal_conv::{CausalCache, CausalConv3d};
use super::norm::RmsNorm;
use crate::ops::Kernels;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// diffusers' `WanResidualBlock`: `shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`.
#[derive(Debug, Clone)]
pub struct ResidualBlock {
    norm1: RmsNorm,
    conv1: CausalConv3d,
    norm2: RmsNorm,
    conv2: CausalConv3d,
    conv_shortcut: Option<CausalConv3d>,
}

impl ResidualBlock {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let conv3 = |i, o, vb| CausalConv3d::new(i, o, [3, 3, 3], [1, 1, 1], 1, vb, kernels);
        let conv_shortcut = if in_dim != out_dim {
            Some(CausalConv3d::new(
                in_dim,
                out_dim,
                [1, 1, 1],
                [0, 0, 0],
                1,
                vb.pp("conv_shortcut"),
                kernels,
            )?)
        } else {
            None
        };
        Ok(Self {
            norm1: RmsNorm::new(in_dim, false, vb.pp("norm1"))?,
            conv1: conv3(in_dim, out_dim, vb.pp("conv1"))?,
            norm2: RmsNorm::new(out_dim, false, vb.pp("norm2"))?,
            conv2: conv3(out_dim, out_dim, vb.pp("conv2"))?,
            conv_shortcut,
        })
    }

    /// `x`: one chunk `[B, T, C, H, W]`; takes two cache slots.
    pub fn forward(&self, x: &Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        let h = self.norm1.forward_silu(x)?;
        let h = self.conv1.forward_cached(&h, cache)?;
        let h = self.norm2.forward_silu(&h)?;
        let h = self.conv2.forward_cached(&h, cache)?;
        h + shortcut
    }
}
