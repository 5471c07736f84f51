//! How to reach the queue server and how long its timers run.

use std::path::PathBuf;
use std::time::Duration;

/// The queue server's URL for farm machines and nodes without a `queue` setting.
pub const QUEUE_URL_ENV: &str = "T2V_QUEUE_URL";
/// A NATS credentials file (`.creds`) for farm machines and nodes without a `credentials` setting.
pub const QUEUE_CREDS_ENV: &str = "T2V_QUEUE_CREDS";
/// PEM file of a private CA that signed the queue server's certificate (`--tls-ca`; the node
/// has no setting for it: a studio sets it once for every machine).
pub const QUEUE_TLS_CA_ENV: &str = "T2V_QUEUE_TLS_CA";
/// PEM client certificate, with [`QUEUE_TLS_KEY_ENV`], for a server that verifies clients.
pub const QUEUE_TLS_CERT_ENV: &str = "T2V_QUEUE_TLS_CERT";
/// PEM key of [`QUEUE_TLS_CERT_ENV`].
pub const QUEUE_TLS_KEY_ENV: &str = "T2V_QUEUE_TLS_KEY";
/// Seconds a worker may stay silent before its job goes to another worker (the consumer's
/// `ack_wait`; the worker sends progress acks three times as often).
pub const ACK_WAIT_ENV: &str = "T2V_QUEUE_ACK_WAIT_SECS";
/// Deliveries of one job before it is failed for good (the consumer's `max_deliver`).
pub const MAX_DELIVER_ENV: &str = "T2V_QUEUE_MAX_DELIVER";
/// Seconds a client's interest in a job lasts without a heartbeat (the interest stream's
/// `max_age`; clients refresh three times as often).
pub const INTEREST_TTL_ENV: &str = "T2V_QUEUE_INTEREST_SECS";

/// How a client or worker proves who it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    None,
    /// A NATS credentials file (JWT and nkey seed), as `nsc` writes them.
    File(PathBuf),
    UserPassword {
        user: String,
        password: String,
    },
}

/// TLS beyond the URL's `tls://` scheme: a private CA, a client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Refuse a server that does not offer TLS.
    pub require: bool,
    /// PEM file of the CA that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl TlsOptions {
    /// From a private CA file and a client certificate and key, each optional; a certificate
    /// without its key (or a key alone) is an error saying which is missing. Any of them means
    /// TLS is required.
    pub fn from_files(
        ca_file: Option<PathBuf>,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<TlsOptions, String> {
        let client_cert = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(format!(
                    "a TLS client certificate needs its key (--tls-key or ${QUEUE_TLS_KEY_ENV})"
                ))
            }
            (None, Some(_)) => {
                return Err(format!(
                    "a TLS client key needs its certificate (--tls-cert or ${QUEUE_TLS_CERT_ENV})"
                ))
            }
        };
        Ok(TlsOptions {
            require: ca_file.is_some() || client_cert.is_some(),
            ca_file,
            client_cert,
        })
    }
}

/// The timers of the protocol. The server keeps the values of whoever created the stream,
/// consumer or bucket first; clients and workers read them back from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    pub ack_wait: Duration,
    pub max_deliver: i64,
    pub interest_ttl: Duration,
    /// How long decoded frames stay in the frame store.
    pub frames_ttl: Duration,
    /// How often a client looks at its job's record.
    pub poll: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            ack_wait: Duration::from_secs(60),
            max_deliver: 3,
            interest_ttl: Duration::from_secs(30),
            frames_ttl: Duration::from_secs(3600),
            poll: Duration::from_millis(200),
        }
    }
}

impl Timings {
    /// The defaults, adjusted by `T2V_QUEUE_ACK_WAIT_SECS`, `T2V_QUEUE_MAX_DELIVER` and
    /// `T2V_QUEUE_INTEREST_SECS` (unparsable values are ignored).
    pub fn from_env() -> Self {
        let mut t = Timings::default();
        let secs = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
        };
        if let Some(d) = secs(ACK_WAIT_ENV) {
            t.ack_wait = d;
        }
        if let Some(d) = secs(INTEREST_TTL_ENV) {
            t.interest_ttl = d;
        }
        if let Some(n) = std::env::var(MAX_DELIVER_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n >= 1)
        {
            t.max_deliver = n;
        }
        t
    }
}

/// Where the queue is and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// `nats://HOST:PORT` or `tls://HOST:PORT` (several separated by commas for a cluster).
    pub url: String,
    pub credentials: Credentials,
    pub tls: TlsOptions,
    /// The worker pool: jobs go to `t2v.job.<pool>.<model_id>`.
    pub pool: String,
    pub timings: Timings,
}

pub const DEFAULT_POOL: &str = "default";

impl QueueConfig {
    pub fn new(url: impl Into<String>) -> Self {
        QueueConfig {
            url: url.into(),
            credentials: Credentials::None,
            tls: TlsOptions::default(),
            pool: DEFAULT_POOL.into(),
            timings: Timings::from_env(),
        }
    }
}
