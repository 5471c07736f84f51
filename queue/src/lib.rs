//! Studio scale: GPU workers serving a shared queue, and the clients (the node, `t2v generate`)
//! that submit to it, over NATS JetStream. The engine does the queueing, delivery, redelivery
//! and state; this crate says what travels ([`message`]), wraps the generation service
//! ([`t2v_bridge::Service`]) on the worker side ([`worker`]) and gives clients a job handle of
//! the service's shape ([`client`]).
//!
//! The API is plain and synchronous: async-nats and its tokio runtime stay inside
//! ([`connection`]).

pub mod client;
pub mod config;
pub mod connection;
pub mod local_server;
pub mod message;
pub mod offline;
pub mod worker;

pub use client::{DecoderChoice, QueueClient, RemoteJob, RemoteRequest};
pub use config::{
    Credentials, QueueConfig, Timings, TlsOptions, QUEUE_CREDS_ENV, QUEUE_TLS_CA_ENV,
    QUEUE_TLS_CERT_ENV, QUEUE_TLS_KEY_ENV, QUEUE_URL_ENV,
};
pub use message::{JobMessage, JobRecord, JobState, ModelEntry, PROTOCOL_VERSION};
pub use offline::KnownModels;
pub use worker::{QueueWorker, WorkerStats};
