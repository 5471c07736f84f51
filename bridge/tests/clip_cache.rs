//! The disk cache: hits without a model, identical pixels, eviction under the cap, damaged and
//! half-written entries detected and regenerated (including a writer killed with SIGKILL).

#![allow(clippy::type_complexity)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use t2v_bridge::{ClipCache, Lookup};

#[test]
fn a_cache_hit_returns_identical_pixels_without_loading_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let generated = {
        let service = service(with_cache(dir.path()));
        let clip = service.submit(request("cached")).unwrap().wait().unwrap();
        assert!(!clip.from_cache);
        clip
    };
    let service = service(with_cache(dir.path()));
    let hit = service.submit(request("cached")).unwrap().wait().unwrap();
    assert!(hit.from_cache);
    assert_eq!(hit.frames, generated.frames, "bit-identical frames");
    assert_eq!(hit.metadata, generated.metadata);
    assert_eq!(
        hit.latents.as_ref().unwrap(),
        generated.latents.as_ref().unwrap()
    );
    let stats = service.stats();
    assert_eq!(
        (
            stats.model_loads,
            stats.component_loads,
            stats.generations,
            stats.cache_hits
        ),
        (0, 0, 0, 1)
    );
}

#[test]
fn eviction_keeps_the_cache_under_its_cap_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let one_clip = {
        let service = service(with_cache(dir.path()));
        service.submit(request("first")).unwrap().wait().unwrap();
        service.cache().unwrap().total_bytes()
    };
    // Room for two clips and a half.
    let cap = one_clip * 5 / 2;
    let config = t2v_bridge::ServiceConfig {
        cache_max_bytes: cap,
        ..with_cache(dir.path())
    };
    let service = service(config);
    service.submit(request("second")).unwrap().wait().unwrap();
    // Use "first" again, so "second" is now the least recently used.
    assert!(
        service
            .submit(request("first"))
            .unwrap()
            .wait()
            .unwrap()
            .from_cache
    );
    service.submit(request("third")).unwrap().wait().unwrap();
    let cache = service.cache().unwrap();
    assert!(cache.total_bytes() <= cap);
    let prompts: Vec<String> = cache
        .entries()
        .into_iter()
        .map(|e| e.metadata.unwrap().prompt)
        .collect();
    assert_eq!(prompts, vec!["first".to_string(), "third".to_string()]);
}

fn entry_file(cache: &ClipCache, key: &t2v_bridge::ClipKey, name: &str) -> std::path::PathBuf {
    cache.entry_dir(key).join(name)
}

#[test]
fn a_damaged_entry_is_detected_removed_and_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    let good = service.submit(request("damaged")).unwrap().wait().unwrap();
    let cache = service.cache().unwrap();
    let damage: Vec<Box<dyn Fn(&Path)>> = vec![
        // A flipped byte in a frame.
        Box::new(|dir| {
            let p = dir.join("frame.0004.png");
            let mut bytes = std::fs::read(&p).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
            std::fs::write(&p, bytes).unwrap();
        }),
        // A truncated frame.
        Box::new(|dir| {
            let p = dir.join("frame.0008.png");
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
        }),
        // A missing frame.
        Box::new(|dir| std::fs::remove_file(dir.join("frame.0000.png")).unwrap()),
        // A manifest cut short.
        Box::new(|dir| {
            std::fs::write(dir.join("manifest.json"), "{\"format_version\": 1, \"ke").unwrap()
        }),
    ];
    for (i, damage) in damage.iter().enumerate() {
        damage(&cache.entry_dir(&good.key));
        assert!(
            matches!(cache.load(&good.key), Lookup::Corrupt(_)),
            "damage {i} went unnoticed"
        );
        assert!(
            !cache.entry_dir(&good.key).exists(),
            "a corrupt entry is removed"
        );
        let again = service.submit(request("damaged")).unwrap().wait().unwrap();
        assert!(!again.from_cache, "damage {i}: regenerated");
        assert_eq!(again.frames, good.frames);
        assert!(
            entry_file(cache, &good.key, "manifest.json").is_file(),
            "and stored again"
        );
    }
    // Damage noticed by the service itself (not by a direct load) is counted and regenerated.
    let p = cache.entry_dir(&good.key).join("metadata.json");
    std::fs::write(&p, "{}").unwrap();
    let regenerated = service.submit(request("damaged")).unwrap().wait().unwrap();
    assert!(!regenerated.from_cache);
    assert_eq!(service.stats().corrupt_entries, 1);
    assert!(
        service
            .submit(request("damaged"))
            .unwrap()
            .wait()
            .unwrap()
            .from_cache
    );
}

/// The helper binary is built as an example of this package, next to the test binaries.
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

#[cfg(unix)]
#[test]
fn a_writer_killed_mid_entry_leaves_nothing_that_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let helper = example_binary("stall_cache_write");
    assert!(
        helper.is_file(),
        "build the helper with `cargo test` (it is an example): {}",
        helper.display()
    );
    let mut child = Command::new(&helper)
        .args([
            dir.path().to_str().unwrap(),
            tiny_model().to_str().unwrap(),
            "killed",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let half_written = std::path::PathBuf::from(
        line.trim()
            .strip_prefix("WRITING ")
            .expect("the helper reached the write"),
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        half_written.is_dir(),
        "the killed writer left its temporary folder"
    );

    let mut r = request("killed");
    r.params.steps = 2;
    // A service without the cache computes the key: opening this cache comes later.
    let key = service(no_cache()).key_for(&r).unwrap();
    // Pretend the filesystem had no atomic rename: the half-written folder sits where the
    // entry belongs. It has no manifest, so it must not be served.
    let copy_into = dir.path().join("clips").join(key.to_hex());
    std::fs::create_dir_all(&copy_into).unwrap();
    for f in std::fs::read_dir(&half_written).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy_into.join(f.file_name())).unwrap();
    }

    let service = service(with_cache(dir.path()));
    assert!(
        !half_written.exists(),
        "opening the cache removed the dead writer's temporary folder"
    );
    let clip = service.submit(r.clone()).unwrap().wait().unwrap();
    assert!(!clip.from_cache);
    let stats = service.stats();
    assert_eq!((stats.corrupt_entries, stats.generations), (1, 1));
    assert_frames_close(&clip.frames, &reference_frames(&r));
    assert!(
        service.submit(r).unwrap().wait().unwrap().from_cache,
        "the regenerated entry is good"
    );
}
