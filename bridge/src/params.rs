//! What a clip is asked to be: the service's own generation parameters, plain data that can be
//! saved, compared and sent over a network. The service turns them into the models' type.

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use t2v_models::pipeline::step_cache::{StepCacheChoice, StepCacheMethod as MethodKind};
use t2v_models::pipeline::GenerationParams as ModelParams;
use t2v_models::sampling::SamplerKind;

pub use t2v_models::pipeline::request::{
    DEFAULT_NEGATIVE_PROMPT, FRAME_STRIDE, MAX_FRAMES, MAX_SIDE, MAX_STEPS, SIZE_MULTIPLE,
};

/// The denoising sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// UniPC multistep (bh2, order 2, flow prediction): the reference default.
    #[default]
    UniPc,
    /// Flow-matching Euler.
    Euler,
    /// Few-step DMD, for DMD-distilled models such as FastWan2.2-TI2V-5B (3 steps, no
    /// guidance).
    Dmd,
}

impl Sampler {
    pub const ALL: [Sampler; 3] = [Sampler::UniPc, Sampler::Euler, Sampler::Dmd];

    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    fn kind(self) -> SamplerKind {
        match self {
            Sampler::UniPc => SamplerKind::UniPc,
            Sampler::Euler => SamplerKind::Euler,
            Sampler::Dmd => SamplerKind::Dmd,
        }
    }
}

impl From<SamplerKind> for Sampler {
    fn from(k: SamplerKind) -> Self {
        match k {
            SamplerKind::UniPc => Sampler::UniPc,
            SamplerKind::Euler => Sampler::Euler,
            SamplerKind::Dmd => Sampler::Dmd,
        }
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Sampler {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.parse::<SamplerKind>().map(Sampler::from)
    }
}

/// The step cache: skips transformer evaluations predicted to change little (by the
/// [`StepCacheMethod`]'s rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepCache {
    /// Every step evaluates the transformer (the output of earlier versions).
    #[default]
    Off,
    /// MagCache's published TI2V-5B setting.
    Fast,
    /// Skips more.
    Faster,
}

impl StepCache {
    pub const ALL: [StepCache; 3] = [StepCache::Off, StepCache::Fast, StepCache::Faster];

    pub fn name(self) -> &'static str {
        self.choice().name()
    }

    fn choice(self) -> StepCacheChoice {
        match self {
            StepCache::Off => StepCacheChoice::Off,
            StepCache::Fast => StepCacheChoice::Fast,
            StepCache::Faster => StepCacheChoice::Faster,
        }
    }
}

impl From<StepCacheChoice> for StepCache {
    fn from(c: StepCacheChoice) -> Self {
        match c {
            StepCacheChoice::Off => StepCache::Off,
            StepCacheChoice::Fast => StepCache::Fast,
            StepCacheChoice::Faster => StepCache::Faster,
        }
    }
}

impl fmt::Display for StepCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StepCache {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.parse::<StepCacheChoice>().map(StepCache::from)
    }
}

/// The rule the step cache skips by (see docs/benchmarks.md for how they compare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepCacheMethod {
    /// MagCache: from the model's calibrated magnitude ratios.
    MagCache,
    /// EasyCache: from the change measured while the clip is made; no calibration. The
    /// default: it kept more detail at the same skips.
    #[default]
    EasyCache,
}

impl StepCacheMethod {
    pub const ALL: [StepCacheMethod; 2] = [StepCacheMethod::MagCache, StepCacheMethod::EasyCache];

    pub fn name(self) -> &'static str {
        self.kind().name()
    }

    pub(crate) fn kind(self) -> MethodKind {
        match self {
            StepCacheMethod::MagCache => MethodKind::MagCache,
            StepCacheMethod::EasyCache => MethodKind::EasyCache,
        }
    }

    /// The settings `step_cache` runs this method with, as text; `None` when it is off.
    pub fn describe(self, step_cache: StepCache) -> Option<String> {
        self.kind().describe(step_cache.choice())
    }
}

impl From<MethodKind> for StepCacheMethod {
    fn from(m: MethodKind) -> Self {
        match m {
            MethodKind::MagCache => StepCacheMethod::MagCache,
            MethodKind::EasyCache => StepCacheMethod::EasyCache,
        }
    }
}

impl fmt::Display for StepCacheMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StepCacheMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.parse::<MethodKind>().map(StepCacheMethod::from)
    }
}

/// A sampler with the steps, guidance and shift it runs with: what a model folder declares for
/// itself (a DMD-distilled model), or what a sampler recommends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub sampler: Sampler,
    pub steps: usize,
    pub guidance: f64,
    pub shift: f64,
}

impl Sampling {
    /// What `model_dir` declares (a diffusers folder of FastVideo's `WanDMDPipeline`: DMD, 3
    /// steps, no guidance); `None` for an ordinary model.
    pub fn declared_by(model_dir: &std::path::Path) -> Option<Sampling> {
        t2v_models::checkpoint::declared_sampling(model_dir).map(Sampling::from)
    }

    /// The settings `sampler` is made for, when it has its own (DMD).
    pub fn recommended_for(sampler: Sampler) -> Option<Sampling> {
        sampler.kind().recommended().map(Sampling::from)
    }
}

impl From<t2v_models::sampling::SamplingSettings> for Sampling {
    fn from(s: t2v_models::sampling::SamplingSettings) -> Self {
        Sampling {
            sampler: s.sampler.into(),
            steps: s.steps,
            guidance: s.guidance,
            shift: s.shift,
        }
    }
}

/// One clip's settings. The defaults are Wan2.2 TI2V-5B's 480P ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationParams {
    pub prompt: String,
    /// `None` means the Wan2.2 default; `Some("")` means an empty negative prompt.
    pub negative_prompt: Option<String>,
    pub width: usize,
    pub height: usize,
    /// Of the form 4k+1.
    pub frames: usize,
    pub steps: usize,
    /// Classifier-free guidance scale; 1 or less turns it off.
    pub guidance: f64,
    /// Flow shift of the sampler's schedule.
    pub shift: f64,
    pub sampler: Sampler,
    pub seed: u64,
    /// Off unless asked for; it changes the output.
    pub step_cache: StepCache,
    /// The rule the step cache skips by (when it is on).
    pub step_cache_method: StepCacheMethod,
}

impl Default for GenerationParams {
    fn default() -> Self {
        ModelParams::default().into()
    }
}

impl From<ModelParams> for GenerationParams {
    fn from(p: ModelParams) -> Self {
        GenerationParams {
            prompt: p.prompt,
            negative_prompt: p.negative_prompt,
            width: p.width,
            height: p.height,
            frames: p.frames,
            steps: p.steps,
            guidance: p.guidance,
            shift: p.shift,
            sampler: p.sampler.into(),
            seed: p.seed,
            step_cache: p.step_cache.into(),
            step_cache_method: p.step_cache_method.into(),
        }
    }
}

impl GenerationParams {
    /// These parameters with `sampling`'s sampler, steps, guidance and shift.
    pub fn with_sampling(self, sampling: Sampling) -> Self {
        GenerationParams {
            sampler: sampling.sampler,
            steps: sampling.steps,
            guidance: sampling.guidance,
            shift: sampling.shift,
            ..self
        }
    }

    /// The models' parameters, for the pipeline.
    pub fn to_models(&self) -> ModelParams {
        ModelParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            width: self.width,
            height: self.height,
            frames: self.frames,
            steps: self.steps,
            guidance: self.guidance,
            shift: self.shift,
            sampler: self.sampler.kind(),
            seed: self.seed,
            step_cache: self.step_cache.choice(),
            step_cache_method: self.step_cache_method.kind(),
        }
    }

    /// Checks every value; the error names the nearest valid ones.
    pub fn validate(&self) -> Result<()> {
        Ok(self.to_models().validate()?)
    }

    /// The negative prompt actually used.
    pub fn negative_prompt(&self) -> &str {
        self.negative_prompt
            .as_deref()
            .unwrap_or(DEFAULT_NEGATIVE_PROMPT)
    }

    /// Classifier-free guidance runs only above 1, as in the reference.
    pub fn uses_guidance(&self) -> bool {
        self.guidance > 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn params_round_trip_through_json_and_match_the_models_defaults() {
        let p = GenerationParams {
            prompt: "a red ball".into(),
            negative_prompt: Some(String::new()),
            sampler: Sampler::Euler,
            step_cache: StepCache::Faster,
            guidance: 4.25,
            seed: u64::MAX,
            ..Default::default()
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"sampler\":\"euler\""), "{json}");
        assert!(json.contains("\"step_cache\":\"faster\""), "{json}");
        assert_eq!(serde_json::from_str::<GenerationParams>(&json).unwrap(), p);
        // Fields left out take the defaults; unknown fields are refused.
        let short: GenerationParams = serde_json::from_str(r#"{"prompt":"x"}"#).unwrap();
        assert_eq!(short.frames, ModelParams::default().frames);
        assert_eq!(short.sampler, Sampler::UniPc);
        assert!(serde_json::from_str::<GenerationParams>(r#"{"promt":"x"}"#).is_err());
        // The models' type carries every field across.
        assert_eq!(GenerationParams::from(p.to_models()), p);
    }

    #[test]
    fn validation_is_the_models_with_the_services_error() {
        let p = GenerationParams {
            prompt: "x".into(),
            frames: 8,
            ..Default::default()
        };
        let e = p.validate().unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadInput);
        assert!(e.message.contains("nearest valid: 5 or 9"), "{e}");
        assert_eq!("EULER".parse::<Sampler>(), Ok(Sampler::Euler));
        assert_eq!("dmd".parse::<Sampler>(), Ok(Sampler::Dmd));
        assert_eq!("Faster".parse::<StepCache>(), Ok(StepCache::Faster));
        let p = GenerationParams {
            prompt: "x".into(),
            sampler: Sampler::Dmd,
            step_cache: StepCache::Fast,
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().message.contains("step cache"));
        assert_eq!(
            serde_json::to_string(&Sampler::Dmd).unwrap(),
            format!("\"{}\"", Sampler::Dmd.name())
        );
        assert!("ddim".parse::<Sampler>().is_err());
    }
}
