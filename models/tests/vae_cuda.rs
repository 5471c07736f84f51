//! The VAE on CUDA in half precision (its stride-1 convolutions as cuBLAS GEMMs over the padded
//! input, `t2v_models::ops::conv_gemm`) against diffusers on the tiny fixture. Built only with the
//! `cuda` feature; needs an NVIDIA GPU:
//! `cargo test --release -p t2v-models --features cuda --test vae_cuda`.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::{fixtures, max_abs_diff};
use t2v_models::ops::conv_gemm;
use t2v_models::vae::{VaeConfig, WanVae};

fn gpu() -> Device {
    Device::new_cuda(0).expect("these tests need a CUDA GPU")
}

fn tiny_vae(dtype: DType, device: &Device) -> WanVae {
    let dir = fixtures().join("tiny-diffusers/vae");
    let config: VaeConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    // SAFETY: the fixture file is not modified while the test runs.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], dtype, device) }.unwrap();
    WanVae::new(&config, vb).unwrap()
}

#[test]
fn half_precision_vae_on_cuda_stays_close_to_diffusers() {
    let dev = gpu();
    let reference =
        candle_core::safetensors::load(fixtures().join("parity/vae.safetensors"), &dev).unwrap();
    for dtype in [DType::BF16, DType::F16] {
        let vae = tiny_vae(dtype, &dev);
        let mu = vae
            .encode(&reference["encode.input"].to_dtype(dtype).unwrap())
            .unwrap();
        let encode_diff = max_abs_diff(&mu, &reference["encode.mu"]);
        let video = vae
            .decode(&reference["decode.input"].to_dtype(dtype).unwrap())
            .unwrap();
        let decode_diff = max_abs_diff(&video, &reference["decode.output"]);
        println!(
            "VAE {dtype:?} on CUDA: encode max abs diff {encode_diff:e}, decode {decode_diff:e}"
        );
        // The CPU f16 test's bound; bf16 keeps 8 bits of mantissa against f16's 11.
        let bound = if dtype == DType::F16 { 0.1 } else { 0.25 };
        assert!(encode_diff < bound && decode_diff < bound, "{dtype:?}");
    }
}

#[test]
fn gemm_convolution_matches_candle_conv2d() {
    let dev = gpu();
    for (c, cout, h, w, k, pad) in [
        (8, 16, 13, 21, 3, 1),
        (5, 7, 9, 4, 3, 0),
        (16, 4, 6, 6, 1, 0),
    ] {
        let x = Tensor::randn(0f32, 1.0, (3, c, h, w), &dev).unwrap();
        let wt = Tensor::randn(0f32, 1.0, (cout, c, k, k), &dev).unwrap();
        let reference = x.conv2d(&wt, pad, 1, 1, 1).unwrap();
        let (xb, wb) = (
            x.to_dtype(DType::BF16).unwrap(),
            wt.to_dtype(DType::BF16).unwrap(),
        );
        let padded = xb
            .pad_with_zeros(2, pad, pad)
            .unwrap()
            .pad_with_zeros(3, pad, pad)
            .unwrap();
        let taps = conv_gemm::taps_2d(&wb).unwrap();
        let y = conv_gemm::conv_valid(&padded, &taps, [1, k, k]).unwrap();
        assert_eq!(y.dims(), reference.dims());
        // bf16 inputs (8-bit mantissa) summed over c*k*k products in f32.
        let bound = 0.02 * ((c * k * k) as f32).sqrt();
        let diff = max_abs_diff(&y, &reference);
        assert!(diff < bound, "{c} {cout} {h} {w} {k}: {diff}");
    }
}
