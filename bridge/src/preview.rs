//! Live previews: how often a job shows the sampler's estimate of the finished clip while it
//! denoises, and how the estimate becomes frames. A preview changes nothing of the clip: it is
//! not in the cache key, never written to the cache, and only handed to whoever asks for it
//! ([`crate::JobHandle::latest_frame`], [`crate::JobHandle::preview`]); the decoded frames
//! replace it.

use crate::frame::Frame;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use t2v_models::preview::{latent_frame_of, LatentRgb};

/// The share of the denoising time that automatic previews may take.
pub const AUTO_BUDGET: f64 = 0.05;

/// When a job makes previews. Serialised as `"auto"` or `{"every": 3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewCadence {
    /// After the first step, then as often as keeps the previews under [`AUTO_BUDGET`] of
    /// the denoising time.
    Auto,
    /// After every `k` steps (`k` >= 1).
    Every(usize),
}

impl PreviewCadence {
    /// The more frequent of two (a job asked for by several submitters).
    pub fn merge(self, other: PreviewCadence) -> PreviewCadence {
        match (self, other) {
            (PreviewCadence::Every(a), PreviewCadence::Every(b)) => {
                PreviewCadence::Every(a.min(b).max(1))
            }
            (PreviewCadence::Every(a), PreviewCadence::Auto)
            | (PreviewCadence::Auto, PreviewCadence::Every(a)) => PreviewCadence::Every(a.max(1)),
            (PreviewCadence::Auto, PreviewCadence::Auto) => PreviewCadence::Auto,
        }
    }
}

/// A job's latest preview: every frame of the clip as estimated after `step` steps of `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub step: usize,
    pub steps: usize,
    pub frames: Vec<Frame>,
}

/// Decides, step by step, whether to make a preview, from the time spent denoising and the
/// time previews took so far.
#[derive(Debug, Clone, Default)]
pub struct PreviewClock {
    previews: u32,
    preview_time: Duration,
}

impl PreviewClock {
    /// Whether to preview after step `index` (0-based) of `steps`, `denoising` into the
    /// denoising loop. Never after the last step: the decoded frames come next.
    pub fn wants(
        &self,
        cadence: PreviewCadence,
        index: usize,
        steps: usize,
        denoising: Duration,
    ) -> bool {
        if index + 1 >= steps {
            return false;
        }
        match cadence {
            PreviewCadence::Every(k) => (index + 1).is_multiple_of(k.max(1)),
            PreviewCadence::Auto => {
                if self.previews == 0 {
                    return true;
                }
                let per_preview = self.preview_time / self.previews;
                (self.preview_time + per_preview).as_secs_f64()
                    <= AUTO_BUDGET * denoising.as_secs_f64()
            }
        }
    }

    /// Counts a preview that took `took`.
    pub fn made(&mut self, took: Duration) {
        self.previews += 1;
        self.preview_time += took;
    }

    pub fn previews(&self) -> u32 {
        self.previews
    }
}

/// What makes a job's previews: the tiny decoder when the model has one, else the projection.
pub enum PreviewSource {
    Projection(std::sync::Arc<LatentRgb>),
    TinyDecoder(std::sync::Arc<t2v_models::taehv::TaehvDecoder>),
}

impl PreviewSource {
    /// The preview frames of a clip of `frames` frames at `height` x `width` from the clean
    /// estimate `[1, C, F', h, w]`.
    pub fn frames(
        &self,
        denoised: &candle_core::Tensor,
        frames: usize,
        height: usize,
        width: usize,
        temporal: usize,
    ) -> t2v_models::Result<Vec<Frame>> {
        match self {
            PreviewSource::Projection(rgb) => {
                preview_frames(rgb, denoised, frames, height, width, temporal)
            }
            PreviewSource::TinyDecoder(tiny) => Ok(Frame::split(&tiny.decode(denoised)?)?),
        }
    }
}

/// The preview of a clip of `frames` frames from the clean-latent estimate `[1, C, F', h, w]`:
/// one picture per latent frame (see [`LatentRgb::images`]), shared by the video frames it
/// stands for.
pub fn preview_frames(
    rgb: &LatentRgb,
    denoised: &candle_core::Tensor,
    frames: usize,
    height: usize,
    width: usize,
    temporal: usize,
) -> t2v_models::Result<Vec<Frame>> {
    let pictures = Frame::split(&rgb.images(denoised, height, width)?)?;
    Ok((0..frames)
        .map(|f| pictures[latent_frame_of(f, temporal).min(pictures.len() - 1)].clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_cadence_counts_steps_and_skips_the_last() {
        let clock = PreviewClock::default();
        let at: Vec<usize> = (0..6)
            .filter(|&i| clock.wants(PreviewCadence::Every(2), i, 6, Duration::ZERO))
            .collect();
        assert_eq!(at, vec![1, 3]);
        let every = (0..3)
            .filter(|&i| clock.wants(PreviewCadence::Every(1), i, 3, Duration::ZERO))
            .count();
        assert_eq!(every, 2);
    }

    #[test]
    fn auto_cadence_keeps_previews_under_five_percent_of_denoising() {
        let mut clock = PreviewClock::default();
        let step = Duration::from_millis(100);
        let preview = Duration::from_millis(20);
        let mut made = Vec::new();
        for i in 0..50 {
            let denoising = step * (i as u32 + 1);
            if clock.wants(PreviewCadence::Auto, i, 50, denoising) {
                clock.made(preview);
                made.push(i);
            }
            let spent = clock.preview_time.as_secs_f64();
            assert!(
                made.len() == 1 || spent <= AUTO_BUDGET * denoising.as_secs_f64() + 1e-9,
                "step {i}: {spent} s of previews in {denoising:?}"
            );
        }
        // The first right away, then every 4th step or so (20 ms against 5% of 100 ms a step).
        assert_eq!(made[0], 0);
        assert!(made.len() >= 10 && made.len() <= 13, "{made:?}");
    }

    #[test]
    fn cadences_merge_to_the_more_frequent_and_round_trip() {
        use PreviewCadence::*;
        assert_eq!(Every(4).merge(Every(2)), Every(2));
        assert_eq!(Auto.merge(Every(3)), Every(3));
        assert_eq!(Auto.merge(Auto), Auto);
        assert_eq!(serde_json::to_string(&Auto).unwrap(), r#""auto""#);
        assert_eq!(serde_json::to_string(&Every(3)).unwrap(), r#"{"every":3}"#);
        let back: PreviewCadence = serde_json::from_str(r#"{"every":3}"#).unwrap();
        assert_eq!(back, Every(3));
    }
}
