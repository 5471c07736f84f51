//! Initial weights. The layers create their variables through `VarBuilder::get`, which fills a
//! `VarMap` with zeros; every variable is then set here, by name and shape, from a seeded
//! generator, so that training starts from the same point on every machine.

use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Start of the gains of the transformer's cross-attention query and key RMS norms. Its text
/// keys are the prompt's ~12 tokens plus ~500 identical zero-padding rows (the pipeline pads to
/// 512 and has no text mask), so a token needs a score ~ln(500) = 6.2 above the padding's to
/// get half the attention. With gains of 1 a 32-wide head's score is at most sqrt(32) = 5.7
/// (unit-RMS queries and keys, scaled by 1/sqrt(32)): the prompt could never take most of the
/// attention, and at the start it got ~2% of it and of the gradient. Gains of sqrt(2) give the
/// range of Wan2.2's 128-wide heads (at most 11.3, scores of std 2 at the start).
pub const CROSS_ATTENTION_GAIN: f32 = std::f32::consts::SQRT_2;

/// Strength of the positional heads of the text encoder's relative position bias.
pub const POSITIONAL_BIAS: f32 = 4.0;

/// Offsets (key - query) the text encoder's heads attend to at the start, head by head (heads
/// beyond the list: none).
const POSITIONAL_OFFSETS: [i64; 4] = [-1, 1, -2, 2];

/// The structured part of a text encoder's relative position bias `[buckets, heads]`: head `h`
/// attends to the token `POSITIONAL_OFFSETS[h]` away.
///
/// umT5 has no absolute positions: its only notion of order is this bias. Started at small
/// random values (as it was), the encoder is nearly permutation-invariant, so "a yellow block on
/// a blue background" and "a blue block on a yellow background" encode to nearly the same set of
/// vectors, and the transformer cannot tell which colour is the object's; after 4000 steps the
/// bias had not moved (it was still ~0.1). With heads that look at the previous and next words a
/// colour word carries its noun from the start (colours always stand right before their noun).
pub fn positional_bias(shape: &[usize]) -> Vec<f32> {
    let (buckets, heads) = (shape[0], shape[1]);
    let mut table = vec![0f32; buckets * heads];
    for (h, &offset) in POSITIONAL_OFFSETS.iter().enumerate().take(heads) {
        let bucket = t2v_models::text::umt5::relative_position_bucket(offset, buckets, 128);
        table[bucket as usize * heads + h] = POSITIONAL_BIAS;
    }
    table
}

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
    // The cross-attention's query and key norms: see `CROSS_ATTENTION_GAIN`.
    if name.ends_with("attn2.norm_q.weight") || name.ends_with("attn2.norm_k.weight") {
        return Start::Const(CROSS_ATTENTION_GAIN);
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
        // Plus the positional heads of `positional_bias`.
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
        let values = if name.ends_with("relative_attention_bias.weight") && shape.len() == 2 {
            let table = positional_bias(&shape);
            values.iter().zip(&table).map(|(v, t)| v + t).collect()
        } else {
            values
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

    /// Encodes `prompt` with a freshly initialised full-size text encoder: (token ids, one
    /// embedding per token).
    fn encode_at_start(prompt: &str) -> (Vec<u32>, Vec<Vec<f32>>) {
        use candle_core::DType;
        use candle_nn::VarBuilder;
        use t2v_models::text::{PromptTokenizer, Umt5Encoder};
        let sizes = crate::configs::Preset::full().sizes;
        let path = std::env::temp_dir().join(format!(
            "t2v-demo-init-tokenizer-{}.json",
            std::process::id()
        ));
        crate::vocab::save_tokenizer(&path).unwrap();
        let tokenizer = PromptTokenizer::from_file(&path).unwrap();
        let map = VarMap::new();
        let encoder = Umt5Encoder::new(
            &sizes.text_encoder(),
            VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
        )
        .unwrap();
        initialise(&map, 3, sizes.text_d_kv).unwrap();
        let ids = tokenizer.encode(prompt).unwrap();
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let out = encoder.forward(&input).unwrap().squeeze(0).unwrap();
        (ids, out.to_vec2().unwrap())
    }

    /// Regression: the text encoder started nearly permutation-invariant (umT5's only notion of
    /// order is its relative position bias, started at small random values, and it never
    /// learnt one), so swapping the object's and the background's colours changed almost
    /// nothing of what the transformer sees. With positional heads the noun carries its colour.
    #[test]
    fn the_text_encoder_binds_colours_to_nouns_from_the_start() {
        let (a_ids, a) = encode_at_start("A yellow block falls, a blue background");
        let (b_ids, b) = encode_at_start("A blue block falls, a yellow background");
        assert_eq!(a_ids.len(), b_ids.len());
        // Same words, different order: "block" is token 2 in both.
        assert_eq!(a_ids[2], b_ids[2]);
        let distance = |x: &[f32], y: &[f32]| -> f32 {
            let d: f32 = x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum();
            let n: f32 = x.iter().map(|p| p * p).sum();
            (d / n).sqrt()
        };
        let block = distance(&a[2], &b[2]);
        assert!(
            block > 0.3,
            "\"block\" after yellow vs after blue differ by only {block:.3} (relative)"
        );
        let table = positional_bias(&[32, 4]);
        // Head 0 looks at the previous token (key - query = -1: bucket 1), head 1 at the next
        // (bucket 16 + 1).
        assert_eq!(table[4], POSITIONAL_BIAS);
        assert_eq!(table[17 * 4 + 1], POSITIONAL_BIAS);
    }

    #[test]
    fn cross_attention_norms_start_at_the_gain() {
        assert_eq!(
            start_for("blocks.0.attn2.norm_k.weight", &[128], 16),
            Start::Const(CROSS_ATTENTION_GAIN)
        );
        assert_eq!(
            start_for("blocks.0.attn1.norm_k.weight", &[128], 16),
            Start::Const(1.0)
        );
    }

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
