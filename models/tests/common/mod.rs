//! Shared helpers for the parity tests: fixture paths, tensor loading and comparison.
#![allow(dead_code)]

use candle_core::{DType, Device, Module, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;
use t2v_models::pipeline::GenerationParams;
use t2v_models::sampling::SamplerKind;
use t2v_models::weights::stored::build_with_stored;
use t2v_models::weights::TrackedWeights;

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

/// The mean absolute difference, in f32.
pub fn mean_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let f32_of = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    (f32_of(a) - f32_of(b))
        .unwrap()
        .abs()
        .unwrap()
        .mean_all()
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

/// A small guided request on the tiny model: 64x32, 5 frames, 3 UniPC steps.
pub fn small_request() -> GenerationParams {
    GenerationParams {
        prompt: "a red circle moves to the right".into(),
        negative_prompt: None,
        width: 64,
        height: 32,
        frames: 5,
        steps: 3,
        guidance: 4.0,
        shift: 5.0,
        sampler: SamplerKind::UniPc,
        seed: 42,
        step_cache: Default::default(),
        step_cache_method: Default::default(),
    }
}

/// The tiny transformer's first query projection (32 x 32), built from `weights` as a model is
/// built, holds its weight as the file stores it (`bytes` of it) and computes exactly what the
/// same layer over the decoded (dense) weight computes.
pub fn assert_first_linear_is_stored(weights: &TrackedWeights, bytes: usize) {
    use t2v_models::ops::linear::linear;
    let kernels = t2v_models::ops::fused_kernels();
    let vb = weights.var_builder(DType::F32, &Device::Cpu);
    let name = "blocks.0.attn1.to_q";
    let stored = build_with_stored(weights, || linear(32, 32, vb.pp(name), &kernels)).unwrap();
    assert!(stored.weight().is_stored());
    assert_eq!(stored.weight().stored_bytes(), bytes);
    let dense = linear(32, 32, vb.pp(name), &kernels).unwrap();
    assert!(!dense.weight().is_stored());
    let x = Tensor::randn(0f32, 1., (2, 7, 32), &Device::Cpu).unwrap();
    let (a, b) = (stored.forward(&x).unwrap(), dense.forward(&x).unwrap());
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    // Moved to a device (here the same one) it stays stored.
    assert!(stored.weight().to_device(&Device::Cpu).unwrap().is_stored());
}
