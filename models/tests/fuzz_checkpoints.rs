//! Hostile checkpoint files: safetensors headers, torch `.pth` pickles, component configs and
//! `model_index.json`, each fuzzed from a valid seed (see `fuzz_support`). Every input must be
//! refused with an error or read correctly: no panic, no allocation sized by a header.

mod common;
mod fuzz_support;

use candle_core::{DType, Device, Tensor};
use common::*;
use fuzz_support::{assert_refused, fuzz, hostile};
use std::collections::HashMap;
use std::path::Path;
use t2v_models::checkpoint::{self, configs, validate, ModelFiles, Overrides};
use t2v_models::weights::open_file;

record_allocations!();

/// Opens a weights file the way every loader does, then reads every tensor it lists.
fn read_weights(path: &Path) -> bool {
    let Ok(source) = open_file(path) else {
        return false;
    };
    let names: Vec<String> = source.infos().keys().cloned().collect();
    let _ = checkpoint::layout::detect(source.infos());
    names
        .iter()
        .all(|n| source.load(n, DType::F32, &Device::Cpu).is_ok())
}

fn write_and(dir: &Path, name: &str, bytes: &[u8], read: impl Fn(&Path) -> bool) -> bool {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    read(&path)
}

fn safetensors_seed() -> Vec<u8> {
    let dev = Device::Cpu;
    let mut tensors = HashMap::new();
    tensors.insert(
        "decoder.conv_in.weight".to_string(),
        Tensor::arange(0f32, 24.0, &dev)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap(),
    );
    tensors.insert(
        "decoder.conv_in.bias".to_string(),
        Tensor::ones(2, DType::F16, &dev).unwrap(),
    );
    tensors.insert(
        "encoder.scale".to_string(),
        Tensor::ones((1, 3), DType::BF16, &dev).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn fuzz_safetensors_files() {
    let seed = safetensors_seed();
    let dir = tempfile::tempdir().unwrap();
    assert!(write_and(dir.path(), "x.safetensors", &seed, read_weights));
    // A header claiming 2^60 bytes, and a tensor whose offsets claim 2^60 bytes of data.
    let mut long_header = seed.clone();
    long_header[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let text = String::from_utf8_lossy(&seed).into_owned();
    let end = text
        .find("\"data_offsets\":[")
        .expect("offsets in the header")
        + 16;
    let huge_offsets = text[..end].to_string()
        + "0,1152921504606846976"
        + &text[text[end..].find(']').unwrap() + end..];
    for (what, bytes) in [
        ("2^60-byte header", long_header),
        ("2^60-byte tensor", huge_offsets.into_bytes()),
    ] {
        assert_refused(what, || {
            write_and(dir.path(), "x.safetensors", &bytes, read_weights)
        });
    }
    fuzz("safetensors header", 5000, hostile(seed), |bytes| {
        write_and(dir.path(), "x.safetensors", bytes, read_weights)
    });
}

/// Inputs the fuzzer found, as edits of the seed.
fn pth_regressions(seed: &[u8]) -> Vec<Vec<u8>> {
    let at = |needle: &[u8]| {
        seed.windows(needle.len())
            .position(|w| w == needle)
            .expect("the seed holds it")
    };
    // A pickle string claiming 4 GiB: candle allocated it before reading.
    let mut long_name = seed.to_vec();
    let name = at(b"X\x14\x00\x00\x00decoder.conv1.weight") + 1;
    long_name[name..name + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    // A tensor of shape [2^30, 3] (12 GiB) over a 24-byte storage.
    let mut huge_shape = seed.to_vec();
    let shape = at(b"K\x02K\x03\x86");
    huge_shape.splice(shape..shape + 2, *b"J\x00\x00\x00\x40");
    vec![long_name, huge_shape]
}

#[test]
fn fuzz_pth_files() {
    let seed = std::fs::read(fixtures().join("fuzz").join("tiny.pth")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(
        write_and(dir.path(), "x.pth", &seed, read_weights),
        "the seed is a readable checkpoint"
    );
    for (i, bytes) in pth_regressions(&seed).iter().enumerate() {
        assert_refused(&format!(".pth regression {i}"), || {
            write_and(dir.path(), "x.pth", bytes, read_weights)
        });
    }
    fuzz("torch .pth", 5000, hostile(seed), |bytes| {
        write_and(dir.path(), "x.pth", bytes, read_weights)
    });
}

/// A component config read the way loading reads it, and the architecture it describes checked
/// against the tiny model's tensors (header only).
#[test]
fn fuzz_component_configs() {
    let files = ModelFiles::resolve(Some(&tiny_diffusers()), &Overrides::default()).unwrap();
    let dit = checkpoint::open_component(&files.transformer).unwrap();
    let vae = checkpoint::open_component(&files.vae).unwrap();
    let text = checkpoint::open_component(&files.text_encoder).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let seeds = [
        files.transformer.config.clone().unwrap(),
        files.vae.config.clone().unwrap(),
        files.text_encoder.config.clone().unwrap(),
    ]
    .map(|p| std::fs::read(p).unwrap());
    let read_config = |i: usize, path: &Path| match i {
        0 => configs::transformer_config(&dit, Some(path))
            .and_then(|cfg| validate::check_transformer(&dit, &cfg))
            .is_ok_and(|c| c.is_ok()),
        1 => configs::vae_config(&vae, Some(path))
            .and_then(|cfg| {
                cfg.validate()?;
                validate::check_vae(&vae, &cfg)
            })
            .is_ok_and(|c| c.is_ok()),
        _ => configs::text_encoder_config(&text, Some(path))
            .and_then(|cfg| validate::check_text_encoder(&text, &cfg))
            .is_ok_and(|c| c.is_ok()),
    };
    // Found by the fuzzer: the header check recorded missing tensors of 2^60 umT5 layers until
    // memory ran out, and materialised a 1-trillion-wide transformer's modulation table.
    // And a VAE config with `base_dim: 0` divided by zero in the channel shortcut (a panic).
    let regressions = [
        (1, ("\"base_dim\": 4", "\"base_dim\": 0")),
        (
            0,
            (
                "\"num_attention_heads\": 2",
                "\"num_attention_heads\": 99999999999",
            ),
        ),
        (
            2,
            ("\"num_layers\": 2", "\"num_layers\": 1152921504606846976"),
        ),
    ];
    for (i, (from, to)) in regressions {
        let text = String::from_utf8(seeds[i].clone()).unwrap();
        assert!(text.contains(from), "{text}");
        let hostile = text.replace(from, to);
        assert_refused(to, || {
            write_and(dir.path(), "config.json", hostile.as_bytes(), |p| {
                read_config(i, p)
            })
        });
    }
    let cases = [
        ("transformer config.json", 2000),
        ("VAE config.json", 2000),
        ("umT5 config.json", 2000),
    ];
    for (i, ((name, n), seed)) in cases.into_iter().zip(seeds).enumerate() {
        fuzz(name, n, hostile(seed), |bytes| {
            write_and(dir.path(), "config.json", bytes, |path| {
                read_config(i, path)
            })
        });
    }
}

#[test]
fn fuzz_model_index_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let status = std::process::Command::new("cp")
        .args([
            "-r",
            tiny_diffusers().to_str().unwrap(),
            model.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let seed = std::fs::read(model.join("model_index.json")).unwrap();
    fuzz("model_index.json", 300, hostile(seed), |bytes| {
        std::fs::write(model.join("model_index.json"), bytes).unwrap();
        ModelFiles::resolve(Some(&model), &Overrides::default()).is_ok()
    });
}

/// GGUF files: the header (counts, lengths, metadata arrays, tensor dimensions, types and
/// offsets) and the tensors' data, from the dequantization fixture.
#[test]
fn fuzz_gguf_files() {
    let seed = std::fs::read(fixtures().join("gguf").join("types.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(
        write_and(dir.path(), "x.gguf", &seed, read_weights),
        "the seed is a readable checkpoint"
    );
    fuzz("gguf", 3000, hostile(seed), |bytes| {
        write_and(dir.path(), "x.gguf", bytes, read_weights)
    });
}

/// Scaled fp8 safetensors: the scale tensors, the `scaled_fp8` marker and the fp8 weights.
#[test]
fn fuzz_fp8_safetensors_files() {
    let seed = std::fs::read(
        fixtures()
            .join("fp8")
            .join("tiny-umt5-fp8-scaled.safetensors"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(
        write_and(dir.path(), "x.safetensors", &seed, read_weights),
        "the seed is a readable checkpoint"
    );
    fuzz("fp8 safetensors", 1500, hostile(seed), |bytes| {
        write_and(dir.path(), "x.safetensors", bytes, read_weights)
    });
}
