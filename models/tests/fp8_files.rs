//! fp8 e4m3fn safetensors: the code table decodes like `ml_dtypes`, scaled (ComfyUI's
//! `scale_weight` with the `scaled_fp8` marker) and unscaled checkpoints of the transformer and
//! umT5 load, keep their linears in fp8 and generate frames within a measured tolerance of their
//! source, and damaged files are errors that name the tensor.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use t2v_models::checkpoint::{self, load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{self, RunInputs};
use t2v_models::weights::{open_file, SafetensorsSource, TensorSource};

fn fp8(name: &str) -> PathBuf {
    fixtures().join("fp8").join(name)
}

/// Bit for bit on the 254 numbers; the two NaN codes (0x7f, 0xff) decode to NaN, with candle's
/// bits (0x7fffe000 for both) rather than `ml_dtypes`' (0x7fc00000, 0xffc00000): no weight is
/// NaN, and a NaN's payload and sign change no result.
#[test]
fn every_e4m3fn_code_decodes_like_ml_dtypes() {
    let t = candle_core::safetensors::load(fp8("e4m3fn-codes.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(t["codes"].dtype(), DType::F8E4M3);
    let got: Vec<f32> = t["codes"].to_dtype(DType::F32).unwrap().to_vec1().unwrap();
    let want: Vec<f32> = t["expected"].to_vec1().unwrap();
    assert_eq!(got.len(), 256);
    for (code, (g, w)) in got.iter().zip(&want).enumerate() {
        if w.is_nan() {
            assert!(code & 0x7f == 0x7f, "code 0x{code:02x}");
            assert!(g.is_nan(), "code 0x{code:02x}: {g}");
            continue;
        }
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "code 0x{code:02x}: {g} ({:#x}) vs ml_dtypes {w} ({:#x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

fn frames(overrides: &Overrides) -> Tensor {
    let files = ModelFiles::resolve(Some(&tiny_original()), overrides).unwrap();
    let models = load_models(&files, DType::F32, &Device::Cpu).unwrap();
    pipeline::generate(
        &models,
        &small_request(),
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap()
    .frames
}

#[test]
fn fp8_checkpoints_generate_their_sources_frames_within_tolerance() {
    let reference = frames(&Overrides::default());
    // Measured (max, mean |diff| in [0, 1] pixels, deterministic): scaled transformer and umT5
    // 2.03e-2 / 2.31e-3; unscaled transformer alone 1.34e-2 / 1.32e-3. Bounds: about 1.5x the
    // measurement (e4m3 keeps 3 mantissa bits: ~6% per weight, averaged out over a layer).
    for (what, transformer, text, max_tol, mean_tol) in [
        (
            "scaled",
            "tiny-dit-fp8-scaled.safetensors",
            Some("tiny-umt5-fp8-scaled.safetensors"),
            3e-2f32,
            3.5e-3f32,
        ),
        ("unscaled", "tiny-dit-fp8.safetensors", None, 2e-2, 2e-3),
    ] {
        let overrides = Overrides {
            transformer: Some(fp8(transformer)),
            text_encoder: text.map(fp8),
            ..Overrides::default()
        };
        let got = frames(&overrides);
        let max = max_abs_diff(&got, &reference);
        let mean = mean_abs_diff(&got, &reference);
        println!("fp8 {what} vs source, frames in [0, 1]: max |diff| {max:.2e}, mean {mean:.2e}");
        assert!(max > 0.0, "{what}: the fp8 weights were used");
        assert!(
            max < max_tol && mean < mean_tol,
            "{what}: max {max}, mean {mean}"
        );
    }
}

#[test]
fn block_linears_hold_fp8_values_and_decode_them_per_call() {
    let source = SafetensorsSource::open(&[fp8("tiny-dit-fp8-scaled.safetensors")]).unwrap();
    assert!(!source.infos().contains_key("scaled_fp8"));
    assert!(!source
        .infos()
        .contains_key("model.diffusion_model.blocks.0.self_attn.q.scale_weight"));
    let q = "model.diffusion_model.blocks.0.self_attn.q.weight";
    assert_eq!(source.stored_as(q), Some("f8e4m3 (scaled)"));
    assert_eq!(source.stored_bytes(q), Some(32 * 32));
    let layout = checkpoint::layout::detect(source.infos()).unwrap();
    let weights = checkpoint::track(Arc::new(source), &layout);
    assert_first_linear_is_stored(&weights, 32 * 32);
}

fn error_of(path: &Path) -> String {
    match open_file(path) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

fn save(dir: &Path, tensors: Vec<(&str, Tensor)>) -> PathBuf {
    let path = dir.join("damaged.safetensors");
    let map: std::collections::HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    candle_core::safetensors::save(&map, &path).unwrap();
    path
}

#[test]
fn damaged_fp8_files_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read(fp8("tiny-umt5-fp8-scaled.safetensors")).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &seed[..seed.len() - 10]).unwrap();
    let e = error_of(&cut);
    assert!(e.contains("tensor `") && e.contains("truncated"), "{e}");

    let dev = Device::Cpu;
    let f8 = Tensor::ones((4, 4), DType::F32, &dev)
        .unwrap()
        .to_dtype(DType::F8E4M3)
        .unwrap();
    let bf16 = Tensor::ones((4, 4), DType::BF16, &dev).unwrap();
    let scalar = Tensor::new(0.5f32, &dev).unwrap();
    let cases = [
        (
            vec![
                ("a.weight", bf16.clone()),
                ("a.scale_weight", scalar.clone()),
            ],
            "`a.scale_weight`",
            "rather than fp8",
        ),
        (
            vec![("a.scale_weight", scalar.clone())],
            "`a.scale_weight`",
            "lacks",
        ),
        (
            vec![
                ("a.weight", f8.clone()),
                ("a.weight_scale", Tensor::ones(4, DType::F32, &dev).unwrap()),
            ],
            "`a.weight_scale`",
            "one per channel",
        ),
        (
            vec![
                ("a.weight", f8.clone()),
                ("a.scale_weight", Tensor::new(f32::NAN, &dev).unwrap()),
            ],
            "`a.scale_weight`",
            "not a usable number",
        ),
    ];
    for (tensors, name, why) in cases {
        let e = error_of(&save(dir.path(), tensors));
        assert!(e.contains(name) && e.contains(why), "{e}");
    }
    // A scaled weight decodes to values * scale.
    let path = save(
        dir.path(),
        vec![("a.weight", f8), ("a.scale_weight", scalar)],
    );
    let source = open_file(&path).unwrap();
    let a = source.load("a.weight", DType::F32, &dev).unwrap();
    assert_eq!(a.to_vec2::<f32>().unwrap()[1][2], 0.5);
}

/// The tiny umT5 (`tiny-original`) as the unscaled fp8 repackages write it: the blocks' linears
/// cast to e4m3fn (saturating at ±448) with no scale tensors and no `scaled_fp8` marker; the
/// embedding, norms and relative-attention biases as stored. Also, beside it, the same values
/// decoded to f32 in a plain file: what the fp8 file must compute.
fn unscaled_fp8_umt5(dir: &Path) -> (PathBuf, PathBuf) {
    let source = tiny_original().join("umt5_tiny_bf16.safetensors");
    let tensors = candle_core::safetensors::load(&source, &Device::Cpu).unwrap();
    let linear = |name: &str, t: &Tensor| {
        name.starts_with("encoder.block.")
            && name.ends_with(".weight")
            && t.rank() == 2
            && !name.contains("relative_attention_bias")
    };
    let mut fp8 = std::collections::HashMap::new();
    let mut decoded = std::collections::HashMap::new();
    for (name, t) in tensors {
        if linear(&name, &t) {
            let values = t
                .to_dtype(DType::F32)
                .and_then(|t| t.clamp(-448f32, 448f32))
                .and_then(|t| t.to_dtype(DType::F8E4M3))
                .unwrap();
            decoded.insert(name.clone(), values.to_dtype(DType::F32).unwrap());
            fp8.insert(name, values);
        } else {
            decoded.insert(name.clone(), t.clone());
            fp8.insert(name, t);
        }
    }
    let fp8_path = dir.join("umt5-tiny-fp8-e4m3fn.safetensors");
    let decoded_path = dir.join("umt5-tiny-decoded.safetensors");
    candle_core::safetensors::save(&fp8, &fp8_path).unwrap();
    candle_core::safetensors::save(&decoded, &decoded_path).unwrap();
    (fp8_path, decoded_path)
}

#[test]
fn an_unscaled_fp8_umt5_is_detected_and_encodes_within_tolerance_of_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let (path, decoded) = unscaled_fp8_umt5(dir.path());
    let dev = Device::Cpu;
    // Detected from its contents, as a user's override file is.
    let text_encoder = |file: Option<PathBuf>| {
        ModelFiles::resolve(
            Some(&tiny_original()),
            &Overrides {
                text_encoder: file,
                ..Overrides::default()
            },
        )
        .unwrap()
        .text_encoder
    };
    let source_files = text_encoder(None);
    let files = text_encoder(Some(path.clone()));
    assert_eq!(files.files, [path]);
    assert_eq!(files.layout, source_files.layout);

    // fp8, unscaled: no scale read, the weight kept as its e4m3fn values.
    let weights = checkpoint::open_component(&files).unwrap();
    let q = "encoder.block.1.layer.0.SelfAttention.q.weight";
    let stored = weights.source();
    assert_eq!(stored.infos()[q].dtype, DType::F8E4M3);
    assert_eq!(stored.stored_as(q), Some("f8e4m3"), "unscaled");
    assert_eq!(stored.stored_bytes(q), Some(32 * 32));
    match stored.load_stored(q, &dev).unwrap() {
        Some(t2v_models::weights::stored::StoredWeight::Fp8 { values, scale }) => {
            assert_eq!(scale, None, "no scale");
            assert_eq!(values.dtype(), DType::F8E4M3);
        }
        _ => panic!("`{q}` is not held as fp8"),
    }
    assert_eq!(
        stored.infos()["shared.weight"].dtype,
        DType::BF16,
        "the embedding as stored"
    );

    let ids = Tensor::new(&[[3u32, 7, 11, 2, 0, 0], [5, 9, 1, 2, 0, 0]], &dev).unwrap();
    let encode = |files: &checkpoint::ComponentFiles| {
        checkpoint::load_text_encoder(files, DType::F32, &dev)
            .unwrap()
            .forward(&ids)
            .unwrap()
    };
    let got = encode(&files);
    // The fp8 values, decoded per use, compute what the same values decoded once compute.
    assert_close(
        "unscaled fp8 umT5 vs its values in f32",
        &got,
        &encode(&text_encoder(Some(decoded))),
        1e-5,
    );
    let reference = encode(&source_files);
    let max = max_abs_diff(&got, &reference);
    let mean = mean_abs_diff(&got, &reference);
    println!(
        "unscaled fp8 umT5 vs source: max |diff| {max:.2e}, mean {mean:.2e} (reference max |x| {:.3})",
        max_abs(&reference)
    );
    // Measured (deterministic): max 2.36e-1, mean 5.31e-2 on outputs up to 3.1; the scaled
    // fixture measures 2.89e-1 / 4.75e-2 on the same ids. The tiny encoder's weights (std 0.17)
    // lie in e4m3's normal range, where a scale changes nothing of the relative rounding (2.3%
    // mean per weight here), and two layers with a final norm carry it to the output. Bounds:
    // about 1.5x the measurement.
    assert!(max > 0.0, "the fp8 weights were used");
    assert!(max < 3.5e-1 && mean < 8e-2, "max {max}, mean {mean}");
}
