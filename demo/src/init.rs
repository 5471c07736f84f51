//! Initial weights. The layers create their variables through `VarBuilder::get`, which fills a
//! `VarMap` with zeros; every variable is then set here, by name and shape, from a seeded
//! generator, so that training starts from the same point on every machine.

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// How one variable starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    Const(f32),
    Normal(f32),
}

/// The start of a variable of the VAE, the transformer or the text encoder.
pub fn start_for(name: &str, shape: &[usize], text_d_kv: usize) -> Start {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
    let scaled = |factor: f32| Start::Normal(factor / (fan_in as f32).sqrt());
    if leaf == "bias" {
        return Start::Const(0.0);
    }
    // Norm gains.
    if leaf == "gamma"
        || name.ends_with("norm_q.weight")
        || name.ends_with("norm_k.weight")
        || name.ends_with("layer_norm.weight")
        || name.ends_with("norm2.weight") && !name.contains("resnets")
    {
        return Start::Const(1.0);
    }
    if leaf == "scale_shift_table" {
        let dim = *shape.last().unwrap_or(&1);
        return Start::Normal(1.0 / (dim as f32).sqrt());
    }
    // Zero-initialised outputs: every residual branch and the transformer's head start as
    // identities (or zero), which keeps the first steps stable.
    if name == "proj_out.weight"
        || name.ends_with("conv2.weight")
        || name.ends_with("attentions.0.proj.weight")
    {
        return Start::Const(0.0);
    }
    if name == "shared.weight" || name.ends_with("embed_tokens.weight") {
        return Start::Normal(1.0);
    }
    if name.ends_with("relative_attention_bias.weight") {
        return Start::Normal(0.1);
    }
    // umT5 does not scale its attention scores: scale the query instead, as transformers does.
    if name.ends_with("SelfAttention.q.weight") {
        return Start::Normal(1.0 / ((shape[1] * text_d_kv) as f32).sqrt());
    }
    if name.ends_with("time_proj.weight") {
        return scaled(0.1);
    }
    scaled(1.0)
}

/// Sets every variable of `varmap` (in name order, so the result doesn't depend on hash order).
pub fn initialise(varmap: &VarMap, seed: u64, text_d_kv: usize) -> Result<()> {
    let data = varmap.data().lock().expect("var map poisoned");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let shape = var.shape().dims().to_vec();
        let n: usize = shape.iter().product();
        let values: Vec<f32> = match start_for(name, &shape, text_d_kv) {
            Start::Const(c) => vec![c; n],
            Start::Normal(std) => {
                let normal = Normal::new(0.0, std.max(1e-12)).map_err(candle_core::Error::wrap)?;
                (0..n).map(|_| normal.sample(&mut rng)).collect()
            }
        };
        let tensor =
            Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?.to_dtype(var.dtype())?;
        var.set(&tensor)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_start_at_one_and_outputs_at_zero() {
        assert_eq!(
            start_for("blocks.0.attn1.norm_q.weight", &[64], 16),
            Start::Const(1.0)
        );
        assert_eq!(
            start_for("blocks.0.norm2.weight", &[64], 16),
            Start::Const(1.0)
        );
        assert_eq!(
            start_for("encoder.block.0.layer.1.layer_norm.weight", &[64], 16),
            Start::Const(1.0)
        );
        assert_eq!(
            start_for(
                "decoder.up_blocks.0.resnets.1.norm2.gamma",
                &[8, 1, 1, 1],
                16
            ),
            Start::Const(1.0)
        );
        assert_eq!(
            start_for(
                "decoder.up_blocks.0.resnets.1.conv2.weight",
                &[8, 8, 3, 3, 3],
                16
            ),
            Start::Const(0.0)
        );
        assert_eq!(
            start_for("proj_out.weight", &[64, 128], 16),
            Start::Const(0.0)
        );
        assert_eq!(
            start_for("blocks.0.ffn.net.0.proj.bias", &[384], 16),
            Start::Const(0.0)
        );
        assert_eq!(
            start_for("blocks.0.ffn.net.2.weight", &[128, 400], 16),
            Start::Normal(0.05)
        );
    }
}
