//! The fused CUDA attention kernel against plain f32 attention of the same inputs. Built only
//! with the `cuda` feature and needs an NVIDIA GPU of compute capability 8.0 or newer:
//! `cargo test --release -p t2v-models --features cuda --test fused_attention_cuda`.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor};
use common::max_abs_diff;
use t2v_models::dit::attention::{sdpa, sdpa_naive, sdpa_with_budget};
use t2v_models::dit::fused_attention;

fn gpu() -> Device {
    Device::new_cuda(0).expect("these tests need a CUDA GPU")
}

/// Random q, k, v with a spread of score magnitudes, in `dtype` on the GPU.
fn inputs(
    dev: &Device,
    dtype: DType,
    (b, h, n, m, d): (usize, usize, usize, usize, usize),
    seed: u64,
) -> (Tensor, Tensor, Tensor) {
    dev.set_seed(seed).unwrap();
    let q = (Tensor::randn(0f32, 1.0, (b, h, n, d), dev).unwrap() * 2.0).unwrap();
    let k = Tensor::randn(0f32, 1.0, (b, h, m, d), dev).unwrap();
    let v = Tensor::randn(0f32, 1.0, (b, h, m, d), dev).unwrap();
    (
        q.to_dtype(dtype).unwrap(),
        k.to_dtype(dtype).unwrap(),
        v.to_dtype(dtype).unwrap(),
    )
}

#[test]
fn fused_kernel_matches_f32_attention_on_ragged_shapes() {
    let dev = gpu();
    for dtype in [DType::BF16, DType::F16] {
        for (i, shape) in [
            (1, 2, 64, 64, 128),
            (2, 3, 200, 77, 128),
            (1, 4, 130, 512, 64),
            (1, 1, 1, 1, 128),
            (1, 2, 1000, 1000, 128),
        ]
        .into_iter()
        .enumerate()
        {
            let (q, k, v) = inputs(&dev, dtype, shape, i as u64);
            assert!(fused_attention::supported(&q), "{dtype:?} {shape:?}");
            let scale = 1.0 / (shape.4 as f64).sqrt();
            let fused = fused_attention::sdpa(&q, &k, &v, scale).unwrap();
            assert_eq!(fused.dims(), q.dims());
            assert_eq!(fused.dtype(), dtype);
            let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let reference = sdpa_naive(&f32(&q), &f32(&k), &f32(&v), scale).unwrap();
            let chunked = sdpa_with_budget(&q, &k, &v, scale, 1 << 20).unwrap();
            let err = max_abs_diff(&fused, &reference);
            let chunked_err = max_abs_diff(&chunked, &reference);
            println!("{dtype:?} {shape:?}: fused {err:.5}, chunked {chunked_err:.5}");
            // Both round probabilities to the storage type before the second product.
            assert!(
                err <= chunked_err.max(1e-3) * 2.0,
                "{dtype:?} {shape:?}: fused error {err} vs chunked {chunked_err}"
            );
        }
    }
}

#[test]
fn sdpa_takes_the_fused_kernel_on_cuda_and_keeps_large_scores_finite() {
    let dev = gpu();
    // Scores around 300 overflow exp() without the running maximum.
    let (q, k, v) = inputs(&dev, DType::BF16, (1, 2, 300, 300, 128), 7);
    let q = (q * 20.0).unwrap();
    let out = sdpa(&q, &k, &v, 1.0 / 128f64.sqrt()).unwrap();
    let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let reference = sdpa_naive(&f32(&q), &f32(&k), &f32(&v), 1.0 / 128f64.sqrt()).unwrap();
    let finite = f32(&out).flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(finite.iter().all(|x| x.is_finite()));
    assert!(max_abs_diff(&out, &reference) < 0.05);
}

#[test]
fn unsupported_inputs_fall_back_to_the_chunked_path() {
    let dev = gpu();
    let (q, k, v) = inputs(&dev, DType::F32, (1, 2, 70, 70, 128), 3);
    assert!(!fused_attention::supported(&q));
    let (qh, _, _) = inputs(&dev, DType::BF16, (1, 2, 70, 70, 32), 3);
    assert!(!fused_attention::supported(&qh));
    let out = sdpa(&q, &k, &v, 0.1).unwrap();
    assert!(max_abs_diff(&out, &sdpa_naive(&q, &k, &v, 0.1).unwrap()) < 1e-4);
}
