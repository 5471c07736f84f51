//! Step caching: which evaluations of the transformer run. [`StepCacheMethod`] picks the rule:
//! EasyCache (`super::easy_cache`, the default) or MagCache, described here.
//!
//! MagCache: an evaluation of the transformer whose blocks would change the
//! tokens by about as much as at the previous step is skipped, and the residual the blocks added
//! then is added again. Whether the change is "about the same" is predicted from the model's
//! magnitude ratios (the mean over tokens of `|residual_t| / |residual_{t-1}|`, measured once
//! per model by calibration): their product since the last evaluation, its distance from 1
//! accumulated over the skipped steps, must stay under a threshold, for at most `K` steps in a
//! row, and the first `retention` part of the run is always evaluated.
//!
//! Read from Zehong-Ma/MagCache at commit df81cb181776c2c61477c08e1d21f87fda1cd938,
//! `MagCache4Wan2.2/magcache_generate.py` (`magcache_forward`, `magcache_calibration`,
//! `init_magcache`, `nearest_interp`): one state per guidance branch (prompt, negative prompt),
//! the first ratio of each branch a padding 1, ratios of another step count than the
//! calibration's taken by nearest index. Its published TI2V-5B calibration (50 steps, 720P,
//! guidance 5, text-to-video and image-to-video) is [`MagRatios::published_ti2v_5b`].

use super::easy_cache::EasyCacheSettings;
use crate::dit::BlockPass;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The file, in a model folder, that holds its calibration (`t2v calibrate` writes it).
pub const CALIBRATION_FILE: &str = "step_cache.json";

/// The step cache a clip asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StepCacheChoice {
    /// Every step evaluates the transformer.
    #[default]
    Off,
    /// Skips the evaluations predicted to change little (MagCache: its TI2V-5B setting).
    Fast,
    /// Skips more, at some cost in detail.
    Faster,
}

/// MagCache's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MagCacheSettings {
    /// The largest accumulated error a skip may reach.
    pub threshold: f64,
    /// At most this many skipped evaluations in a row per branch.
    pub max_skips: usize,
    /// The first fraction of the evaluations that always run.
    pub retention: f64,
}

impl StepCacheChoice {
    pub const ALL: [StepCacheChoice; 3] = [
        StepCacheChoice::Off,
        StepCacheChoice::Fast,
        StepCacheChoice::Faster,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StepCacheChoice::Off => "off",
            StepCacheChoice::Fast => "fast",
            StepCacheChoice::Faster => "faster",
        }
    }

    /// The MagCache settings of the choice; `None` for `off`. `fast` is MagCache4Wan2.2's
    /// published TI2V-5B setting (E006K2R02); `faster` was chosen from the measurements in
    /// docs/benchmarks.md.
    pub fn settings(self) -> Option<MagCacheSettings> {
        match self {
            StepCacheChoice::Off => None,
            StepCacheChoice::Fast => Some(MagCacheSettings {
                threshold: 0.06,
                max_skips: 2,
                retention: 0.2,
            }),
            StepCacheChoice::Faster => Some(MagCacheSettings {
                threshold: 0.15,
                max_skips: 2,
                retention: 0.2,
            }),
        }
    }
}

impl StepCacheChoice {
    /// The EasyCache settings of the choice; `None` for `off`. The warm-up is EasyCache's 10
    /// of 50 steps; the thresholds were chosen from the measurements in docs/benchmarks.md.
    pub fn easycache(self) -> Option<EasyCacheSettings> {
        let threshold = match self {
            StepCacheChoice::Off => return None,
            StepCacheChoice::Fast => 0.07,
            StepCacheChoice::Faster => 0.15,
        };
        Some(EasyCacheSettings {
            threshold,
            warmup: 0.2,
        })
    }
}

/// The rule that decides which evaluations the step cache skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StepCacheMethod {
    /// MagCache: the blocks' residual, skipped from the model's calibrated magnitude ratios.
    MagCache,
    /// EasyCache: the whole model's transformation, skipped from the change measured while the
    /// clip is made (no calibration). The default: it kept more detail than MagCache at the
    /// same skip counts (docs/benchmarks.md).
    #[default]
    EasyCache,
}

impl StepCacheMethod {
    pub const ALL: [StepCacheMethod; 2] = [StepCacheMethod::MagCache, StepCacheMethod::EasyCache];

    pub fn name(self) -> &'static str {
        match self {
            StepCacheMethod::MagCache => "magcache",
            StepCacheMethod::EasyCache => "easycache",
        }
    }

    /// Whether the method needs the model's magnitude ratios ([`calibration_for`]).
    pub fn needs_calibration(self) -> bool {
        self == StepCacheMethod::MagCache
    }

    /// The settings `choice` runs this method with, as text (for cache keys and logs); `None`
    /// for `off`.
    pub fn describe(self, choice: StepCacheChoice) -> Option<String> {
        Some(match self {
            StepCacheMethod::MagCache => {
                let s = choice.settings()?;
                format!(
                    "magcache threshold {} K {} retention {}",
                    s.threshold, s.max_skips, s.retention
                )
            }
            StepCacheMethod::EasyCache => {
                let s = choice.easycache()?;
                format!("easycache threshold {} warmup {}", s.threshold, s.warmup)
            }
        })
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
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown step cache method `{s}`: use `magcache` or `easycache`")
            })
    }
}

impl fmt::Display for StepCacheChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StepCacheChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown step cache `{s}`: use `off`, `fast` or `faster`"))
    }
}

/// A model's magnitude ratios, one per step and guidance branch; the first of each is 1 (there
/// is no earlier step to compare with). What [`CALIBRATION_FILE`] holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MagRatios {
    /// With the prompt.
    pub cond: Vec<f64>,
    /// With the negative prompt (guidance on); empty when calibrated without guidance.
    #[serde(default)]
    pub uncond: Vec<f64>,
}

/// MagCache4Wan2.2's TI2V-5B ratios as published (cond and uncond interleaved, without the two
/// padding ones), text-to-video.
const PUBLISHED_TI2V_5B_T2V: [f64; 98] = [
    0.99505, 0.99389, 0.99441, 0.9957, 0.99558, 0.99551, 0.99499, 0.9945, 0.99534, 0.99548,
    0.99468, 0.9946, 0.99463, 0.99458, 0.9946, 0.99453, 0.99408, 0.99404, 0.9945, 0.99441, 0.99409,
    0.99398, 0.99403, 0.99397, 0.99382, 0.99377, 0.99349, 0.99343, 0.99377, 0.99378, 0.9933,
    0.99328, 0.99303, 0.99301, 0.99217, 0.99216, 0.992, 0.99201, 0.99201, 0.99202, 0.99133,
    0.99132, 0.99112, 0.9911, 0.99155, 0.99155, 0.98958, 0.98957, 0.98959, 0.98958, 0.98838,
    0.98835, 0.98826, 0.98825, 0.9883, 0.98828, 0.98711, 0.98709, 0.98562, 0.98561, 0.98511,
    0.9851, 0.98414, 0.98412, 0.98284, 0.98282, 0.98104, 0.98101, 0.97981, 0.97979, 0.97849,
    0.97849, 0.97557, 0.97554, 0.97398, 0.97395, 0.97171, 0.97166, 0.96917, 0.96913, 0.96511,
    0.96507, 0.96263, 0.96257, 0.95839, 0.95835, 0.95483, 0.95475, 0.94942, 0.94936, 0.9468,
    0.94678, 0.94583, 0.94594, 0.94843, 0.94872, 0.96949, 0.97015,
];

/// As [`PUBLISHED_TI2V_5B_T2V`], image-to-video.
const PUBLISHED_TI2V_5B_I2V: [f64; 98] = [
    0.99512, 0.99559, 0.99559, 0.99561, 0.99595, 0.99577, 0.99512, 0.99512, 0.99546, 0.99534,
    0.99543, 0.99531, 0.99496, 0.99491, 0.99504, 0.99499, 0.99444, 0.99449, 0.99481, 0.99481,
    0.99435, 0.99435, 0.9943, 0.99431, 0.99411, 0.99406, 0.99373, 0.99376, 0.99413, 0.99405,
    0.99363, 0.99359, 0.99335, 0.99331, 0.99244, 0.99243, 0.99229, 0.99229, 0.99239, 0.99236,
    0.99163, 0.9916, 0.99149, 0.99151, 0.99191, 0.99192, 0.9898, 0.98981, 0.9899, 0.98987, 0.98849,
    0.98849, 0.98846, 0.98846, 0.98861, 0.98861, 0.9874, 0.98738, 0.98588, 0.98589, 0.98539,
    0.98534, 0.98444, 0.98439, 0.9831, 0.98309, 0.98119, 0.98118, 0.98001, 0.98, 0.97862, 0.97859,
    0.97555, 0.97558, 0.97392, 0.97388, 0.97152, 0.97145, 0.96871, 0.9687, 0.96435, 0.96434,
    0.96129, 0.96127, 0.95639, 0.95638, 0.95176, 0.95175, 0.94446, 0.94452, 0.93972, 0.93974,
    0.93575, 0.9359, 0.93537, 0.93552, 0.96655, 0.96616,
];

/// `nearest_interp`: `target` values of `src` at evenly spread indices, rounded half to even as
/// numpy rounds.
fn nearest_interp(src: &[f64], target: usize) -> Vec<f64> {
    if target == 1 || src.len() <= 1 {
        return vec![*src.last().unwrap_or(&1.0); target];
    }
    let scale = (src.len() - 1) as f64 / (target - 1) as f64;
    (0..target)
        .map(|i| src[((i as f64 * scale).round_ties_even() as usize).min(src.len() - 1)])
        .collect()
}

impl MagRatios {
    /// MagCache4Wan2.2's published Wan2.2 TI2V-5B calibration (50 steps, guidance 5).
    pub fn published_ti2v_5b(image_to_video: bool) -> MagRatios {
        let list = if image_to_video {
            &PUBLISHED_TI2V_5B_I2V
        } else {
            &PUBLISHED_TI2V_5B_T2V
        };
        let padded: Vec<f64> = [1.0, 1.0].iter().chain(list.iter()).copied().collect();
        MagRatios {
            cond: padded.iter().step_by(2).copied().collect(),
            uncond: padded.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    /// The ratios for a run of `steps` steps (nearest index when the calibration had another
    /// step count).
    pub fn for_steps(&self, steps: usize) -> MagRatios {
        let fit = |r: &Vec<f64>| {
            if r.len() == steps || r.is_empty() {
                r.clone()
            } else {
                nearest_interp(r, steps)
            }
        };
        MagRatios {
            cond: fit(&self.cond),
            uncond: fit(&self.uncond),
        }
    }

    fn check(&self, origin: &Path) -> Result<()> {
        let bad = |why: &str| {
            Err(Error::checkpoint(
                origin,
                format!("{why}: run `t2v calibrate` again to rewrite it"),
            ))
        };
        if self.cond.is_empty() {
            return bad("the step-cache calibration has no ratios");
        }
        if !self.uncond.is_empty() && self.uncond.len() != self.cond.len() {
            return bad("the step-cache calibration's two branches differ in length");
        }
        if self
            .cond
            .iter()
            .chain(&self.uncond)
            .any(|r| !r.is_finite() || *r <= 0.0)
        {
            return bad("the step-cache calibration holds a ratio that is not a positive number");
        }
        Ok(())
    }

    /// Reads a calibration file.
    pub fn read(path: &Path) -> Result<MagRatios> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::checkpoint(path, format!("cannot be read: {e}")))?;
        let ratios: MagRatios = serde_json::from_str(&text).map_err(|e| {
            Error::checkpoint(
                path,
                format!("is not a step-cache calibration ({e}): run `t2v calibrate` again to rewrite it"),
            )
        })?;
        ratios.check(path)?;
        Ok(ratios)
    }

    /// Writes a calibration file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("ratios serialise");
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::checkpoint(path, format!("cannot be written: {e}")))
    }
}

/// Where a model folder keeps its calibration, if it has one.
pub fn calibration_file(model_dir: &Path) -> Option<PathBuf> {
    let path = model_dir.join(CALIBRATION_FILE);
    path.is_file().then_some(path)
}

/// The calibration a run uses: the model folder's own, else the published one for the real
/// TI2V-5B transformer; any other model must be calibrated first.
pub fn calibration_for(
    model_dir: Option<&Path>,
    is_ti2v_5b: bool,
    image_to_video: bool,
) -> Result<MagRatios> {
    if let Some(file) = model_dir.and_then(calibration_file) {
        return MagRatios::read(&file);
    }
    if is_ti2v_5b {
        return Ok(MagRatios::published_ti2v_5b(image_to_video));
    }
    Err(Error::InvalidRequest(format!(
        "the MagCache step cache needs this model's magnitude ratios, and it has none: run `t2v calibrate --model DIR` once (it writes DIR/{CALIBRATION_FILE}), pick the step cache method easycache (no calibration), or set the step cache off"
    )))
}

/// Decides, evaluation by evaluation, whether the transformer's blocks run.
pub trait StepCache {
    /// What the blocks do at `step` for guidance `branch` (0: the prompt, 1: the negative
    /// prompt).
    fn pass(&mut self, step: usize, branch: usize) -> BlockPass<'_>;
    /// After the evaluation: the residual when the pass was [`BlockPass::Record`].
    fn evaluated(&mut self, step: usize, branch: usize, residual: Option<Tensor>) -> Result<()>;
    /// Asked before each evaluation with the model's input latents: a cache of the whole model
    /// (EasyCache) answers the flow itself, and the model does not run. Others never do.
    fn reuse(&mut self, _step: usize, _branch: usize, _input: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// After an evaluation that ran: the model's input latents and its flow.
    fn output(
        &mut self,
        _step: usize,
        _branch: usize,
        _input: &Tensor,
        _flow: &Tensor,
    ) -> Result<()> {
        Ok(())
    }
    /// Evaluations skipped so far.
    fn skipped(&self) -> usize {
        0
    }
}

/// Every evaluation runs: the plain denoising loop.
pub struct NoStepCache;

impl StepCache for NoStepCache {
    fn pass(&mut self, _step: usize, _branch: usize) -> BlockPass<'_> {
        BlockPass::Run
    }
    fn evaluated(&mut self, _: usize, _: usize, _: Option<Tensor>) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Branch {
    ratio: f64,
    error: f64,
    skipped_in_row: usize,
    residual: Option<Tensor>,
    /// This step's choice.
    skip: bool,
}

/// MagCache's state for one run.
pub struct MagCache {
    settings: MagCacheSettings,
    ratios: MagRatios,
    steps: usize,
    branches_per_step: usize,
    branches: [Branch; 2],
    /// Evaluations whose blocks were skipped.
    pub skipped: usize,
    /// Evaluations asked for (run or skipped).
    pub evaluations: usize,
}

impl MagCache {
    /// For a run of `steps` steps, with guidance (two branches per step) or without.
    pub fn new(
        settings: MagCacheSettings,
        ratios: &MagRatios,
        steps: usize,
        guidance: bool,
    ) -> Self {
        let mut ratios = ratios.for_steps(steps);
        if ratios.uncond.is_empty() {
            ratios.uncond = ratios.cond.clone();
        }
        let fresh = || Branch {
            ratio: 1.0,
            ..Default::default()
        };
        Self {
            settings,
            ratios,
            steps,
            branches_per_step: if guidance { 2 } else { 1 },
            branches: [fresh(), fresh()],
            skipped: 0,
            evaluations: 0,
        }
    }

    /// MagCache's decision for the evaluation `call` (counted over the whole run, both
    /// branches interleaved, as MagCache counts them).
    fn decide(&mut self, step: usize, branch: usize) -> bool {
        let call = step * self.branches_per_step + branch;
        let calls = self.steps * self.branches_per_step;
        let retained = (calls as f64 * self.settings.retention) as usize;
        let ratio = if branch == 0 {
            self.ratios.cond[step]
        } else {
            self.ratios.uncond[step]
        };
        let s = self.settings;
        let b = &mut self.branches[branch];
        if call < retained {
            return false;
        }
        b.ratio *= ratio;
        b.skipped_in_row += 1;
        b.error += (1.0 - b.ratio).abs();
        if b.error < s.threshold && b.skipped_in_row <= s.max_skips && b.residual.is_some() {
            return true;
        }
        b.error = 0.0;
        b.skipped_in_row = 0;
        b.ratio = 1.0;
        false
    }
}

impl StepCache for MagCache {
    fn pass(&mut self, step: usize, branch: usize) -> BlockPass<'_> {
        self.evaluations += 1;
        let skip = self.decide(step, branch);
        self.branches[branch].skip = skip;
        if skip {
            self.skipped += 1;
            BlockPass::Reuse(self.branches[branch].residual.as_ref().expect("checked"))
        } else {
            BlockPass::Record
        }
    }

    fn evaluated(&mut self, _step: usize, branch: usize, residual: Option<Tensor>) -> Result<()> {
        let b = &mut self.branches[branch];
        if !b.skip {
            b.residual = residual;
        }
        Ok(())
    }

    fn skipped(&self) -> usize {
        self.skipped
    }
}

/// Measures a model's magnitude ratios: records every evaluation's residual and compares it
/// with the same branch's at the step before.
#[derive(Default)]
pub struct Calibration {
    previous: [Option<Tensor>; 2],
    ratios: [Vec<f64>; 2],
}

impl Calibration {
    /// The ratios measured so far.
    pub fn ratios(&self) -> MagRatios {
        MagRatios {
            cond: self.ratios[0].clone(),
            uncond: self.ratios[1].clone(),
        }
    }
}

/// The mean over tokens of the ratio of their residual norms (over the model dimension).
fn magnitude_ratio(now: &Tensor, before: &Tensor) -> Result<f64> {
    let norm = |t: &Tensor| -> candle_core::Result<Tensor> {
        t.to_dtype(DType::F32)?
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()
    };
    let ratio = (norm(now)? / norm(before)?)?;
    Ok(ratio.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl StepCache for Calibration {
    fn pass(&mut self, _step: usize, _branch: usize) -> BlockPass<'_> {
        BlockPass::Record
    }

    fn evaluated(&mut self, _step: usize, branch: usize, residual: Option<Tensor>) -> Result<()> {
        let residual = residual.expect("a recorded pass returns its residual");
        let ratio = match &self.previous[branch] {
            Some(before) => magnitude_ratio(&residual, before)?,
            None => 1.0,
        };
        self.ratios[branch].push(ratio);
        self.previous[branch] = Some(residual);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ratios_have_a_padding_one_and_fifty_steps() {
        let r = MagRatios::published_ti2v_5b(false);
        assert_eq!((r.cond.len(), r.uncond.len()), (50, 50));
        assert_eq!((r.cond[0], r.uncond[0]), (1.0, 1.0));
        assert_eq!((r.cond[1], r.uncond[1]), (0.99505, 0.99389));
        assert_eq!((r.cond[49], r.uncond[49]), (0.96949, 0.97015));
        assert_ne!(r, MagRatios::published_ti2v_5b(true));
    }

    #[test]
    fn nearest_interp_rounds_half_to_even_as_numpy() {
        // np.round(np.arange(3) * 1.5) = [0, 2, 3] (1.5 rounds to 2, 3.0 stays).
        assert_eq!(
            nearest_interp(&[0.0, 1.0, 2.0, 3.0], 3),
            vec![0.0, 2.0, 3.0]
        );
        // np.round(np.arange(5) * 0.5) = [0, 0, 1, 2, 2] (0.5 -> 0, 1.5 -> 2).
        assert_eq!(
            nearest_interp(&[10.0, 11.0, 12.0], 5),
            vec![10.0, 10.0, 11.0, 12.0, 12.0]
        );
        assert_eq!(nearest_interp(&[1.0, 2.0], 1), vec![2.0]);
    }

    /// MagCache's decisions, replayed by hand on ratios chosen to make each rule bite.
    #[test]
    fn decisions_follow_magcache() {
        let settings = MagCacheSettings {
            threshold: 0.06,
            max_skips: 2,
            retention: 0.2,
        };
        // 10 steps without guidance: the first int(10 * 0.2) = 2 always run.
        let ratios = MagRatios {
            cond: vec![1.0, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.9, 0.99, 0.99],
            uncond: vec![],
        };
        let mut cache = MagCache::new(settings, &ratios, 10, false);
        let mut skipped = Vec::new();
        let residual = Tensor::zeros((1, 2, 3), DType::F32, &candle_core::Device::Cpu).unwrap();
        for step in 0..10 {
            let skip = matches!(cache.pass(step, 0), BlockPass::Reuse(_));
            skipped.push(skip);
            cache.evaluated(step, 0, Some(residual.clone())).unwrap();
        }
        // step 2: ratio 0.99, err 0.01 -> skip; step 3: ratio 0.9801, err 0.0299 -> skip;
        // step 4: 3 in a row > K -> run (reset); step 5: skip (0.01); step 6: skip (0.0299);
        // step 7: run (K); step 8: skip; step 9: skip.
        assert_eq!(
            skipped,
            [false, false, true, true, false, true, true, false, true, true]
        );
        assert_eq!((cache.skipped, cache.evaluations), (6, 10));

        // The threshold: one ratio of 0.9 is an error of 0.1 > 0.06: run and reset.
        let ratios = MagRatios {
            cond: vec![1.0, 1.0, 0.9, 0.99, 0.9],
            uncond: vec![],
        };
        let mut cache = MagCache::new(
            MagCacheSettings {
                retention: 0.0,
                ..settings
            },
            &ratios,
            5,
            false,
        );
        let mut skipped = Vec::new();
        for step in 0..5 {
            skipped.push(matches!(cache.pass(step, 0), BlockPass::Reuse(_)));
            cache.evaluated(step, 0, Some(residual.clone())).unwrap();
        }
        // step 0 has no residual yet: runs; step 1: err 0 -> skip; step 2: 0.9 -> err 0.1 run;
        // step 3: skip (0.01); step 4: ratio 0.891, err 0.01 + 0.109 -> run.
        assert_eq!(skipped, [false, true, false, true, false]);
    }

    #[test]
    fn choices_parse_and_name_themselves() {
        for c in StepCacheChoice::ALL {
            assert_eq!(c.name().parse::<StepCacheChoice>(), Ok(c));
        }
        assert!("quick"
            .parse::<StepCacheChoice>()
            .unwrap_err()
            .contains("off"));
        assert!(StepCacheChoice::Off.settings().is_none());
    }

    #[test]
    fn methods_parse_and_describe_their_thresholds() {
        for m in StepCacheMethod::ALL {
            assert_eq!(m.name().parse::<StepCacheMethod>(), Ok(m));
            assert_eq!(m.describe(StepCacheChoice::Off), None);
        }
        assert_eq!(StepCacheMethod::default(), StepCacheMethod::EasyCache);
        assert!("teacache"
            .parse::<StepCacheMethod>()
            .unwrap_err()
            .contains("easycache"));
        assert_eq!(
            StepCacheMethod::EasyCache
                .describe(StepCacheChoice::Faster)
                .unwrap(),
            "easycache threshold 0.15 warmup 0.2"
        );
        assert_eq!(
            StepCacheMethod::MagCache
                .describe(StepCacheChoice::Fast)
                .unwrap(),
            "magcache threshold 0.06 K 2 retention 0.2"
        );
        assert!(StepCacheMethod::MagCache.needs_calibration());
        assert!(!StepCacheMethod::EasyCache.needs_calibration());
    }

    #[test]
    fn calibration_files_round_trip_and_bad_ones_say_what_to_do() {
        let dir = std::env::temp_dir().join(format!("t2v-stepcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(calibration_for(Some(&dir), false, false)
            .unwrap_err()
            .to_string()
            .contains("t2v calibrate"));
        assert_eq!(
            calibration_for(Some(&dir), true, true).unwrap(),
            MagRatios::published_ti2v_5b(true)
        );
        let ratios = MagRatios {
            cond: vec![1.0, 0.98],
            uncond: vec![1.0, 0.97],
        };
        ratios.write(&dir.join(CALIBRATION_FILE)).unwrap();
        assert_eq!(calibration_for(Some(&dir), true, false).unwrap(), ratios);
        std::fs::write(dir.join(CALIBRATION_FILE), r#"{"cond": [1.0, -2.0]}"#).unwrap();
        let e = calibration_for(Some(&dir), true, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("positive") && e.contains(CALIBRATION_FILE),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
