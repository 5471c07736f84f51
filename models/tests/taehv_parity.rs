//! The TAEHV decoder against the reference (fixtures from `tests/fixtures/taehv/make_taehv.py`,
//! which runs madebyollin/taehv's own `taehv.py`: its decoder at reduced widths with seeded
//! random weights), from both a safetensors and a guarded `.pth` file.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::taehv::{load_taehv, TaehvConfig};

fn fixture(name: &str) -> std::path::PathBuf {
    fixtures().join("taehv").join(name)
}

fn parity_case() -> (Tensor, Tensor) {
    let mut t =
        candle_core::safetensors::load(fixture("taehv-parity.safetensors"), &Device::Cpu).unwrap();
    (t.remove("latents").unwrap(), t.remove("frames").unwrap())
}

#[test]
fn decodes_as_the_reference_within_1e_4_from_safetensors_and_pth() {
    let (latents, expected) = parity_case();
    for file in ["taehv-tiny.safetensors", "taehv-tiny.pth"] {
        let decoder = load_taehv(&fixture(file), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            decoder.config(),
            &TaehvConfig {
                widths: [16, 8, 8, 8],
                ..TaehvConfig::taew2_2()
            }
        );
        let mut firsts = Vec::new();
        let mut chunks = Vec::new();
        decoder
            .decode_streaming(&latents, &mut |first, chunk| {
                firsts.push(first);
                chunks.push(chunk);
                Ok(())
            })
            .unwrap();
        // Latent frame 0 gives one frame, each further one four (as the full VAE).
        assert_eq!(firsts, vec![0, 1, 5], "{file}");
        let frames = Tensor::cat(&chunks, 0).unwrap();
        assert_eq!(frames.dims(), &[9, 32, 32, 3]);
        let diff = max_abs_diff(&frames, &expected);
        assert!(diff < 1e-4, "{file}: max |diff| {diff}");
    }
}

#[test]
fn wrong_latents_and_files_say_what_is_wrong() {
    let decoder = load_taehv(&fixture("taehv-tiny.safetensors"), DType::F32, &Device::Cpu).unwrap();
    let z = Tensor::zeros((1, 16, 2, 2, 2), DType::F32, &Device::Cpu).unwrap();
    let e = decoder.decode(&z).unwrap_err().to_string();
    assert!(e.contains("another latent space"), "{e}");
    // The full VAE's weights are not a tiny decoder.
    let vae = fixtures().join("tiny-diffusers/vae/diffusion_pytorch_model.safetensors");
    let e = load_taehv(&vae, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a TAEHV decoder"), "{e}");
    let e = load_taehv(&fixture("make_taehv.py"), DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unsupported weights file type"), "{e}");
}
