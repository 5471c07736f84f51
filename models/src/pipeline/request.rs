//! What a generation is asked to do, and the checks that turn bad values into messages naming
//! the nearest valid ones.

use super::step_cache::{StepCacheChoice, StepCacheMethod};
use crate::sampling::SamplerKind;
use crate::{Error, Result};

/// The negative prompt of the original Wan2.2 release (`sample_neg_prompt`).
pub const DEFAULT_NEGATIVE_PROMPT: &str = "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

/// Spatial size must be a multiple of the VAE's 16x downsampling times the 2x2 patch.
pub const SIZE_MULTIPLE: usize = 32;
/// The VAE compresses 4 frames into one latent frame after the first.
pub const FRAME_STRIDE: usize = 4;
pub const MAX_SIDE: usize = 2048;
pub const MAX_FRAMES: usize = 257;
pub const MAX_STEPS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerationParams {
    pub prompt: String,
    /// `None` means the Wan2.2 default; `Some("")` means an empty negative prompt.
    pub negative_prompt: Option<String>,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub steps: usize,
    pub guidance: f64,
    pub shift: f64,
    pub sampler: SamplerKind,
    pub seed: u64,
    /// Skips transformer evaluations predicted to change little (by `step_cache_method`).
    pub step_cache: StepCacheChoice,
    /// The rule the step cache skips by.
    pub step_cache_method: StepCacheMethod,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            negative_prompt: None,
            width: 832,
            height: 480,
            frames: 81,
            steps: 50,
            guidance: 5.0,
            shift: 5.0,
            sampler: SamplerKind::UniPc,
            seed: 0,
            step_cache: StepCacheChoice::Off,
            step_cache_method: StepCacheMethod::default(),
        }
    }
}

/// The two nearest multiples of `m` around `v`, within `[m, max]`.
fn nearest_multiples(v: usize, m: usize, max: usize) -> (usize, usize) {
    let below = (v / m * m).clamp(m, max);
    let above = v.div_ceil(m) * m;
    (below, above.clamp(m, max))
}

fn describe_options(a: usize, b: usize) -> String {
    if a == b {
        format!("{a}")
    } else {
        format!("{a} or {b}")
    }
}

/// Checks a frame size; the error names the nearest valid values.
pub fn validate_size(width: usize, height: usize) -> Result<()> {
    for (name, v) in [("width", width), ("height", height)] {
        if v == 0 || v % SIZE_MULTIPLE != 0 || v > MAX_SIDE {
            let (a, b) = nearest_multiples(v, SIZE_MULTIPLE, MAX_SIDE);
            let why = if v > MAX_SIDE {
                format!("is larger than the maximum {MAX_SIDE}")
            } else {
                format!("is not a multiple of {SIZE_MULTIPLE}")
            };
            return Err(Error::InvalidRequest(format!(
                "{name} {v} {why}; nearest valid: {}",
                describe_options(a, b)
            )));
        }
    }
    Ok(())
}

/// Checks a frame count of the form 4k+1; the error names the nearest valid counts.
pub fn validate_frames(frames: usize) -> Result<()> {
    if frames >= 1 && frames % FRAME_STRIDE == 1 && frames <= MAX_FRAMES {
        return Ok(());
    }
    let below = if frames <= 1 {
        1
    } else {
        ((frames - 1) / FRAME_STRIDE * FRAME_STRIDE + 1).min(MAX_FRAMES)
    };
    let above = if frames <= 1 {
        5
    } else {
        ((frames - 1).div_ceil(FRAME_STRIDE) * FRAME_STRIDE + 1).min(MAX_FRAMES)
    };
    let why = if frames > MAX_FRAMES {
        format!("is more than the maximum {MAX_FRAMES}")
    } else {
        "is not of the form 4k+1".to_string()
    };
    Err(Error::InvalidRequest(format!(
        "frame count {frames} {why}; nearest valid: {}",
        describe_options(below, above)
    )))
}

impl GenerationParams {
    pub fn negative_prompt(&self) -> &str {
        self.negative_prompt
            .as_deref()
            .unwrap_or(DEFAULT_NEGATIVE_PROMPT)
    }

    /// Classifier-free guidance runs only above 1, as in the reference.
    pub fn uses_guidance(&self) -> bool {
        self.guidance > 1.0
    }

    pub fn latent_frames(&self) -> usize {
        (self.frames - 1) / FRAME_STRIDE + 1
    }

    pub fn validate(&self) -> Result<()> {
        if crate::text::clean_prompt(&self.prompt).is_empty() {
            return Err(Error::InvalidRequest(
                "the prompt is empty: describe the clip to generate".into(),
            ));
        }
        validate_size(self.width, self.height)?;
        validate_frames(self.frames)?;
        if self.steps == 0 || self.steps > MAX_STEPS {
            return Err(Error::InvalidRequest(format!(
                "steps {} is out of range: use 1 to {MAX_STEPS}",
                self.steps
            )));
        }
        if !self.guidance.is_finite() || self.guidance < 0.0 || self.guidance > 100.0 {
            return Err(Error::InvalidRequest(format!(
                "guidance {} is out of range: use 0 to 100 (5 is typical)",
                self.guidance
            )));
        }
        if self.step_cache != StepCacheChoice::Off && self.sampler == SamplerKind::Dmd {
            return Err(Error::InvalidRequest(format!(
                "the step cache ({}) skips steps of long runs; the DMD sampler's few steps have none to spare: set the step cache off",
                self.step_cache
            )));
        }
        if !self.shift.is_finite() || self.shift <= 0.0 || self.shift > 100.0 {
            return Err(Error::InvalidRequest(format!(
                "shift {} is out of range: use a value above 0 up to 100 (5 is typical)",
                self.shift
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<()>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn sizes_name_the_nearest_valid_values() {
        assert!(validate_size(832, 480).is_ok());
        assert_eq!(
            message(validate_size(840, 480)),
            "width 840 is not a multiple of 32; nearest valid: 832 or 864"
        );
        assert_eq!(
            message(validate_size(832, 0)),
            "height 0 is not a multiple of 32; nearest valid: 32"
        );
        assert_eq!(
            message(validate_size(8192, 480)),
            "width 8192 is larger than the maximum 2048; nearest valid: 2048"
        );
    }

    #[test]
    fn frames_name_the_nearest_valid_counts() {
        assert!(validate_frames(1).is_ok());
        assert!(validate_frames(121).is_ok());
        assert_eq!(
            message(validate_frames(80)),
            "frame count 80 is not of the form 4k+1; nearest valid: 77 or 81"
        );
        assert_eq!(
            message(validate_frames(0)),
            "frame count 0 is not of the form 4k+1; nearest valid: 1 or 5"
        );
        assert_eq!(
            message(validate_frames(1000)),
            "frame count 1000 is more than the maximum 257; nearest valid: 257"
        );
    }

    #[test]
    fn empty_negative_prompt_is_not_the_default() {
        let mut p = GenerationParams {
            prompt: "a cat".into(),
            ..Default::default()
        };
        assert_eq!(p.negative_prompt(), DEFAULT_NEGATIVE_PROMPT);
        p.negative_prompt = Some(String::new());
        assert_eq!(p.negative_prompt(), "");
    }

    #[test]
    fn empty_prompt_is_rejected() {
        let p = GenerationParams {
            prompt: " \n\t ".into(),
            ..Default::default()
        };
        assert!(message(p.validate()).contains("prompt is empty"));
    }
}
