//! The generation service: one worker thread per process owns the compute device and the loaded
//! models and serves every submitter in order. A second thread answers requests whose clip is in
//! the disk cache, so a cached clip never waits behind a generation and never loads a model.
//!
//! Identical requests (same [`ClipKey`]) are merged into one job while it is queued or running.
//! A job is cancelled when every submitter has cancelled or dropped its handle; the worker then
//! stops within one transformer block or one VAE chunk and writes nothing to the cache. A panic
//! in a job fails that job, not the worker.

use crate::cache_key::{clip_key_decoded, hex, model_fingerprint, ClipKey};
use crate::clip_cache::{default_cache_dir, ClipCache, Lookup, CACHE_DIR_ENV};
use crate::config::ServiceConfig;
use crate::device::device_name;
use crate::embedding_cache::EmbeddingCache;
use crate::error::{Error, Result};
use crate::fast_decode::{find_tiny_decoder, no_tiny_decoder, Decoder};
use crate::frame::Frame;
use crate::job::{Clip, Job, JobHandle, ProgressObserver};
use crate::memory::{self, PlanReport};
use crate::metadata::{ClipMetadata, ModelInfo, Timings};
use crate::model_identity::{remembered_hash, with_loras, with_tiny_decoder};
use crate::model_slot::{LoadCounters, ModelSlot, ResidentComponents};
use crate::preview::{Preview, PreviewClock, PreviewSource};
use crate::progress::JobStage;
use crate::request::{Latents, Request};
use crate::upscale::{FrameUpscaler, UpscalerSlot};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use t2v_models::checkpoint::{self, text_encoder_dtype, ModelFiles};
use t2v_models::lora::Loras;
use t2v_models::pipeline::{self, DenoiseInputs, Stage};
use t2v_models::residency::{DecodeMode, TextEncoderPlacement, TransformerPlacement};
use t2v_models::vae::Tiling;
use t2v_support::{lock, panic_message};

/// Counters of what the service has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStats {
    pub jobs_submitted: u64,
    /// Submissions that joined a job already queued or running for the same clip.
    pub jobs_merged: u64,
    /// Clips generated to the end.
    pub generations: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Cache entries that failed verification (removed and regenerated).
    pub corrupt_entries: u64,
    pub cache_write_errors: u64,
    /// Times a model went from nothing loaded to loaded.
    pub model_loads: u64,
    /// Component weight loads (text encoder, transformer, VAE).
    pub component_loads: u64,
    pub unloads: u64,
    pub embedding_hits: u64,
    pub embedding_misses: u64,
    /// Jobs that panicked (and failed).
    pub panics: u64,
    /// Jobs waiting for the worker now (not started, not cancelled).
    pub queued_jobs: u64,
    /// Bytes of inputs (first frames, starting latents) held by jobs not yet started; a
    /// cancelled job holds none.
    pub queued_input_bytes: u64,
    /// The components loaded right now.
    pub resident: ResidentComponents,
}

#[derive(Default)]
struct Counters {
    jobs_submitted: AtomicU64,
    jobs_merged: AtomicU64,
    generations: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    corrupt_entries: AtomicU64,
    cache_write_errors: AtomicU64,
    embedding_hits: AtomicU64,
    embedding_misses: AtomicU64,
    panics: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Shared {
    config: ServiceConfig,
    device: Device,
    /// The device's free memory when the service started (before it loaded anything): what
    /// the `auto` memory budget plans with. `None` on the CPU.
    free_memory: Option<u64>,
    cache: Option<ClipCache>,
    /// Jobs queued or running, by clip; submissions of the same clip join them.
    active: Mutex<HashMap<ClipKey, Arc<Job>>>,
    counters: Counters,
    loads: LoadCounters,
    shutting_down: AtomicBool,
}

impl Shared {
    /// Removes a job from the active set (unless a newer job took its key). Called just before
    /// the job's outcome is set, so that whoever sees the outcome and asks again starts afresh
    /// (and reads the cache) instead of joining the old job.
    fn retire(&self, job: &Arc<Job>) {
        let mut active = lock(&self.active);
        if active.get(&job.key).is_some_and(|j| Arc::ptr_eq(j, job)) {
            active.remove(&job.key);
        }
    }

    fn stopping(&self, job: &Job) -> bool {
        job.cancel_requested() || self.shutting_down.load(Ordering::SeqCst)
    }
}

enum Message {
    Job(Arc<Job>),
    Unload,
    Shutdown,
}

/// See the module documentation.
pub struct Service {
    shared: Arc<Shared>,
    compute_tx: Mutex<Option<Sender<Message>>>,
    reader_tx: Mutex<Option<Sender<Arc<Job>>>>,
    compute_thread: Mutex<Option<JoinHandle<()>>>,
    reader_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Service {
    /// Starts a service: resolves the device, opens the disk cache and starts the threads.
    pub fn new(config: ServiceConfig) -> Result<Service> {
        let device = config.device.resolve()?;
        let cache = if config.use_disk_cache {
            let dir = config.cache_dir.clone().or_else(default_cache_dir).ok_or_else(|| {
                Error::bad_input(format!("no cache folder could be found: set ${CACHE_DIR_ENV} or turn the cache off"))
            })?;
            Some(ClipCache::open(dir, config.cache_max_bytes)?)
        } else {
            None
        };
        let free_memory = memory::free_memory(&device);
        let shared = Arc::new(Shared {
            config,
            free_memory,
            device,
            cache,
            active: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            loads: LoadCounters::default(),
            shutting_down: AtomicBool::new(false),
        });
        let (compute_tx, compute_rx) = channel();
        let worker_shared = shared.clone();
        let compute_thread = std::thread::Builder::new()
            .name("t2v-worker".into())
            .spawn(move || Worker::new(worker_shared).run(compute_rx))
            .map_err(|e| Error::failed(format!("could not start the worker thread: {e}")))?;
        let (reader_tx, reader_thread) = if shared.cache.is_some() {
            let (tx, rx) = channel();
            let reader_shared = shared.clone();
            let forward = compute_tx.clone();
            let thread = std::thread::Builder::new()
                .name("t2v-cache-reader".into())
                .spawn(move || read_cached_clips(&reader_shared, rx, forward))
                .map_err(|e| Error::failed(format!("could not start the cache thread: {e}")))?;
            (Some(tx), Some(thread))
        } else {
            (None, None)
        };
        Ok(Service {
            shared,
            compute_tx: Mutex::new(Some(compute_tx)),
            reader_tx: Mutex::new(reader_tx),
            compute_thread: Mutex::new(Some(compute_thread)),
            reader_thread: Mutex::new(reader_thread),
        })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    pub fn device(&self) -> &Device {
        &self.shared.device
    }

    /// The device the service computes on: `cpu` or `cuda:N`.
    pub fn device_name(&self) -> String {
        device_name(&self.shared.device)
    }

    /// The disk cache, when it is on.
    pub fn cache(&self) -> Option<&ClipCache> {
        self.shared.cache.as_ref()
    }

    pub fn is_shut_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> ServiceStats {
        let c = &self.shared.counters;
        let l = &self.shared.loads;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (queued_jobs, queued_input_bytes) = lock(&self.shared.active)
            .values()
            .fold((0, 0), |(n, bytes), job| {
                (n + job.is_waiting() as u64, bytes + job.input_bytes())
            });
        ServiceStats {
            jobs_submitted: get(&c.jobs_submitted),
            jobs_merged: get(&c.jobs_merged),
            generations: get(&c.generations),
            cache_hits: get(&c.cache_hits),
            cache_misses: get(&c.cache_misses),
            corrupt_entries: get(&c.corrupt_entries),
            cache_write_errors: get(&c.cache_write_errors),
            model_loads: get(&l.model_loads),
            component_loads: get(&l.component_loads),
            unloads: get(&l.unloads),
            embedding_hits: get(&c.embedding_hits),
            embedding_misses: get(&c.embedding_misses),
            panics: get(&c.panics),
            queued_jobs,
            queued_input_bytes,
            resident: ResidentComponents::from_bits(l.resident.load(Ordering::SeqCst)),
        }
    }

    /// Finds the model's files (headers only) and checks the request. The second string is the
    /// fingerprint the clip key uses: the model's, with the tiny decoder's content for a fast
    /// decode.
    fn resolve(request: &Request) -> Result<(ModelFiles, String, String)> {
        request.params.validate()?;
        if let Some(upscale) = &request.upscale {
            upscale.output_size(request.params.width, request.params.height)?;
        }
        let o = &request.model.overrides;
        if request.model.path.is_none()
            && (o.transformer.is_none() || o.vae.is_none() || o.text_encoder.is_none())
        {
            return Err(Error::bad_input(
                "no model given: choose a model folder (a diffusers folder or a folder of Wan2.2 files)",
            ));
        }
        let files = ModelFiles::resolve(request.model.path.as_deref(), &o.to_models())?;
        let loras = &request.model.loras;
        if !loras.is_empty() {
            // Headers only: a LoRA that doesn't fit the model fails here, before any queueing.
            let opened = Loras::open(loras)?;
            checkpoint::open_component_with_loras(&files.transformer, &opened)?;
            checkpoint::open_component_with_loras(&files.text_encoder, &opened)?;
        }
        let fingerprint = with_loras(&model_fingerprint(&files)?, loras)?;
        let key_fingerprint = match request.decoder {
            Decoder::Full => fingerprint.clone(),
            Decoder::Fast => {
                let tiny = find_tiny_decoder(&files, o.fast_decoder.as_deref())?
                    .ok_or_else(|| no_tiny_decoder(&files))?;
                with_tiny_decoder(&fingerprint, &hex(&remembered_hash(&tiny)?))
            }
        };
        Ok((files, fingerprint, key_fingerprint))
    }

    /// `request` with its precision decided for this service's device
    /// ([`crate::Precision::Auto`] becomes the device's).
    fn decided(&self, mut request: Request) -> Request {
        request.precision = request.precision.resolve(&self.shared.device);
        request
    }

    /// The cache key `request` would have on this service (validating it and finding the
    /// model's files).
    pub fn key_for(&self, request: &Request) -> Result<ClipKey> {
        let request = self.decided(request.clone());
        let (files, _, key_fingerprint) = Self::resolve(&request)?;
        let plan = self.plan_of(&files, &request)?;
        clip_key_decoded(&request, &key_fingerprint, memory::tiled_decode(&plan))
    }

    /// The key `request` has before this service's memory plan is known: its whole-frame
    /// decode's ([`crate::cache_key::clip_key`]). A tiled decode, which this service plans only
    /// when the decode would not fit its memory, keys its clip apart
    /// ([`crate::cache_key::clip_key_decoded`]). This is the identity a queue client computes
    /// for a job, without the model's files or the worker's memory.
    pub fn request_key(&self, request: &Request) -> Result<ClipKey> {
        let request = self.decided(request.clone());
        let (_, _, key_fingerprint) = Self::resolve(&request)?;
        crate::cache_key::clip_key(&request, &key_fingerprint)
    }

    fn plan_of(
        &self,
        files: &ModelFiles,
        request: &Request,
    ) -> Result<t2v_models::residency::ResidencyPlan> {
        memory::plan_request(
            files,
            request,
            self.shared.free_memory,
            self.shared.config.mechanisms,
        )
    }

    /// What `request` would hold on this service's device at each stage, from the model's
    /// headers alone; an error when no plan fits its memory budget.
    pub fn plan(&self, request: &Request) -> Result<PlanReport> {
        let request = self.decided(request.clone());
        let (files, _, _) = Self::resolve(&request)?;
        let plan = self.plan_of(&files, &request)?;
        Ok(memory::report(&plan, request.memory))
    }

    /// Queues `request` (or joins the identical job already queued or running). Bad requests
    /// fail here, before anything is queued.
    pub fn submit(&self, request: Request) -> Result<JobHandle> {
        self.submit_observed(request, None)
    }

    /// [`Self::submit`] with an observer called on the worker thread at every progress update.
    pub fn submit_observed(
        &self,
        request: Request,
        observer: Option<ProgressObserver>,
    ) -> Result<JobHandle> {
        if self.is_shut_down() {
            return Err(Error::failed("the generation service has been shut down"));
        }
        let request = self.decided(request);
        let (files, fingerprint, key_fingerprint) = Self::resolve(&request)?;
        let plan = self.plan_of(&files, &request)?;
        let key = clip_key_decoded(&request, &key_fingerprint, memory::tiled_decode(&plan))?;
        let mut active = lock(&self.shared.active);
        let preview = request.preview;
        if let Some((job, handle)) = active.get(&key).and_then(|job| {
            job.attach(observer.clone())
                .map(|handle| (job.clone(), handle))
        }) {
            if let Some(cadence) = preview {
                job.want_previews(cadence);
            }
            bump(&self.shared.counters.jobs_submitted);
            bump(&self.shared.counters.jobs_merged);
            return Ok(handle);
        }
        let waiting = active.values().filter(|job| job.is_waiting()).count();
        if waiting >= self.shared.config.max_queued_jobs {
            return Err(Error::queue_full(waiting));
        }
        bump(&self.shared.counters.jobs_submitted);
        let job = Job::new(key, request, files, fingerprint, plan);
        let handle = job.attach(observer).expect("a new job is not cancelled");
        active.insert(key, job.clone());
        drop(active);
        let sent = match lock(&self.reader_tx).as_ref() {
            Some(tx) => tx.send(job.clone()).is_ok(),
            None => lock(&self.compute_tx)
                .as_ref()
                .is_some_and(|tx| tx.send(Message::Job(job.clone())).is_ok()),
        };
        if !sent {
            self.shared.retire(&job);
            job.finish(Err(Error::failed(
                "the generation service has been shut down",
            )));
        }
        Ok(handle)
    }

    /// Unloads the models and forgets cached prompt embeddings once the worker is between jobs.
    /// The next job loads again.
    pub fn unload(&self) {
        if let Some(tx) = lock(&self.compute_tx).as_ref() {
            let _ = tx.send(Message::Unload);
        }
    }

    /// Cancels all work, stops the threads and waits for them. Idempotent; also run on drop.
    pub fn shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        for job in lock(&self.shared.active).values() {
            job.force_cancel();
        }
        drop(lock(&self.reader_tx).take());
        if let Some(thread) = lock(&self.reader_thread).take() {
            let _ = thread.join();
        }
        if let Some(tx) = lock(&self.compute_tx).take() {
            let _ = tx.send(Message::Shutdown);
        }
        if let Some(thread) = lock(&self.compute_thread).take() {
            let _ = thread.join();
        }
        // Whatever raced in after the worker stopped.
        let left: Vec<Arc<Job>> = lock(&self.shared.active).drain().map(|(_, j)| j).collect();
        for job in left {
            job.finish(Err(Error::cancelled()));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The cache thread: serves hits, passes misses on to the worker.
fn read_cached_clips(shared: &Shared, jobs: Receiver<Arc<Job>>, worker: Sender<Message>) {
    let cache = shared
        .cache
        .as_ref()
        .expect("the cache thread runs only with a cache");
    for job in jobs {
        if shared.stopping(&job) {
            shared.retire(&job);
            job.finish(Err(Error::cancelled()));
            continue;
        }
        job.set_stage(JobStage::ReadingCache);
        let lookup = catch_unwind(AssertUnwindSafe(|| {
            cache.load_streaming(&job.key, &mut |i, frame| {
                job.publish_frames(i, vec![frame.clone()], true)
            })
        }))
        .unwrap_or_else(|_| Lookup::Corrupt("reading it panicked".into()));
        match lookup {
            Lookup::Hit(clip) => {
                bump(&shared.counters.cache_hits);
                shared.retire(&job);
                job.finish(Ok(Clip {
                    key: job.key,
                    frames: clip.frames,
                    latents: clip.latents.and_then(|t| Latents::from_tensor(&t).ok()),
                    metadata: clip.metadata,
                    from_cache: true,
                }));
                continue;
            }
            Lookup::Miss => bump(&shared.counters.cache_misses),
            Lookup::Corrupt(why) => {
                eprintln!("t2v: clip cache: {why}");
                bump(&shared.counters.cache_misses);
                bump(&shared.counters.corrupt_entries);
                job.reset_frames();
            }
        }
        job.set_stage(JobStage::Queued);
        if worker.send(Message::Job(job.clone())).is_err() {
            shared.retire(&job);
            job.finish(Err(Error::cancelled()));
        }
    }
}

/// Turns the pipeline's callbacks into job progress and published frames, and answers with
/// `Cancelled` once nobody wants the job.
struct JobSink<'a> {
    job: &'a Job,
    shared: &'a Shared,
    /// Decoded frames go through it before they are published.
    upscale: Option<FrameUpscaler>,
    upscale_s: f64,
    /// Present when the model has a preview projection; previews are made only while a
    /// submitter asks for them.
    preview: Option<PreviewMaker>,
}

/// Makes a job's previews from the sampler's estimates.
struct PreviewMaker {
    source: PreviewSource,
    clock: PreviewClock,
    denoising_since: Instant,
    temporal: usize,
}

impl JobSink<'_> {
    fn check(&self) -> t2v_models::Result<()> {
        if self.shared.stopping(self.job) {
            Err(t2v_models::Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

impl pipeline::Progress for JobSink<'_> {
    fn cancelled(&self) -> bool {
        self.shared.stopping(self.job)
    }
    fn stage(&mut self, stage: Stage) -> t2v_models::Result<()> {
        let steps = self.job.params.steps;
        match stage {
            Stage::EncodingPrompt => self.job.set_stage(JobStage::EncodingPrompt),
            Stage::EncodingImage => self.job.set_stage(JobStage::EncodingImage),
            Stage::Denoising => {
                if let Some(maker) = &mut self.preview {
                    maker.denoising_since = Instant::now();
                }
                self.job.update(|t| t.step_done(0, steps))
            }
            Stage::Decoding => self.job.update(|t| t.frames_done(0)),
        }
        self.check()
    }
    fn step(&mut self, index: usize, steps: usize, _latents: &Tensor) -> t2v_models::Result<()> {
        self.job.update(|t| t.step_done(index + 1, steps));
        self.check()
    }
    fn frames(&mut self, first: usize, frames: &Tensor) -> t2v_models::Result<()> {
        let frames = match &self.upscale {
            Some(upscale) => {
                let start = Instant::now();
                let upscaled = upscale.frames(frames, &|| self.check())?;
                self.upscale_s += start.elapsed().as_secs_f64();
                upscaled
            }
            None => Frame::split(frames)?,
        };
        self.job.publish_frames(first, frames, false);
        self.check()
    }
    fn wants_denoised(&self, index: usize, steps: usize) -> bool {
        match (&self.preview, self.job.preview_cadence()) {
            (Some(maker), Some(cadence)) => {
                maker
                    .clock
                    .wants(cadence, index, steps, maker.denoising_since.elapsed())
            }
            _ => false,
        }
    }
    fn denoised(&mut self, index: usize, steps: usize, x0: &Tensor) -> t2v_models::Result<()> {
        let Some(maker) = &mut self.preview else {
            return Ok(());
        };
        let start = Instant::now();
        let p = &self.job.params;
        // At the size of the frames the preview stands for (upscaled, when they are).
        let (width, height) = match &self.upscale {
            Some(u) => (u.width, u.height),
            None => (p.width, p.height),
        };
        let frames = maker
            .source
            .frames(x0, p.frames, height, width, maker.temporal)?;
        self.job.publish_preview(Preview {
            step: index + 1,
            steps,
            frames,
        });
        maker.clock.made(start.elapsed());
        self.check()
    }
}

/// The compute thread's state: the loaded model and the prompt embeddings.
struct Worker {
    shared: Arc<Shared>,
    slot: ModelSlot,
    upscalers: UpscalerSlot,
    embeddings: EmbeddingCache,
}

impl Worker {
    fn new(shared: Arc<Shared>) -> Self {
        let embeddings = EmbeddingCache::new(shared.config.embedding_cache_entries);
        Worker {
            shared,
            slot: ModelSlot::default(),
            upscalers: UpscalerSlot::default(),
            embeddings,
        }
    }

    fn run(mut self, messages: Receiver<Message>) {
        loop {
            let idle = self
                .shared
                .config
                .idle_unload
                .filter(|_| self.slot.is_loaded());
            let message = match idle {
                Some(idle) => match messages.recv_timeout(idle) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.slot.unload(&self.shared.loads);
                        self.upscalers.unload();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match messages.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            match message {
                Message::Job(job) => self.process(&job),
                Message::Unload => {
                    self.slot.unload(&self.shared.loads);
                    self.upscalers.unload();
                    self.embeddings.clear();
                }
                Message::Shutdown => break,
            }
        }
        self.slot.unload(&self.shared.loads);
    }

    fn process(&mut self, job: &Arc<Job>) {
        let request = job.take_request();
        let outcome = match request {
            Some(_) if self.shared.stopping(job) => Err(Error::cancelled()),
            None => Err(Error::cancelled()),
            Some(request) => {
                match catch_unwind(AssertUnwindSafe(|| self.generate(job, &request))) {
                    Ok(outcome) => outcome,
                    Err(panic) => {
                        bump(&self.shared.counters.panics);
                        // The panic may have left a component half-built: start clean next time.
                        self.slot.unload(&self.shared.loads);
                        self.upscalers.unload();
                        Err(Error::failed(format!(
                            "internal error while generating (please report it): {}",
                            panic_message(&*panic)
                        )))
                    }
                }
            }
        };
        self.shared.retire(job);
        job.finish(outcome);
    }

    fn check(&self, job: &Job) -> Result<()> {
        if self.shared.stopping(job) {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }

    /// Loads a component if it isn't, showing the stage and timing it.
    fn ensure<T>(
        &mut self,
        job: &Job,
        needed: bool,
        resume: JobStage,
        timings: &mut Timings,
        load: impl FnOnce(&mut ModelSlot, &Device, &LoadCounters) -> Result<T>,
    ) -> Result<T> {
        if needed {
            job.set_stage(JobStage::LoadingModel);
            self.check(job)?;
        }
        let start = Instant::now();
        let out = load(&mut self.slot, &self.shared.device, &self.shared.loads)?;
        if needed {
            timings.load_s += start.elapsed().as_secs_f64();
            job.set_stage(resume);
            self.check(job)?;
        }
        Ok(out)
    }

    fn generate(&mut self, job: &Job, request: &Request) -> Result<Clip> {
        let started = Instant::now();
        let params = &request.params.to_models();
        let device = self.shared.device.clone();
        if self.shared.config.panic_on_prompt.as_deref() == Some(params.prompt.as_str()) {
            panic!("test panic requested for this prompt");
        }
        let loads = &self.shared.loads;
        let dtype = request.precision.dtype();
        self.slot
            .select(&job.files, &model_fingerprint(&job.files)?, dtype, loads);
        self.slot
            .select_loras(&request.model.loras, &job.fingerprint);
        let mut timings = Timings::default();

        // Prompt embeddings, from the cache when the prompt was seen before.
        job.set_stage(JobStage::EncodingPrompt);
        self.check(job)?;
        let text_dtype = text_encoder_dtype(dtype);
        let mut texts = vec![params.prompt.clone()];
        if params.uses_guidance() {
            texts.push(params.negative_prompt().to_string());
        }
        let mechanisms = job.plan.mechanisms;
        let text_device = match mechanisms.text_encoder {
            TextEncoderPlacement::Cpu => Device::Cpu,
            _ => device.clone(),
        };
        let mut embeddings = Vec::new();
        for text in &texts {
            if let Some(e) = self.embeddings.get(&job.fingerprint, text_dtype, text) {
                bump(&self.shared.counters.embedding_hits);
                embeddings.push(e);
                continue;
            }
            bump(&self.shared.counters.embedding_misses);
            let needed = self.slot.needs_load_text_encoder(&text_device);
            if needed && mechanisms.text_encoder == TextEncoderPlacement::Alone {
                // Never beside the transformer: it is loaded again after encoding.
                self.slot.free_for_text_encoder(&self.shared.loads);
            }
            let (tokenizer, encoder) = self.ensure(
                job,
                needed,
                JobStage::EncodingPrompt,
                &mut timings,
                |slot, _, c| slot.text_encoder(&text_device, c),
            )?;
            let start = Instant::now();
            let e = t2v_models::text::encode_prompt(&tokenizer, &encoder, text, &device)?
                .to_device(&Device::Cpu)?;
            timings.encode_prompt_s += start.elapsed().as_secs_f64();
            self.embeddings
                .insert(&job.fingerprint, text_dtype, text, e.clone());
            embeddings.push(e);
            self.check(job)?;
        }
        if self.shared.config.low_memory
            || mechanisms.text_encoder != TextEncoderPlacement::WithTransformer
        {
            self.slot.free_text_encoder(&self.shared.loads);
        }

        let streamed = match mechanisms.transformer {
            TransformerPlacement::Resident => None,
            TransformerPlacement::Streamed { slots } => Some(slots),
        };
        let needed = self.slot.needs_load_transformer_as(streamed);
        let transformer = self.ensure(
            job,
            needed,
            JobStage::EncodingPrompt,
            &mut timings,
            |slot, d, c| slot.transformer(d, streamed, c),
        )?;
        let transformer = if mechanisms.ffn_chunks > 1 {
            Arc::new(transformer.with_ffn_chunks(mechanisms.ffn_chunks))
        } else {
            transformer
        };
        let prompt = transformer.prepare_context(&embeddings[0].to_device(&device)?)?;
        let negative = match embeddings.get(1) {
            Some(e) => Some(transformer.prepare_context(&e.to_device(&device)?)?),
            None => None,
        };
        let needed = self.slot.needs_load_vae();
        let vae = self.ensure(
            job,
            needed,
            JobStage::EncodingPrompt,
            &mut timings,
            |slot, d, c| slot.vae(d, c),
        )?;

        let first_frame = match &request.image {
            Some(image) => {
                job.set_stage(JobStage::EncodingImage);
                self.check(job)?;
                let start = Instant::now();
                let f = pipeline::encode_first_frame(&vae, &image.to_dynamic(), params, &device)?;
                timings.encode_image_s = start.elapsed().as_secs_f64();
                Some(f)
            }
            None => None,
        };
        let shape = pipeline::latent_shape(
            params,
            transformer.config().in_channels,
            vae.config().scale_factor_spatial,
        );
        let latents = match &request.init_latents {
            Some(l) => {
                if l.shape() != shape {
                    return Err(Error::bad_input(format!(
                        "the initial latents have shape {:?}; this request needs {shape:?}",
                        l.shape()
                    )));
                }
                l.to_tensor(&Device::Cpu)?
                    .to_dtype(DType::F32)?
                    .to_device(&device)?
            }
            None => pipeline::noise::seeded_noise(params.seed, &shape, &device)?,
        };
        self.check(job)?;
        let start = Instant::now();
        let (upscale, upscale_info) = request
            .upscale
            .as_ref()
            .map(|u| {
                self.upscalers
                    .prepare(u, params.width, params.height, &device)
            })
            .transpose()?
            .unzip();
        timings.load_s += start.elapsed().as_secs_f64();

        // The tiny decoder decodes a fast clip and makes the previews when the model has one.
        let wants_tiny = request.decoder == Decoder::Fast || request.preview.is_some();
        let tiny =
            match find_tiny_decoder(&job.files, request.model.overrides.fast_decoder.as_deref())? {
                Some(path) if wants_tiny => match self.slot.tiny_decoder(&path, &device) {
                    Ok(tiny) => Some(tiny),
                    Err(e) if request.decoder == Decoder::Fast => return Err(e),
                    Err(e) => {
                        eprintln!("t2v: previews without the tiny decoder: {e}");
                        None
                    }
                },
                _ => None,
            };
        if request.decoder == Decoder::Fast && tiny.is_none() {
            return Err(no_tiny_decoder(&job.files));
        }
        // The projection is looked for on every job, so that a submitter that joins a running
        // job and asks for previews gets them; a broken projection file fails only jobs that
        // asked.
        // The tiny decoder's previews come at the decoded size, so an upscaled clip previews
        // through the projection, which draws at any size.
        let source = match &tiny {
            Some(tiny) if request.upscale.is_none() => {
                Some(PreviewSource::TinyDecoder(tiny.clone()))
            }
            _ => match self.slot.latent_rgb(vae.config().z_dim) {
                Ok(rgb) => rgb.map(PreviewSource::Projection),
                Err(e) if request.preview.is_some() => return Err(e),
                Err(_) => None,
            },
        };
        let preview = source.map(|source| PreviewMaker {
            source,
            clock: PreviewClock::default(),
            denoising_since: Instant::now(),
            temporal: vae.config().scale_factor_temporal,
        });
        let mut sink = JobSink {
            job,
            shared: &self.shared,
            upscale,
            upscale_s: 0.0,
            preview,
        };
        let mut sampler = params
            .sampler
            .build(params.steps, params.shift, params.seed);
        let mut step_cache = pipeline::step_cache_for(
            params,
            &transformer,
            job.files.root.as_deref(),
            first_frame.is_some(),
        )?;
        let inputs = DenoiseInputs {
            latents,
            prompt: &prompt,
            negative: negative.as_ref(),
            guidance: params.guidance,
            first_frame,
        };
        let start = Instant::now();
        let latents = match step_cache.as_mut() {
            Some(cache) => pipeline::denoise_with(
                &transformer,
                sampler.as_mut(),
                inputs,
                cache.as_mut(),
                &mut sink,
            )?,
            None => pipeline::denoise(&transformer, sampler.as_mut(), inputs, &mut sink)?,
        };
        timings.denoise_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        match (request.decoder, &tiny) {
            (Decoder::Fast, Some(tiny)) => pipeline::decode_fast(tiny, &latents, &mut sink)?,
            _ => {
                let tiling = (mechanisms.decode == DecodeMode::Tiled).then_some(Tiling::DIFFUSERS);
                pipeline::decode_as(&vae, &latents, tiling, &mut sink)?
            }
        }
        timings.decode_s = start.elapsed().as_secs_f64();
        timings.upscale_s = sink.upscale_s;
        let frames = job.all_frames().ok_or_else(|| {
            Error::failed(format!(
                "the VAE decoded fewer than the {} frames asked for",
                params.frames
            ))
        })?;
        let latents = latents.to_device(&Device::Cpu)?;
        timings.total_s = started.elapsed().as_secs_f64();
        bump(&self.shared.counters.generations);

        let model = ModelInfo {
            path: job.files.root.as_ref().map(|p| p.display().to_string()),
            fingerprint: job.fingerprint.clone(),
            files: job
                .files
                .all_files()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            loras: request.model.loras.clone(),
        };
        let mut metadata = ClipMetadata::describe(request, job.key, model, device_name(&device));
        metadata.timings = timings;
        metadata.upscale = upscale_info;
        if let Some(cache) = &self.shared.cache {
            job.set_stage(JobStage::WritingCache);
            if cache
                .store(&job.key, &frames, Some(&latents), &metadata)
                .is_err()
            {
                // The clip is still good; it just won't be cached.
                bump(&self.shared.counters.cache_write_errors);
            }
        }
        Ok(Clip {
            key: job.key,
            frames,
            latents: Some(Latents::from_tensor(&latents)?),
            metadata,
            from_cache: false,
        })
    }
}
