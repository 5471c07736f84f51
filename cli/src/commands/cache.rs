//! `t2v cache list|show KEY|clear|path`.

use super::{bad_input, Failure};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::SystemTime;
use t2v_bridge::clip_cache::{default_cache_dir, default_max_bytes, CACHE_DIR_ENV};
use t2v_bridge::{ClipCache, ClipKey, Lookup};

#[derive(Args)]
pub struct CacheArgs {
    /// The clip cache folder (default: $T2V_CACHE_DIR, else the OS cache folder + text-to-video).
    #[arg(long = "cache-dir", global = true)]
    cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List the cached clips, least recently used first.
    List,
    /// Verify one clip and print its metadata (KEY or a unique prefix of it).
    Show { key: String },
    /// Remove every cached clip.
    Clear,
    /// Print the cache folder.
    Path,
}

fn cache_dir(args: &CacheArgs) -> Result<PathBuf, Failure> {
    args.cache_dir
        .clone()
        .or_else(default_cache_dir)
        .ok_or_else(|| {
            bad_input(format!(
                "no cache folder could be found: pass --cache-dir or set ${CACHE_DIR_ENV}"
            ))
        })
}

fn ago(t: SystemTime) -> String {
    let s = t.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

pub fn run(args: CacheArgs) -> Result<(), Failure> {
    let dir = cache_dir(&args)?;
    if let CacheCommand::Path = args.command {
        println!("{}", dir.display());
        return Ok(());
    }
    let cache = ClipCache::open(&dir, default_max_bytes())?;
    match args.command {
        CacheCommand::Path => unreachable!(),
        CacheCommand::List => {
            let entries = cache.entries();
            for e in &entries {
                let (size, prompt) = match &e.metadata {
                    Some(m) => (
                        format!("{}x{}x{}", m.width, m.height, m.frames),
                        m.prompt.chars().take(50).collect::<String>(),
                    ),
                    None => ("?".into(), "(no metadata)".into()),
                };
                let state = if e.complete { "" } else { " [unfinished]" };
                println!(
                    "{}  {:>9.1} MB  {:<14} {:>9}  {prompt}{state}",
                    &e.key[..16],
                    e.bytes as f64 / 1e6,
                    size,
                    ago(e.last_used)
                );
            }
            let total: u64 = entries.iter().map(|e| e.bytes).sum();
            println!(
                "{} clips, {:.1} MB of {:.1} GB cap, in {}",
                entries.len(),
                total as f64 / 1e6,
                cache.max_bytes() as f64 / (1u64 << 30) as f64,
                dir.display()
            );
        }
        CacheCommand::Show { key } => {
            let matches: Vec<String> = cache
                .entries()
                .into_iter()
                .map(|e| e.key)
                .filter(|k| k.starts_with(&key))
                .collect();
            let full = match matches.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(bad_input(format!(
                        "no cached clip has a key starting with `{key}`; see `t2v cache list`"
                    )))
                }
                _ => {
                    return Err(bad_input(format!(
                        "`{key}` matches {} clips: give more of the key",
                        matches.len()
                    )))
                }
            };
            let parsed = ClipKey::from_hex(&full)
                .ok_or_else(|| bad_input(format!("`{full}` is not a clip key")))?;
            match cache.load(&parsed) {
                Lookup::Hit(clip) => {
                    println!("{}", clip.metadata.to_json());
                    println!("verified: {} frames, checksums match", clip.frames.len());
                }
                Lookup::Corrupt(why) => {
                    return Err(Failure {
                        code: 1,
                        message: why,
                    })
                }
                Lookup::Miss => {
                    return Err(bad_input(format!(
                        "clip {full} disappeared while reading it"
                    )))
                }
            }
        }
        CacheCommand::Clear => {
            let n = cache.clear();
            println!("removed {n} clips from {}", dir.display());
        }
    }
    Ok(())
}
