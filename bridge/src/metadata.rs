//! The metadata JSON written with every clip (in the cache entry and next to exported frames):
//! all parameters, the model, timings and the format version.

use crate::cache_key::{ClipKey, CACHE_FORMAT_VERSION};
use crate::request::{LoraSpec, Request};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Seconds spent loading model weights for this job (0 when they were already loaded).
    pub load_s: f64,
    pub encode_prompt_s: f64,
    pub encode_image_s: f64,
    pub denoise_s: f64,
    pub decode_s: f64,
    /// Seconds spent upscaling the decoded frames (part of `decode_s`).
    #[serde(default)]
    pub upscale_s: f64,
    pub total_s: f64,
}

/// How the frames were upscaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpscaleInfo {
    /// The choice: `1.5x`, `2x`, `4x`, `720p` or `1080p`.
    pub target: String,
    /// The network's file and its content identity.
    pub upscaler: String,
    pub fingerprint: String,
    /// The network, e.g. "RRDBNet x4 (23 blocks, 64 features)".
    pub network: String,
    /// The frames' size once upscaled (`width` and `height` are the generated size).
    pub width: usize,
    pub height: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model folder, when one was given.
    pub path: Option<String>,
    /// The files' content identity (see [`crate::model_identity`]).
    pub fingerprint: String,
    pub files: Vec<String>,
    /// The LoRAs merged into it, in order (the fingerprint covers their content).
    #[serde(default)]
    pub loras: Vec<LoraSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipMetadata {
    pub format_version: u32,
    /// The `t2v-bridge` version that generated the clip.
    pub generator: String,
    pub key: String,
    pub prompt: String,
    /// The negative prompt actually used (the Wan2.2 default when none was given).
    pub negative_prompt: String,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub steps: usize,
    pub guidance: f64,
    pub shift: f64,
    pub sampler: String,
    pub seed: u64,
    pub dtype: String,
    /// Hash of the first frame's pixels, for image-to-video.
    pub image: Option<String>,
    /// Hash of the starting latents, when given instead of seeded noise.
    pub init_latents: Option<String>,
    pub model: ModelInfo,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upscale: Option<UpscaleInfo>,
    pub timings: Timings,
    /// Seconds since the Unix epoch when the clip was finished.
    pub created_unix: u64,
}

impl ClipMetadata {
    pub fn describe(request: &Request, key: ClipKey, model: ModelInfo, device: String) -> Self {
        let p = &request.params;
        ClipMetadata {
            format_version: CACHE_FORMAT_VERSION,
            generator: format!("t2v-bridge {}", env!("CARGO_PKG_VERSION")),
            key: key.to_hex(),
            prompt: p.prompt.clone(),
            negative_prompt: p.negative_prompt().to_string(),
            width: p.width,
            height: p.height,
            frames: p.frames,
            steps: p.steps,
            guidance: p.guidance,
            shift: p.shift,
            sampler: p.sampler.name().to_string(),
            seed: p.seed,
            dtype: request.precision.name().to_string(),
            image: request.image.as_ref().map(crate::cache_key::image_hash),
            init_latents: request
                .init_latents
                .as_ref()
                .map(crate::cache_key::latents_hash),
            model,
            device,
            upscale: None,
            timings: Timings::default(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("metadata serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: without serde_json's `float_roundtrip`, some timings (this one was seen in
    /// CI) came back from the cache one bit off, so a cache hit's metadata differed.
    #[test]
    fn timings_survive_a_json_round_trip_exactly() {
        let t = Timings {
            load_s: 0.009050749,
            encode_prompt_s: 0.009769314000000001,
            encode_image_s: 0.0,
            denoise_s: 0.025185014,
            decode_s: 0.322783306,
            upscale_s: 0.0,
            total_s: 0.371715513,
        };
        let back: Timings = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        for i in 0..10_000u64 {
            let v = (i as f64).sqrt() * 1e-3 + 1e-9 * i as f64;
            let back: f64 = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v}");
        }
    }
}
