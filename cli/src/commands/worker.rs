//! `t2v worker --queue URL`: one GPU worker of the studio's pool. It wraps the same generation
//! service as `t2v generate` (with the clip cache, shared on a farm) and serves the pool's jobs
//! one at a time until Ctrl-C or SIGTERM, which hand a running job back to the queue.

use super::generate::{interrupted, watch_interrupts};
use super::remote::{ConnectionArgs, DEMO_MODEL_ID};
use super::{bad_input, Failure};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use t2v_bridge::{DeviceChoice, MemoryBudget, ModelSpec, Overrides, Service, ServiceConfig};
use t2v_queue::QueueWorker;

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// auto, cpu, cuda or cuda:N: one worker per GPU.
    #[arg(long, default_value = "auto")]
    device: String,
    /// GPU memory every job may use: auto (the GPU's free memory less a margin) or a card size
    /// in GB (24, 16, 12, 8), as `t2v generate --vram`. The clips are the same under any budget.
    #[arg(long, default_value = "auto")]
    vram: MemoryBudget,
    /// Free the text encoder after encoding each prompt (the default, or $T2V_LOW_MEMORY).
    #[arg(long = "low-memory", conflicts_with = "keep_text_encoder")]
    low_memory: bool,
    /// Keep the text encoder loaded next to the transformer (about 11 GB more GPU memory with
    /// the real model; faster when the pool sees many new prompts).
    #[arg(long = "keep-text-encoder")]
    keep_text_encoder: bool,
    /// The models this worker serves, by id (a TOML file; see docs/studio.md). Default: the
    /// built-in demo model as `demo`.
    #[arg(long, value_name = "FILE")]
    models: Option<PathBuf>,
    /// The clip cache folder finished clips are committed to: a folder every worker and client
    /// shares (default: $T2V_CACHE_DIR, else the OS cache folder).
    #[arg(long = "cache-dir")]
    cache_dir: Option<PathBuf>,
    /// Commit nothing to the clip cache.
    #[arg(long = "no-cache")]
    no_cache: bool,
}

/// `[models.<id>]` tables: a folder (`path`) and/or component files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    models: BTreeMap<String, ModelEntryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntryFile {
    path: Option<PathBuf>,
    transformer: Option<PathBuf>,
    vae: Option<PathBuf>,
    text_encoder: Option<PathBuf>,
    tokenizer: Option<PathBuf>,
    /// A tiny decoder (taew2_2) for this model's previews.
    fast_decoder: Option<PathBuf>,
    /// LoRAs merged into this model, `FILE[:STRENGTH]` each: a styled model is its own id.
    #[serde(default)]
    loras: Vec<String>,
}

/// Reads a models file; relative paths are relative to its folder.
pub fn read_models(file: &Path) -> Result<BTreeMap<String, ModelSpec>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| bad_input(format!("--models {}: {e}", file.display())))?;
    let parsed: ModelsFile = toml::from_str(&text)
        .map_err(|e| bad_input(format!("--models {}: {e}", file.display())))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let resolve = |p: Option<PathBuf>| p.map(|p| base.join(p));
    let models: BTreeMap<String, ModelSpec> = parsed
        .models
        .into_iter()
        .map(|(id, m)| {
            let loras = m
                .loras
                .iter()
                .map(|l| {
                    let mut spec = t2v_bridge::LoraSpec::parse(l).map_err(|e| {
                        bad_input(format!("--models {}: model {id}: {e}", file.display()))
                    })?;
                    spec.path = base.join(&spec.path);
                    Ok(spec)
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let spec = ModelSpec {
                path: resolve(m.path),
                overrides: Overrides {
                    transformer: resolve(m.transformer),
                    vae: resolve(m.vae),
                    text_encoder: resolve(m.text_encoder),
                    tokenizer: resolve(m.tokenizer),
                    fast_decoder: resolve(m.fast_decoder),
                },
                loras,
            };
            Ok((id, spec))
        })
        .collect::<Result<_, Failure>>()?;
    if models.is_empty() {
        return Err(bad_input(format!(
            "--models {}: no [models.<id>] table",
            file.display()
        )));
    }
    Ok(models)
}

pub fn run(args: WorkerArgs) -> Result<(), Failure> {
    let config = args
        .connection
        .config()?
        .ok_or_else(|| bad_input("--queue URL (or $T2V_QUEUE_URL) is needed"))?;
    let models = match &args.models {
        Some(file) => read_models(file)?,
        None => BTreeMap::from([(
            DEMO_MODEL_ID.to_string(),
            ModelSpec::folder(t2v_demo::model_dir()),
        )]),
    };
    let device: DeviceChoice = args
        .device
        .parse()
        .map_err(|e: String| bad_input(format!("--device: {e}")))?;
    let mut service_config = ServiceConfig::from_env();
    service_config.device = device;
    service_config.use_disk_cache = !args.no_cache;
    if args.low_memory || args.keep_text_encoder {
        service_config.low_memory = args.low_memory;
    }
    if args.cache_dir.is_some() {
        service_config.cache_dir = args.cache_dir.clone();
    }
    let service = Service::new(service_config)?;
    let ids: Vec<&str> = models.keys().map(String::as_str).collect();
    let ids = ids.join(", ");
    let worker = QueueWorker::start(config.clone(), service, models)?.with_memory(args.vram);
    eprintln!(
        "worker {} serving pool `{}` at {} on {} (memory budget {}): models {ids}",
        worker.name(),
        config.pool,
        config.url,
        worker.service().device_name(),
        args.vram
    );
    watch_interrupts();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !interrupted() {
            std::thread::sleep(Duration::from_millis(100));
        }
        flag.store(true, Ordering::SeqCst);
    });
    worker.serve(&stop)?;
    let s = worker.stats();
    eprintln!(
        "worker stopped: {} done, {} failed, {} cancelled, {} messages rejected",
        s.done, s.failed, s.cancelled, s.rejected
    );
    Ok(())
}
