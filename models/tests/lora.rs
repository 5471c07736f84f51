//! LoRAs against diffusers: tiny random LoRAs in each naming (fixtures/lora/make_loras.py), loaded
//! by `WanPipeline.load_lora_weights` at several strengths there and merged into the weights
//! here; the transformer's outputs match. Then LoRAs that don't fit, and hostile LoRA files.

mod common;
mod fuzz_support;

use candle_core::{DType, Device, Tensor};
use common::*;
use fuzz_support::{fuzz, hostile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use t2v_models::checkpoint::{self, ComponentFiles, ModelFiles, Overrides};
use t2v_models::dit::{TokenTimesteps, WanTransformer};
use t2v_models::lora::{LoraSpec, Loras};

record_allocations!();

fn lora_file(name: &str) -> PathBuf {
    fixtures().join("lora").join(name)
}

fn transformer_files(root: &Path) -> ComponentFiles {
    ModelFiles::resolve(Some(root), &Overrides::default())
        .expect("resolve model folder")
        .transformer
}

fn with_loras(root: &Path, specs: &[(&str, f64)]) -> t2v_models::Result<WanTransformer> {
    let specs: Vec<LoraSpec> = specs
        .iter()
        .map(|(name, strength)| LoraSpec {
            path: lora_file(name),
            strength: *strength,
        })
        .collect();
    let loras = Loras::open(&specs)?;
    checkpoint::load_transformer_with_loras(
        &transformer_files(root),
        &loras,
        DType::F32,
        &Device::Cpu,
    )
}

/// The t2v case of the transformer fixture: the inputs the LoRA references were made with.
fn forward(model: &WanTransformer) -> Tensor {
    let fx = load("transformer.safetensors");
    let n = fx["t2v.timestep"].elem_count();
    let ts = TokenTimesteps::uniform(n, 700.0);
    let prompt = model
        .prepare_context(&fx["t2v.encoder_hidden_states"])
        .unwrap();
    model
        .forward(&fx["t2v.hidden_states"], &ts, &prompt)
        .unwrap()
}

fn expected() -> HashMap<String, Tensor> {
    let path = lora_file("expected.safetensors");
    candle_core::safetensors::load(&path, &Device::Cpu).expect("expected.safetensors")
}

#[test]
fn every_format_and_strength_matches_diffusers() {
    let expected = expected();
    let root = tiny_diffusers();
    assert_close(
        "no LoRA",
        &forward(&with_loras(&root, &[]).unwrap()),
        &expected["base"],
        1e-4,
    );
    for format in ["peft", "wan", "kohya", "diff"] {
        for strength in [1.0, 0.6] {
            let file = format!("{format}.safetensors");
            let out = forward(&with_loras(&root, &[(&file, strength)]).unwrap());
            let key = format!("{format}@{strength:?}");
            let reference = &expected[&key];
            assert!(
                max_abs_diff(reference, &expected["base"]) > 0.1,
                "{key} changes the output"
            );
            assert_close(&key, &out, reference, 1e-4);
        }
    }
}

#[test]
fn two_loras_at_once_one_negative_match_diffusers() {
    let out = forward(
        &with_loras(
            &tiny_diffusers(),
            &[("peft.safetensors", 0.7), ("kohya.safetensors", -0.4)],
        )
        .unwrap(),
    );
    assert_close(
        "peft@0.7+kohya@-0.4",
        &out,
        &expected()["peft@0.7+kohya@-0.4"],
        1e-4,
    );
}

/// The same LoRA over the original single-file layout (fp16, Wan names): the changes reach the
/// tensors through that layout's names.
#[test]
fn loras_apply_over_the_original_layout_too() {
    let expected = expected();
    for (file, key) in [
        ("wan.safetensors", "wan@1.0"),
        ("diff.safetensors", "diff@0.6"),
    ] {
        let strength = if key.ends_with("0.6") { 0.6 } else { 1.0 };
        let out = forward(&with_loras(&tiny_original(), &[(file, strength)]).unwrap());
        assert_close(
            &format!("original layout {key}"),
            &out,
            &expected[key],
            1e-4,
        );
    }
}

fn save(dir: &Path, name: &str, tensors: &[(&str, Tensor)]) -> PathBuf {
    let map: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let path = dir.join(name);
    candle_core::safetensors::save(&map, &path).unwrap();
    path
}

fn load_error(path: &Path) -> String {
    let spec = LoraSpec {
        path: path.to_path_buf(),
        strength: 1.0,
    };
    Loras::open(&[spec])
        .and_then(|l| {
            checkpoint::load_transformer_with_loras(
                &transformer_files(&tiny_diffusers()),
                &l,
                DType::F32,
                &Device::Cpu,
            )
        })
        .map(|_| ())
        .expect_err("refused")
        .to_string()
}

#[test]
fn a_lora_that_does_not_fit_is_an_error_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    let t = |shape: &[usize]| Tensor::ones(shape, DType::F32, &dev).unwrap();
    // (what, the LoRA's tensors, what the error says)
    type Case<'a> = (&'a str, Vec<(&'a str, Tensor)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a block the model lacks",
            vec![
                (
                    "diffusion_model.blocks.7.self_attn.q.lora_down.weight",
                    t(&[4, 32]),
                ),
                (
                    "diffusion_model.blocks.7.self_attn.q.lora_up.weight",
                    t(&[32, 4]),
                ),
            ],
            "`diffusion_model.blocks.7.self_attn.q.lora_down.weight`",
        ),
        (
            "a LoRA for a wider model",
            vec![
                (
                    "transformer.blocks.0.attn1.to_q.lora_A.weight",
                    t(&[4, 3072]),
                ),
                (
                    "transformer.blocks.0.attn1.to_q.lora_B.weight",
                    t(&[3072, 4]),
                ),
            ],
            "`transformer.blocks.0.attn1.to_q.lora_A.weight`",
        ),
        (
            "a diff of the wrong shape",
            vec![("diffusion_model.blocks.0.ffn.2.diff_b", t(&[64]))],
            "`diffusion_model.blocks.0.ffn.2.diff_b`",
        ),
        (
            "half a pair",
            vec![("lora_unet_blocks_0_ffn_0.lora_down.weight", t(&[4, 32]))],
            "`lora_unet_blocks_0_ffn_0.lora_down.weight` has no partner",
        ),
        (
            "ranks that disagree",
            vec![
                ("transformer.blocks.0.attn1.to_q.lora_A.weight", t(&[4, 32])),
                ("transformer.blocks.0.attn1.to_q.lora_B.weight", t(&[32, 2])),
            ],
            "rank 4",
        ),
        (
            "a model's own weights, not a LoRA",
            vec![("blocks.0.attn1.to_q.weight", t(&[32, 32]))],
            "`blocks.0.attn1.to_q.weight` is in no LoRA naming",
        ),
        (
            "an alpha that is not one number",
            vec![
                ("lora_unet_blocks_0_ffn_0.lora_down.weight", t(&[4, 32])),
                ("lora_unet_blocks_0_ffn_0.lora_up.weight", t(&[64, 4])),
                ("lora_unet_blocks_0_ffn_0.alpha", t(&[2])),
            ],
            "`lora_unet_blocks_0_ffn_0.alpha` should be one number",
        ),
    ];
    for (i, (what, tensors, needle)) in cases.into_iter().enumerate() {
        let path = save(dir.path(), &format!("bad{i}.safetensors"), &tensors);
        let e = load_error(&path);
        assert!(e.contains(needle), "{what}: {e}");
        assert!(
            e.contains(&path.display().to_string()),
            "{what} names the file: {e}"
        );
    }
    let e = load_error(&dir.path().join("missing.safetensors"));
    assert!(e.contains("LoRA file not found"), "{e}");
}

/// A text-encoder LoRA changes the text encoder exactly as its weights changed by hand do; the
/// transformer built with it is untouched.
#[test]
fn a_text_encoder_lora_merges_into_the_umt5_weights() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cpu;
    let files = ModelFiles::resolve(Some(&tiny_diffusers()), &Overrides::default()).unwrap();
    let te = &files.text_encoder;
    let q = "encoder.block.1.layer.0.SelfAttention.q.weight";
    let base: HashMap<String, Tensor> = candle_core::safetensors::load(&te.files[0], &dev).unwrap();
    let w = &base[q];
    let (out, inp) = w.dims2().unwrap();
    let down = Tensor::randn(0f32, 0.5, (2, inp), &dev).unwrap();
    let up = Tensor::randn(0f32, 0.5, (out, 2), &dev).unwrap();
    let lora = save(
        dir.path(),
        "te.safetensors",
        &[
            (
                "lora_te_encoder_block_1_layer_0_SelfAttention_q.lora_down.weight",
                down.clone(),
            ),
            (
                "lora_te_encoder_block_1_layer_0_SelfAttention_q.lora_up.weight",
                up.clone(),
            ),
            (
                "lora_te_encoder_block_1_layer_0_SelfAttention_q.alpha",
                Tensor::new(1f32, &dev).unwrap(),
            ),
        ],
    );
    let strength = 0.8;
    let loras = Loras::open(&[LoraSpec {
        path: lora,
        strength,
    }])
    .unwrap();

    // By hand: W + s * (alpha / rank) * B·A, saved as a model of its own.
    let mut changed = base.clone();
    let delta = (up.matmul(&down).unwrap() * (strength * 1.0 / 2.0)).unwrap();
    changed.insert(q.to_string(), (w + delta).unwrap());
    let by_hand_dir = dir.path().join("by-hand");
    std::fs::create_dir(&by_hand_dir).unwrap();
    candle_core::safetensors::save(&changed, by_hand_dir.join("model.safetensors")).unwrap();
    let by_hand_files = ComponentFiles {
        files: vec![by_hand_dir.join("model.safetensors")],
        ..te.clone()
    };

    let ids = Tensor::new(&[[3u32, 7, 11, 2]], &dev).unwrap();
    let encode = |e: t2v_models::text::Umt5Encoder| e.forward(&ids).unwrap();
    let merged =
        encode(checkpoint::load_text_encoder_with_loras(te, &loras, DType::F32, &dev).unwrap());
    let reference =
        encode(checkpoint::load_text_encoder(&by_hand_files, DType::F32, &dev).unwrap());
    let plain = encode(checkpoint::load_text_encoder(te, DType::F32, &dev).unwrap());
    assert_close("text encoder LoRA", &merged, &reference, 1e-5);
    assert!(
        max_abs_diff(&merged, &plain) > 1e-3,
        "the LoRA changes the prompt embedding"
    );

    let transformer =
        checkpoint::load_transformer_with_loras(&files.transformer, &loras, DType::F32, &dev)
            .unwrap();
    let plain_transformer = with_loras(&tiny_diffusers(), &[]).unwrap();
    assert_close(
        "transformer untouched",
        &forward(&transformer),
        &forward(&plain_transformer),
        0.0,
    );
}

#[test]
fn fuzz_lora_files() {
    let seed = std::fs::read(lora_file("diff.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = transformer_files(&tiny_diffusers());
    let path = dir.path().join("x.safetensors");
    let read = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let spec = LoraSpec {
            path: path.clone(),
            strength: 1.0,
        };
        Loras::open(&[spec])
            .and_then(|l| {
                checkpoint::load_transformer_with_loras(&files, &l, DType::F32, &Device::Cpu)
            })
            .is_ok()
    };
    assert!(read(&seed), "the seed is a usable LoRA");
    fuzz("LoRA file", 400, hostile(seed), read);
}

/// Over `transformer`, a file whose block linears are stored (GGUF blocks, fp8), with the tiny
/// model's folder for its config: each LoRA is applied on the fly (the first query projection
/// keeps its stored weight and carries the LoRA beside it), and the transformer's output is
/// compared with the same weights decoded densely, the LoRA merged in. Returns, per LoRA, that
/// difference; asserts the LoRA changes the output.
fn on_the_fly_vs_merged(transformer: PathBuf) -> Vec<(&'static str, f32)> {
    use t2v_models::checkpoint::configs;
    use t2v_models::ops::linear::linear;
    use t2v_models::weights::stored::build_with_stored;
    let dev = Device::Cpu;
    let what = transformer
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let files = ModelFiles::resolve(
        Some(&tiny_original()),
        &Overrides {
            transformer: Some(transformer),
            ..Overrides::default()
        },
    )
    .unwrap()
    .transformer;
    let plain = forward(&checkpoint::load_transformer(&files, DType::F32, &dev).unwrap());
    let mut diffs = Vec::new();
    for (file, strength) in [("wan.safetensors", 0.6), ("kohya.safetensors", -1.0)] {
        let loras = Loras::open(&[LoraSpec {
            path: lora_file(file),
            strength,
        }])
        .unwrap();
        let weights = checkpoint::open_component_with_loras(&files, &loras).unwrap();
        let vb = weights.var_builder(DType::F32, &dev);
        let kernels = t2v_models::ops::fused_kernels();
        let q = build_with_stored(&weights, || {
            linear(32, 32, vb.pp("blocks.0.attn1.to_q"), &kernels)
        })
        .unwrap();
        let (base, deltas) = q.weight().split_lora();
        assert!(
            base.is_stored() && deltas.is_some(),
            "{what} + {file}: the stored weight plus the LoRA"
        );

        let cfg = configs::transformer_config(&weights, files.config.as_deref()).unwrap();
        let on_the_fly =
            forward(&checkpoint::build_transformer(&weights, &cfg, DType::F32, &dev).unwrap());
        // Without `build_with_stored` every weight is read densely, the LoRA merged in.
        let merged =
            forward(&WanTransformer::new(&cfg, weights.var_builder(DType::F32, &dev)).unwrap());
        let diff = max_abs_diff(&on_the_fly, &merged);
        println!("{what} + {file}@{strength}: on the fly vs merged max |diff| {diff:.2e}");
        let change = max_abs_diff(&on_the_fly, &plain);
        assert!(
            change > 1e-3,
            "{what}: {file} changes the output ({change:e})"
        );
        diffs.push((file, diff));
    }
    diffs
}

/// Over a GGUF transformer a LoRA is applied on the fly: the block linears keep their Q8_0 blocks
/// and add the LoRA's changes to their output, and the transformer computes what the same
/// weights decoded, with the LoRA merged in, compute.
#[test]
fn over_gguf_weights_loras_apply_on_the_fly_and_equal_merging() {
    let gguf = fixtures().join("gguf").join("tiny-dit-Q8_0.gguf");
    for (file, diff) in on_the_fly_vs_merged(gguf) {
        // Measured: 2.2e-6 and 2.0e-6.
        assert!(diff < 1e-5, "{file}: {diff}");
    }
}

/// The same over ComfyUI's scaled fp8 layout: the block linears keep their e4m3fn values and
/// per-tensor scale, and the LoRA's changes are added to their output.
#[test]
fn over_scaled_fp8_weights_loras_apply_on_the_fly_and_equal_merging() {
    let fp8 = fixtures()
        .join("fp8")
        .join("tiny-dit-fp8-scaled.safetensors");
    for (file, diff) in on_the_fly_vs_merged(fp8) {
        // Measured: 1.3e-6 and 2.3e-6.
        assert!(diff < 1e-5, "{file}: {diff}");
    }
}
