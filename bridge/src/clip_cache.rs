//! The clip cache on disk.
//!
//! Layout under the cache root:
//!
//! ```text
//! clips/<key>/frame.0000.png ...   16-bit RGB PNG per frame (lossless for the service's frames)
//! clips/<key>/latents.safetensors  the final latents (tensor `latents`), for --save-latents
//! clips/<key>/metadata.json        every parameter, the model, timings, the format version
//! clips/<key>/manifest.json        written last: size and SHA-256 of every other file
//! tmp/                             entries being written or removed
//! ```
//!
//! An entry is written in `tmp/`, each file fsynced, the manifest last, then the folder is renamed
//! into `clips/`: a crash or `kill -9` leaves at most a folder in `tmp/`, removed later (see
//! [`crate::cache_sharing`]). A reader checks the manifest in full before allocating anything
//! from it and verifies every file against it before using it, so an entry damaged later (or
//! left half-written by a filesystem without atomic renames) is detected, removed and
//! regenerated, never served. Reading needs no model.
//!
//! Least-recently-used entries (the manifest's modification time is touched on every hit) are
//! evicted when the total size passes the cap, except entries another reader holds a lease on.
//!
//! The cache holds prompts, which are confidential: its folders are created 0700 and its files
//! 0600. One folder may be shared by several machines: see [`crate::cache_sharing`].

use crate::cache_key::{sha256_hex, ClipKey, CACHE_FORMAT_VERSION};
use crate::cache_manifest::{frame_name, FileEntry, Manifest, LATENTS, MANIFEST, METADATA};
use crate::cache_sharing::{is_leased, is_reapable, owner_tag, Lease};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::metadata::ClipMetadata;
use candle_core::Tensor;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use t2v_support::private;

/// Overrides the cache location.
pub const CACHE_DIR_ENV: &str = "T2V_CACHE_DIR";
/// Overrides the size cap, in GiB (decimals allowed).
pub const CACHE_MAX_GB_ENV: &str = "T2V_CACHE_MAX_GB";
pub const DEFAULT_MAX_BYTES: u64 = 20 << 30;

/// `$T2V_CACHE_DIR`, else the platform's cache folder (see [`t2v_support::folders`]).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    t2v_support::folders::cache_dir()
}

/// The size cap from `$T2V_CACHE_MAX_GB`, else [`DEFAULT_MAX_BYTES`].
pub fn default_max_bytes() -> u64 {
    std::env::var(CACHE_MAX_GB_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|gb| (gb * (1u64 << 30) as f64) as u64)
        .unwrap_or(DEFAULT_MAX_BYTES)
}

/// A clip read back from the cache.
pub struct CachedClip {
    pub frames: Vec<Frame>,
    pub latents: Option<Tensor>,
    pub metadata: ClipMetadata,
}

pub enum Lookup {
    Hit(Box<CachedClip>),
    Miss,
    /// The entry existed but failed verification; it has been removed. The message says why.
    Corrupt(String),
}

/// One entry as `t2v cache list` shows it.
#[derive(Debug, Clone)]
pub struct EntrySummary {
    pub key: String,
    pub bytes: u64,
    pub last_used: SystemTime,
    /// Whether the entry has its manifest (unfinished entries are never served).
    pub complete: bool,
    pub metadata: Option<ClipMetadata>,
}

pub struct ClipCache {
    root: PathBuf,
    max_bytes: u64,
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("clip cache: {}: {e}", path.display()))
}

/// Writes `bytes` to a new private file and flushes them to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

/// Flushes a folder's entries (renames, new files). Not possible on every platform: best effort.
fn sync_dir(path: &Path) {
    if let Ok(f) = File::open(path) {
        let _ = f.sync_all();
    }
}

fn encode_png16(frame: &Frame) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    frame
        .to_rgb16()
        .write_with_encoder(encoder)
        .map_err(|e| Error::failed(format!("encoding a cached frame: {e}")))?;
    Ok(out)
}

/// Decodes a cached frame, refusing before any allocation a PNG larger than the manifest says.
fn decode_png16(bytes: &[u8], width: usize, height: usize) -> std::result::Result<Frame, String> {
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width as u32);
    limits.max_image_height = Some(height as u32);
    reader.limits(limits);
    let rgb = reader.decode().map_err(|e| e.to_string())?.into_rgb16();
    let (w, h) = rgb.dimensions();
    Ok(Frame::from_rgb16(w as usize, h as usize, rgb.into_raw()))
}

/// A file's bytes, unless it is larger than any metadata the cache writes (a listing must not
/// read a damaged multi-GB file into memory).
fn read_small(path: &Path) -> Option<Vec<u8>> {
    let size = std::fs::metadata(path).ok()?.len();
    (size <= crate::cache_manifest::MAX_MANIFEST_BYTES)
        .then(|| std::fs::read(path).ok())
        .flatten()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl ClipCache {
    /// Opens (creating) the cache at `root`, removing what dead writers left in `tmp/`.
    pub fn open(root: impl Into<PathBuf>, max_bytes: u64) -> Result<Self> {
        let root = root.into();
        for dir in [root.join("clips"), root.join("tmp")] {
            private::create_dir_all(&dir).map_err(|e| {
                Error::bad_input(format!(
                    "clip cache folder {}: {e}; choose another with --cache-dir or ${CACHE_DIR_ENV}, or turn the cache off",
                    dir.display()
                ))
            })?;
        }
        let cache = ClipCache { root, max_bytes };
        cache.remove_stale_temporaries();
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn entry_dir(&self, key: &ClipKey) -> PathBuf {
        self.root.join("clips").join(key.to_hex())
    }

    fn tmp_dir(&self, key: &str, what: &str) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{}-{key}.{what}", owner_tag()))
    }

    /// Removes the temporary folders whose writers are gone (never a live writer's, on this
    /// machine or another).
    pub fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            if is_reapable(&entry.path()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Whether a finished entry (one with a manifest) exists; it is verified only when read.
    pub fn contains(&self, key: &ClipKey) -> bool {
        self.entry_dir(key).join(MANIFEST).is_file()
    }

    /// Reads and verifies an entry; see [`Self::load_streaming`].
    pub fn load(&self, key: &ClipKey) -> Lookup {
        self.load_streaming(key, &mut |_, _| {})
    }

    /// Reads an entry, handing each frame to `on_frame` once its file has been verified. A
    /// corrupt entry is removed and reported; frames handed out before the damage was found had
    /// passed their checksums.
    pub fn load_streaming(&self, key: &ClipKey, on_frame: &mut dyn FnMut(usize, &Frame)) -> Lookup {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Lookup::Miss;
        }
        let lease = Lease::take(&dir);
        let read = self.read_entry(key, &dir, on_frame);
        drop(lease);
        match read {
            Ok(clip) => {
                // Least-recently-used order follows the manifest's modification time.
                if let Ok(f) = File::options().write(true).open(dir.join(MANIFEST)) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Lookup::Hit(Box::new(clip))
            }
            // Evicted or replaced by another machine while it was being read: nothing to remove.
            Err(_) if !dir.exists() => Lookup::Miss,
            Err(why) => {
                self.remove_dir(&dir, &key.to_hex());
                Lookup::Corrupt(format!(
                    "cache entry {}: {why}; it was removed and will be regenerated",
                    key.to_hex()
                ))
            }
        }
    }

    fn read_entry(
        &self,
        key: &ClipKey,
        dir: &Path,
        on_frame: &mut dyn FnMut(usize, &Frame),
    ) -> std::result::Result<CachedClip, String> {
        let manifest_path = dir.join(MANIFEST);
        let manifest_size = std::fs::metadata(&manifest_path)
            .map_err(|_| "no manifest (the entry was never finished)".to_string())?
            .len();
        if manifest_size > crate::cache_manifest::MAX_MANIFEST_BYTES {
            return Err(format!("manifest of {manifest_size} bytes"));
        }
        let manifest_bytes =
            std::fs::read(&manifest_path).map_err(|e| format!("{MANIFEST}: {e}"))?;
        let manifest = Manifest::parse(&manifest_bytes, &key.to_hex())?;
        manifest.check_sizes(dir)?;
        let read_verified = |name: &str| -> std::result::Result<Vec<u8>, String> {
            let entry = manifest
                .file(name)
                .ok_or_else(|| format!("{name} is not in the manifest"))?;
            let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
            if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
                return Err(format!("{name} does not match its checksum"));
            }
            Ok(bytes)
        };
        let metadata: ClipMetadata = serde_json::from_slice(&read_verified(METADATA)?)
            .map_err(|e| format!("unreadable metadata: {e}"))?;
        let latents = if manifest.files.iter().any(|f| f.name == LATENTS) {
            let bytes = read_verified(LATENTS)?;
            let mut tensors =
                candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu)
                    .map_err(|e| format!("{LATENTS}: {e}"))?;
            tensors.remove("latents")
        } else {
            None
        };
        let mut frames = Vec::with_capacity(manifest.frames);
        for i in 0..manifest.frames {
            let name = frame_name(i);
            let frame = decode_png16(&read_verified(&name)?, manifest.width, manifest.height)
                .map_err(|e| format!("{name}: {e}"))?;
            if frame.width() != manifest.width || frame.height() != manifest.height {
                return Err(format!(
                    "{name} is {}x{}, not {}x{}",
                    frame.width(),
                    frame.height(),
                    manifest.width,
                    manifest.height
                ));
            }
            on_frame(i, &frame);
            frames.push(frame);
        }
        Ok(CachedClip {
            frames,
            latents,
            metadata,
        })
    }

    /// Stores a finished clip atomically; returns its folder.
    pub fn store(
        &self,
        key: &ClipKey,
        frames: &[Frame],
        latents: Option<&Tensor>,
        metadata: &ClipMetadata,
    ) -> Result<PathBuf> {
        self.store_observed(key, frames, latents, metadata, &mut |_| {})
    }

    /// [`Self::store`], calling `after_file` with each file once it is on disk in the temporary
    /// folder (the crash-safety test uses it to kill a writer half-way).
    pub fn store_observed(
        &self,
        key: &ClipKey,
        frames: &[Frame],
        latents: Option<&Tensor>,
        metadata: &ClipMetadata,
        after_file: &mut dyn FnMut(&Path),
    ) -> Result<PathBuf> {
        let hex = key.to_hex();
        let tmp = self.tmp_dir(&hex, "writing");
        private::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        let result = self.write_entry(key, &tmp, frames, latents, metadata, after_file);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    fn write_entry(
        &self,
        key: &ClipKey,
        tmp: &Path,
        frames: &[Frame],
        latents: Option<&Tensor>,
        metadata: &ClipMetadata,
        after_file: &mut dyn FnMut(&Path),
    ) -> Result<PathBuf> {
        let first = frames
            .first()
            .ok_or_else(|| Error::failed("clip cache: a clip has no frames"))?;
        let mut files = Vec::new();
        let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
            let path = tmp.join(name);
            write_synced(&path, bytes)?;
            files.push(FileEntry {
                name: name.to_string(),
                size: bytes.len() as u64,
                sha256: sha256_hex(bytes),
            });
            after_file(&path);
            Ok(())
        };
        for (i, frame) in frames.iter().enumerate() {
            put(&frame_name(i), &encode_png16(frame)?)?;
        }
        if let Some(latents) = latents {
            let mut map = std::collections::HashMap::new();
            map.insert(
                "latents".to_string(),
                latents
                    .to_dtype(candle_core::DType::F32)?
                    .to_device(&candle_core::Device::Cpu)?,
            );
            let bytes = safetensors::serialize(&map, None)
                .map_err(|e| Error::failed(format!("serialising latents: {e}")))?;
            put(LATENTS, &bytes)?;
        }
        put(METADATA, metadata.to_json().as_bytes())?;
        let manifest = Manifest {
            format_version: CACHE_FORMAT_VERSION,
            key: key.to_hex(),
            width: first.width(),
            height: first.height(),
            frames: frames.len(),
            files,
        };
        write_synced(
            &tmp.join(MANIFEST),
            serde_json::to_string_pretty(&manifest)
                .expect("manifest serialises")
                .as_bytes(),
        )?;
        sync_dir(tmp);

        let dest = self.entry_dir(key);
        if std::fs::rename(tmp, &dest).is_err() {
            // Another writer finished the same clip first, or a damaged entry is in the way.
            if matches!(self.load(key), Lookup::Hit(_)) {
                let _ = std::fs::remove_dir_all(tmp);
                return Ok(dest);
            }
            self.remove_dir(&dest, &key.to_hex());
            std::fs::rename(tmp, &dest).map_err(|e| io_err(&dest, e))?;
        }
        sync_dir(&self.root.join("clips"));
        self.evict();
        Ok(dest)
    }

    /// Moves a folder into `tmp/` (one atomic step, so readers never see it half-deleted), then
    /// deletes it.
    fn remove_dir(&self, dir: &Path, key: &str) {
        let trash = self.tmp_dir(key, "removing");
        match std::fs::rename(dir, &trash) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&trash);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    pub fn remove(&self, key: &ClipKey) -> bool {
        let dir = self.entry_dir(key);
        let existed = dir.exists();
        self.remove_dir(&dir, &key.to_hex());
        existed
    }

    /// Every entry, oldest use first.
    pub fn entries(&self) -> Vec<EntrySummary> {
        let mut out = Vec::new();
        let Ok(read) = std::fs::read_dir(self.root.join("clips")) else {
            return out;
        };
        for entry in read.filter_map(|e| e.ok()) {
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let manifest = dir.join(MANIFEST);
            let complete = manifest.is_file();
            let last_used = std::fs::metadata(if complete { &manifest } else { &dir })
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let metadata =
                read_small(&dir.join(METADATA)).and_then(|b| serde_json::from_slice(&b).ok());
            out.push(EntrySummary {
                key: entry.file_name().to_string_lossy().to_string(),
                bytes: dir_size(&dir),
                last_used,
                complete,
                metadata,
            });
        }
        out.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.key.cmp(&b.key)));
        out
    }

    pub fn total_bytes(&self) -> u64 {
        self.entries().iter().map(|e| e.bytes).sum()
    }

    /// Removes least-recently-used entries until the total fits under the cap, skipping those
    /// a reader (on any machine) holds a lease on.
    pub fn evict(&self) -> usize {
        let entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        let mut removed = 0;
        for e in entries {
            if total <= self.max_bytes {
                break;
            }
            if self.remove_unleased(&e.key) {
                total -= e.bytes;
                removed += 1;
            }
        }
        removed
    }

    fn remove_unleased(&self, key: &str) -> bool {
        let dir = self.root.join("clips").join(key);
        if is_leased(&dir) {
            return false;
        }
        self.remove_dir(&dir, key);
        true
    }

    /// Removes every entry no reader holds a lease on; returns how many were removed.
    pub fn clear(&self) -> usize {
        self.entries()
            .iter()
            .filter(|e| self.remove_unleased(&e.key))
            .count()
    }
}
