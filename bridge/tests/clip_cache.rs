//! The disk cache: hits without a model, identical pixels, eviction under the cap, damaged and
//! half-written entries detected and regenerated (including a writer killed with SIGKILL),
//! hostile manifests refused before any allocation, owner-only files, a folder shared by several
//! machines, and keys that name the model by content.

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

/// Rewrites an entry's manifest through `change` (checksums left as they are).
fn edit_manifest(dir: &Path, change: &dyn Fn(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut manifest);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// Regression: `Vec::with_capacity(manifest.frames)` aborted the host on a manifest claiming
/// 2^60 frames. Every hostile manifest is now a miss with a reason, found before reading frames.
#[test]
fn a_hostile_manifest_is_a_miss_never_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    let good = service.submit(request("hostile")).unwrap().wait().unwrap();
    let cache = service.cache().unwrap();
    let entry = cache.entry_dir(&good.key);
    let saved = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&entry).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), saved.path().join(f.file_name())).unwrap();
    }
    let restore = || {
        std::fs::create_dir_all(&entry).unwrap();
        for f in std::fs::read_dir(saved.path()).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), entry.join(f.file_name())).unwrap();
        }
    };
    let cases: Vec<(&str, Box<dyn Fn(&mut serde_json::Value)>)> = vec![
        ("frames", Box::new(|m| m["frames"] = (1u64 << 60).into())),
        ("frames", Box::new(|m| m["frames"] = 0.into())),
        ("frames", Box::new(|m| m["width"] = (1u64 << 40).into())),
        (
            "bytes, the manifest says",
            Box::new(|m| {
                let size = m["files"][0]["size"].as_u64().unwrap();
                m["files"][0]["size"] = (size + 1).into();
            }),
        ),
        (
            "claims",
            Box::new(|m| m["files"][0]["size"] = (1u64 << 60).into()),
        ),
        (
            "unexpected file",
            Box::new(|m| m["files"][0]["name"] = "../../secret".into()),
        ),
        (
            "listed twice",
            Box::new(|m| {
                let first = m["files"][0].clone();
                m["files"].as_array_mut().unwrap().push(first);
            }),
        ),
        (
            "checksum",
            Box::new(|m| m["files"][1]["sha256"] = "00".repeat(32).into()),
        ),
    ];
    for (i, (reason, change)) in cases.iter().enumerate() {
        restore();
        assert!(
            matches!(cache.load(&good.key), Lookup::Hit(_)),
            "case {i} starts good"
        );
        edit_manifest(&entry, change.as_ref());
        match cache.load(&good.key) {
            Lookup::Corrupt(why) => assert!(why.contains(reason), "case {i}: {why}"),
            _ => panic!("case {i}: a hostile manifest was not refused"),
        }
        assert!(!entry.exists(), "case {i}: the bad entry is removed");
    }
    // The service logs the miss and regenerates.
    restore();
    edit_manifest(&entry, &|m| m["frames"] = (1u64 << 60).into());
    let again = service.submit(request("hostile")).unwrap().wait().unwrap();
    assert!(!again.from_cache);
    assert_eq!(again.frames, good.frames);
    assert_eq!(service.stats().corrupt_entries, 1);
}

#[cfg(unix)]
#[test]
fn cache_folders_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    let service = service(with_cache(&dir));
    let clip = service.submit(request("private")).unwrap().wait().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for folder in [
        dir.clone(),
        dir.join("clips"),
        dir.join("tmp"),
        service.cache().unwrap().entry_dir(&clip.key),
    ] {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    let files: Vec<_> = std::fs::read_dir(service.cache().unwrap().entry_dir(&clip.key))
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    assert!(files.len() > 3);
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

fn age(path: &Path, by: std::time::Duration) {
    let when = std::time::SystemTime::now() - by;
    std::fs::File::open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

#[test]
fn another_machines_temporaries_are_reaped_only_once_old() {
    let dir = tempfile::tempdir().unwrap();
    ClipCache::open(dir.path(), u64::MAX).unwrap();
    let live = dir
        .path()
        .join("tmp")
        .join(format!("render07-{}-0-abc.writing", std::process::id()));
    let old = dir.path().join("tmp").join("render08-4242-0-abc.writing");
    let trash = dir.path().join("tmp").join("render09-4243-0-abc.removing");
    for d in [&live, &old, &trash] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("frame.0000.png"), b"half").unwrap();
    }
    for p in [old.join("frame.0000.png"), old.clone()] {
        age(&p, 2 * HOUR);
    }
    ClipCache::open(dir.path(), u64::MAX).unwrap();
    assert!(
        live.is_dir(),
        "another machine's write in progress (whatever its process id here) is left alone"
    );
    assert!(!old.exists(), "an old temporary is reaped");
    assert!(!trash.exists(), "a folder being deleted is finished off");
    // The temporaries this process makes carry its host name and process id.
    let name = t2v_bridge::cache_sharing::owner_tag();
    assert!(name.starts_with(&format!(
        "{}-{}-",
        t2v_bridge::cache_sharing::host_name(),
        std::process::id()
    )));
}

#[test]
fn eviction_never_removes_a_clip_another_machine_is_reading() {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        let service = service(with_cache(dir.path()));
        service
            .submit(request("leased"))
            .unwrap()
            .wait()
            .unwrap()
            .key
    };
    let cache = ClipCache::open(dir.path(), 0).unwrap();
    let entry = cache.entry_dir(&key);
    let lease = entry.join("lease.render07-4242-0");
    std::fs::write(&lease, b"").unwrap();
    assert_eq!(cache.evict(), 0, "a leased entry stays even over the cap");
    assert_eq!(cache.clear(), 0);
    assert!(matches!(cache.load(&key), Lookup::Hit(_)));
    assert!(lease.is_file(), "a reader removes only its own lease");
    // A lease left by a reader that crashed an hour ago protects nothing.
    age(&lease, HOUR);
    assert_eq!(cache.evict(), 1);
    assert!(!entry.exists());
}

#[test]
fn the_model_is_named_by_content_not_by_path_or_time() {
    let copy_model = |to: &Path| {
        let status = Command::new("cp")
            .args(["-r", tiny_model().to_str().unwrap(), to.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("studio-a"), tmp.path().join("farm-b"));
    copy_model(&a);
    copy_model(&b);
    let config = b.join("transformer").join("config.json");
    age(&config, HOUR);
    let service = service(no_cache());
    let key = |model: &Path| {
        let mut r = request("same weights");
        r.model = t2v_bridge::ModelSpec::folder(model);
        service.key_for(&r).unwrap()
    };
    assert_eq!(
        key(&a),
        key(&b),
        "same weights elsewhere, touched at another time"
    );
    assert_eq!(key(&a), key(&tiny_model()));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push('\n');
    std::fs::write(&config, text).unwrap();
    assert_ne!(key(&a), key(&b), "different content, different model");
}
