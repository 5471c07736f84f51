//! Which component a set of tensors is, in which naming layout, and how its names map onto the
//! canonical names the layers use (diffusers names for the transformer and VAE, transformers
//! names for umT5). Decided from tensor names alone, never from config files.

use std::collections::BTreeMap;

use crate::weights::TensorInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Transformer,
    Vae,
    TextEncoder,
}

impl Component {
    pub fn label(self) -> &'static str {
        match self {
            Component::Transformer => "transformer",
            Component::Vae => "VAE",
            Component::TextEncoder => "text encoder (umT5)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// diffusers / transformers names.
    Diffusers,
    /// The original Wan repository's names (also used by ComfyUI and GGUF files).
    Original,
    /// llama.cpp's names (`enc.blk.0.attn_q.weight`): umT5 encoders in GGUF files
    /// (city96's `umt5-xxl-encoder-gguf`).
    LlamaCpp,
}

/// A detected component layout: its naming and the prefix every name carries
/// (e.g. ComfyUI's `model.diffusion_model.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub component: Component,
    pub naming: Naming,
    pub prefix: String,
}

/// Names that identify each layout; the prefix is whatever precedes the anchor.
const ANCHORS: &[(Component, Naming, &str)] = &[
    (
        Component::Transformer,
        Naming::Diffusers,
        "condition_embedder.time_proj.weight",
    ),
    (
        Component::Transformer,
        Naming::Original,
        "time_projection.1.weight",
    ),
    (Component::Vae, Naming::Diffusers, "decoder.conv_in.weight"),
    (Component::Vae, Naming::Original, "decoder.conv1.weight"),
    (Component::Vae, Naming::Diffusers, "encoder.conv_in.weight"),
    (Component::Vae, Naming::Original, "encoder.conv1.weight"),
    (
        Component::TextEncoder,
        Naming::Diffusers,
        "encoder.final_layer_norm.weight",
    ),
    (
        Component::TextEncoder,
        Naming::Diffusers,
        "encoder.block.0.layer.0.SelfAttention.q.weight",
    ),
    (
        Component::TextEncoder,
        Naming::Original,
        "blocks.0.attn.q.weight",
    ),
    (
        Component::TextEncoder,
        Naming::Original,
        "token_embedding.weight",
    ),
    (
        Component::TextEncoder,
        Naming::LlamaCpp,
        "enc.output_norm.weight",
    ),
    (
        Component::TextEncoder,
        Naming::LlamaCpp,
        "enc.blk.0.attn_q.weight",
    ),
];

/// Names that mark a shard of a component without the anchor (e.g. a later transformer shard).
const SHARD_MARKERS: &[(Component, Naming, &str)] = &[
    (
        Component::Transformer,
        Naming::Diffusers,
        ".attn1.to_q.weight",
    ),
    (
        Component::Transformer,
        Naming::Original,
        ".self_attn.q.weight",
    ),
    (
        Component::TextEncoder,
        Naming::Diffusers,
        ".layer.0.SelfAttention.q.weight",
    ),
];

pub fn detect(infos: &BTreeMap<String, TensorInfo>) -> Option<Layout> {
    for &(component, naming, anchor) in ANCHORS {
        if let Some(name) = infos
            .keys()
            .find(|k| k.ends_with(anchor) && is_prefix_boundary(k, anchor))
        {
            let prefix = name[..name.len() - anchor.len()].to_string();
            return Some(Layout {
                component,
                naming,
                prefix,
            });
        }
    }
    for &(component, naming, marker) in SHARD_MARKERS {
        if let Some(name) = infos.keys().find(|k| k.ends_with(marker)) {
            // Prefix: everything before `blocks.` / `encoder.block.`.
            let root = match component {
                Component::TextEncoder => "encoder.block.",
                _ => "blocks.",
            };
            let prefix = name
                .find(root)
                .map(|i| name[..i].to_string())
                .unwrap_or_default();
            return Some(Layout {
                component,
                naming,
                prefix,
            });
        }
    }
    None
}

fn is_prefix_boundary(name: &str, anchor: &str) -> bool {
    let start = name.len() - anchor.len();
    start == 0 || name.as_bytes()[start - 1] == b'.'
}

impl Layout {
    /// The canonical name of a stored tensor, or `None` for one outside this layout.
    pub fn canonical(&self, stored: &str) -> Option<String> {
        let name = stored.strip_prefix(self.prefix.as_str())?;
        match (self.component, self.naming) {
            (_, Naming::Diffusers) => Some(name.to_string()),
            (Component::Transformer, Naming::Original) => transformer_from_original(name),
            (Component::Vae, Naming::Original) => vae_from_original(name),
            (Component::TextEncoder, Naming::Original) => umt5_from_original(name),
            (Component::TextEncoder, Naming::LlamaCpp) => umt5_from_llama_cpp(name),
            (_, Naming::LlamaCpp) => None,
        }
    }
}

pub(crate) fn transformer_from_original(name: &str) -> Option<String> {
    const TOP: &[(&str, &str)] = &[
        (
            "time_embedding.0.",
            "condition_embedder.time_embedder.linear_1.",
        ),
        (
            "time_embedding.2.",
            "condition_embedder.time_embedder.linear_2.",
        ),
        ("time_projection.1.", "condition_embedder.time_proj."),
        (
            "text_embedding.0.",
            "condition_embedder.text_embedder.linear_1.",
        ),
        (
            "text_embedding.2.",
            "condition_embedder.text_embedder.linear_2.",
        ),
        ("head.head.", "proj_out."),
        ("patch_embedding.", "patch_embedding."),
    ];
    if name == "head.modulation" {
        return Some("scale_shift_table".into());
    }
    for (from, to) in TOP {
        if let Some(rest) = name.strip_prefix(from) {
            return Some(format!("{to}{rest}"));
        }
    }
    let rest = name.strip_prefix("blocks.")?;
    let (index, rest) = rest.split_once('.')?;
    let mapped = if rest == "modulation" {
        "scale_shift_table".to_string()
    } else if let Some(r) = rest.strip_prefix("norm3.") {
        format!("norm2.{r}")
    } else if let Some(r) = rest.strip_prefix("ffn.0.") {
        format!("ffn.net.0.proj.{r}")
    } else if let Some(r) = rest.strip_prefix("ffn.2.") {
        format!("ffn.net.2.{r}")
    } else {
        let (attn, r) = rest.split_once('.')?;
        let attn = match attn {
            "self_attn" => "attn1",
            "cross_attn" => "attn2",
            _ => return None,
        };
        let (proj, r) = r.split_once('.')?;
        let proj = match proj {
            "q" => "to_q",
            "k" => "to_k",
            "v" => "to_v",
            "o" => "to_out.0",
            "norm_q" => "norm_q",
            "norm_k" => "norm_k",
            _ => return None,
        };
        format!("{attn}.{proj}.{r}")
    };
    Some(format!("blocks.{index}.{mapped}"))
}

/// Residual block parts: `residual.{0,2,3,6}` and `shortcut`.
fn vae_resnet(rest: &str) -> Option<String> {
    const PARTS: &[(&str, &str)] = &[
        ("residual.0.", "norm1."),
        ("residual.2.", "conv1."),
        ("residual.3.", "norm2."),
        ("residual.6.", "conv2."),
        ("shortcut.", "conv_shortcut."),
    ];
    PARTS
        .iter()
        .find_map(|(from, to)| rest.strip_prefix(from).map(|r| format!("{to}{r}")))
}

fn vae_middle(rest: &str) -> Option<String> {
    let (index, rest) = rest.split_once('.')?;
    match index {
        "0" => Some(format!("mid_block.resnets.0.{}", vae_resnet(rest)?)),
        "1" => Some(format!("mid_block.attentions.0.{rest}")),
        "2" => Some(format!("mid_block.resnets.1.{}", vae_resnet(rest)?)),
        _ => None,
    }
}

fn vae_from_original(name: &str) -> Option<String> {
    match name.split_once('.')? {
        ("conv1", r) => return Some(format!("quant_conv.{r}")),
        ("conv2", r) => return Some(format!("post_quant_conv.{r}")),
        _ => {}
    }
    let (side, rest) = name.split_once('.')?;
    if side != "encoder" && side != "decoder" {
        return None;
    }
    let (stages, blocks, sampler) = if side == "encoder" {
        ("downsamples", "down_blocks", "downsampler")
    } else {
        ("upsamples", "up_blocks", "upsampler")
    };
    let mapped = if let Some(r) = rest.strip_prefix("conv1.") {
        format!("conv_in.{r}")
    } else if let Some(r) = rest.strip_prefix("head.0.") {
        format!("norm_out.{r}")
    } else if let Some(r) = rest.strip_prefix("head.2.") {
        format!("conv_out.{r}")
    } else if let Some(r) = rest.strip_prefix("middle.") {
        vae_middle(r)?
    } else {
        // `{stages}.i.{stages}.j.<part>`: resnets first, then the resampler.
        let r = rest.strip_prefix(stages)?.strip_prefix('.')?;
        let (i, r) = r.split_once('.')?;
        let r = r.strip_prefix(stages)?.strip_prefix('.')?;
        let (j, part) = r.split_once('.')?;
        if part.starts_with("resample.") || part.starts_with("time_conv.") {
            format!("{blocks}.{i}.{sampler}.{part}")
        } else {
            format!("{blocks}.{i}.resnets.{j}.{}", vae_resnet(part)?)
        }
    };
    Some(format!("{side}.{mapped}"))
}

/// umT5 names in another naming: its token embedding, final norm and block root, and how the
/// parts of a block are named (`(theirs, transformers')`).
struct Umt5Names {
    embedding: &'static str,
    final_norm: &'static str,
    block: &'static str,
    parts: &'static [(&'static str, &'static str)],
}

impl Umt5Names {
    fn canonical(&self, name: &str) -> Option<String> {
        if let Some(r) = name.strip_prefix(self.embedding) {
            return Some(format!("shared.{r}"));
        }
        if let Some(r) = name.strip_prefix(self.final_norm) {
            return Some(format!("encoder.final_layer_norm.{r}"));
        }
        let rest = name.strip_prefix(self.block)?;
        let (i, rest) = rest.split_once('.')?;
        let mapped = self
            .parts
            .iter()
            .find_map(|(from, to)| rest.strip_prefix(from).map(|r| format!("{to}{r}")))?;
        Some(format!("encoder.block.{i}.{mapped}"))
    }
}

fn umt5_from_original(name: &str) -> Option<String> {
    Umt5Names {
        embedding: "token_embedding.",
        final_norm: "norm.",
        block: "blocks.",
        parts: &[
            ("norm1.", "layer.0.layer_norm."),
            ("attn.q.", "layer.0.SelfAttention.q."),
            ("attn.k.", "layer.0.SelfAttention.k."),
            ("attn.v.", "layer.0.SelfAttention.v."),
            ("attn.o.", "layer.0.SelfAttention.o."),
            (
                "pos_embedding.embedding.",
                "layer.0.SelfAttention.relative_attention_bias.",
            ),
            ("norm2.", "layer.1.layer_norm."),
            ("ffn.gate.0.", "layer.1.DenseReluDense.wi_0."),
            ("ffn.fc1.", "layer.1.DenseReluDense.wi_1."),
            ("ffn.fc2.", "layer.1.DenseReluDense.wo."),
        ],
    }
    .canonical(name)
}

/// llama.cpp's T5 encoder names (`convert_hf_to_gguf.py`'s tensor map).
fn umt5_from_llama_cpp(name: &str) -> Option<String> {
    Umt5Names {
        embedding: "token_embd.",
        final_norm: "enc.output_norm.",
        block: "enc.blk.",
        parts: &[
            ("attn_norm.", "layer.0.layer_norm."),
            ("attn_q.", "layer.0.SelfAttention.q."),
            ("attn_k.", "layer.0.SelfAttention.k."),
            ("attn_v.", "layer.0.SelfAttention.v."),
            ("attn_o.", "layer.0.SelfAttention.o."),
            (
                "attn_rel_b.",
                "layer.0.SelfAttention.relative_attention_bias.",
            ),
            ("ffn_norm.", "layer.1.layer_norm."),
            ("ffn_gate.", "layer.1.DenseReluDense.wi_0."),
            ("ffn_up.", "layer.1.DenseReluDense.wi_1."),
            ("ffn_down.", "layer.1.DenseReluDense.wo."),
        ],
    }
    .canonical(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_names(file: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests")
            .join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("manifest fixture {}: {e}", path.display()));
        text.lines()
            .filter_map(|l| l.split_once(' ').map(|(n, _)| n.to_string()))
            .collect()
    }

    /// The canonical names of `names` in `naming`, sorted; every one must map.
    fn mapped_sorted(component: Component, naming: Naming, names: &[String]) -> Vec<String> {
        let layout = Layout {
            component,
            naming,
            prefix: String::new(),
        };
        let mut mapped: Vec<String> = names
            .iter()
            .map(|n| {
                layout
                    .canonical(n)
                    .unwrap_or_else(|| panic!("unmapped {n}"))
            })
            .collect();
        mapped.sort();
        mapped
    }

    /// Every original name maps onto exactly the set of diffusers names.
    fn check_pair(original: &str, diffusers: &str, component: Component) {
        let orig = manifest_names(original);
        let diff = manifest_names(diffusers);
        assert!(
            !orig.is_empty() && !diff.is_empty(),
            "empty manifest fixture"
        );
        let mapped = mapped_sorted(component, Naming::Original, &orig);
        let mut diff = diff;
        diff.sort();
        assert_eq!(mapped, diff);
    }

    #[test]
    fn transformer_original_names_map_onto_diffusers_names() {
        check_pair(
            "dit-original.txt",
            "dit-diffusers.txt",
            Component::Transformer,
        );
    }

    #[test]
    fn vae_original_names_map_onto_diffusers_names() {
        check_pair("vae-original.txt", "vae-diffusers.txt", Component::Vae);
    }

    #[test]
    fn comfy_prefix_is_detected_and_stripped() {
        let mut infos = BTreeMap::new();
        let info = TensorInfo {
            shape: vec![1],
            dtype: candle_core::DType::F16,
        };
        infos.insert(
            "model.diffusion_model.time_projection.1.weight".to_string(),
            info.clone(),
        );
        infos.insert(
            "model.diffusion_model.blocks.0.norm3.bias".to_string(),
            info,
        );
        let layout = detect(&infos).unwrap();
        assert_eq!(layout.component, Component::Transformer);
        assert_eq!(layout.naming, Naming::Original);
        assert_eq!(layout.prefix, "model.diffusion_model.");
        assert_eq!(
            layout
                .canonical("model.diffusion_model.blocks.0.norm3.bias")
                .as_deref(),
            Some("blocks.0.norm2.bias")
        );
    }

    #[test]
    fn umt5_llama_cpp_names_map_onto_transformers_names() {
        let mapped = mapped_sorted(
            Component::TextEncoder,
            Naming::LlamaCpp,
            &manifest_names("umt5-gguf-q8_0.txt"),
        );
        // transformers saves the tied embedding twice; llama.cpp once, as `token_embd`.
        let mut want: Vec<String> = manifest_names("umt5-transformers.txt")
            .into_iter()
            .filter(|n| n != "encoder.embed_tokens.weight")
            .collect();
        want.sort();
        assert_eq!(mapped, want);
    }

    #[test]
    fn umt5_original_names() {
        let layout = Layout {
            component: Component::TextEncoder,
            naming: Naming::Original,
            prefix: String::new(),
        };
        assert_eq!(
            layout
                .canonical("blocks.3.pos_embedding.embedding.weight")
                .as_deref(),
            Some("encoder.block.3.layer.0.SelfAttention.relative_attention_bias.weight")
        );
        assert_eq!(
            layout.canonical("token_embedding.weight").as_deref(),
            Some("shared.weight")
        );
    }
}
