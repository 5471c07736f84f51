//! A linear layer whose bias add is one of its [`Kernels`] (on CUDA one row-broadcast kernel,
//! [`super::rowwise`]), and candle's bias-free linear layer; both over a [`StoredWeight`], so a
//! GGUF or fp8 weight is decoded to the compute dtype just before its matmul (and a LoRA on
//! such a weight is applied to the input on the fly).

use super::Kernels;
use crate::weights::stored::{stored_weight, StoredWeight};
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`
    weight: StoredWeight,
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
        weight: stored_weight(&vb, (out_dim, in_dim), "weight")?,
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
        let (weight, lora) = self.weight.split_lora();
        let weight = weight.materialize(x.dtype())?;
        let y = x.reshape((rows, k))?.matmul(&weight.t()?)?;
        let mut shape = lead.to_vec();
        shape.push(weight.dim(0)?);
        let mut y = y.reshape(shape)?;
        if let Some(lora) = lora {
            y = lora.add_to(x, &y)?;
        }
        match &self.bias {
            Some(b) => self.kernels.bias_add(&y, b),
            None => Ok(y),
        }
    }
}

impl Linear {
    pub fn weight(&self) -> &StoredWeight {
        &self.weight
    }
}

/// candle's linear layer without bias (umT5's projections) over a [`StoredWeight`].
#[derive(Debug, Clone)]
pub struct LinearNoBias {
    /// `[out, in]`
    weight: StoredWeight,
}

pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<LinearNoBias> {
    Ok(LinearNoBias {
        weight: stored_weight(&vb, (out_dim, in_dim), "weight")?,
    })
}

impl LinearNoBias {
    pub fn weight(&self) -> &StoredWeight {
        &self.weight
    }
}

impl Module for LinearNoBias {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (weight, lora) = self.weight.split_lora();
        let y = candle_nn::Linear::new(weight.materialize(x.dtype())?, None).forward(x)?;
        match lora {
            Some(lora) => lora.add_to(x, &y),
            None => Ok(y),
        }
    }
}
