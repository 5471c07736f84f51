//! `t2v generate --step-cache` and `--step-cache-method` end to end: EasyCache (the default)
//! needs no calibration and skips on the demo model; MagCache is picked by name and makes
//! another clip; an unknown method exits 2 naming the valid ones.

mod common;

use common::{fixtures, png_bytes};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn t2v(cache: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_t2v"));
    c.env("T2V_CACHE_DIR", cache);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `t2v generate` on `model` with `flags`; the frames it wrote (PNG bytes), or its output.
fn generate(dir: &Path, model: &Path, name: &str, flags: &[&str]) -> Result<Vec<Vec<u8>>, Output> {
    let out = dir.join(name);
    let o = t2v(&dir.join("cache"))
        .args([
            "generate",
            "--prompt",
            "a red circle moves to the right on a black background",
        ])
        .arg("--model")
        .arg(model)
        .arg("--output")
        .arg(out.join("f.%04d.png"))
        .args(flags)
        .output()
        .expect("t2v runs");
    if !o.status.success() {
        return Err(o);
    }
    Ok(png_bytes(&out))
}

#[test]
fn the_step_cache_method_picks_the_rule_and_easycache_needs_no_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/model");
    let off = generate(dir.path(), &demo, "off", &[]).unwrap();
    let easy = generate(dir.path(), &demo, "easy", &["--step-cache", "faster"]).unwrap();
    let named = generate(
        dir.path(),
        &demo,
        "named",
        &["--step-cache", "faster", "--step-cache-method", "easycache"],
    )
    .unwrap();
    let mag = generate(
        dir.path(),
        &demo,
        "mag",
        &["--step-cache", "faster", "--step-cache-method", "MagCache"],
    )
    .unwrap();
    assert_eq!(off.len(), 17);
    assert_eq!(easy, named, "easycache is the default method");
    assert_ne!(easy, off, "EasyCache skips evaluations of the demo model");
    assert_ne!(mag, off, "so does MagCache");
    assert_ne!(
        mag, easy,
        "the two rules make different clips (and cache them apart)"
    );

    // The tiny model has no calibration: MagCache says how to make one, EasyCache needs none.
    let tiny = fixtures().join("tiny-diffusers");
    let small = [
        "--width", "64", "--height", "64", "--frames", "5", "--steps", "8",
    ];
    let with = |method: &str| {
        let mut flags = small.to_vec();
        flags.extend(["--step-cache", "fast", "--step-cache-method", method]);
        generate(dir.path(), &tiny, method, &flags)
    };
    let e = stderr(&with("magcache").unwrap_err());
    assert!(e.contains("t2v calibrate"), "{e}");
    assert_eq!(with("easycache").unwrap().len(), 5);

    let o = with("teacache").unwrap_err();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("magcache") && e.contains("easycache"), "{e}");
}

#[test]
fn calibrate_writes_the_ratios_that_magcache_then_reads_from_the_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny");
    common::copy_dir(&fixtures().join("tiny-diffusers"), &tiny);
    let small = [
        "--width", "64", "--height", "64", "--frames", "5", "--steps", "8",
    ];
    let magcache = |name: &str| {
        let mut flags = small.to_vec();
        flags.extend(["--step-cache", "faster", "--step-cache-method", "magcache"]);
        generate(dir.path(), &tiny, name, &flags)
    };
    assert!(magcache("before").is_err(), "no calibration yet");

    let o = t2v(&dir.path().join("cache"))
        .args(["calibrate", "--prompt", "a red circle moves to the right"])
        .arg("--model")
        .arg(&tiny)
        .args(small)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("magnitude ratios of 8 steps (2 guidance branches)"),
        "{}",
        stderr(&o)
    );
    let ratios = t2v_models::pipeline::step_cache::MagRatios::read(
        &tiny.join(t2v_models::pipeline::step_cache::CALIBRATION_FILE),
    )
    .unwrap();
    assert_eq!((ratios.cond.len(), ratios.uncond.len()), (8, 8));
    assert_eq!((ratios.cond[0], ratios.uncond[0]), (1.0, 1.0));
    assert!(
        ratios
            .cond
            .iter()
            .chain(&ratios.uncond)
            .all(|r| r.is_finite() && *r > 0.0),
        "{ratios:?}"
    );
    assert_eq!(magcache("after").unwrap().len(), 5, "MagCache runs on it");

    // The demo model ships its calibration: measuring it again needs --out.
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/model");
    let o = t2v(&dir.path().join("cache"))
        .args(["calibrate", "--prompt", "a red circle"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--out FILE"), "{}", stderr(&o));
    assert!(demo
        .join(t2v_models::pipeline::step_cache::CALIBRATION_FILE)
        .exists());
}
