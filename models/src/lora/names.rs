//! What each tensor of a LoRA file is, decided from its name alone: which part of a low-rank
//! pair or delta it holds, and which tensor of which component it changes, named canonically
//! (the names the layers use, as [`crate::checkpoint::Layout::canonical`] gives them).
//!
//! The namings users bring (diffusers' `lora_conversion_utils.py` converts the same ones):
//! - diffusers / PEFT: `transformer.blocks.0.attn1.to_q.lora_A.weight` / `lora_B`, and
//!   `text_encoder.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight`; PEFT's own save adds
//!   `base_model.model.` and may name the adapter (`lora_A.default.weight`).
//! - the original Wan repository and ComfyUI: `diffusion_model.blocks.0.self_attn.q.lora_down.weight`
//!   / `lora_up`, a scalar `alpha` per module, and full deltas `.diff` (weights) / `.diff_b`
//!   (biases).
//! - kohya / musubi-tuner: `lora_unet_blocks_0_self_attn_q.lora_down.weight`, `.alpha`, and
//!   `lora_te_encoder_block_0_layer_0_SelfAttention_q` for the text encoder.

use crate::checkpoint::layout::transformer_from_original;
use crate::checkpoint::Component;

/// Which part of a module's change a tensor holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// `A` (`lora_A` / `lora_down`): `[rank, in]`.
    Down,
    /// `B` (`lora_B` / `lora_up`): `[out, rank]`.
    Up,
    /// The scalar `alpha`: the pair is scaled by `alpha / rank`.
    Alpha,
    /// A full delta of the module's weight (`.diff`).
    WeightDiff,
    /// A full delta of the module's bias (`.diff_b`, or diffusers' `lora_B.bias`).
    BiasDiff,
}

/// A LoRA tensor, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoraName {
    pub component: Component,
    /// The canonical module, e.g. `blocks.0.attn1.to_q` (the weight is `{module}.weight`).
    pub module: String,
    pub part: Part,
}

/// The suffixes that say which part a tensor is, longest first.
const PARTS: &[(&str, Part)] = &[
    (".lora_A.default.weight", Part::Down),
    (".lora_B.default.weight", Part::Up),
    (".lora_B.default.bias", Part::BiasDiff),
    (".lora_A.weight", Part::Down),
    (".lora_B.weight", Part::Up),
    (".lora_B.bias", Part::BiasDiff),
    (".lora_down.weight", Part::Down),
    (".lora_up.weight", Part::Up),
    (".alpha", Part::Alpha),
    (".diff_b", Part::BiasDiff),
    (".diff", Part::WeightDiff),
];

#[derive(Clone, Copy)]
enum Naming {
    /// Dotted names, original Wan or diffusers (the original mapping is tried first).
    Dotted,
    /// kohya's underscored names.
    Underscored,
}

/// Prefixes that say which component and naming a module path is in; a name with none of them
/// is a transformer module.
const PREFIXES: &[(&str, Component, Naming)] = &[
    (
        "base_model.model.transformer.",
        Component::Transformer,
        Naming::Dotted,
    ),
    ("base_model.model.", Component::Transformer, Naming::Dotted),
    (
        "model.diffusion_model.",
        Component::Transformer,
        Naming::Dotted,
    ),
    ("diffusion_model.", Component::Transformer, Naming::Dotted),
    ("transformer.", Component::Transformer, Naming::Dotted),
    ("lora_unet_", Component::Transformer, Naming::Underscored),
    ("text_encoder.", Component::TextEncoder, Naming::Dotted),
    ("lora_te1_", Component::TextEncoder, Naming::Underscored),
    ("lora_te_", Component::TextEncoder, Naming::Underscored),
];

/// Words with an underscore of their own in module names: kohya's names keep them whole.
const UNDERSCORED_WORDS: &[&str] = &[
    // Original Wan names.
    "self_attn",
    "cross_attn",
    "time_embedding",
    "text_embedding",
    "time_projection",
    "patch_embedding",
    "norm_q",
    "norm_k",
    // diffusers names.
    "condition_embedder",
    "time_embedder",
    "text_embedder",
    "time_proj",
    "linear_1",
    "linear_2",
    "to_q",
    "to_k",
    "to_v",
    "to_out",
    "proj_out",
    "scale_shift_table",
    // transformers' umT5 names.
    "relative_attention_bias",
    "final_layer_norm",
    "embed_tokens",
    "layer_norm",
    "wi_0",
    "wi_1",
];

/// `blocks_0_self_attn_q` -> `blocks.0.self_attn.q`.
fn dotted(underscored: &str) -> String {
    // Longest words first, so that `time_proj` does not split `time_projection`.
    let mut words: Vec<&str> = UNDERSCORED_WORDS.to_vec();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    const KEEP: char = '\u{1}';
    let mut s = underscored.to_string();
    for w in words {
        s = s.replace(w, &w.replace('_', &KEEP.to_string()));
    }
    s.replace('_', ".").replace(KEEP, "_")
}

/// A transformer module in either dotted naming -> its canonical name.
fn transformer_module(module: &str) -> String {
    // The original mapping works on tensor names; `modulation` is a tensor of its own.
    if let Some(m) = transformer_from_original(module).filter(|m| m.ends_with("scale_shift_table"))
    {
        return m;
    }
    transformer_from_original(&format!("{module}.weight"))
        .and_then(|m| m.strip_suffix(".weight").map(str::to_string))
        .unwrap_or_else(|| module.to_string())
}

/// Understands one tensor name of a LoRA file, or `None` when it is in no known naming.
pub fn parse(name: &str) -> Option<LoraName> {
    let (stem, part) = PARTS
        .iter()
        .find_map(|(suffix, part)| name.strip_suffix(suffix).map(|s| (s, *part)))?;
    let (rest, component, naming) = PREFIXES
        .iter()
        .find_map(|(p, c, n)| stem.strip_prefix(p).map(|r| (r, *c, *n)))
        .unwrap_or((stem, Component::Transformer, Naming::Dotted));
    if rest.is_empty() {
        return None;
    }
    let path = match naming {
        Naming::Dotted => rest.to_string(),
        Naming::Underscored => dotted(rest),
    };
    let module = match component {
        Component::Transformer => transformer_module(&path),
        _ => path,
    };
    Some(LoraName {
        component,
        module,
        part,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str) -> (Component, String, Part) {
        let n = parse(name).unwrap_or_else(|| panic!("{name} not understood"));
        (n.component, n.module, n.part)
    }

    #[test]
    fn every_naming_reaches_the_same_canonical_module() {
        use Component::*;
        let q = "blocks.0.attn1.to_q".to_string();
        for name in [
            "transformer.blocks.0.attn1.to_q.lora_A.weight",
            "base_model.model.blocks.0.attn1.to_q.lora_A.default.weight",
            "blocks.0.attn1.to_q.lora_A.weight",
            "diffusion_model.blocks.0.self_attn.q.lora_down.weight",
            "model.diffusion_model.blocks.0.self_attn.q.lora_down.weight",
            "lora_unet_blocks_0_self_attn_q.lora_down.weight",
            "lora_unet_blocks_0_attn1_to_q.lora_down.weight",
        ] {
            assert_eq!(module(name), (Transformer, q.clone(), Part::Down), "{name}");
        }
        let cases = [
            (
                "lora_unet_blocks_11_cross_attn_o.lora_up.weight",
                "blocks.11.attn2.to_out.0",
                Part::Up,
            ),
            (
                "lora_unet_blocks_3_ffn_0.alpha",
                "blocks.3.ffn.net.0.proj",
                Part::Alpha,
            ),
            (
                "diffusion_model.blocks.2.ffn.2.diff_b",
                "blocks.2.ffn.net.2",
                Part::BiasDiff,
            ),
            (
                "diffusion_model.head.head.lora_up.weight",
                "proj_out",
                Part::Up,
            ),
            (
                "diffusion_model.time_projection.1.diff",
                "condition_embedder.time_proj",
                Part::WeightDiff,
            ),
            (
                "lora_unet_text_embedding_2.lora_down.weight",
                "condition_embedder.text_embedder.linear_2",
                Part::Down,
            ),
            (
                "diffusion_model.blocks.1.modulation.diff",
                "blocks.1.scale_shift_table",
                Part::WeightDiff,
            ),
            (
                "diffusion_model.blocks.1.norm3.diff",
                "blocks.1.norm2",
                Part::WeightDiff,
            ),
            (
                "transformer.blocks.0.attn1.to_out.0.lora_B.bias",
                "blocks.0.attn1.to_out.0",
                Part::BiasDiff,
            ),
        ];
        for (name, m, part) in cases {
            assert_eq!(module(name), (Transformer, m.to_string(), part), "{name}");
        }
        let te = "encoder.block.1.layer.1.DenseReluDense.wi_0".to_string();
        for name in [
            "text_encoder.encoder.block.1.layer.1.DenseReluDense.wi_0.lora_A.weight",
            "lora_te_encoder_block_1_layer_1_DenseReluDense_wi_0.lora_down.weight",
            "lora_te1_encoder_block_1_layer_1_DenseReluDense_wi_0.lora_down.weight",
        ] {
            assert_eq!(
                module(name),
                (TextEncoder, te.clone(), Part::Down),
                "{name}"
            );
        }
    }

    #[test]
    fn names_in_no_known_naming_are_not_understood() {
        for name in [
            "blocks.0.attn1.to_q.weight",
            "lora_unet_.alpha",
            "transformer..lora_A.weight",
            "something",
            "",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }
}
