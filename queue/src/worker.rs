//! The worker side: one process per GPU takes jobs from its pool's consumer one at a time and
//! runs each on the generation service it wraps ([`Service`], with the shared clip cache), so
//! everything the service does (merging, cancelling within a step, committing finished clips
//! to the cache) is the same as for a local render.
//!
//! While a job runs the worker publishes its state, progress and each decoded frame, sends
//! progress acks (so a long job is not given to another worker) and checks that some client
//! still wants it. A worker killed mid-job simply stops acking: the server gives the job to
//! another worker after `ack_wait` (clients see the new attempt). A job that kills every worker
//! it reaches stops after `max_deliver` deliveries: the server's advisory reaches the live
//! workers, which fail the job with a message every client sees.

use crate::connection::{
    frame_name, get_object, put_object, rejected_subject, server_err, Connection, Runtime,
    JOBS_STREAM,
};
use crate::message::{check_name, encode_frame, JobMessage, JobRecord, JobState, ModelEntry};
use crate::{QueueConfig, PROTOCOL_VERSION};
use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::kv;
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::Message;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use t2v_bridge::cache_key::image_hash;
use t2v_bridge::model_identity::{spec_fingerprint, spec_tiny_decoder};
use t2v_bridge::{
    Error, Image, JobHandle, MemoryBudget, ModelSpec, Precision, Request, Result, Service,
};

/// Test hook: a worker whose job has exactly this prompt aborts its process in the middle of
/// denoising, as a crash would (for the tests of redelivery and `max_deliver`).
pub const ABORT_ON_PROMPT_ENV: &str = "T2V_WORKER_TEST_ABORT_ON_PROMPT";
/// Test hook: as [`ABORT_ON_PROMPT_ENV`], once the job's first frames are in the frame store
/// (for the test that clients drop the frames of an attempt that died).
pub const ABORT_AFTER_FRAME_ON_PROMPT_ENV: &str = "T2V_WORKER_TEST_ABORT_AFTER_FRAME_ON_PROMPT";

/// Where a test hook crashes a job's worker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Crash {
    Never,
    AfterFirstStep,
    AfterFirstFrame,
}

impl Crash {
    fn for_prompt(prompt: &str) -> Crash {
        let is = |var| std::env::var(var).ok().as_deref() == Some(prompt);
        if is(ABORT_ON_PROMPT_ENV) {
            Crash::AfterFirstStep
        } else if is(ABORT_AFTER_FRAME_ON_PROMPT_ENV) {
            Crash::AfterFirstFrame
        } else {
            Crash::Never
        }
    }
}

/// What a worker has done since it started.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    pub done: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Messages refused (malformed, oversized, wrong version, unknown model).
    pub rejected: u64,
}

#[derive(Default)]
struct Counters {
    done: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    rejected: AtomicU64,
}

/// A worker serving one pool with one [`Service`].
pub struct QueueWorker {
    conn: Arc<Connection>,
    runtime: Runtime,
    service: Service,
    models: BTreeMap<String, ModelSpec>,
    name: String,
    consumer: async_nats::jetstream::consumer::Consumer<pull::Config>,
    ack_every: Duration,
    counters: Arc<Counters>,
    advisories: tokio::task::JoinHandle<()>,
    /// The GPU memory every job may use on this worker (`t2v worker --vram`).
    memory: MemoryBudget,
}

fn consumer_name(pool: &str) -> String {
    format!("gpu-{pool}")
}

impl QueueWorker {
    /// Connects, registers each model (its id, content fingerprint and precision) for the
    /// pool, and joins the pool's consumer.
    pub fn start(
        config: QueueConfig,
        service: Service,
        models: BTreeMap<String, ModelSpec>,
    ) -> Result<QueueWorker> {
        check_name("pool", &config.pool)?;
        if models.is_empty() {
            return Err(Error::bad_input(
                "a worker needs at least one model to serve",
            ));
        }
        let name = format!(
            "w-{}-{}",
            t2v_bridge::cache_sharing::host_name(),
            std::process::id()
        );
        let precision = Precision::Auto.resolve(service.device());
        let mut entries = Vec::new();
        for (id, spec) in &models {
            check_name("model id", id)?;
            let about = |e: Error| Error::bad_input(format!("model `{id}`: {}", e.message));
            entries.push(ModelEntry {
                v: PROTOCOL_VERSION,
                model_id: id.clone(),
                fingerprint: spec_fingerprint(spec).map_err(about)?,
                precision,
                tiny_decoder: spec_tiny_decoder(spec).map_err(about)?,
                worker: name.clone(),
            });
        }
        let (conn, runtime) = Connection::open(config, &format!("t2v worker {name}"))?;
        let pool = conn.config.pool.clone();
        let timings = conn.config.timings.clone();
        let c = conn.clone();
        let (consumer, ack_wait) = runtime.block_on(async move {
            for entry in &entries {
                let key = format!("{pool}.{}", entry.model_id);
                if let Ok(Some(old)) = c.models.get(&key).await {
                    if let Ok(old) = ModelEntry::parse(&old) {
                        if (&old.fingerprint, old.precision, &old.tiny_decoder)
                            != (&entry.fingerprint, entry.precision, &entry.tiny_decoder)
                        {
                            eprintln!(
                                "warning: model `{}` of pool `{pool}` was registered with other \
                                 weights, tiny decoder or precision by {}; every worker of a \
                                 pool must serve the same files on the same kind of device",
                                entry.model_id, old.worker
                            );
                        }
                    }
                }
                c.models
                    .put(&key, entry.to_bytes().into())
                    .await
                    .map_err(server_err!("registering a model"))?;
            }
            let stream =
                c.js.get_stream(JOBS_STREAM)
                    .await
                    .map_err(server_err!("the job stream"))?;
            let mut consumer: async_nats::jetstream::consumer::Consumer<pull::Config> = stream
                .get_or_create_consumer(
                    &consumer_name(&pool),
                    pull::Config {
                        durable_name: Some(consumer_name(&pool)),
                        filter_subject: format!("t2v.job.{pool}.>"),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: timings.ack_wait,
                        max_deliver: timings.max_deliver,
                        ..Default::default()
                    },
                )
                .await
                .map_err(server_err!("the pool's consumer"))?;
            let ack_wait = consumer
                .info()
                .await
                .map(|i| i.config.ack_wait)
                .unwrap_or(timings.ack_wait);
            Ok::<_, Error>((consumer, ack_wait))
        })?;
        let counters = Arc::new(Counters::default());
        let advisories = runtime.spawn(fail_poison_jobs(conn.clone(), counters.clone()));
        Ok(QueueWorker {
            conn,
            runtime,
            service,
            models,
            name,
            consumer,
            ack_every: ack_wait / 3,
            counters,
            advisories,
            memory: MemoryBudget::Auto,
        })
    }

    /// Plans every job within `budget` (default `auto`: the GPU's free memory less the host
    /// margin). The clip a job makes, and so its key, is the same under any budget.
    pub fn with_memory(mut self, budget: MemoryBudget) -> Self {
        self.memory = budget;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    pub fn stats(&self) -> WorkerStats {
        let c = &self.counters;
        WorkerStats {
            done: c.done.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
        }
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Serves jobs one at a time until `stop` is set. A job running then is cancelled here
    /// and handed back to the queue for another worker.
    pub fn serve(&self, stop: &AtomicBool) -> Result<()> {
        while !stop.load(Ordering::SeqCst) {
            let next = self.block_on(async {
                let mut batch = self
                    .consumer
                    .fetch()
                    .max_messages(1)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
                    .map_err(server_err!("fetching a job"))?;
                match batch.next().await {
                    Some(Ok(m)) => Ok(Some(m)),
                    Some(Err(e)) => Err(server_err!("fetching a job")(e)),
                    None => Ok(None),
                }
            });
            match next {
                Ok(Some(message)) => self.run(message, stop),
                Ok(None) => {}
                // The server is restarting or unreachable: the client reconnects by itself.
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
        Ok(())
    }

    fn ack(&self, message: &Message, kind: AckKind) {
        // Retried for a while: the server may be restarting. A lost ack means a redelivery,
        // which finds the job's record final and is acked then.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.block_on(message.ack_with(kind)).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn put_record(&self, key: &str, record: &JobRecord) -> Result<()> {
        let jobs = &self.conn.jobs;
        self.block_on(async {
            jobs.put(key, record.to_bytes().into())
                .await
                .map_err(server_err!("updating a job"))
        })
        .map(|_| ())
    }

    /// Writes a final record, retrying while the server is away.
    fn put_final(&self, key: &str, record: &JobRecord) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.put_record(key, record).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Refuses a message: its job (when the key is readable) fails with `error`, and the
    /// rejection is announced on `t2v.rejected.<pool>` for whoever sent it.
    fn reject(&self, key: Option<t2v_bridge::ClipKey>, error: Error) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        let key_hex = key.map(|k| k.to_hex());
        eprintln!(
            "rejected a job message ({}): {}",
            key_hex.as_deref().map_or("no clip key", |k| &k[..12]),
            error
        );
        if let Some(key) = &key_hex {
            if let Ok(Some(entry)) = self.block_on(self.conn.jobs.entry(key.as_str())) {
                if let Ok(mut record) = JobRecord::parse(&entry.value) {
                    if !record.state.is_final() {
                        record.state = JobState::Failed;
                        record.error = Some(error.clone());
                        self.put_final(key, &record);
                    }
                }
            }
        }
        let report = serde_json::json!({ "key": key_hex, "worker": self.name, "error": error });
        let subject = rejected_subject(&self.conn.config.pool);
        let client = &self.conn.client;
        self.block_on(async {
            let _ = client.publish(subject, report.to_string().into()).await;
            let _ = client.flush().await;
        });
    }

    /// The service's request for a job: the worker's own model files for the id, the first
    /// frame from the input store, and the key checked against the worker's own.
    fn request(&self, job: &JobMessage) -> Result<Request> {
        let spec = self.models.get(&job.model_id).ok_or_else(|| {
            Error::bad_input(format!(
                "pool `{}` serves no model `{}` (its models: {})",
                self.conn.config.pool,
                job.model_id,
                self.models.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let mut request = Request::new(spec.clone(), job.params.clone());
        request.precision = job.precision;
        request.decoder = job.decoder;
        request.memory = self.memory;
        if let Some(r) = &job.image {
            let bytes = self.block_on(get_object(&self.conn.inputs, &r.hash, r.bytes()))?;
            let image = Image::from_rgb8(r.width, r.height, bytes)?;
            if image_hash(&image) != r.hash {
                return Err(Error::bad_input(
                    "the first frame in the input store does not match its hash",
                ));
            }
            request.image = Some(image);
        }
        // The identity the client computed: this worker's memory plan (a tiled decode on a
        // small GPU) is not part of it. The clip is cached under the key of what is made.
        let key = self.service.request_key(&request)?;
        if key != job.key {
            return Err(Error::bad_input(format!(
                "the job's clip key is not this worker's for the same request: the clients and \
                 worker {} disagree on model `{}` (different weights registered under one id?)",
                self.name, job.model_id
            )));
        }
        Ok(request)
    }

    /// Whether any client still holds the job. `None` when the server could not say.
    fn interest(&self, key: &str) -> Option<bool> {
        let interest = &self.conn.interest;
        self.block_on(async {
            let mut subjects = interest
                .info_with_subjects(format!("t2v.interest.{key}.*"))
                .await
                .ok()?;
            subjects.try_next().await.ok().map(|s| s.is_some())
        })
    }

    fn run(&self, message: Message, stop: &AtomicBool) {
        let attempt = message.info().map_or(1, |i| i.delivered.max(1) as u32);
        let job = match JobMessage::parse(&message.payload) {
            Ok(job) => job,
            Err((key, e)) => {
                self.reject(key, e);
                self.ack(&message, AckKind::Term);
                return;
            }
        };
        let key = job.key.to_hex();
        let entry = self.block_on(self.conn.jobs.entry(key.as_str()));
        let record = match entry {
            Ok(Some(e)) if e.operation == kv::Operation::Put => JobRecord::parse(&e.value).ok(),
            Ok(_) => None,
            Err(_) => {
                // Cannot tell: let it come back.
                self.ack(&message, AckKind::Nak(Some(Duration::from_secs(1))));
                return;
            }
        };
        let Some(mut record) = record else {
            self.reject(
                None,
                Error::bad_input(format!(
                    "job {key} has no record: not submitted by a t2v client"
                )),
            );
            self.ack(&message, AckKind::Term);
            return;
        };
        if record.submission != job.submission || record.state.is_final() {
            // A stale duplicate: the job was asked again since, or is already over.
            self.ack(&message, AckKind::Ack);
            return;
        }
        let request = match self.request(&job) {
            Ok(r) => r,
            Err(e) => {
                self.reject(Some(job.key), e);
                self.ack(&message, AckKind::Term);
                return;
            }
        };
        if self.interest(&key) == Some(false) {
            record.state = JobState::Cancelled;
            self.put_final(&key, &record);
            self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
            self.ack(&message, AckKind::Term);
            return;
        }
        record.state = JobState::Running;
        record.attempt = attempt;
        record.worker = Some(self.name.clone());
        record.progress = None;
        record.frames_done = 0;
        record.error = None;
        let _ = self.put_record(&key, &record);
        eprintln!(
            "job {} attempt {attempt}: {}",
            &key[..12],
            job.params.prompt
        );
        // The plan is reported before anything loads; a budget too small fails the job below.
        if let Ok(plan) = self.service.plan(&request) {
            eprintln!(
                "job {}: memory budget {}: {}",
                &key[..12],
                self.memory,
                plan.peak_line()
            );
        }
        let crash = Crash::for_prompt(&job.params.prompt);
        let handle = match self.service.submit(request) {
            Ok(h) => h,
            Err(e) => {
                self.finish(&key, record, Err(e), &message);
                return;
            }
        };
        let outcome = self.follow(&key, &mut record, &handle, &message, stop, crash);
        match outcome {
            Some(outcome) => self.finish(&key, record, outcome, &message),
            None => {
                // Stopping: hand the job back for another worker.
                handle.cancel();
                record.state = JobState::Queued;
                self.put_final(&key, &record);
                self.ack(&message, AckKind::Nak(None));
            }
        }
    }

    /// Runs the job to its end while publishing it; `None` when the worker is stopping.
    fn follow(
        &self,
        key: &str,
        record: &mut JobRecord,
        handle: &JobHandle,
        message: &Message,
        stop: &AtomicBool,
        crash: Crash,
    ) -> Option<Result<Arc<t2v_bridge::Clip>>> {
        let interest_every = (self.conn.interest_ttl() / 6).min(Duration::from_millis(500));
        let mut next_ack = Instant::now() + self.ack_every;
        let mut next_interest = Instant::now() + interest_every;
        // After the server was unreachable, clients need a heartbeat's time to come back.
        let mut unsure_since: Option<Instant> = None;
        let mut last_published = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            let outcome = handle.wait_timeout(Duration::from_millis(50));
            let progress = handle.progress();
            if crash == Crash::AfterFirstStep && progress.steps_done >= 1 {
                eprintln!("aborting on the test hook's prompt");
                std::process::abort();
            }
            self.upload_frames(key, record, |i| handle.frame(i));
            if crash == Crash::AfterFirstFrame && record.frames_done >= 1 {
                eprintln!("aborting on the test hook's prompt after a frame");
                std::process::abort();
            }
            let now = Instant::now();
            if now >= next_ack {
                let _ = self.block_on(message.ack_with(AckKind::Progress));
                next_ack = now + self.ack_every;
            }
            if now >= next_interest && outcome.is_none() {
                next_interest = now + interest_every;
                match self.interest(key) {
                    None => unsure_since = Some(now),
                    Some(true) => unsure_since = None,
                    Some(false) => {
                        let settled = unsure_since
                            .is_none_or(|t| now.duration_since(t) > self.conn.interest_ttl());
                        if settled {
                            eprintln!(
                                "job {}: no client wants it any more: cancelling",
                                &key[..12]
                            );
                            handle.cancel();
                        }
                    }
                }
            }
            let changed = record.progress.as_ref().map(|p| p.stage) != Some(progress.stage);
            if outcome.is_none()
                && (changed || now.duration_since(last_published) > Duration::from_millis(100))
            {
                record.progress = Some(progress);
                if self.put_record(key, record).is_ok() {
                    last_published = now;
                }
            }
            if let Some(outcome) = outcome {
                return Some(outcome);
            }
        }
    }

    /// Puts the frames not yet in the frame store there, in order, as far as they exist.
    fn upload_frames(
        &self,
        key: &str,
        record: &mut JobRecord,
        frame: impl Fn(usize) -> Option<t2v_bridge::Frame>,
    ) {
        let before = record.frames_done;
        while record.frames_done < record.frames {
            let Some(f) = frame(record.frames_done) else {
                break;
            };
            let name = frame_name(key, record.attempt, record.frames_done);
            if self
                .block_on(put_object(&self.conn.frames, &name, &encode_frame(&f)))
                .is_err()
            {
                break; // Retried on the next round.
            }
            record.frames_done += 1;
        }
        if record.frames_done != before {
            let _ = self.put_record(key, record);
        }
    }

    fn finish(
        &self,
        key: &str,
        mut record: JobRecord,
        outcome: Result<Arc<t2v_bridge::Clip>>,
        message: &Message,
    ) {
        match outcome {
            Ok(clip) => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while record.frames_done < record.frames && Instant::now() < deadline {
                    self.upload_frames(key, &mut record, |i| clip.frames.get(i).cloned());
                    if record.frames_done < record.frames {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                if record.frames_done < record.frames {
                    // The server stayed away: let another delivery publish the clip (it is in
                    // the shared cache by now, so that is quick).
                    self.ack(message, AckKind::Nak(None));
                    return;
                }
                record.state = JobState::Done;
                record.progress = Some(t2v_bridge::JobProgress {
                    stage: t2v_bridge::JobStage::Done,
                    fraction: 1.0,
                    eta: None,
                    steps_done: record.progress.as_ref().map_or(0, |p| p.steps_done),
                    frames_done: record.frames,
                });
                record.metadata = Some(clip.metadata.clone());
                self.put_final(key, &record);
                self.counters.done.fetch_add(1, Ordering::Relaxed);
                eprintln!("job {}: done", &key[..12]);
                self.ack(message, AckKind::Ack);
            }
            Err(e) if e.is_cancelled() => {
                record.state = JobState::Cancelled;
                self.put_final(key, &record);
                self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
                eprintln!("job {}: cancelled", &key[..12]);
                self.ack(message, AckKind::Term);
            }
            Err(e) => {
                eprintln!("job {}: failed: {e}", &key[..12]);
                record.state = JobState::Failed;
                record.error = Some(e);
                self.put_final(key, &record);
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.ack(message, AckKind::Term);
            }
        }
    }
}

impl Drop for QueueWorker {
    fn drop(&mut self) {
        self.advisories.abort();
    }
}

/// The server's advisory for a job that reached `max_deliver`: every worker that was given it
/// died. Fails its record (with a message every client sees) and removes the message.
async fn fail_poison_jobs(conn: Arc<Connection>, counters: Arc<Counters>) {
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.{}",
        consumer_name(&conn.config.pool)
    );
    let Ok(mut advisories) = conn.client.subscribe(subject).await else {
        return;
    };
    let Ok(stream) = conn.js.get_stream(JOBS_STREAM).await else {
        return;
    };
    while let Some(advisory) = advisories.next().await {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(&advisory.payload) else {
            continue;
        };
        let (Some(seq), deliveries) = (json["stream_seq"].as_u64(), json["deliveries"].as_u64())
        else {
            continue;
        };
        let Ok(raw) = stream.get_raw_message(seq).await else {
            continue; // Another worker handled it.
        };
        if let Ok(job) = JobMessage::parse(&raw.payload) {
            let key = job.key.to_hex();
            if let Ok(Some(entry)) = conn.jobs.entry(key.as_str()).await {
                if let Ok(mut record) = JobRecord::parse(&entry.value) {
                    if record.submission == job.submission && !record.state.is_final() {
                        record.state = JobState::Failed;
                        record.error = Some(Error::failed(format!(
                            "this job was given to {} workers and each stopped (crashed or was \
                             killed) before finishing it; it is not retried again: check the \
                             workers' logs, then ask for the clip again",
                            deliveries.unwrap_or(0)
                        )));
                        if conn
                            .jobs
                            .update(&key, record.to_bytes().into(), entry.revision)
                            .await
                            .is_ok()
                        {
                            counters.failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("job {}: failed after {deliveries:?} deliveries", &key[..12]);
                        }
                    }
                }
            }
        }
        let _ = stream.delete_message(seq).await;
    }
}
