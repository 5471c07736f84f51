//! Where a job is: its stage, the fraction done and an estimate of the time left.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// Serialised in snake case: `"queued"`, `{"denoising": {"step": 3, "steps": 50}}`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStage {
    /// Waiting behind other jobs.
    Queued,
    /// Verifying and reading a cached clip.
    ReadingCache,
    LoadingModel,
    EncodingPrompt,
    EncodingImage,
    /// `step` steps of `steps` are done.
    Denoising {
        step: usize,
        steps: usize,
    },
    /// `frame` frames of `frames` are decoded.
    Decoding {
        frame: usize,
        frames: usize,
    },
    WritingCache,
    Done,
    Failed,
    Cancelled,
}

impl JobStage {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStage::Done | JobStage::Failed | JobStage::Cancelled
        )
    }
}

impl fmt::Display for JobStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobStage::Queued => f.write_str("queued"),
            JobStage::ReadingCache => f.write_str("reading cache"),
            JobStage::LoadingModel => f.write_str("loading model"),
            JobStage::EncodingPrompt => f.write_str("encoding prompt"),
            JobStage::EncodingImage => f.write_str("encoding first frame"),
            JobStage::Denoising { step, steps } => write!(f, "denoising {step}/{steps}"),
            JobStage::Decoding { frame, frames } => write!(f, "decoding frame {frame}/{frames}"),
            JobStage::WritingCache => f.write_str("writing cache"),
            JobStage::Done => f.write_str("done"),
            JobStage::Failed => f.write_str("failed"),
            JobStage::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// A snapshot of a job's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    pub stage: JobStage,
    /// 0 to 1 over the whole job.
    pub fraction: f32,
    /// Time left, once there is enough of the job behind to judge.
    pub eta: Option<Duration>,
    /// Denoising steps completed so far.
    pub steps_done: usize,
    /// Frames decoded (or read from the cache) so far.
    pub frames_done: usize,
}

impl fmt::Display for JobProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:.0}%)", self.stage, self.fraction * 100.0)?;
        if let Some(eta) = self.eta {
            write!(f, ", {} left", format_duration(eta))?;
        }
        Ok(())
    }
}

pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Shares of the whole job: the prompt, the denoising loop, the decode.
const PROMPT_SHARE: f32 = 0.05;
const DENOISE_SHARE: f32 = 0.85;
const DECODE_SHARE: f32 = 0.10;

/// Turns stage events into [`JobProgress`]: fractions by fixed shares, the time left by
/// extrapolating from the work since the model was ready (loading times say nothing about the
/// rest).
pub(crate) struct ProgressTracker {
    pub progress: JobProgress,
    steps: usize,
    frames: usize,
    work_started: Option<(Instant, f32)>,
}

impl ProgressTracker {
    pub fn new(frames: usize, steps: usize) -> Self {
        ProgressTracker {
            progress: JobProgress {
                stage: JobStage::Queued,
                fraction: 0.0,
                eta: None,
                steps_done: 0,
                frames_done: 0,
            },
            steps: steps.max(1),
            frames: frames.max(1),
            work_started: None,
        }
    }

    fn fraction(&self) -> f32 {
        let p = &self.progress;
        let prompt = match p.stage {
            JobStage::Queued
            | JobStage::ReadingCache
            | JobStage::LoadingModel
            | JobStage::EncodingPrompt => 0.0,
            _ => PROMPT_SHARE,
        };
        let f = prompt
            + DENOISE_SHARE * p.steps_done as f32 / self.steps as f32
            + DECODE_SHARE * p.frames_done as f32 / self.frames as f32;
        if p.stage == JobStage::Done {
            1.0
        } else {
            f.min(1.0)
        }
    }

    pub fn set_stage(&mut self, stage: JobStage) {
        self.progress.stage = stage;
        if matches!(
            stage,
            JobStage::EncodingPrompt | JobStage::EncodingImage | JobStage::Denoising { .. }
        ) && self.work_started.is_none()
        {
            self.work_started = Some((Instant::now(), self.fraction()));
        }
        if stage == JobStage::LoadingModel {
            // Loading in the middle of a job (low-memory mode) pauses the clock.
            self.work_started = None;
        }
        self.update();
    }

    pub fn step_done(&mut self, done: usize, steps: usize) {
        self.steps = steps.max(1);
        self.progress.steps_done = done;
        self.set_stage(JobStage::Denoising { step: done, steps });
    }

    pub fn frames_done(&mut self, done: usize) {
        self.progress.frames_done = done;
        self.set_stage(JobStage::Decoding {
            frame: done,
            frames: self.frames,
        });
    }

    /// A clip read from the cache: only frames count.
    pub fn cache_frames_done(&mut self, done: usize) {
        self.progress.frames_done = done;
        self.progress.fraction = done as f32 / self.frames as f32;
    }

    fn update(&mut self) {
        let fraction = self.fraction();
        self.progress.fraction = fraction;
        self.progress.eta = self.work_started.and_then(|(start, f0)| {
            let done = fraction - f0;
            (done > 0.01 && fraction < 1.0)
                .then(|| start.elapsed().mul_f32((1.0 - fraction) / done))
        });
        if self.progress.stage.is_final() {
            self.progress.eta = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_through_json() {
        let stages = [
            JobStage::Queued,
            JobStage::ReadingCache,
            JobStage::LoadingModel,
            JobStage::EncodingPrompt,
            JobStage::EncodingImage,
            JobStage::Denoising { step: 3, steps: 50 },
            JobStage::Decoding {
                frame: 4,
                frames: 81,
            },
            JobStage::WritingCache,
            JobStage::Done,
            JobStage::Failed,
            JobStage::Cancelled,
        ];
        for stage in stages {
            let p = JobProgress {
                stage,
                fraction: 0.375,
                eta: Some(Duration::new(12, 345_678_901)),
                steps_done: 3,
                frames_done: 4,
            };
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(
                serde_json::from_str::<JobProgress>(&json).unwrap(),
                p,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_string(&JobStage::Denoising { step: 1, steps: 2 }).unwrap(),
            r#"{"denoising":{"step":1,"steps":2}}"#
        );
        assert_eq!(
            serde_json::to_string(&JobStage::ReadingCache).unwrap(),
            r#""reading_cache""#
        );
    }
}
