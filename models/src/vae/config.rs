use serde::Deserialize;

/// The VAE's hyper-parameters, with the field names (and defaults) of diffusers'
/// `vae/config.json` (`AutoencoderKLWan`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VaeConfig {
    #[serde(default = "default_base_dim")]
    pub base_dim: usize,
    /// Channel base of the decoder; `base_dim` when absent.
    #[serde(default)]
    pub decoder_base_dim: Option<usize>,
    #[serde(default = "default_z_dim")]
    pub z_dim: usize,
    #[serde(default = "default_dim_mult")]
    pub dim_mult: Vec<usize>,
    #[serde(default = "default_num_res_blocks")]
    pub num_res_blocks: usize,
    /// Only used by the Wan2.1 (non-residual) layout, which this port does not implement.
    #[serde(default)]
    pub attn_scales: Vec<f64>,
    /// Spelling as in diffusers.
    #[serde(default = "default_temperal_downsample")]
    pub temperal_downsample: Vec<bool>,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub is_residual: bool,
    #[serde(default = "default_channels")]
    pub in_channels: usize,
    #[serde(default = "default_channels")]
    pub out_channels: usize,
    #[serde(default)]
    pub patch_size: Option<usize>,
    #[serde(default = "default_scale_factor_spatial")]
    pub scale_factor_spatial: usize,
    #[serde(default = "default_scale_factor_temporal")]
    pub scale_factor_temporal: usize,
    #[serde(default = "default_latents_mean")]
    pub latents_mean: Vec<f64>,
    #[serde(default = "default_latents_std")]
    pub latents_std: Vec<f64>,
}

impl VaeConfig {
    /// The VAE of Wan2.2 TI2V-5B (`Wan-AI/Wan2.2-TI2V-5B-Diffusers`, `vae/config.json`).
    pub fn wan22_ti2v_5b() -> Self {
        Self {
            base_dim: 160,
            decoder_base_dim: Some(256),
            z_dim: 48,
            dim_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            attn_scales: vec![],
            temperal_downsample: vec![false, true, true],
            dropout: 0.0,
            is_residual: true,
            in_channels: 12,
            out_channels: 12,
            patch_size: Some(2),
            scale_factor_spatial: 16,
            scale_factor_temporal: 4,
            latents_mean: WAN22_LATENTS_MEAN.to_vec(),
            latents_std: WAN22_LATENTS_STD.to_vec(),
        }
    }

    pub fn decoder_base_dim(&self) -> usize {
        self.decoder_base_dim.unwrap_or(self.base_dim)
    }

    pub fn patch_size(&self) -> usize {
        self.patch_size.unwrap_or(1)
    }

    /// Temporal up-sampling per decoder stage, the mirror image of `temperal_downsample`.
    pub fn temperal_upsample(&self) -> Vec<bool> {
        self.temperal_downsample.iter().rev().copied().collect()
    }

    /// Checks what the layers rely on, so that a wrong config fails at load with a message
    /// instead of as a shape error deep inside a forward pass.
    pub fn validate(&self) -> candle_core::Result<()> {
        let fail = |msg: String| Err(candle_core::Error::Msg(format!("VAE config: {msg}")));
        if !self.is_residual {
            return fail("only the Wan2.2 layout (`is_residual: true`) is supported".into());
        }
        if self.dim_mult.is_empty() {
            return fail("`dim_mult` is empty".into());
        }
        let sizes = [
            ("base_dim", self.base_dim),
            ("decoder_base_dim", self.decoder_base_dim.unwrap_or(1)),
            ("z_dim", self.z_dim),
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("patch_size", self.patch_size.unwrap_or(1)),
            ("scale_factor_spatial", self.scale_factor_spatial),
            ("scale_factor_temporal", self.scale_factor_temporal),
        ];
        let mults = self.dim_mult.iter().map(|&m| ("dim_mult", m));
        if let Some((name, _)) = sizes.into_iter().chain(mults).find(|(_, v)| *v == 0) {
            // A zero width divides by zero in the channel shortcuts.
            return fail(format!("`{name}` is 0"));
        }
        if self.temperal_downsample.len() + 1 < self.dim_mult.len() {
            return fail(format!(
                "`temperal_downsample` has {} entries, {} stages need {}",
                self.temperal_downsample.len(),
                self.dim_mult.len(),
                self.dim_mult.len() - 1
            ));
        }
        if self.latents_mean.len() != self.z_dim || self.latents_std.len() != self.z_dim {
            return fail(format!(
                "`latents_mean`/`latents_std` have {}/{} values, `z_dim` is {}",
                self.latents_mean.len(),
                self.latents_std.len(),
                self.z_dim
            ));
        }
        Ok(())
    }
}

fn default_base_dim() -> usize {
    96
}
fn default_z_dim() -> usize {
    16
}
fn default_dim_mult() -> Vec<usize> {
    vec![1, 2, 4, 4]
}
fn default_num_res_blocks() -> usize {
    2
}
fn default_temperal_downsample() -> Vec<bool> {
    vec![false, true, true]
}
fn default_channels() -> usize {
    3
}
fn default_scale_factor_spatial() -> usize {
    8
}
fn default_scale_factor_temporal() -> usize {
    4
}
// diffusers' defaults are the Wan2.1 VAE's statistics.
fn default_latents_mean() -> Vec<f64> {
    vec![
        -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715,
        0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
    ]
}
fn default_latents_std() -> Vec<f64> {
    vec![
        2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652,
        1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
    ]
}

pub const WAN22_LATENTS_MEAN: [f64; 48] = [
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813,
    0.0891, 0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108,
    -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313,
    -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944,
    0.3573, -0.0548, -0.1681, -0.0667,
];

pub const WAN22_LATENTS_STD: [f64; 48] = [
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
];
