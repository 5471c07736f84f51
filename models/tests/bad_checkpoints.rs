//! Checkpoints that are not what they claim: each gives an error naming the file and the
//! problem, never a panic.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use t2v_models::checkpoint::{self, load_models, ModelFiles, Overrides};

fn tiny_transformer_file() -> PathBuf {
    tiny_original().join("wan2.2_ti2v_tiny_fp16.safetensors")
}

fn read_tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn write_tensors(path: &Path, tensors: &HashMap<String, Tensor>) {
    candle_core::safetensors::save(tensors, path).unwrap();
}

/// Loads a transformer override on top of the tiny original folder; returns the error text.
fn transformer_error(file: &Path) -> String {
    let overrides = Overrides {
        transformer: Some(file.to_path_buf()),
        ..Default::default()
    };
    let result = ModelFiles::resolve(Some(&tiny_original()), &overrides)
        .and_then(|files| load_models(&files, DType::F32, &Device::Cpu).map(|_| ()));
    match result {
        Ok(()) => panic!("{} loaded without error", file.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(tiny_transformer_file()).unwrap();
    let path = tmp.path().join("truncated.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = transformer_error(&path);
    assert!(
        e.contains("truncated.safetensors") && e.contains("corrupt or truncated"),
        "{e}"
    );
}

#[test]
fn corrupt_and_empty_files() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(
        &garbage,
        b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header at all",
    )
    .unwrap();
    let e = transformer_error(&garbage);
    assert!(e.contains("garbage.safetensors"), "{e}");
    let empty = tmp.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    let e = transformer_error(&empty);
    assert!(e.contains("empty or truncated"), "{e}");
    let pth = tmp.path().join("broken.pth");
    std::fs::write(&pth, b"PK\x03\x04 definitely not a zip").unwrap();
    let e = transformer_error(&pth);
    assert!(
        e.contains("broken.pth") && e.contains("not a readable torch checkpoint"),
        "{e}"
    );
}

#[test]
fn missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = read_tensors(&tiny_transformer_file());
    tensors
        .remove("model.diffusion_model.blocks.1.cross_attn.norm_k.weight")
        .unwrap();
    let path = tmp.path().join("missing.safetensors");
    write_tensors(&path, &tensors);
    let e = transformer_error(&path);
    assert!(
        e.contains("missing tensor `blocks.1.attn2.norm_k.weight`"),
        "{e}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = read_tensors(&tiny_transformer_file());
    let name = "model.diffusion_model.blocks.0.ffn.0.weight";
    tensors.insert(
        name.into(),
        Tensor::zeros((65, 32), DType::F16, &Device::Cpu).unwrap(),
    );
    let path = tmp.path().join("misshaped.safetensors");
    write_tensors(&path, &tensors);
    let e = transformer_error(&path);
    assert!(
        e.contains("blocks.0.ffn.net.0.proj.weight")
            && e.contains("[65, 32]")
            && e.contains("expected [64, 32]"),
        "{e}"
    );
}

#[test]
fn leftover_tensors_of_a_bigger_architecture() {
    // Wan2.1 I2V checkpoints carry image cross-attention projections the 5B doesn't have.
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = read_tensors(&tiny_transformer_file());
    tensors.insert(
        "model.diffusion_model.blocks.0.cross_attn.k_img.weight".into(),
        Tensor::zeros((32, 32), DType::F16, &Device::Cpu).unwrap(),
    );
    let path = tmp.path().join("extra.safetensors");
    write_tensors(&path, &tensors);
    let e = transformer_error(&path);
    assert!(
        e.contains("not part of the Wan2.2 TI2V-5B transformer") && e.contains("k_img"),
        "{e}"
    );
}

#[test]
fn another_wan_transformer_without_config() {
    // A Wan2.1 1.3B-shaped file (dim 1536, 16 latent channels) with no config next to it.
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = HashMap::new();
    let z = |shape: &[usize]| Tensor::zeros(shape, DType::F16, &Device::Cpu).unwrap();
    tensors.insert(
        "patch_embedding.weight".to_string(),
        z(&[1536, 16, 1, 2, 2]),
    );
    tensors.insert("time_projection.1.weight".to_string(), z(&[9216, 1536]));
    tensors.insert("blocks.0.modulation".to_string(), z(&[1, 6, 1536]));
    let path = tmp.path().join("wan2.1_t2v_1.3B.safetensors");
    write_tensors(&path, &tensors);
    let files = checkpoint::ComponentFiles {
        layout: checkpoint::layout::detect(
            &t2v_models::weights::open_file(&path)
                .unwrap()
                .infos()
                .clone(),
        )
        .unwrap(),
        files: vec![path.clone()],
        config: None,
    };
    let e = checkpoint::load_transformer(&files, DType::F32, &Device::Cpu)
        .expect_err("must fail")
        .to_string();
    assert!(
        e.contains("not the Wan2.2 TI2V-5B transformer") && e.contains("[1536, 16, 1, 2, 2]"),
        "{e}"
    );
}

#[test]
fn a_file_of_another_model_entirely() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = HashMap::new();
    tensors.insert(
        "model.layers.0.self_attn.q_proj.weight".to_string(),
        Tensor::zeros((8, 8), DType::F32, &Device::Cpu).unwrap(),
    );
    let path = tmp.path().join("llama.safetensors");
    write_tensors(&path, &tensors);
    let e = transformer_error(&path);
    assert!(
        e.contains("llama.safetensors") && e.contains("none of its tensor names match"),
        "{e}"
    );
}

#[test]
fn component_given_in_the_wrong_role() {
    let overrides = Overrides {
        transformer: Some(tiny_original().join("wan2.2_vae_tiny.safetensors")),
        ..Default::default()
    };
    let e = ModelFiles::resolve(Some(&tiny_original()), &overrides)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("holds a VAE checkpoint, but was given as the transformer"),
        "{e}"
    );
}

#[test]
fn folders_without_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let e = ModelFiles::resolve(Some(tmp.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no transformer checkpoint found"), "{e}");
    let e = ModelFiles::resolve(Some(&tmp.path().join("nope")), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
    // Weights but no tokenizer.
    for f in [
        "wan2.2_ti2v_tiny_fp16.safetensors",
        "wan2.2_vae_tiny.safetensors",
        "umt5_tiny_bf16.safetensors",
    ] {
        std::fs::copy(tiny_original().join(f), tmp.path().join(f)).unwrap();
    }
    let e = ModelFiles::resolve(Some(tmp.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no tokenizer.json found"), "{e}");
}

#[test]
fn mismatched_components() {
    // A transformer whose text width (32) differs from the text encoder's is refused before
    // anything heavy is built.
    let dit = t2v_models::dit::DitConfig {
        text_dim: 64,
        ..t2v_models::dit::DitConfig::wan22_ti2v_5b()
    };
    let vae = t2v_models::vae::VaeConfig::wan22_ti2v_5b();
    let text = t2v_models::text::Umt5Config::umt5_xxl();
    let e = checkpoint::check_compatible(&dit, &vae, &text)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("64-wide text embeddings") && e.contains("4096"),
        "{e}"
    );
}
