//! Live previews while denoising: the sampler's estimate of the clean latents turned into RGB by
//! a linear projection of the latent channels (one colour per latent cell, plus a bias), then
//! upsampled to the output size. A few multiply-adds per latent cell: nothing next to a
//! transformer step.
//!
//! The projection maps the transformer's (normalised) latent space to RGB in [-1, 1], as the
//! VAE's output is; [`LatentRgb::images`] returns [0, 1]. For Wan2.2's latent space the numbers
//! are ComfyUI's published ones ([`LatentRgb::wan22`]); a model with another latent space (the
//! demo model) carries its own, fitted on its VAE's decoded frames, in `latent_rgb.json` next to
//! its VAE (see [`crate::checkpoint::load_latent_rgb`]).

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

/// The name of the projection's file next to a model's VAE config or weights.
pub const LATENT_RGB_FILE: &str = "latent_rgb.json";

/// RGB from latent channels: `rgb[k] = sum_c latent[c] * factors[c][k] + bias[k]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatentRgb {
    /// One `[r, g, b]` row per latent channel.
    pub factors: Vec<[f32; 3]>,
    pub bias: [f32; 3],
}

/// Wan2.2's latent-to-RGB factors (48 channels) and bias, for the normalised latents the
/// transformer works on: the numbers of ComfyUI's `comfy/latent_formats.py`, class `Wan22`
/// (`latent_rgb_factors`, `latent_rgb_factors_bias`; github.com/Comfy-Org/ComfyUI).
const WAN22_FACTORS: [[f32; 3]; 48] = [
    [0.0119, 0.0103, 0.0046],
    [-0.1062, -0.0504, 0.0165],
    [0.0140, 0.0409, 0.0491],
    [-0.0813, -0.0677, 0.0607],
    [0.0656, 0.0851, 0.0808],
    [0.0264, 0.0463, 0.0912],
    [0.0295, 0.0326, 0.0590],
    [-0.0244, -0.0270, 0.0025],
    [0.0443, -0.0102, 0.0288],
    [-0.0465, -0.0090, -0.0205],
    [0.0359, 0.0236, 0.0082],
    [-0.0776, 0.0854, 0.1048],
    [0.0564, 0.0264, 0.0561],
    [0.0006, 0.0594, 0.0418],
    [-0.0319, -0.0542, -0.0637],
    [-0.0268, 0.0024, 0.0260],
    [0.0539, 0.0265, 0.0358],
    [-0.0359, -0.0312, -0.0287],
    [-0.0285, -0.1032, -0.1237],
    [0.1041, 0.0537, 0.0622],
    [-0.0086, -0.0374, -0.0051],
    [0.0390, 0.0670, 0.2863],
    [0.0069, 0.0144, 0.0082],
    [0.0006, -0.0167, 0.0079],
    [0.0313, -0.0574, -0.0232],
    [-0.1454, -0.0902, -0.0481],
    [0.0714, 0.0827, 0.0447],
    [-0.0304, -0.0574, -0.0196],
    [0.0401, 0.0384, 0.0204],
    [-0.0758, -0.0297, -0.0014],
    [0.0568, 0.1307, 0.1372],
    [-0.0055, -0.0310, -0.0380],
    [0.0239, -0.0305, 0.0325],
    [-0.0663, -0.0673, -0.0140],
    [-0.0416, -0.0047, -0.0023],
    [0.0166, 0.0112, -0.0093],
    [-0.0211, 0.0011, 0.0331],
    [0.1833, 0.1466, 0.2250],
    [-0.0368, 0.0370, 0.0295],
    [-0.3441, -0.3543, -0.2008],
    [-0.0479, -0.0489, -0.0420],
    [-0.0660, -0.0153, 0.0800],
    [-0.0101, 0.0068, 0.0156],
    [-0.0690, -0.0452, -0.0927],
    [-0.0145, 0.0041, 0.0015],
    [0.0421, 0.0451, 0.0373],
    [0.0504, -0.0483, -0.0356],
    [-0.0837, 0.0168, 0.0055],
];
const WAN22_BIAS: [f32; 3] = [0.0317, -0.0878, -0.1388];

impl LatentRgb {
    /// The published projection for Wan2.2's 48-channel latent space.
    pub fn wan22() -> Self {
        LatentRgb {
            factors: WAN22_FACTORS.to_vec(),
            bias: WAN22_BIAS,
        }
    }

    pub fn channels(&self) -> usize {
        self.factors.len()
    }

    /// Reads the JSON form (`{"factors": [[r, g, b], ...], "bias": [r, g, b]}`).
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let rgb: LatentRgb = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if rgb.factors.is_empty() {
            return Err("no factors".into());
        }
        if rgb
            .factors
            .iter()
            .flatten()
            .chain(&rgb.bias)
            .any(|v| !v.is_finite())
        {
            return Err("a factor is not a finite number".into());
        }
        Ok(rgb)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain numbers serialise")
    }

    /// Normalised latents `[1, C, F', h, w]` -> one picture per latent frame, `[F', H, W, 3]`
    /// f32 in [0, 1] on the CPU, bilinearly upsampled to `height` x `width`. Video frame `f`
    /// shows picture [`latent_frame_of`]`(f)`.
    pub fn images(&self, latents: &Tensor, height: usize, width: usize) -> Result<Tensor> {
        let (_, c, f, h, w) = latents.dims5()?;
        if c != self.channels() {
            return Err(Error::InvalidRequest(format!(
                "preview: the latents have {c} channels, the latent-to-RGB projection {}",
                self.channels()
            )));
        }
        let device = latents.device();
        let factors: Vec<f32> = (0..3)
            .flat_map(|k| self.factors.iter().map(move |row| row[k]))
            .collect();
        let factors = Tensor::from_vec(factors, (3, c), device)?;
        let bias = Tensor::from_vec(self.bias.to_vec(), (3, 1), device)?;
        let rgb = factors
            .matmul(&latents.to_dtype(DType::F32)?.reshape((c, f * h * w))?)?
            .broadcast_add(&bias)?
            .reshape((3, f, h, w))?
            .permute((1, 0, 2, 3))?
            .contiguous()?;
        let up = rgb.upsample_bilinear2d(height, width, false)?;
        Ok(((up * 0.5)? + 0.5)?
            .clamp(0f32, 1f32)?
            .permute((0, 2, 3, 1))?
            .to_device(&Device::Cpu)?
            .contiguous()?)
    }
}

/// The latent frame that holds video frame `frame` (the VAE's causal layout: latent frame 0 is
/// video frame 0, each further one the next `temporal` frames).
pub fn latent_frame_of(frame: usize, temporal: usize) -> usize {
    if frame == 0 {
        0
    } else {
        (frame - 1) / temporal.max(1) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_each_latent_cell_and_maps_frames_causally() {
        let rgb = LatentRgb {
            factors: vec![[1.0, 0.0, -0.5], [0.0, 1.0, 0.5]],
            bias: [0.0, -0.5, 0.0],
        };
        // Two latent frames of 1x1: channel values (0.5, 0) then (-1, 1).
        let latents =
            Tensor::from_vec(vec![0.5f32, -1.0, 0.0, 1.0], (1, 2, 2, 1, 1), &Device::Cpu).unwrap();
        let images = rgb.images(&latents, 2, 3).unwrap();
        assert_eq!(images.dims(), &[2, 2, 3, 3]);
        let px = |f: usize| images.get(f).unwrap().get(1).unwrap().get(2).unwrap();
        let first: Vec<f32> = px(0).to_vec1().unwrap();
        // (0.5, -0.5, -0.25) in [-1, 1] -> (0.75, 0.25, 0.375).
        assert_eq!(first, vec![0.75, 0.25, 0.375]);
        let second: Vec<f32> = px(1).to_vec1().unwrap();
        // (-1, 0.5, 1) -> (0, 0.75, 1).
        assert_eq!(second, vec![0.0, 0.75, 1.0]);
        assert_eq!(
            (0..10).map(|f| latent_frame_of(f, 4)).collect::<Vec<_>>(),
            vec![0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
        );
    }

    #[test]
    fn wrong_channel_counts_and_bad_files_are_refused() {
        let latents = Tensor::zeros((1, 16, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let e = LatentRgb::wan22().images(&latents, 32, 32).unwrap_err();
        assert!(e.to_string().contains("16 channels"), "{e}");
        assert_eq!(LatentRgb::wan22().channels(), 48);
        let back = LatentRgb::from_json(&LatentRgb::wan22().to_json()).unwrap();
        assert_eq!(back, LatentRgb::wan22());
        assert!(LatentRgb::from_json(r#"{"factors": [], "bias": [0, 0, 0]}"#).is_err());
        assert!(LatentRgb::from_json(r#"{"factors": [[1, 2]], "bias": [0, 0, 0]}"#).is_err());
    }
}
