//! The client side: submit a clip to the worker pool or attach to the identical job already
//! queued or running (one generation for any number of identical requests), follow its
//! progress, receive its frames as they are decoded, and let go.
//!
//! A [`RemoteJob`] has the shape of the service's [`t2v_bridge::JobHandle`] (progress, frames so
//! far, waiting with a timeout, cancelling this client's interest; dropping it lets go too), so
//! the node and `t2v` drive both the same way. While it is held, a heartbeat keeps this
//! client's interest alive; a client that crashes stops sending it, and its interest lapses
//! after the interest TTL. A worker stops a job once no client's interest is left.

use crate::connection::{
    cancel_subject, frame_name, get_object, interest_subject, job_subject, put_object, server_err,
    Connection, Runtime,
};
use crate::message::{
    check_name, decode_frame, ImageRef, JobMessage, JobRecord, JobState, ModelEntry,
    PROTOCOL_VERSION,
};
use crate::offline::KnownModels;
use crate::QueueConfig;
use async_nats::jetstream::kv;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use t2v_bridge::cache_key::{clip_key, image_hash};
use t2v_bridge::model_identity::with_tiny_decoder;
use t2v_bridge::{
    Clip, ClipKey, Decoder, Error, Frame, GenerationParams, Image, JobProgress, JobStage,
    ModelSpec, Precision, Request, Result,
};
use t2v_support::{lock, wait_until};

/// What a client asks the pool for.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRequest {
    /// A model in the workers' configuration (`demo` for the built-in demo model).
    pub model_id: String,
    pub params: GenerationParams,
    /// `Auto` takes the pool's precision.
    pub precision: Precision,
    /// First frame, for image-to-video.
    pub image: Option<Image>,
    pub decoder: DecoderChoice,
}

/// The decoder a client asks the pool for; the client decides the job's [`Decoder`] from the
/// pool's [`ModelEntry`], which says whether its model has a tiny decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecoderChoice {
    /// The model's VAE decoder.
    #[default]
    Full,
    /// The tiny decoder: an error before anything is queued when the pool's model has none.
    Fast,
    /// The tiny decoder when the pool's model has one, else the full decoder: a style's
    /// preference (`draft`'s), as [`t2v_bridge::preferred_decoder`] decides it locally.
    FastWhenPresent,
}

impl From<Decoder> for DecoderChoice {
    /// A decoder asked for by name (`--decoder`, the node's `decoder`).
    fn from(decoder: Decoder) -> Self {
        match decoder {
            Decoder::Full => DecoderChoice::Full,
            Decoder::Fast => DecoderChoice::Fast,
        }
    }
}

impl DecoderChoice {
    /// A style's preferred decoder: fast where the pool's model has a tiny decoder.
    pub fn preferring(decoder: Decoder) -> Self {
        match decoder {
            Decoder::Full => DecoderChoice::Full,
            Decoder::Fast => DecoderChoice::FastWhenPresent,
        }
    }

    /// The decoder of a job for `entry`, the model of pool `pool`.
    pub fn resolve(self, entry: &ModelEntry, pool: &str) -> Result<Decoder> {
        match (self, &entry.tiny_decoder) {
            (DecoderChoice::Full, _) | (DecoderChoice::FastWhenPresent, None) => Ok(Decoder::Full),
            (DecoderChoice::Fast | DecoderChoice::FastWhenPresent, Some(_)) => Ok(Decoder::Fast),
            (DecoderChoice::Fast, None) => Err(Error::bad_input(format!(
                "the fast decoder needs a tiny decoder, and model `{}` of pool `{pool}` has none: \
                 put taew2_2.safetensors in a tiny_decoder folder of the workers' model folder \
                 (and restart them), or choose the full decoder",
                entry.model_id
            ))),
        }
    }
}

/// A connection to the queue as a client.
pub struct QueueClient {
    conn: Arc<Connection>,
    runtime: Runtime,
    id: String,
}

static CLIENTS: AtomicU64 = AtomicU64::new(0);

fn unique_id(prefix: &str) -> String {
    let host: String = t2v_bridge::cache_sharing::host_name()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(24)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}{host}-{}-{}-{nanos:x}",
        std::process::id(),
        CLIENTS.fetch_add(1, Ordering::Relaxed)
    )
}

/// The job message of `request` for a pool that serves its model as `entry` (what
/// [`QueueClient::prepare`] makes once it has read the entry).
pub fn prepare_with(entry: &ModelEntry, pool: &str, request: &RemoteRequest) -> Result<JobMessage> {
    let precision = match request.precision {
        Precision::Auto => entry.precision,
        p => p,
    };
    let decoder = request.decoder.resolve(entry, pool)?;
    let mut bridge_request = Request::new(ModelSpec::default(), request.params.clone());
    bridge_request.precision = precision;
    bridge_request.image = request.image.clone();
    bridge_request.decoder = decoder;
    // As the service makes it (`Service::key_for`), from the pool's published identities.
    let model = match (decoder, &entry.tiny_decoder) {
        (Decoder::Fast, Some(tiny)) => with_tiny_decoder(&entry.fingerprint, tiny),
        _ => entry.fingerprint.clone(),
    };
    let key = clip_key(&bridge_request, &model)?;
    let message = JobMessage {
        v: PROTOCOL_VERSION,
        key,
        model_id: request.model_id.clone(),
        params: request.params.clone(),
        precision,
        image: request.image.as_ref().map(|i| ImageRef {
            hash: image_hash(i),
            width: i.width(),
            height: i.height(),
        }),
        decoder,
        submission: unique_id("s-"),
    };
    message.check()?;
    Ok(message)
}

impl QueueClient {
    pub fn connect(config: QueueConfig) -> Result<QueueClient> {
        check_name("pool", &config.pool)?;
        let id = unique_id("c-");
        let (conn, runtime) = Connection::open(config, &format!("t2v client {id}"))?;
        Ok(QueueClient { conn, runtime, id })
    }

    /// This client's id in interest keys.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the pool serves under `model_id`.
    pub fn model(&self, model_id: &str) -> Result<ModelEntry> {
        check_name("model id", model_id)?;
        let pool = &self.conn.config.pool;
        let models = &self.conn.models;
        let found = self.conn.block_on(async {
            models
                .get(format!("{pool}.{model_id}"))
                .await
                .map_err(server_err!("the model registry"))
        })?;
        match found {
            Some(bytes) => ModelEntry::parse(&bytes),
            None => {
                let served = self.served_models();
                Err(Error::bad_input(format!(
                    "no worker of pool `{pool}` serves a model `{model_id}` (served: {}); \
                     a worker names its models in its --models file",
                    if served.is_empty() {
                        "none: is a worker running?".to_string()
                    } else {
                        served.join(", ")
                    }
                )))
            }
        }
    }

    /// The record of clip `key`'s job, if it has one.
    pub fn record(&self, key: &ClipKey) -> Result<Option<JobRecord>> {
        let jobs = &self.conn.jobs;
        let entry = self.conn.block_on(async {
            jobs.entry(key.to_hex())
                .await
                .map_err(server_err!("reading a job"))
        })?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => JobRecord::parse(&e.value).map(Some),
            _ => Ok(None),
        }
    }

    /// Every job record on the server, by clip key (for `t2v` and the pipeline's tools).
    pub fn records(&self) -> Result<Vec<(String, JobRecord)>> {
        use futures_util::TryStreamExt;
        let jobs = &self.conn.jobs;
        let keys: Vec<String> = self.conn.block_on(async {
            jobs.keys()
                .await
                .map_err(server_err!("listing jobs"))?
                .try_collect()
                .await
                .map_err(server_err!("listing jobs"))
        })?;
        let mut out = Vec::new();
        for key in keys {
            if let Some(k) = ClipKey::from_hex(&key) {
                if let Some(r) = self.record(&k)? {
                    out.push((key, r));
                }
            }
        }
        Ok(out)
    }

    /// Test hook: submits `message`'s job (its record and interest) but publishes `payload`
    /// as the job message: a malformed, oversized or wrong-version message as a faulty client
    /// would send it.
    #[doc(hidden)]
    pub fn submit_raw(&self, message: JobMessage, payload: Vec<u8>) -> Result<RemoteJob> {
        self.submit_with(message, Some(payload))
    }

    /// The model ids registered for this client's pool.
    pub fn served_models(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        let prefix = format!("{}.", self.conn.config.pool);
        let models = &self.conn.models;
        let keys: Vec<String> = self.conn.block_on(async {
            match models.keys().await {
                Ok(keys) => keys.try_collect().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            }
        });
        let mut ids: Vec<String> = keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        ids.sort();
        ids
    }

    /// The job message (and so the clip key) `request` makes: the precision decided from the
    /// pool's model entry, every limit checked. Look the key up in the clip cache before
    /// submitting: a cache hit needs no job.
    pub fn prepare(&self, request: &RemoteRequest) -> Result<JobMessage> {
        self.prepare_remembering(request, None)
    }

    /// [`Self::prepare`], remembering the pool's model entry in `known` for the times the
    /// server cannot be reached ([`crate::offline::find`]).
    pub fn prepare_remembering(
        &self,
        request: &RemoteRequest,
        known: Option<&KnownModels>,
    ) -> Result<JobMessage> {
        let entry = self.model(&request.model_id)?;
        if let Some(known) = known {
            known.remember(&self.conn.config.pool, &entry);
        }
        prepare_with(&entry, &self.conn.config.pool, request)
    }

    /// Submits `request`, or attaches to the identical job already queued, running or done.
    pub fn submit(&self, request: &RemoteRequest) -> Result<RemoteJob> {
        let message = self.prepare(request)?;
        self.submit_prepared(message, request.image.as_ref())
    }

    /// Submits a job message made by [`Self::prepare`] (with the request's first frame).
    pub fn submit_prepared(&self, message: JobMessage, image: Option<&Image>) -> Result<RemoteJob> {
        if let (Some(image), Some(r)) = (image, &message.image) {
            let inputs = &self.conn.inputs;
            self.conn
                .block_on(put_object(inputs, &r.hash, image.rgb8()))?;
        }
        self.submit_with(message, None)
    }

    fn submit_with(&self, message: JobMessage, payload: Option<Vec<u8>>) -> Result<RemoteJob> {
        let key = message.key.to_hex();
        let conn = self.conn.clone();
        let interest = interest_subject(&key, &self.id);
        // Interest first: a worker that takes the job must find it.
        self.conn.block_on(async {
            conn.js
                .publish(interest.clone(), "1".into())
                .await
                .map_err(server_err!("announcing interest"))?
                .await
                .map_err(server_err!("announcing interest"))
        })?;
        let message = self
            .conn
            .block_on(enqueue(&conn, message, payload.as_deref()))?;
        let shared = Arc::new(Shared {
            view: Mutex::new(View::new(&message)),
            changed: Condvar::new(),
            released: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        });
        let task = self
            .conn
            .spawn(follow(conn, message.clone(), interest, shared.clone()));
        Ok(RemoteJob {
            key: message.key,
            frames: message.params.frames,
            shared,
            task: Some(task),
            _runtime: self.runtime.clone(),
        })
    }
}

/// Puts `message`'s job in the queue unless an identical one is queued, running or done;
/// returns the message of the submission the client now follows.
async fn enqueue(
    conn: &Connection,
    mut message: JobMessage,
    payload: Option<&[u8]>,
) -> Result<JobMessage> {
    let key = message.key.to_hex();
    for _ in 0..8 {
        let record = JobRecord::queued(message.submission.clone(), message.params.frames);
        match conn.jobs.create(&key, record.to_bytes().into()).await {
            Ok(_) => {
                publish_job(conn, &message, payload).await?;
                return Ok(message);
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(server_err!("submitting a job")(e)),
        }
        let Some(entry) = conn
            .jobs
            .entry(&key)
            .await
            .map_err(server_err!("reading a job"))?
        else {
            continue; // Deleted in between: create again.
        };
        if entry.operation != kv::Operation::Put {
            let _ = conn.jobs.purge(&key).await;
            continue;
        }
        let existing = JobRecord::parse(&entry.value)?;
        match existing.state {
            JobState::Queued => {
                // Publish again under the same submission id: the server drops it if the first
                // publication arrived, and it stands in for one a crashed client never sent.
                message.submission = existing.submission;
                publish_job(conn, &message, payload).await?;
                return Ok(message);
            }
            JobState::Running | JobState::Done => {
                message.submission = existing.submission;
                return Ok(message);
            }
            JobState::Failed | JobState::Cancelled => {
                // Ask again: a new submission replaces the old one, once.
                let fresh = JobRecord::queued(unique_id("s-"), message.params.frames);
                if conn
                    .jobs
                    .update(&key, fresh.to_bytes().into(), entry.revision)
                    .await
                    .is_ok()
                {
                    message.submission = fresh.submission;
                    publish_job(conn, &message, payload).await?;
                    return Ok(message);
                }
            }
        }
    }
    Err(Error::failed(
        "queue server: the job's record kept changing while submitting; try again",
    ))
}

async fn publish_job(
    conn: &Connection,
    message: &JobMessage,
    payload: Option<&[u8]>,
) -> Result<()> {
    let subject = job_subject(&conn.config.pool, &message.model_id);
    let payload = payload.map_or_else(|| message.to_bytes(), <[u8]>::to_vec);
    let publish = async_nats::jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .message_id(&message.submission);
    conn.js
        .send_publish(subject, publish)
        .await
        .map_err(server_err!("queueing a job"))?
        .await
        .map_err(server_err!("queueing a job"))?;
    Ok(())
}

struct View {
    state: JobState,
    submission: String,
    attempt: u32,
    progress: JobProgress,
    frames: Vec<Option<Frame>>,
    outcome: Option<Result<Arc<Clip>>>,
}

impl View {
    fn new(message: &JobMessage) -> View {
        View {
            state: JobState::Queued,
            submission: message.submission.clone(),
            attempt: 0,
            progress: JobProgress {
                stage: JobStage::Queued,
                fraction: 0.0,
                eta: None,
                steps_done: 0,
                frames_done: 0,
            },
            frames: vec![None; message.params.frames],
            outcome: None,
        }
    }

    fn frames_held(&self) -> usize {
        self.frames.iter().take_while(|f| f.is_some()).count()
    }
}

struct Shared {
    view: Mutex<View>,
    changed: Condvar,
    released: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut View)) {
        f(&mut lock(&self.view));
        self.changed.notify_all();
    }

    fn finish(&self, outcome: Result<Arc<Clip>>) {
        self.update(|v| {
            if v.outcome.is_none() {
                v.progress.stage = match &outcome {
                    Ok(_) => JobStage::Done,
                    Err(e) if e.is_cancelled() => JobStage::Cancelled,
                    Err(_) => JobStage::Failed,
                };
                v.progress.eta = None;
                if outcome.is_ok() {
                    v.progress.fraction = 1.0;
                }
                v.outcome = Some(outcome);
            }
        });
    }
}

/// Follows one job until it ends or the client lets go: heartbeats, record polling, frames.
async fn follow(conn: Arc<Connection>, message: JobMessage, interest: String, shared: Arc<Shared>) {
    let key = message.key.to_hex();
    let heartbeat_every = conn.interest_ttl() / 3;
    let mut next_heartbeat = Instant::now() + heartbeat_every;
    let mut message = message;
    loop {
        if shared.released.load(Ordering::SeqCst) {
            let _ = conn.interest.purge().filter(interest.clone()).await;
            let _ = conn.client.publish(cancel_subject(&key), "".into()).await;
            let _ = conn.client.flush().await;
            return;
        }
        if Instant::now() >= next_heartbeat {
            // Failures are fine: the server may be restarting; the next one counts.
            if let Ok(ack) = conn.js.publish(interest.clone(), "1".into()).await {
                let _ = ack.await;
            }
            next_heartbeat = Instant::now() + heartbeat_every;
        }
        if let Ok(Some(entry)) = conn.jobs.entry(&key).await {
            if entry.operation == kv::Operation::Put {
                match JobRecord::parse(&entry.value) {
                    Ok(record) => {
                        if let Some(done) =
                            absorb(&conn, &mut message, &record, entry.revision, &shared).await
                        {
                            shared.finish(done);
                            let _ = conn.interest.purge().filter(interest.clone()).await;
                            return;
                        }
                    }
                    Err(e) => {
                        shared.finish(Err(e));
                        let _ = conn.interest.purge().filter(interest.clone()).await;
                        return;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(conn.config.timings.poll, shared.wake.notified()).await;
    }
}

/// Takes in a new state of the record: new attempt, progress, frames. `Some` once the job has
/// ended for this client.
async fn absorb(
    conn: &Connection,
    message: &mut JobMessage,
    record: &JobRecord,
    revision: u64,
    shared: &Shared,
) -> Option<Result<Arc<Clip>>> {
    let key = message.key.to_hex();
    let (held, attempt) = {
        let mut v = lock(&shared.view);
        if record.submission != v.submission || record.attempt != v.attempt {
            // Another submission or another worker's attempt: its frames start again.
            v.frames.iter_mut().for_each(|f| *f = None);
            v.submission = record.submission.clone();
            v.attempt = record.attempt;
        }
        v.state = record.state;
        if let Some(p) = &record.progress {
            v.progress = p.clone();
        }
        (v.frames_held(), v.attempt)
    };
    shared.changed.notify_all();
    let (width, height) = (message.params.width, message.params.height);
    let limit = 16 + width * height * 6;
    for index in held..record.frames_done {
        let name = frame_name(&key, attempt, index);
        let frame = match get_object(&conn.frames, &name, limit).await {
            Ok(bytes) => decode_frame(&bytes, width, height),
            Err(e) => Err(e),
        };
        match frame {
            Ok(frame) => shared.update(|v| {
                if v.attempt == attempt {
                    if let Some(slot) = v.frames.get_mut(index) {
                        *slot = Some(frame);
                    }
                }
            }),
            Err(_) if record.state == JobState::Done => {
                // The frames of an old clip expired from the frame store: generate it again.
                return resubmit(conn, message, revision).await;
            }
            Err(_) => break, // Retried at the next poll.
        }
    }
    match record.state {
        JobState::Queued | JobState::Running => None,
        JobState::Done => {
            let v = lock(&shared.view);
            let frames: Option<Vec<Frame>> = v.frames.iter().cloned().collect();
            let metadata = record.metadata.clone();
            drop(v);
            match (frames, metadata) {
                (Some(frames), Some(metadata)) => Some(Ok(Arc::new(Clip {
                    key: message.key,
                    frames,
                    latents: None,
                    metadata,
                    from_cache: false,
                }))),
                (_, None) => Some(Err(Error::failed(
                    "the worker reported the clip done without its metadata",
                ))),
                (None, _) => None,
            }
        }
        JobState::Failed => Some(Err(record
            .error
            .clone()
            .unwrap_or_else(|| Error::failed("the job failed on its worker")))),
        // Cancelled while this client still wants it (it attached as the last holder let go):
        // ask again.
        JobState::Cancelled => resubmit(conn, message, revision).await,
    }
}

async fn resubmit(
    conn: &Connection,
    message: &mut JobMessage,
    revision: u64,
) -> Option<Result<Arc<Clip>>> {
    let fresh = JobRecord::queued(unique_id("s-"), message.params.frames);
    let key = message.key.to_hex();
    if conn
        .jobs
        .update(&key, fresh.to_bytes().into(), revision)
        .await
        .is_ok()
    {
        message.submission = fresh.submission;
        if let Err(e) = publish_job(conn, message, None).await {
            return Some(Err(e));
        }
    }
    // Whether this client or another one asked again, the next poll follows the new record.
    None
}

/// A client's view of a job in the pool. Dropping it lets go of the job, as
/// [`RemoteJob::cancel`] does.
pub struct RemoteJob {
    key: ClipKey,
    frames: usize,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
    _runtime: Runtime,
}

impl std::fmt::Debug for RemoteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJob").field("key", &self.key).finish()
    }
}

impl RemoteJob {
    pub fn key(&self) -> ClipKey {
        self.key
    }

    pub fn frame_count(&self) -> usize {
        self.frames
    }

    pub fn progress(&self) -> JobProgress {
        let v = lock(&self.shared.view);
        let mut p = v.progress.clone();
        p.frames_done = v.frames_held();
        if self.is_released() && !p.stage.is_final() {
            p.stage = JobStage::Cancelled;
            p.eta = None;
        }
        p
    }

    /// The state of the job on the server.
    pub fn state(&self) -> JobState {
        lock(&self.shared.view).state
    }

    /// The worker's attempt (1 for the first delivery); a new one resets the frames held.
    pub fn attempt(&self) -> u32 {
        lock(&self.shared.view).attempt
    }

    pub fn frame(&self, index: usize) -> Option<Frame> {
        lock(&self.shared.view).frames.get(index).cloned().flatten()
    }

    pub fn frames_so_far(&self) -> Vec<(usize, Frame)> {
        let v = lock(&self.shared.view);
        v.frames
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.clone().map(|f| (i, f)))
            .collect()
    }

    fn is_released(&self) -> bool {
        self.shared.released.load(Ordering::SeqCst)
    }

    /// Blocks until anything changes or `timeout` passes.
    pub fn wait_for_change(&self, timeout: Duration) {
        let v = lock(&self.shared.view);
        if v.outcome.is_some() || self.is_released() {
            return;
        }
        let _ = self.shared.changed.wait_timeout(v, timeout);
    }

    /// Blocks until frame `index` arrives, the job ends, or `timeout` passes.
    pub fn wait_frame(&self, index: usize, timeout: Duration) -> Option<Frame> {
        wait_until(
            &self.shared.view,
            &self.shared.changed,
            timeout,
            |v| match v.frames.get(index) {
                Some(Some(frame)) => Some(Some(frame.clone())),
                _ if v.outcome.is_some() || self.is_released() => Some(None),
                _ => None,
            },
        )
        .flatten()
    }

    /// The result, waiting at most `timeout`; `None` while the job goes on.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Arc<Clip>>> {
        wait_until(&self.shared.view, &self.shared.changed, timeout, |v| {
            if self.is_released() {
                return Some(Err(Error::cancelled()));
            }
            v.outcome.clone()
        })
    }

    pub fn wait(&self) -> Result<Arc<Clip>> {
        loop {
            if let Some(outcome) = self.wait_timeout(Duration::from_secs(3600)) {
                return outcome;
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        self.is_released() || lock(&self.shared.view).outcome.is_some()
    }

    /// Lets go of the job: this client's interest is withdrawn at once. The job stops (within
    /// a step, caching nothing) once no client wants it.
    pub fn cancel(&self) {
        if !self.shared.released.swap(true, Ordering::SeqCst) {
            self.shared.wake.notify_one();
            self.shared.changed.notify_all();
        }
    }
}

impl Drop for RemoteJob {
    fn drop(&mut self) {
        self.cancel();
        // Let the follower withdraw the interest before the connection may go away.
        if let Some(task) = self.task.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !task.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tiny_decoder: Option<&str>) -> ModelEntry {
        ModelEntry {
            v: PROTOCOL_VERSION,
            model_id: "wan".into(),
            fingerprint: "f".into(),
            precision: Precision::Bf16,
            tiny_decoder: tiny_decoder.map(String::from),
            worker: "w".into(),
        }
    }

    #[test]
    fn the_decoder_follows_what_the_pools_model_has() {
        let (with, without) = (entry(Some("t")), entry(None));
        let decide = |choice: DecoderChoice, e: &ModelEntry| choice.resolve(e, "farm");
        assert_eq!(decide(DecoderChoice::Full, &with).unwrap(), Decoder::Full);
        assert_eq!(decide(DecoderChoice::Fast, &with).unwrap(), Decoder::Fast);
        assert_eq!(
            decide(DecoderChoice::FastWhenPresent, &with).unwrap(),
            Decoder::Fast
        );
        assert_eq!(
            decide(DecoderChoice::FastWhenPresent, &without).unwrap(),
            Decoder::Full
        );
        assert_eq!(DecoderChoice::from(Decoder::Fast), DecoderChoice::Fast);
        assert_eq!(
            DecoderChoice::preferring(Decoder::Fast),
            DecoderChoice::FastWhenPresent
        );
        assert_eq!(
            DecoderChoice::preferring(Decoder::Full),
            DecoderChoice::Full
        );
        let e = decide(DecoderChoice::Fast, &without).unwrap_err();
        assert_eq!(e.kind, t2v_bridge::ErrorKind::BadInput);
        assert!(
            e.message.contains("model `wan` of pool `farm` has none"),
            "{e}"
        );
    }
}
