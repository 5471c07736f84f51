//! The VAE against diffusers' `AutoencoderKLWan` on the tiny fixture model
//! (`tests/fixtures/tiny-diffusers/vae`, reference outputs in `tests/fixtures/parity/vae.safetensors`).

use candle_core::{DType, Device, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use t2v_models::vae::{VaeConfig, WanVae};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tiny_vae() -> WanVae {
    tiny_vae_in(DType::F32)
}

fn tiny_vae_in(dtype: DType) -> WanVae {
    let dir = fixtures().join("tiny-diffusers/vae");
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config: VaeConfig = serde_json::from_str(&config).unwrap();
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    // SAFETY: the fixture file is not modified while the test runs.
    let vb =
        unsafe { VarBuilder::from_mmaped_safetensors(&[weights], dtype, &Device::Cpu) }.unwrap();
    WanVae::new(&config, vb).unwrap()
}

fn reference() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("parity/vae.safetensors"), &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F32).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn encode_matches_diffusers() {
    let vae = tiny_vae();
    let reference = reference();
    let mu = vae.encode(&reference["encode.input"]).unwrap();
    let diff = max_abs_diff(&mu, &reference["encode.mu"]);
    println!("VAE encode: max abs diff {diff:e}");
    assert!(diff <= TOLERANCE, "encode differs from diffusers by {diff}");
}

#[test]
fn decode_matches_diffusers() {
    let vae = tiny_vae();
    let reference = reference();
    let video = vae.decode(&reference["decode.input"]).unwrap();
    let diff = max_abs_diff(&video, &reference["decode.output"]);
    println!("VAE decode: max abs diff {diff:e}");
    assert!(diff <= TOLERANCE, "decode differs from diffusers by {diff}");
}

/// Half-precision weights compute in their dtype (norms and softmax in f32): close to the f32
/// reference, not equal. f16 stands in for bf16, which candle's CPU convolutions lack.
#[test]
fn half_precision_stays_close_to_diffusers() {
    let vae = tiny_vae_in(DType::F16);
    let reference = reference();
    let mu = vae.encode(&reference["encode.input"]).unwrap();
    assert_eq!(mu.dtype(), DType::F16);
    let encode_diff = max_abs_diff(&mu, &reference["encode.mu"]);
    let video = vae.decode(&reference["decode.input"]).unwrap();
    let decode_diff = max_abs_diff(&video, &reference["decode.output"]);
    println!("VAE f16: encode max abs diff {encode_diff:e}, decode {decode_diff:e}");
    assert!(encode_diff < 0.1 && decode_diff < 0.1);
}

#[test]
fn bf16_on_the_cpu_builds_but_refuses_to_run() {
    let dir = fixtures().join("tiny-diffusers/vae");
    let config: VaeConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    // SAFETY: the fixture file is not modified while the test runs.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::BF16, &Device::Cpu) }
        .unwrap();
    let vae = WanVae::new(&config, vb).unwrap();
    let reference = reference();
    let err = vae.decode(&reference["decode.input"]).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");
    let err = vae.encode(&reference["encode.input"]).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");
}

#[test]
fn streaming_decode_hands_out_chunks_in_order() {
    let vae = tiny_vae();
    let z = reference()["decode.input"].clone();
    let latent_frames = z.dim(2).unwrap();
    let mut seen = Vec::new();
    let mut chunks = Vec::new();
    vae.decode_streaming(&z, &mut |first_frame, chunk| {
        seen.push((first_frame, chunk.dim(2)?));
        chunks.push(chunk);
        Ok(())
    })
    .unwrap();
    let expected: Vec<(usize, usize)> = (0..latent_frames)
        .map(|i| if i == 0 { (0, 1) } else { (1 + 4 * (i - 1), 4) })
        .collect();
    assert_eq!(seen, expected);
    let streamed = Tensor::cat(&chunks, 2).unwrap();
    assert_eq!(
        streamed.dims(),
        &[1, 3, 1 + 4 * (latent_frames - 1), 64, 96]
    );
    assert_eq!(max_abs_diff(&streamed, &vae.decode(&z).unwrap()), 0.0);
}

#[test]
fn streaming_decode_stops_when_the_callback_fails() {
    let vae = tiny_vae();
    let z = reference()["decode.input"].clone();
    let mut calls = 0;
    let result = vae.decode_streaming(&z, &mut |_, _| {
        calls += 1;
        Err(t2v_models::Error::Cancelled)
    });
    assert!(
        matches!(result, Err(t2v_models::Error::Cancelled)),
        "{result:?}"
    );
    assert_eq!(calls, 1);
}

/// Decoding is causal: the frames of a prefix of the latents don't depend on what follows.
#[test]
fn decoding_a_prefix_gives_a_prefix() {
    let vae = tiny_vae();
    let z = reference()["decode.input"].clone();
    let full = vae.decode(&z).unwrap();
    let prefix = vae.decode(&z.narrow(2, 0, 2).unwrap()).unwrap();
    assert_eq!(max_abs_diff(&prefix, &full.narrow(2, 0, 5).unwrap()), 0.0);
}

#[test]
fn decoder_only_loads_and_refuses_to_encode() {
    let dir = fixtures().join("tiny-diffusers/vae");
    let config: VaeConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    // SAFETY: the fixture file is not modified while the test runs.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu) }
        .unwrap();
    let vae = WanVae::new_decoder_only(&config, vb).unwrap();
    let reference = reference();
    let diff = max_abs_diff(
        &vae.decode(&reference["decode.input"]).unwrap(),
        &reference["decode.output"],
    );
    assert!(diff <= TOLERANCE);
    assert!(vae.encode(&reference["encode.input"]).is_err());
}

#[test]
fn latent_normalisation_round_trips() {
    let vae = tiny_vae();
    let mu = reference()["encode.mu"].clone();
    let z = vae.normalize_latents(&mu).unwrap();
    let back = vae.denormalize_latents(&z).unwrap();
    assert!(max_abs_diff(&back, &mu) < 1e-6);
    // Channel 1 has mean -0.0052 and std 1.0364.
    let m = mu
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .get(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let n = z
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .get(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((n - (m + 0.0052) / 1.0364).abs() < 1e-5);
}

/// Hands out broadcast zeros of whatever shape is asked for, and records the requests.
struct ZeroWeights {
    requested: Arc<Mutex<Vec<Request>>>,
}

/// A weight's name and shape.
type Request = (String, Vec<usize>);

impl SimpleBackend for ZeroWeights {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.requested
            .lock()
            .unwrap()
            .push((name.to_string(), shape.dims().to_vec()));
        Tensor::zeros((), dtype, device)?.broadcast_as(shape)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("unexpected unchecked load of {name}")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// The real Wan2.2 VAE is built without allocating its weights (they are broadcast zeros) and
/// passes the smallest clip through, which checks every channel count of the real config.
#[test]
fn real_size_vae_builds_from_broadcast_weights_and_runs() {
    let requested = Arc::new(Mutex::new(Vec::new()));
    let backend = ZeroWeights {
        requested: requested.clone(),
    };
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu);
    let vae = WanVae::new(&VaeConfig::wan22_ti2v_5b(), vb).unwrap();
    let requested = requested.lock().unwrap().clone();
    let params: usize = requested
        .iter()
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum();
    assert_eq!(requested.len(), 196);
    assert_eq!(params, 704_688_668);
    let time_conv = (
        "decoder.up_blocks.0.upsampler.time_conv.weight".to_string(),
        vec![2048, 1024, 3, 1, 1],
    );
    assert!(requested.contains(&time_conv));

    let mu = vae
        .encode(&Tensor::zeros((1, 3, 1, 16, 16), DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(mu.dims(), &[1, 48, 1, 1, 1]);
    let video = vae.decode(&Tensor::cat(&[&mu, &mu], 2).unwrap()).unwrap();
    assert_eq!(video.dims(), &[1, 3, 5, 16, 16]);
}
