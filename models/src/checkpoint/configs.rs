//! Hyper-parameters of each component: the real TI2V-5B is recognised by its tensor shapes;
//! any other checkpoint of the architecture takes them from its component config, or, where
//! every number is visible in the shapes, from the shapes themselves.

use crate::dit::DitConfig;
use crate::text::Umt5Config;
use crate::vae::VaeConfig;
use crate::weights::TrackedWeights;
use crate::{Error, Result};
use std::path::Path;

pub const TI2V_5B_PATCH_EMBEDDING: [usize; 5] = [3072, 48, 1, 2, 2];
const TI2V_5B_VAE_DECODER_IN: [usize; 5] = [1024, 48, 3, 3, 3];

fn read_json(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// A width or count of 0 in a config file divides by zero somewhere in the layers.
fn require_positive(path: &Path, fields: &[(&str, usize)]) -> Result<()> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((name, _)) => Err(Error::checkpoint(path, format!("config: `{name}` is 0"))),
        None => Ok(()),
    }
}

fn required_shape<'a>(weights: &'a TrackedWeights, name: &str, what: &str) -> Result<&'a [usize]> {
    weights.shape_of(name).ok_or_else(|| {
        Error::checkpoint(
            weights.source().origin(),
            format!("missing tensor `{name}`: not a Wan2.2 {what}"),
        )
    })
}

fn count_indexed(weights: &TrackedWeights, prefix: &str, suffix: &str) -> usize {
    (0..)
        .take_while(|i| weights.contains(&format!("{prefix}{i}{suffix}")))
        .count()
}

pub fn transformer_config(
    weights: &TrackedWeights,
    config_file: Option<&Path>,
) -> Result<DitConfig> {
    let origin = weights.source().origin().to_path_buf();
    let patch = required_shape(weights, "patch_embedding.weight", "transformer")?.to_vec();
    let layers = count_indexed(weights, "blocks.", ".scale_shift_table");
    let real = DitConfig::wan22_ti2v_5b();
    if patch == TI2V_5B_PATCH_EMBEDDING && layers == real.num_layers {
        return Ok(real);
    }
    match config_file {
        Some(path) => {
            // The original config.json leaves the text width implicit; the shapes tell it.
            let mut value: serde_json::Value =
                serde_json::from_str(&read_json(path)?).map_err(|e| Error::checkpoint(path, e.to_string()))?;
            if let (Some(obj), Some(shape)) =
                (value.as_object_mut(), weights.shape_of("condition_embedder.text_embedder.linear_1.weight"))
            {
                if obj.contains_key("num_heads") && !obj.contains_key("text_dim") {
                    obj.insert("text_dim".into(), shape[1].into());
                }
            }
            let cfg = DitConfig::from_json(&value.to_string())
                .map_err(|e| Error::checkpoint(path, e))?;
            let [pt, ph, pw] = cfg.patch_size;
            require_positive(
                path,
                &[
                    ("patch_size", pt.min(ph).min(pw)),
                    ("num_attention_heads", cfg.num_attention_heads),
                    ("attention_head_dim", cfg.attention_head_dim),
                    ("in_channels", cfg.in_channels),
                    ("out_channels", cfg.out_channels()),
                    ("text_dim", cfg.text_dim),
                    ("freq_dim", cfg.freq_dim),
                    ("ffn_dim", cfg.ffn_dim),
                ],
            )?;
            Ok(cfg)
        }
        None => Err(Error::checkpoint(
            origin,
            format!(
                "not the Wan2.2 TI2V-5B transformer: `patch_embedding.weight` has shape {patch:?} \
                 (expected {TI2V_5B_PATCH_EMBEDDING:?}) and it has {layers} blocks (expected 30). \
                 For another checkpoint of this architecture, put its config.json in the model folder."
            ),
        )),
    }
}

pub fn vae_config(weights: &TrackedWeights, config_file: Option<&Path>) -> Result<VaeConfig> {
    let decoder_in = required_shape(weights, "decoder.conv_in.weight", "VAE")?.to_vec();
    let encoder_in = weights
        .shape_of("encoder.conv_in.weight")
        .map(<[usize]>::to_vec);
    let real_encoder = encoder_in
        .as_deref()
        .is_none_or(|s| s == [160, 12, 3, 3, 3]);
    if decoder_in == TI2V_5B_VAE_DECODER_IN && real_encoder {
        return Ok(VaeConfig::wan22_ti2v_5b());
    }
    if let Some(path) = config_file {
        let text = read_json(path)?;
        return serde_json::from_str(&text)
            .map_err(|e| Error::checkpoint(path, format!("VAE config: {e}")));
    }
    vae_config_from_shapes(weights)
}

/// Every VAE hyper-parameter but the latent statistics is visible in the shapes; the statistics
/// are Wan2.2's, which fixes `z_dim` at 48.
fn vae_config_from_shapes(weights: &TrackedWeights) -> Result<VaeConfig> {
    let origin = weights.source().origin().to_path_buf();
    let shape = |name: &str| required_shape(weights, name, "VAE").map(<[usize]>::to_vec);
    let decoder_in = shape("decoder.conv_in.weight")?;
    let decoder_out = shape("decoder.conv_out.weight")?;
    let z_dim = decoder_in[1];
    let real = VaeConfig::wan22_ti2v_5b();
    if z_dim != real.z_dim {
        return Err(Error::checkpoint(
            origin,
            format!("not a Wan2.2 VAE: `decoder.conv_in.weight` has {z_dim} latent channels, expected 48"),
        ));
    }
    let stages = count_indexed(weights, "decoder.up_blocks.", ".resnets.0.conv1.weight");
    let out_channels = decoder_out[0];
    let decoder_base_dim = decoder_out[1];
    if !weights.contains("encoder.conv_in.weight") {
        return Err(Error::checkpoint(
            origin,
            "this VAE file has no encoder, so its configuration can't be read from its shapes; put its vae/config.json in the model folder",
        ));
    }
    let conv_in = shape("encoder.conv_in.weight")?;
    let (base_dim, in_channels) = (conv_in[0], conv_in[1]);
    let mut dim_mult = Vec::new();
    let mut temperal_downsample = Vec::new();
    for i in 0..stages {
        dim_mult
            .push(shape(&format!("encoder.down_blocks.{i}.resnets.0.conv2.weight"))?[0] / base_dim);
        if i + 1 < stages {
            temperal_downsample.push(weights.contains(&format!(
                "encoder.down_blocks.{i}.downsampler.time_conv.weight"
            )));
        }
    }
    let num_res_blocks =
        count_indexed(weights, "decoder.up_blocks.0.resnets.", ".conv1.weight").saturating_sub(1);
    let patch_size = ((in_channels / 3) as f64).sqrt().round() as usize;
    Ok(VaeConfig {
        base_dim,
        decoder_base_dim: Some(decoder_base_dim),
        z_dim,
        dim_mult,
        num_res_blocks,
        temperal_downsample,
        in_channels,
        out_channels,
        patch_size: Some(patch_size),
        ..real
    })
}

fn embedding_shape(weights: &TrackedWeights) -> Result<Vec<usize>> {
    ["shared.weight", "encoder.embed_tokens.weight"]
        .iter()
        .find_map(|n| weights.shape_of(n))
        .map(<[usize]>::to_vec)
        .ok_or_else(|| {
            Error::checkpoint(
                weights.source().origin(),
                "missing tensor `shared.weight`: not a umT5 encoder",
            )
        })
}

pub fn text_encoder_config(
    weights: &TrackedWeights,
    config_file: Option<&Path>,
) -> Result<Umt5Config> {
    let embedding = embedding_shape(weights)?;
    let layers = count_indexed(weights, "encoder.block.", ".layer.0.SelfAttention.q.weight");
    let real = Umt5Config::umt5_xxl();
    if embedding == [real.vocab_size, real.d_model] && layers == real.num_layers {
        return Ok(real);
    }
    if let Some(path) = config_file {
        let cfg: Umt5Config = serde_json::from_str(&read_json(path)?)
            .map_err(|e| Error::checkpoint(path, format!("umT5 config: {e}")))?;
        require_positive(
            path,
            &[
                ("vocab_size", cfg.vocab_size),
                ("d_model", cfg.d_model),
                ("d_kv", cfg.d_kv),
                ("d_ff", cfg.d_ff),
                ("num_heads", cfg.num_heads),
                (
                    "relative_attention_num_buckets",
                    cfg.relative_attention_num_buckets,
                ),
                (
                    "relative_attention_max_distance",
                    cfg.relative_attention_max_distance,
                ),
            ],
        )?;
        return Ok(cfg);
    }
    // Every umT5 hyper-parameter shows in the shapes: heads in the position-bias table.
    let shape = |name: &str| required_shape(weights, name, "umT5 encoder").map(<[usize]>::to_vec);
    let bias = shape("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")?;
    let q = shape("encoder.block.0.layer.0.SelfAttention.q.weight")?;
    let wi = shape("encoder.block.0.layer.1.DenseReluDense.wi_0.weight")?;
    let (buckets, heads) = (bias[0], bias[1]);
    Ok(Umt5Config {
        vocab_size: embedding[0],
        d_model: embedding[1],
        d_kv: q[0] / heads.max(1),
        d_ff: wi[0],
        num_layers: layers,
        num_heads: heads,
        relative_attention_num_buckets: buckets,
        ..real
    })
}
