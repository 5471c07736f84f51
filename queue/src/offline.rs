//! What a client does without the queue server. The pool's model identities a client has seen
//! are remembered beside its clip cache, so a clip already cached is named and read from the
//! cache with no connection at all: a farm render while the server is down, a node re-rendering
//! a clip it has. A model id names one set of weights; weights changed under the same id are
//! seen by a client only for clips it does not have yet (give changed weights a new id).

use crate::client::{prepare_with, QueueClient, RemoteRequest};
use crate::message::{check_name, JobMessage, ModelEntry};
use std::borrow::Borrow;
use std::path::{Path, PathBuf};
use t2v_bridge::{Clip, ClipCache, ClipKey, Latents, Lookup, Result};

/// The folder of the clip cache that holds the remembered identities.
const FOLDER: &str = "queue-models";

/// The pool's model identities as this machine last saw them.
pub struct KnownModels {
    dir: PathBuf,
}

impl KnownModels {
    /// Remembered in the clip cache folder `cache_dir`.
    pub fn beside(cache_dir: &Path) -> KnownModels {
        KnownModels {
            dir: cache_dir.join(FOLDER),
        }
    }

    fn file(&self, pool: &str, model_id: &str) -> Option<PathBuf> {
        // Both are checked names (letters, digits, - and _): safe as a file name.
        check_name("pool", pool).ok()?;
        check_name("model id", model_id).ok()?;
        Some(self.dir.join(format!("{pool}.{model_id}.json")))
    }

    /// What pool `pool` served as `model_id` when this machine last asked.
    pub fn recall(&self, pool: &str, model_id: &str) -> Option<ModelEntry> {
        let bytes = std::fs::read(self.file(pool, model_id)?).ok()?;
        ModelEntry::parse(&bytes)
            .ok()
            .filter(|e| e.model_id == model_id)
    }

    /// Remembers `entry` of `pool`; best effort (a read-only cache folder remembers nothing).
    pub fn remember(&self, pool: &str, entry: &ModelEntry) {
        let Some(file) = self.file(pool, &entry.model_id) else {
            return;
        };
        if self.recall(pool, &entry.model_id).as_ref() == Some(entry) {
            return;
        }
        let temp = file.with_extension(format!("{}.tmp", std::process::id()));
        let written = t2v_support::private::create_dir_all(&self.dir)
            .and_then(|()| t2v_support::private::write(&temp, &entry.to_bytes()))
            .and_then(|()| std::fs::rename(&temp, &file));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }

    /// The clip key of `request` on `pool` under the identity remembered for its model; `None`
    /// when nothing is remembered or the remembered model cannot make it (a fast decode
    /// without a tiny decoder: the pool says why).
    pub fn key(&self, pool: &str, request: &RemoteRequest) -> Option<ClipKey> {
        let entry = self.recall(pool, &request.model_id)?;
        prepare_with(&entry, pool, request).ok().map(|m| m.key)
    }
}

/// Where a client finds the clip of a request.
pub enum Found<C, T> {
    /// In the clip cache: what the caller's look-up returned.
    Cached(T),
    /// Not cached: the job to submit through the client that named it.
    Job(C, Box<JobMessage>),
}

/// The one way both clients (`t2v generate --queue` and the node) look for a clip: first under
/// the model identity this machine remembers, with no connection; only when that misses,
/// through `connect`'s client, which reads (and remembers) the pool's model entry, looking in
/// the cache again only when the key came out different. `cached` looks a key up (`None`: not
/// there, or no cache).
pub fn find<C: Borrow<QueueClient>, T>(
    known: Option<&KnownModels>,
    pool: &str,
    request: &RemoteRequest,
    mut cached: impl FnMut(ClipKey) -> Result<Option<T>>,
    connect: impl FnOnce() -> Result<C>,
) -> Result<Found<C, T>> {
    let remembered = known.and_then(|k| k.key(pool, request));
    if let Some(key) = remembered {
        if let Some(hit) = cached(key)? {
            return Ok(Found::Cached(hit));
        }
    }
    let client = connect()?;
    let message = client.borrow().prepare_remembering(request, known)?;
    if Some(message.key) != remembered {
        if let Some(hit) = cached(message.key)? {
            return Ok(Found::Cached(hit));
        }
    }
    Ok(Found::Job(client, Box::new(message)))
}

/// The clip `key` from the clip cache, if it holds it (a corrupt entry is removed and missed).
pub fn cached_clip(cache: &ClipCache, key: ClipKey) -> Result<Option<Clip>> {
    match cache.load(&key) {
        Lookup::Hit(hit) => Ok(Some(Clip {
            key,
            frames: hit.frames,
            latents: hit.latents.as_ref().map(Latents::from_tensor).transpose()?,
            metadata: hit.metadata,
            from_cache: true,
        })),
        Lookup::Miss | Lookup::Corrupt(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use t2v_bridge::Precision;

    fn entry(model_id: &str, fingerprint: &str) -> ModelEntry {
        ModelEntry {
            v: crate::PROTOCOL_VERSION,
            model_id: model_id.into(),
            fingerprint: fingerprint.into(),
            precision: Precision::F32,
            tiny_decoder: None,
            worker: "w-test-1".into(),
        }
    }

    #[test]
    fn identities_are_remembered_per_pool_and_model_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownModels::beside(dir.path());
        assert_eq!(known.recall("default", "wan22"), None);
        known.remember("default", &entry("wan22", "aaaa"));
        known.remember("h100", &entry("wan22", "bbbb"));
        assert_eq!(
            known.recall("default", "wan22"),
            Some(entry("wan22", "aaaa"))
        );
        assert_eq!(known.recall("h100", "wan22"), Some(entry("wan22", "bbbb")));
        assert_eq!(known.recall("default", "demo"), None);
        known.remember("default", &entry("wan22", "cccc"));
        assert_eq!(
            known.recall("default", "wan22"),
            Some(entry("wan22", "cccc"))
        );
        // Nothing but the entries is left behind.
        let files = std::fs::read_dir(dir.path().join(FOLDER)).unwrap().count();
        assert_eq!(files, 2);
    }

    #[test]
    fn names_that_are_not_names_and_damaged_files_are_not_recalled() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownModels::beside(dir.path());
        known.remember("../up", &entry("wan22", "aaaa"));
        known.remember("default", &entry("../../etc/x", "aaaa"));
        assert!(!dir.path().join(FOLDER).exists(), "nothing was written");
        assert_eq!(known.recall("default", "../x"), None);
        known.remember("default", &entry("wan22", "aaaa"));
        let file = dir.path().join(FOLDER).join("default.wan22.json");
        std::fs::write(&file, b"{ not json").unwrap();
        assert_eq!(known.recall("default", "wan22"), None);
        // An entry stored under another model's name is not that model's.
        std::fs::write(&file, entry("demo", "aaaa").to_bytes()).unwrap();
        assert_eq!(known.recall("default", "wan22"), None);
    }

    #[cfg(unix)]
    #[test]
    fn remembered_identities_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        KnownModels::beside(dir.path()).remember("default", &entry("wan22", "aaaa"));
        let file = dir.path().join(FOLDER).join("default.wan22.json");
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
