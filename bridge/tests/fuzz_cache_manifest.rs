//! Hostile clip cache manifests (a cache folder is shared, and disks get damaged): a real
//! manifest mutated, and random bytes, parsed alone and read back through the cache. Every
//! input is a miss or a verified hit: no panic, no allocation sized by the manifest.

#[path = "../../models/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use fuzz_support::{assert_refused, fuzz, hostile};
use std::path::Path;
use t2v_bridge::cache_manifest::{Manifest, MANIFEST};
use t2v_bridge::metadata::{ClipMetadata, ModelInfo};
use t2v_bridge::{ClipCache, ClipKey, Frame, Lookup, ModelSpec, Request};

record_allocations!();

fn key() -> ClipKey {
    ClipKey::from_hex(&"ab".repeat(32)).unwrap()
}

/// A cache holding one small clip (no model needed); returns the entry's files.
fn cache_with_a_clip(root: &Path) -> (ClipCache, Vec<(String, Vec<u8>)>) {
    let cache = ClipCache::open(root, u64::MAX).unwrap();
    let frames: Vec<Frame> = (0..3u16)
        .map(|i| Frame::from_rgb16(8, 4, (0..96).map(|v| v * 600 + i).collect()))
        .collect();
    let request = Request::new(ModelSpec::default(), Default::default());
    let model = ModelInfo {
        path: None,
        fingerprint: "f".into(),
        files: vec![],
        loras: vec![],
    };
    let metadata = ClipMetadata::describe(&request, key(), model, "cpu".into());
    let dir = cache.store(&key(), &frames, None, &metadata).unwrap();
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            (
                f.file_name().to_string_lossy().into_owned(),
                std::fs::read(f.path()).unwrap(),
            )
        })
        .collect();
    (cache, files)
}

#[test]
fn fuzz_clip_cache_manifests() {
    let root = tempfile::tempdir().unwrap();
    let (cache, files) = cache_with_a_clip(root.path());
    let seed = files.iter().find(|(n, _)| n == MANIFEST).unwrap().1.clone();
    let hex = key().to_hex();
    let read_back = |manifest: &[u8]| {
        let dir = cache.entry_dir(&key());
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &files {
            std::fs::write(
                dir.join(name),
                if name == MANIFEST { manifest } else { bytes },
            )
            .unwrap();
        }
        matches!(cache.load(&key()), Lookup::Hit(_))
    };
    assert!(read_back(&seed));

    // Regression: `Vec::with_capacity(manifest.frames)` with 2^60 frames aborted the process.
    let text = String::from_utf8(seed.clone()).unwrap();
    let frames_2_60 = text.replace("\"frames\": 3", "\"frames\": 1152921504606846976");
    assert_ne!(frames_2_60, text);
    assert_refused("2^60 frames", || read_back(frames_2_60.as_bytes()));

    fuzz(
        "clip cache manifest (parse)",
        20000,
        hostile(seed.clone()),
        |bytes| Manifest::parse(bytes, &hex).is_ok(),
    );
    fuzz(
        "clip cache manifest (read back)",
        2000,
        hostile(seed),
        read_back,
    );
}
