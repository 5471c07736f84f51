//! `t2v generate --style draft` decodes with the model's tiny decoder when it has one and with
//! the full VAE when it has none; `--decoder` still wins over the style.

mod common;

use common::{copy_dir, fixtures, png_bytes};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tiny model in `dir`, with the tiny TAEHV fixture in `tiny_decoder/` when `with_tiny`.
fn tiny_model(dir: &Path, with_tiny: bool) -> PathBuf {
    copy_dir(&fixtures().join("tiny-diffusers"), dir);
    if with_tiny {
        let tiny = dir.join("tiny_decoder");
        std::fs::create_dir_all(&tiny).unwrap();
        std::fs::copy(
            fixtures().join("taehv/taehv-tiny.safetensors"),
            tiny.join("taew2_2.safetensors"),
        )
        .unwrap();
    }
    dir.to_path_buf()
}

/// The PNG frames of `t2v generate` on `model` with `flags`, and its stderr.
fn frames(dir: &Path, model: &Path, name: &str, flags: &[&str]) -> (Vec<Vec<u8>>, String) {
    let out = dir.join(name);
    let o = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .env("T2V_CACHE_DIR", dir.join("cache"))
        .args(["generate", "--prompt", "a red ball", "--seed", "3"])
        .args(["--width", "64", "--height", "64", "--frames", "5"])
        .arg("--model")
        .arg(model)
        .arg("--output")
        .arg(out.join("f.%04d.png"))
        .args(flags)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{flags:?}: {err}");
    (png_bytes(&out), err)
}

#[test]
fn draft_decodes_fast_when_the_model_has_a_tiny_decoder_and_full_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let with = tiny_model(&dir.path().join("with"), true);
    let without = tiny_model(&dir.path().join("without"), false);
    let draft_flags = ["--steps", "10", "--step-cache", "fast"];

    let (draft_with, _) = frames(dir.path(), &with, "a", &["--style", "draft"]);
    let (fast, _) = frames(
        dir.path(),
        &with,
        "b",
        &[&draft_flags[..], &["--decoder", "fast"]].concat(),
    );
    assert_eq!(
        draft_with, fast,
        "draft with a tiny decoder: the fast decode"
    );

    let (draft_without, err) = frames(dir.path(), &without, "c", &["--style", "draft"]);
    assert!(err.contains("no tiny decoder"), "{err}");
    let (full, _) = frames(dir.path(), &with, "d", &draft_flags);
    assert_eq!(draft_without, full, "draft without one: the full decode");
    assert_ne!(draft_with, draft_without, "the two decoders differ");

    // --decoder wins over the style.
    let (draft_full, _) = frames(
        dir.path(),
        &with,
        "e",
        &["--style", "draft", "--decoder", "full"],
    );
    assert_eq!(draft_full, full);
}
