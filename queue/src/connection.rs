//! One connection to the queue server with the tokio runtime that drives it: async-nats needs
//! tokio, and this module keeps it inside. Everything above calls [`Connection::block_on`] from
//! ordinary threads; no tokio type leaves the crate.
//!
//! What lives on the server (created by whoever comes first, with the timings of
//! [`crate::Timings`]):
//!
//! | name | kind | holds |
//! |---|---|---|
//! | `T2V_JOBS` | stream, work-queue retention, file storage | job messages, subjects `t2v.job.<pool>.<model_id>` |
//! | `gpu-<pool>` | durable pull consumer of `T2V_JOBS` | one per pool, shared by its workers (`ack_wait`, `max_deliver`) |
//! | `t2v_jobs` | KV bucket | [`crate::JobRecord`] per clip key |
//! | `t2v_models` | KV bucket | [`crate::ModelEntry`] per `<pool>.<model_id>` |
//! | `T2V_INTEREST` | stream, one message per subject, `max_age` = interest TTL | `t2v.interest.<clip>.<client>` heartbeats |
//! | `t2v_frames` | object store, `max_age` = frames TTL | `<clip>/<attempt>/<index>` decoded frames |
//! | `t2v_inputs` | object store | first frames by pixel hash |

use crate::config::{Credentials, QueueConfig};
use async_nats::jetstream::{self, kv, object_store, stream};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use t2v_bridge::{Error, Result};
use tokio::io::AsyncReadExt;

pub const JOBS_STREAM: &str = "T2V_JOBS";
pub const INTEREST_STREAM: &str = "T2V_INTEREST";
pub const JOBS_BUCKET: &str = "t2v_jobs";
pub const MODELS_BUCKET: &str = "t2v_models";
pub const FRAMES_BUCKET: &str = "t2v_frames";
pub const INPUTS_BUCKET: &str = "t2v_inputs";
/// How long a first frame stays in the input store.
const INPUTS_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long one server request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn job_subject(pool: &str, model_id: &str) -> String {
    format!("t2v.job.{pool}.{model_id}")
}
pub fn interest_subject(key: &str, client: &str) -> String {
    format!("t2v.interest.{key}.{client}")
}
/// Explicit cancels are announced here, so a worker need not wait for the interest to lapse.
pub fn cancel_subject(key: &str) -> String {
    format!("t2v.cancel.{key}")
}
/// Messages no job could be told about (no readable clip key) are reported here.
pub fn rejected_subject(pool: &str) -> String {
    format!("t2v.rejected.{pool}")
}
pub fn frame_name(key: &str, attempt: u32, index: usize) -> String {
    format!("{key}/{attempt}/{index}")
}

/// A server error as the service's error type: what failed, and what to check.
pub fn server_error(what: &str) -> impl Fn(&dyn std::fmt::Display) -> Error + '_ {
    move |e| Error::failed(format!("queue server: {what}: {e}"))
}

macro_rules! server_err {
    ($what:expr) => {
        |e| crate::connection::server_error($what)(&e)
    };
}
pub(crate) use server_err;

pub struct Connection {
    pub config: QueueConfig,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub jobs: kv::Store,
    pub models: kv::Store,
    pub frames: object_store::ObjectStore,
    pub inputs: object_store::ObjectStore,
    pub interest: stream::Stream,
    /// Only a handle: the runtime itself is owned by the synchronous owners ([`Runtime`]), so
    /// it is never dropped on one of its own threads.
    runtime: tokio::runtime::Handle,
}

/// The tokio runtime behind a connection, held by the synchronous types that use it.
pub type Runtime = Arc<tokio::runtime::Runtime>;

impl Connection {
    /// Connects and makes sure every stream and bucket exists.
    pub fn open(config: QueueConfig, name: &str) -> Result<(Arc<Connection>, Runtime)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("t2v-queue")
            .enable_all()
            .build()
            .map_err(|e| Error::failed(format!("could not start the queue's threads: {e}")))?;
        let runtime = Arc::new(runtime);
        let c = config.clone();
        let name = name.to_string();
        let parts = runtime.block_on(async move { connect(&c, &name).await })?;
        let (client, js, jobs, models, frames, inputs, interest) = parts;
        let handle = runtime.handle().clone();
        let conn = Connection {
            config,
            client,
            js,
            jobs,
            models,
            frames,
            inputs,
            interest,
            runtime: handle,
        };
        Ok((Arc::new(conn), runtime))
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(f)
    }

    /// The interest TTL the server enforces (whoever created the stream chose it).
    pub fn interest_ttl(&self) -> Duration {
        let ttl = self.interest.cached_info().config.max_age;
        if ttl.is_zero() {
            self.config.timings.interest_ttl
        } else {
            ttl
        }
    }
}

type Parts = (
    async_nats::Client,
    jetstream::Context,
    kv::Store,
    kv::Store,
    object_store::ObjectStore,
    object_store::ObjectStore,
    stream::Stream,
);

/// The TLS error behind a failed connection, if one is. async-nats reports a failed handshake,
/// and an alert the server sends right after it (a refused client certificate), as I/O errors;
/// the rustls error is inside the `io::Error`.
fn tls_cause(e: &async_nats::ConnectError) -> Option<&async_nats::rustls::Error> {
    use async_nats::rustls::Error as TlsError;
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<TlsError>());
        if inner.is_some() {
            return inner;
        }
        next = err.source();
    }
    None
}

/// What to check when TLS with the server fails.
fn tls_hint(e: Option<&async_nats::rustls::Error>) -> &'static str {
    use async_nats::rustls::{AlertDescription as Alert, Error as TlsError};
    match e {
        Some(TlsError::InvalidCertificate(_)) => {
            "the server's certificate is not signed by a CA this machine trusts: give the CA file \
             that signed it"
        }
        Some(TlsError::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::CertificateExpired
            | Alert::CertificateRevoked
            | Alert::UnsupportedCertificate,
        )) => {
            "the server verifies clients: give a client certificate and key signed by a CA it \
             trusts"
        }
        Some(TlsError::InvalidMessage(_) | TlsError::InappropriateMessage { .. }) => {
            "does the server offer TLS at this address?"
        }
        _ => "check the CA and certificate files",
    }
}

fn connect_error(config: &QueueConfig, e: async_nats::ConnectError) -> Error {
    use async_nats::ConnectErrorKind as K;
    let url = &config.url;
    let tls = tls_cause(&e);
    match e.kind() {
        K::AuthorizationViolation | K::Authentication => {
            let check = match &config.credentials {
                Credentials::None => {
                    "the server needs credentials: give a user and password or a credentials file"
                        .to_string()
                }
                Credentials::UserPassword { .. } => "check the user and password".to_string(),
                Credentials::File(path) => format!(
                    "check the credentials file {} (its user must belong to an account this \
                     server trusts)",
                    path.display()
                ),
            };
            Error::bad_input(format!(
                "the queue server at {url} refused these credentials ({e}): {check}"
            ))
        }
        _ if tls.is_some() || e.kind() == K::Tls => {
            let hint = match (tls, &config.tls.ca_file) {
                (Some(async_nats::rustls::Error::InvalidCertificate(_)), Some(ca)) => format!(
                    "the server's certificate is not signed by the CA in {}",
                    ca.display()
                ),
                _ => tls_hint(tls).to_string(),
            };
            Error::bad_input(format!(
                "TLS with the queue server at {url} failed ({e}): {hint}"
            ))
        }
        K::ServerParse | K::Dns => Error::bad_input(format!(
            "the queue URL `{url}` is not valid ({e}): use nats://HOST:PORT or tls://HOST:PORT"
        )),
        _ => Error::failed(format!(
            "could not reach the queue server at {url} ({e}): is it running, and is the port open?"
        )),
    }
}

async fn connect(config: &QueueConfig, name: &str) -> Result<Parts> {
    let mut options = match &config.credentials {
        Credentials::None => async_nats::ConnectOptions::new(),
        Credentials::UserPassword { user, password } => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Credentials::File(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| Error::bad_input(format!("credentials file {}: {e}", path.display())))?,
    };
    options = options
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(REQUEST_TIMEOUT))
        .max_reconnects(None::<usize>);
    if config.tls.require {
        options = options.require_tls(true);
    }
    // async-nats reports a missing TLS file without its name.
    let tls_files = config.tls.ca_file.iter().map(|f| ("CA file", f)).chain(
        config
            .tls
            .client_cert
            .iter()
            .flat_map(|(cert, key)| [("client certificate", cert), ("client key", key)]),
    );
    for (what, file) in tls_files {
        std::fs::metadata(file)
            .map_err(|e| Error::bad_input(format!("TLS {what} {}: {e}", file.display())))?;
    }
    if let Some(ca) = &config.tls.ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &config.tls.client_cert {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    let client = options
        .connect(config.url.as_str())
        .await
        .map_err(|e| connect_error(config, e))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client.clone());
    let t = &config.timings;
    js.get_or_create_stream(stream::Config {
        name: JOBS_STREAM.into(),
        subjects: vec!["t2v.job.>".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(server_err!("the job stream"))?;
    let interest = js
        .get_or_create_stream(stream::Config {
            name: INTEREST_STREAM.into(),
            subjects: vec!["t2v.interest.>".into()],
            storage: stream::StorageType::File,
            max_age: t.interest_ttl,
            max_messages_per_subject: 1,
            ..Default::default()
        })
        .await
        .map_err(server_err!("the interest stream"))?;
    let jobs = key_value(&js, JOBS_BUCKET, Duration::ZERO).await?;
    let models = key_value(&js, MODELS_BUCKET, Duration::ZERO).await?;
    let frames = objects(&js, FRAMES_BUCKET, t.frames_ttl).await?;
    let inputs = objects(&js, INPUTS_BUCKET, INPUTS_TTL).await?;
    Ok((client, js, jobs, models, frames, inputs, interest))
}

async fn key_value(js: &jetstream::Context, bucket: &str, max_age: Duration) -> Result<kv::Store> {
    let config = kv::Config {
        bucket: bucket.into(),
        history: 1,
        max_age,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    open_or_create(
        || js.get_key_value(bucket),
        js.create_key_value(config),
        "a KV bucket",
    )
    .await
}

async fn objects(
    js: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
) -> Result<object_store::ObjectStore> {
    let config = object_store::Config {
        bucket: bucket.into(),
        max_age,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    open_or_create(
        || js.get_object_store(bucket),
        js.create_object_store(config),
        "an object store",
    )
    .await
}

/// The store `open` finds, else the one `create` makes; when creating fails because another
/// process created it in between, the one that process made.
async fn open_or_create<T, E1, E2, Open, Opening>(
    open: Open,
    create: impl std::future::Future<Output = std::result::Result<T, E2>>,
    what: &str,
) -> Result<T>
where
    Open: Fn() -> Opening,
    Opening: std::future::Future<Output = std::result::Result<T, E1>>,
    E2: std::fmt::Display,
{
    if let Ok(store) = open().await {
        return Ok(store);
    }
    match create.await {
        Ok(store) => Ok(store),
        Err(e) => open().await.map_err(|_| server_error(what)(&e)),
    }
}

/// Reads a whole object, refusing one larger than `limit` bytes before reading it.
pub async fn get_object(
    store: &object_store::ObjectStore,
    name: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let mut object = store
        .get(name)
        .await
        .map_err(server_err!("reading an object"))?;
    let size = object.info().size;
    if size > limit {
        return Err(Error::failed(format!(
            "object {name} has {size} bytes, more than the {limit} expected"
        )));
    }
    let mut bytes = Vec::with_capacity(size);
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(server_err!("reading an object"))?;
    Ok(bytes)
}

pub async fn put_object(store: &object_store::ObjectStore, name: &str, bytes: &[u8]) -> Result<()> {
    let mut reader = bytes;
    store
        .put(name, &mut reader)
        .await
        .map_err(server_err!("storing an object"))?;
    Ok(())
}
