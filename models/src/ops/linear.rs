//! A linear layer whose bias add is one of its [`Kernels`] (on CUDA one row-broadcast kernel,
//! [`super::rowwise`]).

use super::Kernels;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`
    weight: Tensor,
    bias: Option<Tensor>,
    kernels: Arc<dyn Kernels>,
}

/// A linear layer with bias, weights `weight` `[out, in]` and `bias` `[out]` under `vb`.
pub fn linear(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
    kernels: &Arc<dyn Kernels>,
) -> Result<Linear> {
    Ok(Linear {
        weight: vb.get((out_dim, in_dim), "weight")?,
        bias: Some(vb.get(out_dim, "bias")?),
        kernels: kernels.clone(),
    })
}

impl Module for Linear {
    /// `x` `[.., in]` -> `[.., out]`; leading dims are flattened into one matrix product.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let Some((&k, lead)) = dims.split_last() else {
            candle_core::bail!("linear: scalar input")
        };
        let rows: usize = lead.iter().product();
        let y = x.reshape((rows, k))?.matmul(&self.weight.t()?)?;
        let mut shape = lead.to_vec();
        shape.push(self.weight.dim(0)?);
        let y = y.reshape(shape)?;
        match &self.bias {
            Some(b) => self.kernels.bias_add(&y, b),
            None => Ok(y),
        }
    }
}
