//! Jobs and their handles. A job is one clip being produced; every submitter of the same clip
//! holds a [`JobHandle`] to the same job. The job stops only when every holder has cancelled
//! (or dropped) its handle.

use crate::cache_key::ClipKey;
use crate::error::{Error, Result};
use crate::frame::{Frame, FrameKind, StreamedFrame};
use crate::metadata::ClipMetadata;
use crate::params::GenerationParams;
use crate::preview::{Preview, PreviewCadence};
use crate::progress::{JobProgress, JobStage, ProgressTracker};
use crate::request::{Latents, Request};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use t2v_models::checkpoint::ModelFiles;
use t2v_models::residency::ResidencyPlan;
use t2v_support::{lock, wait_until};

/// Called on the worker thread after every progress update (stage, step, decoded chunk), before
/// the worker checks for cancellation. Keep it short: the generation waits for it.
pub type ProgressObserver = Arc<dyn Fn(&JobProgress) + Send + Sync>;

/// A finished clip.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Clip {
    pub key: ClipKey,
    pub frames: Vec<Frame>,
    /// Final latents (before un-normalising), `[1, C, F', h, w]`.
    pub latents: Option<Latents>,
    pub metadata: ClipMetadata,
    /// Whether it was read from the disk cache rather than generated.
    pub from_cache: bool,
}

struct JobState {
    tracker: ProgressTracker,
    frames: Vec<Option<Frame>>,
    /// The latest preview while denoising; dropped once the job ends.
    preview: Option<Arc<Preview>>,
    /// Whether any submitter asked for previews, and how often.
    preview_cadence: Option<PreviewCadence>,
    outcome: Option<Result<Arc<Clip>>>,
    /// Handles still interested in the result.
    interest: usize,
    observers: Vec<ProgressObserver>,
}

pub(crate) struct Job {
    pub key: ClipKey,
    pub params: GenerationParams,
    /// The request with its inputs (first frame, starting latents) until the worker takes it;
    /// dropped as soon as the job is cancelled, so a cancelled job waiting in the queue holds
    /// no pictures or latents.
    request: Mutex<Option<Request>>,
    pub files: ModelFiles,
    pub fingerprint: String,
    /// What is on the device at each stage, decided at submission.
    pub plan: ResidencyPlan,
    state: Mutex<JobState>,
    changed: Condvar,
    cancel: AtomicBool,
}

impl Job {
    pub fn new(
        key: ClipKey,
        request: Request,
        files: ModelFiles,
        fingerprint: String,
        plan: ResidencyPlan,
    ) -> Arc<Job> {
        let frames = request.params.frames;
        let steps = request.params.steps;
        let preview_cadence = request.preview;
        Arc::new(Job {
            key,
            params: request.params.clone(),
            request: Mutex::new(Some(request)),
            files,
            fingerprint,
            plan,
            state: Mutex::new(JobState {
                tracker: ProgressTracker::new(frames, steps),
                frames: vec![None; frames],
                preview: None,
                preview_cadence,
                outcome: None,
                interest: 0,
                observers: Vec::new(),
            }),
            changed: Condvar::new(),
            cancel: AtomicBool::new(false),
        })
    }

    /// Registers one more interested handle; `None` when the job is already being cancelled
    /// (the submitter then starts a new job).
    pub fn attach(self: &Arc<Self>, observer: Option<ProgressObserver>) -> Option<JobHandle> {
        let mut s = lock(&self.state);
        if self.cancel_requested() {
            return None;
        }
        s.interest += 1;
        s.observers.extend(observer);
        Some(JobHandle {
            job: self.clone(),
            released: AtomicBool::new(false),
        })
    }

    /// A submitter that joined the job asks for previews too: the more frequent cadence wins.
    pub fn want_previews(&self, cadence: PreviewCadence) {
        let mut s = lock(&self.state);
        s.preview_cadence = Some(match s.preview_cadence {
            Some(current) => current.merge(cadence),
            None => cadence,
        });
    }

    /// Whether (and how often) to make previews; read at every step, so a submitter that joins
    /// a running job gets them from then on.
    pub fn preview_cadence(&self) -> Option<PreviewCadence> {
        lock(&self.state).preview_cadence
    }

    /// Publishes a preview of the whole clip (after a denoising step).
    pub fn publish_preview(&self, preview: Preview) {
        let mut s = lock(&self.state);
        if s.outcome.is_some() {
            return;
        }
        s.preview = Some(Arc::new(preview));
        self.notify(s);
    }

    fn release(&self) {
        let mut s = lock(&self.state);
        s.interest = s.interest.saturating_sub(1);
        let cancelled = s.interest == 0 && s.outcome.is_none();
        if cancelled {
            self.cancel.store(true, Ordering::SeqCst);
        }
        drop(s);
        if cancelled {
            self.drop_request();
        }
        self.changed.notify_all();
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Cancels regardless of interest (service shutdown).
    pub fn force_cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.drop_request();
    }

    fn drop_request(&self) {
        let request = lock(&self.request).take();
        drop(request);
    }

    /// The request, for the worker that starts the job; `None` once it was taken or the job
    /// was cancelled.
    pub fn take_request(&self) -> Option<Request> {
        lock(&self.request).take()
    }

    /// Whether the job still holds its request: not started, not cancelled.
    pub fn holds_request(&self) -> bool {
        lock(&self.request).is_some()
    }

    /// Bytes of inputs (first frame, starting latents) the job still holds.
    pub fn input_bytes(&self) -> u64 {
        lock(&self.request).as_ref().map_or(0, |r| {
            let image = r.image.as_ref().map_or(0, |i| i.rgb8().len());
            let latents = r
                .init_latents
                .as_ref()
                .map_or(0, |l| std::mem::size_of_val(l.data()));
            (image + latents) as u64
        })
    }

    /// Waiting for the worker: counts against [`crate::ServiceConfig::max_queued_jobs`].
    pub fn is_waiting(&self) -> bool {
        !self.cancel_requested() && self.holds_request()
    }

    fn notify(&self, s: MutexGuard<'_, JobState>) {
        let snapshot = s.tracker.progress.clone();
        let observers = s.observers.clone();
        drop(s);
        self.changed.notify_all();
        for observer in observers {
            // An observer's panic must not take the worker down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observer(&snapshot)));
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut ProgressTracker)) {
        let mut s = lock(&self.state);
        f(&mut s.tracker);
        self.notify(s);
    }

    pub fn set_stage(&self, stage: JobStage) {
        self.update(|t| t.set_stage(stage));
    }

    /// Publishes frames `first..first + frames.len()`; `from_cache` selects how they count.
    pub fn publish_frames(&self, first: usize, frames: Vec<Frame>, from_cache: bool) {
        let mut s = lock(&self.state);
        for (i, frame) in frames.into_iter().enumerate() {
            if let Some(slot) = s.frames.get_mut(first + i) {
                *slot = Some(frame);
            }
        }
        let done = s.frames.iter().filter(|f| f.is_some()).count();
        if from_cache {
            s.tracker.cache_frames_done(done);
        } else {
            s.tracker.frames_done(done);
        }
        self.notify(s);
    }

    /// Forgets published frames (a cache entry that failed verification half-way).
    pub fn reset_frames(&self) {
        let mut s = lock(&self.state);
        s.frames.iter_mut().for_each(|f| *f = None);
        s.preview = None;
        s.tracker.progress.frames_done = 0;
        self.notify(s);
    }

    /// Every frame, once all are published.
    pub fn all_frames(&self) -> Option<Vec<Frame>> {
        lock(&self.state).frames.iter().cloned().collect()
    }

    pub fn finish(&self, outcome: Result<Clip>) {
        let mut s = lock(&self.state);
        if s.outcome.is_some() {
            return;
        }
        let stage = match &outcome {
            Ok(_) => JobStage::Done,
            Err(e) if e.is_cancelled() => JobStage::Cancelled,
            Err(_) => JobStage::Failed,
        };
        if let Ok(clip) = &outcome {
            for (i, frame) in clip.frames.iter().enumerate() {
                if let Some(slot) = s.frames.get_mut(i) {
                    *slot = Some(frame.clone());
                }
            }
            s.tracker.progress.frames_done = clip.frames.len();
        }
        s.outcome = Some(outcome.map(Arc::new));
        s.preview = None;
        s.tracker.set_stage(stage);
        self.notify(s);
    }

    pub fn is_finished(&self) -> bool {
        lock(&self.state).outcome.is_some()
    }
}

/// A submitter's view of a job. Dropping it withdraws this submitter's interest, as
/// [`JobHandle::cancel`] does.
pub struct JobHandle {
    job: Arc<Job>,
    released: AtomicBool,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("key", &self.job.key)
            .finish()
    }
}

impl JobHandle {
    /// The clip's cache key; identical requests have identical keys.
    pub fn key(&self) -> ClipKey {
        self.job.key
    }

    fn is_released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    pub fn progress(&self) -> JobProgress {
        let mut p = lock(&self.job.state).tracker.progress.clone();
        if self.is_released() && !p.stage.is_final() {
            p.stage = JobStage::Cancelled;
            p.eta = None;
        }
        p
    }

    /// How many frames the clip will have.
    pub fn frame_count(&self) -> usize {
        self.job.params.frames
    }

    /// Frame `index`, if it has been published yet.
    pub fn frame(&self, index: usize) -> Option<Frame> {
        lock(&self.job.state).frames.get(index).cloned().flatten()
    }

    /// The newest picture of frame `index` in the job's stream: the decoded frame once it is
    /// published, else the latest preview of it (previews exist only while denoising, and only
    /// when a submitter asked for them). [`Self::frame`] never returns a preview.
    pub fn latest_frame(&self, index: usize) -> Option<StreamedFrame> {
        let s = lock(&self.job.state);
        if let Some(Some(frame)) = s.frames.get(index) {
            return Some(StreamedFrame {
                index,
                kind: FrameKind::Decoded,
                frame: frame.clone(),
            });
        }
        let preview = s.preview.as_ref()?;
        Some(StreamedFrame {
            index,
            kind: FrameKind::Preview {
                step: preview.step,
                steps: preview.steps,
            },
            frame: preview.frames.get(index)?.clone(),
        })
    }

    /// The latest preview of the whole clip, while the job denoises.
    pub fn preview(&self) -> Option<Arc<Preview>> {
        lock(&self.job.state).preview.clone()
    }

    /// Every frame published so far, in order, with its index.
    pub fn frames_so_far(&self) -> Vec<(usize, Frame)> {
        let s = lock(&self.job.state);
        s.frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.clone().map(|f| (i, f)))
            .collect()
    }

    /// Blocks until anything about the job changes (progress, frames, the end) or `timeout`
    /// passes. For a caller that waits while polling an abort flag of its own.
    pub fn wait_for_change(&self, timeout: Duration) {
        let s = lock(&self.job.state);
        if s.outcome.is_some() || self.is_released() {
            return;
        }
        let _ = self.job.changed.wait_timeout(s, timeout);
    }

    /// Blocks until frame `index` is published, the job ends, or `timeout` passes.
    pub fn wait_frame(&self, index: usize, timeout: Duration) -> Option<Frame> {
        wait_until(&self.job.state, &self.job.changed, timeout, |s| {
            match s.frames.get(index) {
                Some(Some(frame)) => Some(Some(frame.clone())),
                _ if s.outcome.is_some() || self.is_released() => Some(None),
                _ => None,
            }
        })
        .flatten()
    }

    /// The result, waiting at most `timeout`; `None` while the job is still running.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Arc<Clip>>> {
        wait_until(&self.job.state, &self.job.changed, timeout, |s| {
            if self.is_released() {
                return Some(Err(Error::cancelled()));
            }
            s.outcome.clone()
        })
    }

    /// Blocks until the job ends.
    pub fn wait(&self) -> Result<Arc<Clip>> {
        loop {
            if let Some(outcome) = self.wait_timeout(Duration::from_secs(3600)) {
                return outcome;
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        self.is_released() || self.job.is_finished()
    }

    /// The failure, if the job failed or was cancelled.
    pub fn error(&self) -> Option<Error> {
        if self.is_released() {
            return Some(Error::cancelled());
        }
        match &lock(&self.job.state).outcome {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Withdraws this submitter's interest. The job stops (within one transformer block or one
    /// VAE chunk) once no submitter wants it; a cancelled job writes nothing to the cache.
    pub fn cancel(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.job.release();
        }
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}
