//! The row-broadcast kernels on CUDA against the same ops composed on the CPU. Built only with
//! the `cuda` feature; needs an NVIDIA GPU:
//! `cargo test --release -p t2v-models --features cuda --test rowwise_cuda`.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor};
use common::max_abs_diff;
use t2v_models::ops::rowwise::{bias_add, gated_residual, modulate};

#[test]
fn row_kernels_match_the_composed_ops() {
    let gpu = Device::new_cuda(0).expect("this test needs a CUDA GPU");
    let cpu = Device::Cpu;
    for dtype in [DType::BF16, DType::F16] {
        let x32 = Tensor::randn(0f32, 1.0, (1, 37, 96), &cpu).unwrap();
        let y32 = Tensor::randn(0f32, 1.0, (1, 37, 96), &cpu).unwrap();
        let row = Tensor::randn(0f32, 1.0, (1, 1, 96), &cpu).unwrap();
        let row2 = Tensor::randn(0f32, 1.0, (1, 1, 96), &cpu).unwrap();
        let (x, y) = (x32.to_dtype(dtype).unwrap(), y32.to_dtype(dtype).unwrap());
        let bias = row.flatten_all().unwrap().to_dtype(dtype).unwrap();
        let on = |t: &Tensor| t.to_device(&gpu).unwrap();

        // Each is computed the same way on both sides (f32 math, one rounding): equal up to
        // one rounding step of the storage type.
        let ulp = if dtype == DType::BF16 { 0.0625 } else { 0.008 };
        let cpu_bias = x
            .to_dtype(DType::F32)
            .unwrap()
            .broadcast_add(&bias.to_dtype(DType::F32).unwrap())
            .unwrap();
        let gpu_bias = bias_add(&on(&x), &on(&bias)).unwrap();
        assert_eq!(gpu_bias.dtype(), dtype);
        assert!(
            max_abs_diff(&gpu_bias, &cpu_bias) <= ulp,
            "bias_add {dtype:?}"
        );

        let cpu_mod = modulate(&x32, &row, &row2, DType::F32).unwrap();
        let gpu_mod = modulate(&on(&x32), &on(&row), &on(&row2), dtype).unwrap();
        assert_eq!(gpu_mod.dtype(), dtype);
        assert!(
            max_abs_diff(&gpu_mod, &cpu_mod) <= ulp * 4.0,
            "modulate {dtype:?}"
        );

        let cpu_gate = gated_residual(
            &x.to_dtype(DType::F32).unwrap(),
            &y.to_dtype(DType::F32).unwrap(),
            &row,
        )
        .unwrap();
        let gpu_gate = gated_residual(&on(&x), &on(&y), &on(&row)).unwrap();
        assert_eq!(gpu_gate.dtype(), dtype);
        assert!(
            max_abs_diff(&gpu_gate, &cpu_gate) <= ulp * 2.0,
            "gated_residual {dtype:?}"
        );
    }
}

#[test]
fn layer_norm_modulate_matches_the_composed_ops() {
    use t2v_models::ops::rowwise::norm_modulate;
    let gpu = Device::new_cuda(0).expect("this test needs a CUDA GPU");
    let cpu = Device::Cpu;
    for (dtype, bound) in [(DType::BF16, 0.07f32), (DType::F16, 0.01)] {
        // Rows of different offsets and spreads, 3072 wide like the real model's.
        let x32 = (Tensor::randn(0f32, 3.0, (1, 19, 3072), &cpu).unwrap() + 5.0).unwrap();
        let x = x32.to_dtype(dtype).unwrap();
        let shift = Tensor::randn(0f32, 1.0, (1, 1, 3072), &cpu).unwrap();
        let scale = Tensor::randn(0f32, 0.5, (1, 1, 3072), &cpu).unwrap();
        let on = |t: &Tensor| t.to_device(&gpu).unwrap();
        let reference =
            norm_modulate(&x.to_dtype(DType::F32).unwrap(), &shift, &scale, 1e-6).unwrap();
        let fused = norm_modulate(&on(&x), &on(&shift), &on(&scale), 1e-6).unwrap();
        assert_eq!(fused.dtype(), dtype);
        let diff = max_abs_diff(&fused, &reference);
        assert!(diff <= bound, "{dtype:?}: {diff}");
    }
}
