use super::attention::AttentionBlock;
use super::causal_conv::CausalCache;
use super::resnet::ResidualBlock;
use crate::ops::Kernels;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// diffusers' `WanMidBlock`: resnet, then (attention, resnet) pairs.
#[derive(Debug, Clone)]
pub struct MidBlock {
    resnets: Vec<ResidualBlock>,
    attentions: Vec<AttentionBlock>,
}

impl MidBlock {
    pub fn new(
        dim: usize,
        num_layers: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let resnets = (0..=num_layers)
            .map(|i| ResidualBlock::new(dim, dim, vb.pp("resnets").pp(i), kernels))
            .collect::<Result<Vec<_>>>()?;
        let attentions = (0..num_layers)
            .map(|i| AttentionBlock::new(dim, vb.pp("attentions").pp(i), kernels))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            resnets,
            attentions,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        let mut x = self.resnets[0].forward(x, cache)?;
        for (attention, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = attention.forward(&x)?;
            x = resnet.forward(&x, cache)?;
        }
        Ok(x)
    }
}
