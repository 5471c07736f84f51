//! Writes a trained model in the diffusers folder layout of `Wan-AI/Wan2.2-TI2V-5B-Diffusers`,
//! so that `t2v_models::checkpoint::ModelFiles::resolve` and `load_models` load it unchanged.

use crate::configs::Preset;
use crate::train::{io_error, save_tensors, Result};
use candle_core::{DType, Tensor};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use t2v_demo::{SettingsFile, SETTINGS_FILE};
use t2v_models::vae::VaeConfig;

/// The dtype the weights are stored in: half the size of f32, and exact enough (the evaluation
/// runs on the stored weights).
pub const STORED_DTYPE: DType = DType::F16;

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("json") + "\n";
    std::fs::write(path, text).map_err(io_error(path))
}

fn stored(tensors: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Tensor>> {
    tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(STORED_DTYPE)?)))
        .collect()
}

pub fn write_checkpoint(
    out: &Path,
    preset: &Preset,
    vae_cfg: &VaeConfig,
    vae: &BTreeMap<String, Tensor>,
    transformer: &BTreeMap<String, Tensor>,
    text_encoder: &BTreeMap<String, Tensor>,
) -> Result<()> {
    for sub in [
        "transformer",
        "vae",
        "text_encoder",
        "tokenizer",
        "scheduler",
    ] {
        let dir = out.join(sub);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    }
    let sizes = &preset.sizes;
    let dit = sizes.transformer();
    let text = sizes.text_encoder();
    let settings = &preset.settings;

    write_json(
        &out.join("model_index.json"),
        &json!({
            "_class_name": "WanPipeline",
            "_diffusers_version": "0.35.1",
            "boundary_ratio": null,
            "expand_timesteps": true,
            "scheduler": ["diffusers", "UniPCMultistepScheduler"],
            "text_encoder": ["transformers", "UMT5EncoderModel"],
            "tokenizer": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "WanTransformer3DModel"],
            "transformer_2": [null, null],
            "vae": ["diffusers", "AutoencoderKLWan"]
        }),
    )?;
    write_json(
        &out.join("transformer/config.json"),
        &json!({
            "_class_name": "WanTransformer3DModel",
            "_diffusers_version": "0.35.1",
            "patch_size": dit.patch_size,
            "num_attention_heads": dit.num_attention_heads,
            "attention_head_dim": dit.attention_head_dim,
            "in_channels": dit.in_channels,
            "out_channels": dit.out_channels(),
            "text_dim": dit.text_dim,
            "freq_dim": dit.freq_dim,
            "ffn_dim": dit.ffn_dim,
            "num_layers": dit.num_layers,
            "cross_attn_norm": dit.cross_attn_norm,
            "qk_norm": "rms_norm_across_heads",
            "eps": dit.eps,
            "image_dim": null,
            "added_kv_proj_dim": null,
            "rope_max_seq_len": dit.rope_max_seq_len,
            "pos_embed_seq_len": null
        }),
    )?;
    save_tensors(
        &stored(transformer)?,
        &out.join("transformer/diffusion_pytorch_model.safetensors"),
    )?;

    write_json(
        &out.join("vae/config.json"),
        &json!({
            "_class_name": "AutoencoderKLWan",
            "_diffusers_version": "0.35.1",
            "base_dim": vae_cfg.base_dim,
            "decoder_base_dim": vae_cfg.decoder_base_dim(),
            "z_dim": vae_cfg.z_dim,
            "dim_mult": vae_cfg.dim_mult,
            "num_res_blocks": vae_cfg.num_res_blocks,
            "attn_scales": [],
            "temperal_downsample": vae_cfg.temperal_downsample,
            "dropout": 0.0,
            "is_residual": true,
            "in_channels": vae_cfg.in_channels,
            "out_channels": vae_cfg.out_channels,
            "patch_size": vae_cfg.patch_size,
            "scale_factor_spatial": vae_cfg.scale_factor_spatial,
            "scale_factor_temporal": vae_cfg.scale_factor_temporal,
            "clip_output": false,
            "latents_mean": vae_cfg.latents_mean.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>(),
            "latents_std": vae_cfg.latents_std.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>()
        }),
    )?;
    save_tensors(
        &stored(vae)?,
        &out.join("vae/diffusion_pytorch_model.safetensors"),
    )?;

    write_json(
        &out.join("text_encoder/config.json"),
        &json!({
            "architectures": ["UMT5EncoderModel"],
            "model_type": "umt5",
            "vocab_size": text.vocab_size,
            "d_model": text.d_model,
            "d_kv": text.d_kv,
            "d_ff": text.d_ff,
            "num_layers": text.num_layers,
            "num_heads": text.num_heads,
            "relative_attention_num_buckets": text.relative_attention_num_buckets,
            "relative_attention_max_distance": text.relative_attention_max_distance,
            "layer_norm_epsilon": text.layer_norm_epsilon,
            "feed_forward_proj": text.feed_forward_proj,
            "dense_act_fn": "gelu_new",
            "is_gated_act": true,
            "tie_word_embeddings": false,
            "pad_token_id": crate::vocab::PAD_ID,
            "eos_token_id": crate::vocab::EOS_ID,
            "decoder_start_token_id": crate::vocab::PAD_ID,
            "torch_dtype": "float16"
        }),
    )?;
    save_tensors(
        &stored(text_encoder)?,
        &out.join("text_encoder/model.safetensors"),
    )?;

    crate::vocab::save_tokenizer(&out.join("tokenizer/tokenizer.json"))
        .map_err(crate::train::TrainError::Other)?;
    write_json(
        &out.join("tokenizer/tokenizer_config.json"),
        &json!({
            "tokenizer_class": "T5Tokenizer",
            "model_max_length": t2v_models::text::MAX_SEQUENCE_LENGTH,
            "pad_token": "<pad>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "extra_ids": 0
        }),
    )?;
    write_json(
        &out.join("scheduler/scheduler_config.json"),
        &json!({
            "_class_name": "UniPCMultistepScheduler",
            "_diffusers_version": "0.35.1",
            "num_train_timesteps": t2v_models::sampling::NUM_TRAIN_TIMESTEPS,
            "prediction_type": "flow_prediction",
            "use_flow_sigmas": true,
            "flow_shift": settings.shift,
            "solver_order": 2,
            "solver_type": "bh2",
            "predict_x0": true,
            "lower_order_final": true,
            "final_sigmas_type": "zero"
        }),
    )?;
    write_settings(out, settings)
}

/// Writes `demo.json`: the recommended settings and what the model draws.
pub fn write_settings(out: &Path, settings: &t2v_demo::DemoSettings) -> Result<()> {
    let file = SettingsFile {
        settings: settings.clone(),
        capabilities: crate::world::capabilities(),
    };
    // Serialised from the struct (not a `Value`) to keep its field order.
    let path = out.join(SETTINGS_FILE);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&file).expect("settings json") + "\n",
    )
    .map_err(io_error(&path))
}
