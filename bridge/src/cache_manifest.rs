//! A clip cache entry's manifest (`manifest.json`, written last): the clip's size and frame
//! count and the size and SHA-256 of every other file. It is read from a folder that other
//! machines, or a damaged disk, may have written, so it is checked in full before anything is
//! allocated from it: bounded counts and sizes, exactly the expected file names, and sizes that
//! agree with the files on disk.

use crate::cache_key::CACHE_FORMAT_VERSION;
use crate::upscale::MAX_OUTPUT_SIDE;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use t2v_models::pipeline::request::MAX_FRAMES;

pub const MANIFEST: &str = "manifest.json";
pub const METADATA: &str = "metadata.json";
pub const LATENTS: &str = "latents.safetensors";

/// A real manifest is a few KiB; a bigger file is damage and is not read.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
const MAX_METADATA_BYTES: u64 = 1 << 20;
/// Latents of the largest clip are about 200 MB.
const MAX_LATENTS_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub key: String,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub files: Vec<FileEntry>,
}

pub fn frame_name(i: usize) -> String {
    format!("frame.{i:04}.png")
}

/// The largest a 16-bit RGB PNG of `width` x `height` can be: raw samples, one filter byte a
/// row, and generous room for zlib's stored-block overhead and the chunks.
fn max_png_bytes(width: usize, height: usize) -> u64 {
    let raw = (width as u64 * 6 + 1) * height as u64;
    raw + raw / 100 + (64 << 10)
}

impl Manifest {
    /// Parses and checks a manifest for the entry `key` (see [`Manifest::check`]).
    pub fn parse(bytes: &[u8], key: &str) -> Result<Self, String> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(format!("manifest of {} bytes", bytes.len()));
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("unreadable manifest: {e}"))?;
        manifest.check(key)?;
        Ok(manifest)
    }

    /// Everything that can be checked without the files: the format, the key, counts and sizes
    /// within the product's limits, and exactly one entry for each expected file.
    pub fn check(&self, key: &str) -> Result<(), String> {
        if self.format_version != CACHE_FORMAT_VERSION || self.key != key {
            return Err(format!(
                "manifest of format {} for key {}",
                self.format_version, self.key
            ));
        }
        if self.frames == 0 || self.frames > MAX_FRAMES {
            return Err(format!(
                "manifest claims {} frames (1 to {MAX_FRAMES})",
                self.frames
            ));
        }
        // Upscaled clips are larger than the generated sizes.
        let max = MAX_OUTPUT_SIDE;
        if self.width == 0 || self.width > max || self.height == 0 || self.height > max {
            return Err(format!(
                "manifest claims {}x{} frames (1 to {max} a side)",
                self.width, self.height
            ));
        }
        let mut seen = HashSet::new();
        for f in &self.files {
            if !seen.insert(f.name.as_str()) {
                return Err(format!("{} is listed twice", f.name));
            }
            let limit = match f.name.as_str() {
                METADATA => MAX_METADATA_BYTES,
                LATENTS => MAX_LATENTS_BYTES,
                name if self.frame_index(name).is_some() => max_png_bytes(self.width, self.height),
                name => return Err(format!("unexpected file {name:?} in the manifest")),
            };
            if f.size > limit {
                return Err(format!("{} claims {} bytes", f.name, f.size));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("{} has no valid checksum", f.name));
            }
        }
        if !seen.contains(METADATA) {
            return Err(format!("{METADATA} is not in the manifest"));
        }
        let frames_listed = self.files.len() - 1 - usize::from(seen.contains(LATENTS));
        if frames_listed != self.frames {
            return Err(format!(
                "manifest lists {frames_listed} frame files for {} frames",
                self.frames
            ));
        }
        Ok(())
    }

    /// `Some(i)` for `frame.{i:04}.png` with `i` below the frame count.
    fn frame_index(&self, name: &str) -> Option<usize> {
        let i: usize = name
            .strip_prefix("frame.")?
            .strip_suffix(".png")?
            .parse()
            .ok()?;
        (i < self.frames && frame_name(i) == name).then_some(i)
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Every listed file exists in `dir` with its listed size (checked before any is read).
    pub fn check_sizes(&self, dir: &Path) -> Result<(), String> {
        for f in &self.files {
            let size = std::fs::metadata(dir.join(&f.name))
                .map_err(|e| format!("{}: {e}", f.name))?
                .len();
            if size != f.size {
                return Err(format!(
                    "{} is {size} bytes, the manifest says {}",
                    f.name, f.size
                ));
            }
        }
        Ok(())
    }
}
