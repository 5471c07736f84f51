//! A model's identity from the content of its files, so that every machine holding the same
//! weights (wherever they are, whatever their modification times) computes the same clip keys
//! and one shared clip cache serves them all.
//!
//! Hashing multi-GB weights on every request would take seconds, so a large file is identified
//! by its size, its first and last MiB (a safetensors header, with every tensor's name, shape,
//! dtype and offsets, sits at the start; a `.pth` zip's central directory at the end) and
//! [`SAMPLES`] windows spread evenly over the rest. Two different trainings differ in every
//! window; an edit of a few bytes in the middle of a large file is not seen (such a file is not a
//! different model in practice). Small files (configs, the tokenizer, tiny test models) are
//! hashed whole. Each file's hash is remembered for this process by (path, size, modification
//! time), so repeated requests read nothing.

use crate::cache_key::hex;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;
use t2v_models::checkpoint::ModelFiles;
use t2v_models::lora::LoraSpec;

/// Files up to this size are hashed whole.
pub const WHOLE_FILE_LIMIT: u64 = 32 << 20;
/// The head and tail read from a larger file.
const EDGE: u64 = 1 << 20;
/// Windows sampled between head and tail, and their size.
pub const SAMPLES: u64 = 64;
const WINDOW: u64 = 64 << 10;

type FileStamp = (PathBuf, u64, Option<SystemTime>);
static REMEMBERED: Mutex<Option<HashMap<FileStamp, [u8; 32]>>> = Mutex::new(None);

fn read_at(file: &mut File, offset: u64, len: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let start = out.len();
    out.resize(start + len as usize, 0);
    file.read_exact(&mut out[start..])
}

/// The content hash of one file (see the module documentation).
pub fn file_content_hash(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    if size <= WHOLE_FILE_LIMIT {
        std::io::copy(&mut file, &mut h)?;
        return Ok(h.finalize().into());
    }
    let mut bytes = Vec::with_capacity((2 * EDGE + SAMPLES * WINDOW) as usize);
    read_at(&mut file, 0, EDGE, &mut bytes)?;
    let middle = size - 2 * EDGE;
    for i in 0..SAMPLES {
        let offset = EDGE + (middle - WINDOW) / (SAMPLES - 1) * i;
        read_at(&mut file, offset, WINDOW, &mut bytes)?;
    }
    read_at(&mut file, size - EDGE, EDGE, &mut bytes)?;
    h.update(&bytes);
    Ok(h.finalize().into())
}

pub(crate) fn remembered_hash(path: &Path) -> Result<[u8; 32]> {
    let io = |e: std::io::Error| Error::bad_input(format!("{}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(io)?;
    let stamp = (path.to_path_buf(), meta.len(), meta.modified().ok());
    if let Some(hash) = t2v_support::lock(&REMEMBERED)
        .as_ref()
        .and_then(|m| m.get(&stamp))
    {
        return Ok(*hash);
    }
    let hash = file_content_hash(path).map_err(io)?;
    t2v_support::lock(&REMEMBERED)
        .get_or_insert_with(HashMap::new)
        .insert(stamp, hash);
    Ok(hash)
}

/// One file's content identity, as hex (remembered like the model's files).
pub fn file_fingerprint(path: &Path) -> Result<String> {
    remembered_hash(path).map(|h| hex(&h))
}

/// The identity of a model: each component's files by content and role, never by path.
pub fn model_fingerprint(files: &ModelFiles) -> Result<String> {
    let mut h = Sha256::new();
    let components = [
        ("transformer", &files.transformer),
        ("vae", &files.vae),
        ("text_encoder", &files.text_encoder),
    ];
    for (role, component) in components {
        for (i, path) in component.files.iter().enumerate() {
            h.update(format!("{role} weights {i}\0").as_bytes());
            h.update(remembered_hash(path)?);
        }
        if let Some(config) = &component.config {
            h.update(format!("{role} config\0").as_bytes());
            h.update(remembered_hash(config)?);
        }
    }
    h.update(b"tokenizer\0");
    h.update(remembered_hash(&files.tokenizer)?);
    Ok(hex(&h.finalize()))
}

/// The identity of a model with LoRAs merged in: `model` (its [`model_fingerprint`]) when there
/// are none, else a hash of it and of each LoRA's content and strength, in order. A LoRA moved or
/// copied elsewhere is the same LoRA; one retrained under the same name is not.
pub fn with_loras(model: &str, loras: &[LoraSpec]) -> Result<String> {
    if loras.is_empty() {
        return Ok(model.to_string());
    }
    let mut h = Sha256::new();
    h.update(b"model\0");
    h.update(model.as_bytes());
    for lora in loras {
        h.update(b"\0lora\0");
        h.update(remembered_hash(&lora.path)?);
        h.update(lora.strength.to_bits().to_le_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// The fingerprint of the model `spec` names: finds its files (reading headers only) and
/// identifies them by content. A queue worker publishes it, so clients compute clip keys
/// without the model's files.
pub fn spec_fingerprint(spec: &crate::ModelSpec) -> Result<String> {
    let files = ModelFiles::resolve(spec.path.as_deref(), &spec.overrides.to_models())?;
    model_fingerprint(&files)
}

/// The content hash (hex) of the tiny decoder the model `spec` names or holds
/// ([`crate::fast_decode::find_tiny_decoder`]); `None` when it has none. A queue worker
/// publishes it, so clients know whether the pool can decode fast and compute those keys.
pub fn spec_tiny_decoder(spec: &crate::ModelSpec) -> Result<Option<String>> {
    let files = ModelFiles::resolve(spec.path.as_deref(), &spec.overrides.to_models())?;
    crate::fast_decode::find_tiny_decoder(&files, spec.overrides.fast_decoder.as_deref())?
        .map(|tiny| Ok(hex(&remembered_hash(&tiny)?)))
        .transpose()
}

/// The identity a fast-decoded clip's key is made with: the model's (`model`) and its tiny
/// decoder's content hash (`tiny_decoder`), so that another tiny decoder makes another clip.
pub fn with_tiny_decoder(model: &str, tiny_decoder: &str) -> String {
    format!("{model}\0fast decoder {tiny_decoder}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn large_files_are_sampled_and_named_by_content_not_path() {
        let dir = tempfile::tempdir().unwrap();
        let size = (WHOLE_FILE_LIMIT + 3 * EDGE) as usize;
        let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let a = file_of(dir.path(), "a.safetensors", &bytes);
        let b = file_of(dir.path(), "elsewhere.safetensors", &bytes);
        let hash = file_content_hash(&a).unwrap();
        assert_eq!(hash, file_content_hash(&b).unwrap());
        // A change in the header, in a sampled window or at the end is a different model.
        for offset in [10, EDGE as usize + 1, size - 1] {
            let mut changed = bytes.clone();
            changed[offset] ^= 1;
            let c = file_of(dir.path(), "c.safetensors", &changed);
            assert_ne!(hash, file_content_hash(&c).unwrap(), "byte {offset}");
        }
        let shorter = file_of(dir.path(), "d.safetensors", &bytes[..size - 1]);
        assert_ne!(hash, file_content_hash(&shorter).unwrap());
    }

    #[test]
    fn small_files_are_hashed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = vec![7u8; 5000];
        let hash = file_content_hash(&file_of(dir.path(), "t.json", &bytes)).unwrap();
        let mut changed = bytes.clone();
        changed[2500] = 8;
        assert_ne!(
            hash,
            file_content_hash(&file_of(dir.path(), "u.json", &changed)).unwrap()
        );
    }

    #[test]
    fn a_loras_identity_is_its_content_and_strength_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = file_of(dir.path(), "a.safetensors", b"lora a");
        let a_copy = file_of(dir.path(), "elsewhere.safetensors", b"lora a");
        let b = file_of(dir.path(), "b.safetensors", b"lora b");
        let spec = |path: &PathBuf, strength| LoraSpec {
            path: path.clone(),
            strength,
        };
        let id = |loras: &[LoraSpec]| with_loras("m", loras).unwrap();
        assert_eq!(id(&[]), "m", "no LoRA: the model's own identity");
        let one = id(&[spec(&a, 1.0)]);
        assert_ne!(one, "m");
        assert_eq!(one, id(&[spec(&a_copy, 1.0)]), "by content, not path");
        assert_ne!(one, id(&[spec(&a, 0.5)]), "strength");
        assert_ne!(one, id(&[spec(&b, 1.0)]), "content");
        assert_ne!(one, with_loras("other model", &[spec(&a, 1.0)]).unwrap());
        assert_ne!(
            id(&[spec(&a, 1.0), spec(&b, 0.5)]),
            id(&[spec(&a, 1.0)]),
            "every LoRA counts"
        );
        // Retrained under the same name.
        std::fs::write(&a, b"lora a, retrained").unwrap();
        assert_ne!(one, id(&[spec(&a, 1.0)]));
        assert!(with_loras("m", &[spec(&dir.path().join("missing"), 1.0)]).is_err());
    }
}
