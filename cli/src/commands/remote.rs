//! `t2v generate --queue URL`: the clip is made by the studio's worker pool instead of this
//! machine. A clip already in the clip cache (a shared folder, on a farm) is read from it and
//! submits nothing; otherwise the job is submitted, or joined when an identical one is queued
//! or running, and its frames are written as they arrive. Ctrl-C and SIGTERM let go of it.

use super::generate::{
    builtin_demo_defaults, follow_job, load_first_frame, params_with_defaults, style_decoder,
    watch_interrupts, with_style_sampling, FollowedJob, GenerateArgs,
};
use super::{bad_input, Failure};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use t2v_bridge::clip_cache::{default_cache_dir, default_max_bytes};
use t2v_bridge::{Clip, ClipCache, Frame, GenerationParams, JobProgress, MemoryBudget, Precision};
use t2v_queue::offline::{self, Found};
use t2v_queue::{
    Credentials, DecoderChoice, KnownModels, QueueClient, QueueConfig, RemoteJob, RemoteRequest,
    TlsOptions,
};

/// The model id of the built-in demo model, which every worker serves without `--models`.
pub const DEMO_MODEL_ID: &str = "demo";

/// How to reach the queue server (shared by `t2v generate --queue` and `t2v worker`).
#[derive(Args, Clone, Default)]
pub struct ConnectionArgs {
    /// The queue server: nats://HOST:PORT or tls://HOST:PORT.
    #[arg(long = "queue", env = "T2V_QUEUE_URL", value_name = "URL")]
    pub queue: Option<String>,
    /// A NATS credentials file (.creds).
    #[arg(
        long,
        env = "T2V_QUEUE_CREDS",
        value_name = "FILE",
        conflicts_with = "user"
    )]
    pub creds: Option<PathBuf>,
    /// User name on the queue server (with --password or $T2V_QUEUE_PASSWORD).
    #[arg(long, requires = "password")]
    pub user: Option<String>,
    #[arg(long, env = "T2V_QUEUE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// PEM file of the CA that signed the server's TLS certificate (implies TLS).
    #[arg(long = "tls-ca", env = t2v_queue::QUEUE_TLS_CA_ENV, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate, for a server that verifies clients (with --tls-key).
    #[arg(long = "tls-cert", env = t2v_queue::QUEUE_TLS_CERT_ENV, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(long = "tls-key", env = t2v_queue::QUEUE_TLS_KEY_ENV, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The worker pool (a name: letters, digits, - and _).
    #[arg(long, default_value = t2v_queue::config::DEFAULT_POOL)]
    pub pool: String,
}

impl ConnectionArgs {
    /// The queue configuration, when a queue is named; bad input when the TLS files do not
    /// go together.
    pub fn config(&self) -> Result<Option<QueueConfig>, Failure> {
        let Some(url) = self.queue.clone().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let mut config = QueueConfig::new(url);
        config.pool = self.pool.clone();
        config.credentials = match (&self.creds, &self.user, &self.password) {
            (Some(file), _, _) => Credentials::File(file.clone()),
            (None, Some(user), Some(password)) => Credentials::UserPassword {
                user: user.clone(),
                password: password.clone(),
            },
            _ => Credentials::None,
        };
        config.tls = TlsOptions::from_files(
            self.tls_ca.clone(),
            self.tls_cert.clone(),
            self.tls_key.clone(),
        )
        .map_err(bad_input)?;
        Ok(Some(config))
    }
}

/// `t2v generate`'s queue flags.
#[derive(Args, Clone, Default)]
pub struct QueueArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// With --queue: the model, by the id the workers' configuration gives it.
    #[arg(long = "model-id", default_value = DEMO_MODEL_ID)]
    pub model_id: String,
}

impl QueueArgs {
    pub fn url(&self) -> Option<String> {
        self.connection
            .queue
            .clone()
            .filter(|u| !u.trim().is_empty())
    }
}

impl FollowedJob for RemoteJob {
    fn frame_count(&self) -> usize {
        self.frame_count()
    }
    fn frame(&self, index: usize) -> Option<Frame> {
        self.frame(index)
    }
    fn progress(&self) -> JobProgress {
        self.progress()
    }
    fn wait_timeout(&self, timeout: Duration) -> Option<t2v_bridge::Result<Arc<Clip>>> {
        self.wait_timeout(timeout)
    }
    fn cancel(&self) {
        self.cancel()
    }
}

type Outcome = (t2v_bridge::Result<Arc<Clip>>, usize);

/// The request `args` describe, for the pool.
fn remote_request(args: &GenerateArgs) -> Result<RemoteRequest, Failure> {
    let q = &args.queue;
    if !args.models.is_empty() {
        return Err(bad_input(
            "with --queue, name the model by --model-id (an id in the workers' configuration), \
             not by --model or weights files: a worker never opens a path sent by a client",
        ));
    }
    if args.init_latents.is_some() {
        return Err(bad_input(
            "--init-latents cannot be sent to a worker pool; drop --queue",
        ));
    }
    // LoRAs and upscalers are files, and a worker never opens a path sent by a client.
    if !args.loras.is_empty() {
        return Err(bad_input(
            "--lora cannot be sent to a worker pool (a worker never opens a path sent by a \
             client); drop --queue, or serve the model with its LoRA as its own model id",
        ));
    }
    if args.upscale.is_some() {
        return Err(bad_input(
            "--upscale cannot be sent to a worker pool (its --upscaler is a file on this \
             machine); drop --queue, or upscale the clip locally afterwards",
        ));
    }
    if args.fast_decoder.is_some() {
        return Err(bad_input(
            "--fast-decoder cannot be sent to a worker pool (a worker never opens a path sent by \
             a client): --decoder fast uses the tiny decoder in the workers' model folder",
        ));
    }
    if args.preview_every.is_some() {
        return Err(bad_input(
            "--preview-every cannot be used with --queue: the pool sends decoded frames, not the \
             sampler's estimates (--preview alone is written from the frames)",
        ));
    }
    // This machine's device settings would be silently ignored: the workers choose theirs.
    let device_flags = [
        (args.device != "auto", "--device"),
        (args.vram != MemoryBudget::Auto, "--vram"),
        (args.low_memory, "--low-memory"),
        (args.keep_text_encoder, "--keep-text-encoder"),
    ];
    if let Some((_, flag)) = device_flags.iter().find(|(set, _)| *set) {
        return Err(bad_input(format!(
            "{flag} cannot be used with --queue: the pool's workers choose their device and \
             memory (set them on `t2v worker`)"
        )));
    }
    let precision: Precision = args
        .dtype
        .parse()
        .map_err(|e: String| bad_input(format!("--dtype: {e}")))?;
    let defaults = if q.model_id == DEMO_MODEL_ID {
        builtin_demo_defaults(args)?
    } else {
        GenerationParams::default()
    };
    let defaults = match &args.style {
        Some(style) => with_style_sampling(defaults, style)?,
        None => defaults,
    };
    let params = params_with_defaults(args, defaults);
    params.validate()?;
    // As locally: `--decoder` first, else the style's preference.
    let decoder = match args.decoder {
        Some(decoder) => decoder.into(),
        None => style_decoder(args)?.map_or(DecoderChoice::Full, DecoderChoice::preferring),
    };
    Ok(RemoteRequest {
        model_id: q.model_id.clone(),
        params,
        precision,
        image: load_first_frame(args)?,
        decoder,
    })
}

/// Makes the clip on the pool (or reads it from the clip cache).
pub(crate) fn generate(args: &GenerateArgs, _url: &str) -> Result<Outcome, Failure> {
    let config = args
        .queue
        .connection
        .config()?
        .ok_or_else(|| bad_input("--queue: no URL"))?;
    let request = remote_request(args)?;
    let cache = match args.cache_dir.clone().or_else(default_cache_dir) {
        Some(dir) if !args.no_cache => Some((ClipCache::open(&dir, default_max_bytes())?, dir)),
        _ => None,
    };
    let known = cache.as_ref().map(|(_, dir)| KnownModels::beside(dir));
    let pool = config.pool.clone();
    let found = offline::find(
        known.as_ref(),
        &pool,
        &request,
        |key| match &cache {
            Some((cache, _)) => offline::cached_clip(cache, key),
            None => Ok(None),
        },
        || QueueClient::connect(config),
    )?;
    let (client, message) = match found {
        Found::Cached(clip) => return Ok((Ok(Arc::new(clip)), 0)),
        Found::Job(client, message) => (client, message),
    };
    watch_interrupts();
    let job = client.submit_prepared(*message, request.image.as_ref())?;
    if !args.quiet {
        eprintln!(
            "queued on pool `{}` as clip {}",
            args.queue.connection.pool,
            &job.key().to_hex()[..12]
        );
    }
    follow_job(args, &job, None)
}
