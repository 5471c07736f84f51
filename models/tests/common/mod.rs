//! Shared helpers for the parity tests: fixture paths, tensor loading and comparison.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn tiny_diffusers() -> PathBuf {
    fixtures().join("tiny-diffusers")
}

pub fn tiny_original() -> PathBuf {
    fixtures().join("tiny-original")
}

pub fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// Every tensor of a parity fixture file, as f32 (integer tensors converted too).
pub fn load(name: &str) -> HashMap<String, Tensor> {
    let path = fixtures().join("parity").join(name);
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    tensors
        .into_iter()
        .map(|(k, v)| (k, v.to_dtype(DType::F32).expect("to f32")))
        .collect()
}

pub fn json(name: &str) -> serde_json::Value {
    let path = fixtures().join("parity").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture json"))
        .expect("valid json")
}

/// The largest absolute difference, compared in f32 on the CPU (inputs may live on a GPU).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let on_cpu = |t: &Tensor| {
        t.to_dtype(DType::F32)
            .unwrap()
            .to_device(&Device::Cpu)
            .unwrap()
    };
    let (a, b) = (on_cpu(a), on_cpu(b));
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

pub fn max_abs(a: &Tensor) -> f32 {
    a.to_dtype(DType::F32)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Asserts `|a - b| <= tol` everywhere, printing the measured difference.
pub fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    let d = max_abs_diff(a, b);
    println!(
        "{what}: max |diff| = {d:.3e} (reference max |x| = {:.3})",
        max_abs(b)
    );
    assert!(d <= tol, "{what}: max |diff| {d:e} exceeds {tol:e}");
}
