//! Step caching with EasyCache: runtime-adaptive, no calibration. At every evaluation that runs,
//! the model's transformation rate `k = mean|Δoutput| / mean|Δinput|` between the last two
//! evaluations that ran is measured; at a later step the relative change of the input since the
//! step before, `mean|Δinput| / mean|last output|`, times `k`, is accumulated, and while the sum
//! stays under the threshold the evaluation is skipped: the model's output is its input plus the
//! transformation (`output − input`) it made at the last evaluation that ran. The first part of
//! the run (warm-up) and its last step always run.
//!
//! Read from H-EmbodVis/EasyCache at commit 51278044023e678bb4026a264b02a6721f6dd395,
//! `EasyCache4Wan2.1/easycache_generate.py` (`easycache_forward`, and the settings `generate`
//! installs: `ret_steps = 10` of 50 steps, `cutoff_steps` = the last step, `thresh` 0.05 by
//! default): the decision is made on the prompt branch and the negative-prompt branch follows
//! it, each branch reusing its own transformation; changes are the mean absolute difference
//! of the whole latents (the model's input before patchifying, its flow output after).

use super::step_cache::StepCache;
use crate::dit::BlockPass;
use crate::Result;
use candle_core::{DType, Tensor};

/// EasyCache's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EasyCacheSettings {
    /// The largest accumulated predicted change a skip may reach (EasyCache's `thresh`, τ).
    pub threshold: f64,
    /// The first fraction of the steps that always run (EasyCache's 10 of 50: 0.2).
    pub warmup: f64,
}

/// The mean absolute value of `a − b` (of `a` when `b` is `None`).
fn mean_abs(a: &Tensor, b: Option<&Tensor>) -> Result<f64> {
    let d = match b {
        Some(b) => (a - b)?,
        None => a.clone(),
    };
    Ok(d.to_dtype(DType::F32)?
        .abs()?
        .mean_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?)
}

/// EasyCache's state for one run.
pub struct EasyCache {
    settings: EasyCacheSettings,
    steps: usize,
    /// The prompt branch's input at the step before (run or skipped).
    previous_input: Option<Tensor>,
    /// The prompt branch's input and output at the last evaluation that ran.
    computed_input: Option<Tensor>,
    computed_output: Option<Tensor>,
    /// The transformation rate between the last two evaluations that ran.
    k: Option<f64>,
    accumulated: f64,
    /// Each branch's transformation (output − input) at its last evaluation that ran.
    transformation: [Option<Tensor>; 2],
    /// This step's choice (made on the prompt branch, followed by the other).
    skip_step: bool,
    /// Evaluations whose model run was skipped.
    pub skipped: usize,
    /// Evaluations asked for (run or skipped).
    pub evaluations: usize,
}

impl EasyCache {
    /// For a run of `steps` steps.
    pub fn new(settings: EasyCacheSettings, steps: usize) -> Self {
        Self {
            settings,
            steps,
            previous_input: None,
            computed_input: None,
            computed_output: None,
            k: None,
            accumulated: 0.0,
            transformation: [None, None],
            skip_step: false,
            skipped: 0,
            evaluations: 0,
        }
    }

    /// The number of first steps that always run.
    pub fn warmup_steps(&self) -> usize {
        (self.steps as f64 * self.settings.warmup) as usize
    }

    /// The decision for `step`, made on the prompt branch's `input`: skip or not.
    fn decide(&mut self, step: usize, input: &Tensor) -> Result<bool> {
        let skip = if step < self.warmup_steps() || step + 1 >= self.steps {
            self.accumulated = 0.0;
            false
        } else {
            match (&self.previous_input, &self.computed_output, self.k) {
                (Some(before), Some(output), Some(k)) => {
                    let change = mean_abs(input, Some(before))? / mean_abs(output, None)?;
                    self.accumulated += k * change;
                    if self.accumulated < self.settings.threshold {
                        true
                    } else {
                        self.accumulated = 0.0;
                        false
                    }
                }
                _ => false,
            }
        };
        self.previous_input = Some(input.clone());
        Ok(skip)
    }
}

impl StepCache for EasyCache {
    fn pass(&mut self, _step: usize, _branch: usize) -> BlockPass<'_> {
        BlockPass::Run
    }

    fn evaluated(&mut self, _: usize, _: usize, _: Option<Tensor>) -> Result<()> {
        Ok(())
    }

    fn reuse(&mut self, step: usize, branch: usize, input: &Tensor) -> Result<Option<Tensor>> {
        self.evaluations += 1;
        if branch == 0 {
            self.skip_step = self.decide(step, input)?;
        }
        match (&self.transformation[branch], self.skip_step) {
            (Some(t), true) => {
                self.skipped += 1;
                Ok(Some((input + t)?))
            }
            _ => Ok(None),
        }
    }

    fn output(
        &mut self,
        _step: usize,
        branch: usize,
        input: &Tensor,
        output: &Tensor,
    ) -> Result<()> {
        if branch == 0 {
            if let (Some(before_out), Some(before_in)) =
                (&self.computed_output, &self.computed_input)
            {
                let input_change = mean_abs(input, Some(before_in))?;
                if input_change > 0.0 {
                    self.k = Some(mean_abs(output, Some(before_out))? / input_change);
                }
            }
            self.computed_input = Some(input.clone());
            self.computed_output = Some(output.clone());
        }
        self.transformation[branch] = Some((output - input)?);
        Ok(())
    }

    fn skipped(&self) -> usize {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn full(v: f32) -> Tensor {
        Tensor::full(v, (1, 2, 3), &Device::Cpu).unwrap()
    }

    /// Runs `cache` over a synthetic model: at step `i` the input is `inputs[i]` (every element
    /// equal) and the model maps an input `x` to `x * 3` (prompt) or `x * 2` (negative prompt).
    fn replay(cache: &mut EasyCache, inputs: &[f32], branches: usize) -> Vec<(bool, f32)> {
        let mut out = Vec::new();
        for (step, &x) in inputs.iter().enumerate() {
            for branch in 0..branches {
                let input = full(x);
                let (skipped, flow) = match cache.reuse(step, branch, &input).unwrap() {
                    Some(flow) => (true, flow),
                    None => {
                        let flow = full(x * (3 - branch) as f32);
                        cache.output(step, branch, &input, &flow).unwrap();
                        (false, flow)
                    }
                };
                let v = flow.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
                out.push((skipped, v));
            }
        }
        out
    }

    /// The decisions worked out by hand. Inputs 10, 9, 8, 7, 6, 5, 4, 3 over 8 steps, warm-up
    /// 0.25 (steps 0 and 1 run). The model is `3x`, so k = |Δout| / |Δin| = 3 once two steps
    /// have run (step 1), and each later step's predicted change is
    /// k · |Δin| / |last output| = 3 · 1 / (3 · x_last) = 1 / x_last:
    /// step 2: last output from x = 9: 1/9 = 0.111 < 0.25: skip (acc 0.111);
    /// step 3: acc 0.222 < 0.25: skip; step 4: acc 0.333: run, reset (last x now 6, k = 3);
    /// step 5: 1/6 = 0.167: skip; step 6: 0.333: run, reset; step 7: the last step, runs.
    #[test]
    fn decisions_follow_easycache_on_a_known_sequence() {
        let settings = EasyCacheSettings {
            threshold: 0.25,
            warmup: 0.25,
        };
        let inputs = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0];
        let mut cache = EasyCache::new(settings, 8);
        let got = replay(&mut cache, &inputs, 2);
        let skipped: Vec<bool> = got.iter().step_by(2).map(|(s, _)| *s).collect();
        assert_eq!(
            skipped,
            [false, false, true, true, false, true, false, false]
        );
        // The other branch follows the prompt branch's decision.
        let uncond: Vec<bool> = got.iter().skip(1).step_by(2).map(|(s, _)| *s).collect();
        assert_eq!(skipped, uncond);
        assert_eq!((cache.skipped, cache.evaluations), (6, 16));
        // A skip adds the last transformation to the input: at step 2 the prompt branch's
        // transformation is 3·9 − 9 = 18, so the output is 8 + 18 = 26 (the model: 24); the
        // other branch's is 2·9 − 9 = 9, so 17.
        assert_eq!((got[4].1, got[5].1), (26.0, 17.0));

        // A lower threshold skips nothing; a higher one skips every step between warm-up and
        // the last.
        let mut strict = EasyCache::new(
            EasyCacheSettings {
                threshold: 0.1,
                ..settings
            },
            8,
        );
        assert!(replay(&mut strict, &inputs, 1).iter().all(|(s, _)| !s));
        let mut loose = EasyCache::new(
            EasyCacheSettings {
                threshold: 100.0,
                ..settings
            },
            8,
        );
        let skipped: Vec<bool> = replay(&mut loose, &inputs, 1)
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(skipped, [false, false, true, true, true, true, true, false]);
    }

    /// Without a warm-up the first two steps still run: k needs two evaluations.
    #[test]
    fn k_needs_two_evaluations_and_an_input_that_moved() {
        let settings = EasyCacheSettings {
            threshold: 100.0,
            warmup: 0.0,
        };
        let mut cache = EasyCache::new(settings, 5);
        let skipped: Vec<bool> = replay(&mut cache, &[4.0, 3.0, 2.0, 1.0, 0.5], 1)
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(skipped, [false, false, true, true, false]);
        // An input that never moves gives no rate: every step runs.
        let mut cache = EasyCache::new(settings, 5);
        assert!(replay(&mut cache, &[2.0; 5], 1).iter().all(|(s, _)| !s));
    }
}
