//! `t2v info` checks what it is given: one component file alone, every tensor's name and shape
//! against the architecture (from the header), naming each missing, unexpected or mis-shaped
//! tensor.

mod common;

use candle_core::{Device, Tensor};
use common::fixtures;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TINY_TRANSFORMER: &str = "wan2.2_ti2v_tiny_fp16.safetensors";

fn info(args: &[&Path], flags: &[&str]) -> (Output, String) {
    let cache = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_t2v"));
    c.env("T2V_CACHE_DIR", cache.path()).arg("info");
    for (flag, path) in flags.iter().zip(args) {
        c.arg(flag).arg(path);
    }
    let o = c.output().expect("t2v runs");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    (o, out)
}

/// The tiny transformer and its config.json in a folder of their own, with `edit` applied.
fn lone_transformer(dir: &Path, edit: impl Fn(&mut HashMap<String, Tensor>)) -> PathBuf {
    let original = fixtures().join("tiny-original");
    let mut tensors =
        candle_core::safetensors::load(original.join(TINY_TRANSFORMER), &Device::Cpu).unwrap();
    edit(&mut tensors);
    let file = dir.join("transformer.safetensors");
    candle_core::safetensors::save(&tensors, &file).unwrap();
    std::fs::copy(original.join("config.json"), dir.join("config.json")).unwrap();
    file
}

#[test]
fn one_component_file_alone_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = lone_transformer(dir.path(), |_| {});
    let (o, out) = info(&[&file], &["--transformer"]);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for expected in [
        "transformer:",
        "all present with the right shapes",
        "VAE: not given",
        "tokenizer: not given",
        "components fit together: not checked",
    ] {
        assert!(out.contains(expected), "no `{expected}` in\n{out}");
    }
}

#[test]
fn every_bad_tensor_is_named_and_the_exit_code_says_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = lone_transformer(dir.path(), |t| {
        let p = "model.diffusion_model.";
        let w = t.remove(&format!("{p}blocks.1.ffn.0.weight")).unwrap();
        let grown = Tensor::cat(&[&w, &w.narrow(0, 0, 1).unwrap()], 0).unwrap();
        t.insert(format!("{p}blocks.1.ffn.0.weight"), grown);
        t.remove(&format!("{p}blocks.0.cross_attn.k.bias")).unwrap();
        let extra = t[&format!("{p}blocks.0.norm3.bias")].clone();
        t.insert(format!("{p}blocks.0.extra_gate"), extra);
    });
    let (o, out) = info(&[&file], &["--transformer"]);
    assert_eq!(o.status.code(), Some(2), "{out}");
    for expected in [
        "3 problem(s)",
        "`model.diffusion_model.blocks.1.ffn.0.weight` has shape [65, 32], expected [64, 32]",
        "missing tensor `blocks.0.attn2.to_k.bias`",
        "unexpected tensor `model.diffusion_model.blocks.0.extra_gate`",
        "components fit together: NO",
    ] {
        assert!(out.contains(expected), "no `{expected}` in\n{out}");
    }
    assert!(!out.contains("fit together: yes"));
}

#[test]
fn a_whole_model_folder_still_fits_together() {
    let (o, out) = info(&[&fixtures().join("tiny-diffusers")], &["--model"]);
    assert!(o.status.success(), "{out}");
    assert_eq!(
        out.matches("all present with the right shapes").count(),
        3,
        "{out}"
    );
    assert!(out.contains("components fit together: yes"), "{out}");
}

/// `t2v info --plan` with `flags`, on the tiny model folder.
fn plan(flags: &[&str]) -> (Output, String) {
    let cache = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .env("T2V_CACHE_DIR", cache.path())
        .args(["info", "--plan", "--model"])
        .arg(fixtures().join("tiny-diffusers"))
        .args(flags)
        .output()
        .expect("t2v runs");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    (o, out)
}

#[test]
fn plan_ends_with_the_planned_peak_and_needs_no_tokenizer() {
    // The component folders with their configs, and no tokenizer anywhere.
    let dir = tempfile::tempdir().unwrap();
    let tiny = fixtures().join("tiny-diffusers");
    for sub in ["transformer", "vae", "text_encoder"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(tiny.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_t2v"))
        .env("T2V_CACHE_DIR", dir.path().join("cache"))
        .args(["info", "--plan", "--model"])
        .arg(dir.path())
        .args([
            "--vram", "8", "--width", "64", "--height", "64", "--frames", "9",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("tokenizer: not given"), "{out}");
    let last = out.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("planned peak: ") && last.ends_with("budget 8.00 GiB"),
        "{out}"
    );
    assert!(out.contains("residency plan: 64x64, 9 frames"), "{out}");
    assert!(out.contains("denoise step"), "{out}");
}

#[test]
fn an_unparsable_budget_is_bad_input() {
    let (o, _) = plan(&["--vram", "lots"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("memory budget `lots`"));
    let (o, out) = plan(&["--vram", "12"]);
    assert!(o.status.success());
    assert!(out.trim_end().ends_with("budget 12.00 GiB"), "{out}");
}
