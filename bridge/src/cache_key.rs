//! The clip cache key: a SHA-256 over everything that changes the pixels: the request, the
//! model's content identity ([`model_fingerprint`]) and the version of the inference numerics
//! ([`t2v_models::NUMERICS_VERSION`]).

use crate::error::Result;
use crate::request::{Image, Latents, Request};
use sha2::{Digest, Sha256};
use std::fmt;

pub use crate::model_identity::model_fingerprint;

/// Bumped whenever what a key covers, or the entry format, changes: old entries then miss.
pub const CACHE_FORMAT_VERSION: u32 = 2;

/// Serialised as its 64 hex digits.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct ClipKey([u8; 32]);

impl From<ClipKey> for String {
    fn from(k: ClipKey) -> String {
        k.to_hex()
    }
}

impl TryFrom<String> for ClipKey {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<ClipKey, String> {
        ClipKey::from_hex(&s).ok_or_else(|| format!("`{s}` is not a clip key (64 hex digits)"))
    }
}

impl ClipKey {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(ClipKey(out))
    }
}

impl fmt::Display for ClipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ClipKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClipKey({})", &self.to_hex()[..12])
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Length-prefixed fields, so that no two different requests hash the same byte stream.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn field(&mut self, name: &str, value: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }
}

/// A hash of an image's decoded pixels (not its file), so re-saving the same picture hits.
pub fn image_hash(image: &Image) -> String {
    let mut h = KeyHasher(Sha256::new());
    h.field(
        "size",
        format!("{}x{}", image.width(), image.height()).as_bytes(),
    );
    h.field("color", format!("{:?}", image::ColorType::Rgb8).as_bytes());
    h.field("pixels", image.rgb8());
    hex(&h.0.finalize())
}

pub fn latents_hash(latents: &Latents) -> String {
    let mut h = KeyHasher(Sha256::new());
    h.field("shape", format!("{:?}", latents.shape()).as_bytes());
    let bytes: Vec<u8> = latents
        .data()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    h.field("data", &bytes);
    hex(&h.0.finalize())
}

/// What the step cache's decisions depend on besides its choice: the model folder's
/// calibration file by content, else the published calibration it falls back to.
fn calibration_digest(request: &Request) -> Result<Vec<u8>> {
    let file = request
        .model
        .path
        .as_deref()
        .and_then(t2v_models::pipeline::step_cache::calibration_file);
    match file {
        Some(file) => Ok(crate::model_identity::file_content_hash(&file)
            .map_err(|e| {
                crate::Error::bad_input(format!("{}: cannot be read: {e}", file.display()))
            })?
            .to_vec()),
        None => Ok(b"published".to_vec()),
    }
}

/// The key of `request` with the model whose fingerprint is `model_fingerprint`. The compute
/// device is left out on purpose: the noise is drawn on the CPU, so devices differ only by
/// rounding, and a clip made on the GPU serves a CPU render. So is the memory budget: the
/// mechanisms it picks change only rounding, except tiled decode (see [`clip_key_decoded`]).
pub fn clip_key(request: &Request, model_fingerprint: &str) -> Result<ClipKey> {
    clip_key_with_numerics(request, model_fingerprint, t2v_models::NUMERICS_VERSION)
}

/// [`clip_key`] of a clip whose VAE decode is tiled when `tiled_decode`: tile seams are blended,
/// which changes pixels beyond rounding, so a tiled clip has a key of its own. Whole-frame
/// decodes keep the key [`clip_key`] gives.
pub fn clip_key_decoded(
    request: &Request,
    model_fingerprint: &str,
    tiled_decode: bool,
) -> Result<ClipKey> {
    if !tiled_decode {
        return clip_key(request, model_fingerprint);
    }
    let base = clip_key(request, model_fingerprint)?;
    let mut h = KeyHasher(Sha256::new());
    h.field("clip", &base.0);
    h.field("decode", b"tiled");
    Ok(ClipKey(h.0.finalize().into()))
}

/// [`clip_key`] under a given version of the numerics.
pub fn clip_key_with_numerics(
    request: &Request,
    model_fingerprint: &str,
    numerics_version: u32,
) -> Result<ClipKey> {
    let p = &request.params;
    let mut h = KeyHasher(Sha256::new());
    h.field("format", &CACHE_FORMAT_VERSION.to_le_bytes());
    h.field("numerics", &numerics_version.to_le_bytes());
    h.field("model", model_fingerprint.as_bytes());
    h.field("prompt", p.prompt.as_bytes());
    h.field("negative_prompt", p.negative_prompt().as_bytes());
    h.field("seed", &p.seed.to_le_bytes());
    h.field("width", &(p.width as u64).to_le_bytes());
    h.field("height", &(p.height as u64).to_le_bytes());
    h.field("frames", &(p.frames as u64).to_le_bytes());
    h.field("steps", &(p.steps as u64).to_le_bytes());
    h.field("guidance", &p.guidance.to_bits().to_le_bytes());
    h.field("shift", &p.shift.to_bits().to_le_bytes());
    h.field("sampler", p.sampler.name().as_bytes());
    h.field("dtype", request.precision.name().as_bytes());
    // Only when on, so that the keys of clips made before the step cache existed stay valid.
    if p.step_cache != crate::params::StepCache::Off {
        h.field("step_cache", p.step_cache.name().as_bytes());
        if let Some(settings) = p.step_cache_method.describe(p.step_cache) {
            h.field("step_cache_settings", settings.as_bytes());
        }
        if p.step_cache_method.kind().needs_calibration() {
            h.field("step_cache_calibration", &calibration_digest(request)?);
        }
    }
    match &request.image {
        Some(image) => h.field("image", image_hash(image).as_bytes()),
        None => h.field("image", b"none"),
    }
    match &request.init_latents {
        Some(l) => h.field("init_latents", latents_hash(l).as_bytes()),
        None => h.field("init_latents", b"none"),
    }
    // Only when asked for: the keys of clips that are not upscaled stay what they were.
    if let Some(upscale) = &request.upscale {
        h.field("upscale", upscale.target.name().as_bytes());
        h.field("upscaler", upscale.fingerprint()?.as_bytes());
    }
    // Only a fast decode adds a field: clips of the full decoder keep the keys they had.
    if request.decoder == crate::Decoder::Fast {
        h.field("decoder", b"fast");
    }
    Ok(ClipKey(h.0.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::GenerationParams;
    use crate::request::ModelSpec;

    fn request() -> Request {
        Request::new(
            ModelSpec::default(),
            GenerationParams {
                prompt: "a cat".into(),
                ..Default::default()
            },
        )
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn every_pixel_changing_field_changes_the_key() {
        let base = clip_key(&request(), "m").unwrap();
        assert_eq!(base, clip_key(&request(), "m").unwrap());
        assert_ne!(base, clip_key(&request(), "other model").unwrap());
        assert_ne!(
            base,
            clip_key_with_numerics(&request(), "m", t2v_models::NUMERICS_VERSION + 1).unwrap(),
            "a numerics fix invalidates old clips"
        );
        let variants: Vec<Box<dyn Fn(&mut Request)>> = vec![
            Box::new(|r| r.params.prompt.push('!')),
            Box::new(|r| r.params.negative_prompt = Some(String::new())),
            Box::new(|r| r.params.seed = 1),
            Box::new(|r| r.params.width = 64),
            Box::new(|r| r.params.height = 64),
            Box::new(|r| r.params.frames = 5),
            Box::new(|r| r.params.steps = 2),
            Box::new(|r| r.params.guidance = 4.0),
            Box::new(|r| r.params.shift = 3.0),
            Box::new(|r| r.params.sampler = crate::params::Sampler::Euler),
            Box::new(|r| r.params.sampler = crate::params::Sampler::Dmd),
            Box::new(|r| r.params.step_cache = crate::params::StepCache::Fast),
            Box::new(|r| r.params.step_cache = crate::params::StepCache::Faster),
            Box::new(|r| {
                r.params.step_cache = crate::params::StepCache::Fast;
                r.params.step_cache_method = crate::params::StepCacheMethod::EasyCache;
            }),
            Box::new(|r| r.precision = crate::device::Precision::Bf16),
            Box::new(|r| r.image = Some(Image::from_rgb8(2, 2, vec![0; 12]).unwrap())),
            Box::new(|r| r.init_latents = Some(Latents::new(vec![1], vec![0.5]).unwrap())),
            Box::new(|r| r.decoder = crate::Decoder::Fast),
        ];
        for change in variants {
            let mut r = request();
            change(&mut r);
            assert_ne!(base, clip_key(&r, "m").unwrap());
        }
    }

    /// The upscale choice and the upscaler's content (not its path) are part of the key.
    #[test]
    fn the_upscale_choice_and_the_upscaler_content_change_the_key() {
        use crate::upscale::{Upscale, UpscaleTarget};
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let (a, same_as_a, b) = (
            file("a.pth", b"net a"),
            file("c.pth", b"net a"),
            file("b.pth", b"net b"),
        );
        let with = |target, path: &std::path::Path| {
            let mut r = request();
            r.upscale = Some(Upscale::new(target, path));
            clip_key(&r, "m").unwrap()
        };
        let plain = clip_key(&request(), "m").unwrap();
        let two_a = with(UpscaleTarget::X2, &a);
        assert_ne!(plain, two_a);
        assert_ne!(two_a, with(UpscaleTarget::X4, &a));
        assert_ne!(two_a, with(UpscaleTarget::To1080p, &a));
        assert_ne!(two_a, with(UpscaleTarget::X2, &b));
        assert_eq!(two_a, with(UpscaleTarget::X2, &same_as_a));
        let mut r = request();
        r.upscale = Some(Upscale::new(
            UpscaleTarget::X2,
            dir.path().join("absent.pth"),
        ));
        let e = clip_key(&r, "m").unwrap_err();
        assert!(
            e.message.contains("absent.pth") && e.message.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn a_new_calibration_is_a_new_clip_only_with_magcache_on() {
        let dir = std::env::temp_dir().join(format!("t2v-key-calib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = request();
        r.model = ModelSpec::folder(dir.clone());
        let off = clip_key(&r, "m").unwrap();
        r.params.step_cache = crate::params::StepCache::Fast;
        r.params.step_cache_method = crate::params::StepCacheMethod::MagCache;
        let published = clip_key(&r, "m").unwrap();
        r.params.step_cache_method = crate::params::StepCacheMethod::EasyCache;
        let easy = clip_key(&r, "m").unwrap();
        let file = dir.join(t2v_models::pipeline::step_cache::CALIBRATION_FILE);
        std::fs::write(&file, r#"{"cond":[1.0,0.9]}"#).unwrap();
        assert_eq!(
            clip_key(&r, "m").unwrap(),
            easy,
            "EasyCache reads no calibration"
        );
        assert_ne!(easy, published);
        r.params.step_cache_method = crate::params::StepCacheMethod::MagCache;
        let calibrated = clip_key(&r, "m").unwrap();
        std::fs::write(&file, r#"{"cond":[1.0,0.8]}"#).unwrap();
        let recalibrated = clip_key(&r, "m").unwrap();
        assert!(published != calibrated && calibrated != recalibrated);
        r.params.step_cache = crate::params::StepCache::Off;
        assert_eq!(
            clip_key(&r, "m").unwrap(),
            off,
            "off ignores the calibration"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_budget_is_left_out_and_tiled_decode_is_not() {
        let base = clip_key(&request(), "m").unwrap();
        let mut r = request();
        r.memory = crate::memory::MemoryBudget::Gib(8);
        assert_eq!(clip_key(&r, "m").unwrap(), base);
        assert_eq!(clip_key_decoded(&r, "m", false).unwrap(), base);
        let tiled = clip_key_decoded(&r, "m", true).unwrap();
        assert_ne!(tiled, base);
        assert_eq!(tiled, clip_key_decoded(&request(), "m", true).unwrap());
    }

    #[test]
    fn previews_are_not_part_of_the_clip() {
        let mut r = request();
        r.preview = Some(crate::PreviewCadence::Every(1));
        assert_eq!(
            clip_key(&r, "m").unwrap(),
            clip_key(&request(), "m").unwrap()
        );
    }

    #[test]
    fn default_negative_prompt_spelled_out_is_the_same_clip() {
        let mut r = request();
        r.params.negative_prompt = Some(crate::params::DEFAULT_NEGATIVE_PROMPT.into());
        assert_eq!(
            clip_key(&r, "m").unwrap(),
            clip_key(&request(), "m").unwrap()
        );
    }

    #[test]
    fn hex_round_trip() {
        let k = clip_key(&request(), "m").unwrap();
        assert_eq!(ClipKey::from_hex(&k.to_hex()), Some(k));
        assert_eq!(ClipKey::from_hex("zz"), None);
    }
}
