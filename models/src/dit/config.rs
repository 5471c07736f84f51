use serde::Deserialize;

/// The transformer's hyper-parameters, with the field names of diffusers'
/// `transformer/config.json` (`WanTransformer3DModel`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DitConfig {
    #[serde(default = "default_patch_size")]
    pub patch_size: [usize; 3],
    pub num_attention_heads: usize,
    pub attention_head_dim: usize,
    pub in_channels: usize,
    #[serde(default)]
    pub out_channels: Option<usize>,
    pub text_dim: usize,
    #[serde(default = "default_freq_dim")]
    pub freq_dim: usize,
    pub ffn_dim: usize,
    pub num_layers: usize,
    #[serde(default = "default_true")]
    pub cross_attn_norm: bool,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_rope_max_seq_len")]
    pub rope_max_seq_len: usize,
}

fn default_patch_size() -> [usize; 3] {
    [1, 2, 2]
}
fn default_freq_dim() -> usize {
    256
}
fn default_true() -> bool {
    true
}
fn default_eps() -> f64 {
    1e-6
}
fn default_rope_max_seq_len() -> usize {
    1024
}

/// The original repository's `config.json` (`WanModel`), which names the same numbers differently.
#[derive(Debug, Clone, Deserialize)]
pub struct OriginalDitConfig {
    pub dim: usize,
    pub ffn_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub in_dim: usize,
    pub out_dim: usize,
    #[serde(default = "default_freq_dim")]
    pub freq_dim: usize,
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default)]
    pub text_dim: Option<usize>,
    #[serde(default)]
    pub patch_size: Option<[usize; 3]>,
}

impl From<OriginalDitConfig> for DitConfig {
    fn from(o: OriginalDitConfig) -> Self {
        DitConfig {
            patch_size: o.patch_size.unwrap_or_else(default_patch_size),
            num_attention_heads: o.num_heads,
            attention_head_dim: o.dim / o.num_heads.max(1),
            in_channels: o.in_dim,
            out_channels: Some(o.out_dim),
            text_dim: o.text_dim.unwrap_or(4096),
            freq_dim: o.freq_dim,
            ffn_dim: o.ffn_dim,
            num_layers: o.num_layers,
            cross_attn_norm: true,
            eps: o.eps,
            rope_max_seq_len: default_rope_max_seq_len(),
        }
    }
}

impl DitConfig {
    /// Wan2.2 TI2V-5B.
    pub fn wan22_ti2v_5b() -> Self {
        DitConfig {
            patch_size: [1, 2, 2],
            num_attention_heads: 24,
            attention_head_dim: 128,
            in_channels: 48,
            out_channels: Some(48),
            text_dim: 4096,
            freq_dim: 256,
            ffn_dim: 14336,
            num_layers: 30,
            cross_attn_norm: true,
            eps: 1e-6,
            rope_max_seq_len: 1024,
        }
    }

    pub fn dim(&self) -> usize {
        self.num_attention_heads * self.attention_head_dim
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels.unwrap_or(self.in_channels)
    }

    pub fn patch_volume(&self) -> usize {
        self.patch_size.iter().product()
    }

    /// Parses either a diffusers `transformer/config.json` or an original `config.json`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if value.get("num_attention_heads").is_some() {
            serde_json::from_value(value).map_err(|e| e.to_string())
        } else if value.get("num_heads").is_some() {
            serde_json::from_value::<OriginalDitConfig>(value)
                .map(Into::into)
                .map_err(|e| e.to_string())
        } else {
            Err(
                "neither a diffusers WanTransformer3DModel config nor an original WanModel config"
                    .into(),
            )
        }
    }
}
