//! GGUF checkpoints of the transformer and the umT5 encoder: detected from their tensor names,
//! their block linears kept as GGUF blocks and decoded one layer at a time, and the frames they
//! generate within a measured tolerance of their f32 source's.

mod common;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use t2v_models::checkpoint::{self, load_models, Component, ModelFiles, Naming, Overrides};
use t2v_models::dit::{DitConfig, WanTransformer};
use t2v_models::pipeline::{self, Models, RunInputs};
use t2v_models::weights::{open_file, GgufSource, TensorSource};

fn gguf(name: &str) -> std::path::PathBuf {
    fixtures().join("gguf").join(name)
}

fn frames(models: &Models) -> Tensor {
    pipeline::generate(
        models,
        &small_request(),
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap()
    .frames
}

/// (max, mean) absolute difference.
fn diff(a: &Tensor, b: &Tensor) -> (f32, f32) {
    (max_abs_diff(a, b), mean_abs_diff(a, b))
}

#[test]
fn gguf_files_are_detected_from_their_tensor_names() {
    let overrides = Overrides {
        transformer: Some(gguf("tiny-dit-Q8_0.gguf")),
        text_encoder: Some(gguf("tiny-umt5-Q8_0.gguf")),
        ..Overrides::default()
    };
    let files = ModelFiles::resolve(Some(&tiny_original()), &overrides).unwrap();
    assert_eq!(files.transformer.layout.component, Component::Transformer);
    assert_eq!(files.transformer.layout.naming, Naming::Original);
    assert_eq!(files.text_encoder.layout.naming, Naming::LlamaCpp);
    // A folder holding the GGUF transformer finds it by its contents like any other file.
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(tiny_original()).unwrap() {
        let f = f.unwrap().path();
        if !f.to_string_lossy().contains("wan2.2_ti2v") {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        gguf("tiny-dit-Q8_0.gguf"),
        dir.path().join("wan2.2-ti2v-5b-Q8_0.gguf"),
    )
    .unwrap();
    let found = ModelFiles::resolve(Some(dir.path()), &Overrides::default()).unwrap();
    assert!(found.transformer.files[0]
        .to_string_lossy()
        .ends_with("Q8_0.gguf"));
}

/// A linear layer built from a GGUF file holds its Q8_0 blocks, not a dense copy, and computes
/// exactly what the dense layer over the decoded weight computes.
#[test]
fn block_linears_hold_gguf_blocks_and_decode_them_per_call() {
    let source = GgufSource::open(&gguf("tiny-dit-Q8_0.gguf")).unwrap();
    let layout = checkpoint::layout::detect(source.infos()).unwrap();
    let weights = checkpoint::track(Arc::new(source), &layout);
    assert_first_linear_is_stored(&weights, 32 * 34);
}

/// Q8_0 transformer and umT5 (written by the `gguf` package by the converters' rules) against
/// the fp16/bf16 files they were made from, all computed in f32.
#[test]
fn q8_0_checkpoint_generates_its_sources_frames_within_tolerance() {
    let dense = ModelFiles::resolve(Some(&tiny_original()), &Overrides::default()).unwrap();
    let reference = frames(&load_models(&dense, DType::F32, &Device::Cpu).unwrap());
    let overrides = Overrides {
        transformer: Some(gguf("tiny-dit-Q8_0.gguf")),
        text_encoder: Some(gguf("tiny-umt5-Q8_0.gguf")),
        ..Overrides::default()
    };
    let files = ModelFiles::resolve(Some(&tiny_original()), &overrides).unwrap();
    let quantized = frames(&load_models(&files, DType::F32, &Device::Cpu).unwrap());
    let (max, mean) = diff(&quantized, &reference);
    println!("Q8_0 vs source, frames in [0, 1]: max |diff| {max:.2e}, mean {mean:.2e}");
    assert!(max > 0.0, "the quantized weights were used");
    // Measured: max 1.39e-2, mean 1.12e-3 (deterministic). The mean is half of what computing
    // the same model in bf16 instead of f32 costs (2.2e-3, `pipeline_parity.rs`); the max, on
    // this random tiny model over three guided steps, is above 1e-2.
    assert!(max < 2.5e-2 && mean < 2e-3, "max {max}, mean {mean}");
}

/// Random weights of whatever shape a layer asks for (distributed as `RandomWeights` makes
/// them, from a fixed seed), recorded.
#[derive(Clone)]
struct Recorder {
    tensors: Arc<Mutex<HashMap<String, Tensor>>>,
    rng: Arc<Mutex<rand_chacha::ChaCha8Rng>>,
}

impl Recorder {
    fn new() -> Self {
        use rand::SeedableRng;
        Self {
            tensors: Arc::default(),
            rng: Arc::new(Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(17))),
        }
    }
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        use rand_distr::Distribution;
        let dims = shape.dims().to_vec();
        let t = if dims.len() <= 1 {
            (Tensor::ones(shape, DType::F32, dev)? * 0.1)?
        } else {
            let fan_in: usize = dims[1..].iter().product();
            let normal = rand_distr::Normal::new(0f32, (1.0 / fan_in as f32).sqrt()).unwrap();
            let mut rng = self.rng.lock().unwrap();
            let values: Vec<f32> = (0..shape.elem_count())
                .map(|_| normal.sample(&mut *rng))
                .collect();
            Tensor::from_vec(values, shape, dev)?
        };
        self.tensors
            .lock()
            .unwrap()
            .insert(name.to_string(), t.clone());
        t.to_dtype(dtype)
    }
    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("no shape for {name}")
    }
    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

/// The tiny model's width is 32, which no K-quant block (256 elements) fits: this transformer
/// is 256 wide, with the tiny umT5's text width and the tiny VAE's latent channels.
fn wide_config() -> DitConfig {
    DitConfig {
        num_attention_heads: 2,
        attention_head_dim: 128,
        text_dim: 32,
        ffn_dim: 512,
        num_layers: 2,
        ..DitConfig::wan22_ti2v_5b()
    }
}

/// Writes `tensors` as a GGUF file: block linears in `qtype`, the rest F32, the 5-D patch
/// embedding stored as rows of 256 with its shape in `comfy.gguf.orig_shape.*` (candle's writer).
fn write_gguf(path: &Path, tensors: &HashMap<String, Tensor>, qtype: GgmlDType) {
    let mut q = Vec::new();
    let mut meta = Vec::new();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &tensors[name];
        let block_linear = name.starts_with("blocks.") && name.ends_with("weight") && t.rank() == 2;
        let (t, dtype) = if t.rank() > 4 {
            let n = t.elem_count();
            meta.push((
                format!("comfy.gguf.orig_shape.{name}"),
                gguf_file::Value::Array(
                    t.dims()
                        .iter()
                        .map(|&d| gguf_file::Value::I32(d as i32))
                        .collect(),
                ),
            ));
            (t.reshape((n / 256, 256)).unwrap(), GgmlDType::F32)
        } else if block_linear {
            (t.clone(), qtype)
        } else {
            (t.clone(), GgmlDType::F32)
        };
        q.push((name.clone(), QTensor::quantize(&t, dtype).unwrap()));
    }
    let mut file = std::fs::File::create(path).unwrap();
    let meta: Vec<(&str, &gguf_file::Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let q: Vec<(&str, &QTensor)> = q.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &meta, &q).unwrap();
}

/// A K-quant (Q4_K, and Q6_K) transformer against its f32 source, inside the tiny pipeline.
#[test]
fn k_quant_checkpoint_generates_its_sources_frames_within_tolerance() {
    let cfg = wide_config();
    let dev = Device::Cpu;
    let recorder = Recorder::new();
    WanTransformer::new(
        &cfg,
        VarBuilder::from_backend(Box::new(recorder.clone()), DType::F32, dev.clone()),
    )
    .unwrap();
    let tensors = recorder.tensors.lock().unwrap().clone();
    let dense = ModelFiles::resolve(Some(&tiny_original()), &Overrides::default()).unwrap();
    let mut models = load_models(&dense, DType::F32, &dev).unwrap();
    models.transformer = WanTransformer::new(
        &cfg,
        VarBuilder::from_tensors(tensors.clone(), DType::F32, &dev),
    )
    .unwrap();
    let reference = frames(&models);
    let dir = tempfile::tempdir().unwrap();
    // Measured (max, mean |diff| in [0, 1] pixels, deterministic): Q4_K 4.95e-2 / 4.52e-3,
    // Q6_K 1.85e-2 / 1.60e-3. Bounds: about 1.5x the measurement.
    for (qtype, max_tol, mean_tol) in [
        (GgmlDType::Q4K, 7.5e-2f32, 7e-3f32),
        (GgmlDType::Q6K, 3e-2, 2.5e-3),
    ] {
        let path = dir.path().join(format!("wide-{qtype:?}.gguf"));
        write_gguf(&path, &tensors, qtype);
        let source = open_file(&path).unwrap();
        assert_eq!(
            source.stored_as("blocks.0.attn1.to_q.weight"),
            Some(if qtype == GgmlDType::Q4K {
                "Q4_K"
            } else {
                "Q6_K"
            })
        );
        assert_eq!(
            source.infos()["patch_embedding.weight"].shape,
            [256, 48, 1, 2, 2]
        );
        let files = ModelFiles::find(
            None,
            &Overrides {
                transformer: Some(path.clone()),
                ..Overrides::default()
            },
        )
        .unwrap();
        let weights = checkpoint::open_component(&files.transformer.unwrap()).unwrap();
        models.transformer =
            checkpoint::build_transformer(&weights, &cfg, DType::F32, &dev).unwrap();
        let (max, mean) = diff(&frames(&models), &reference);
        println!(
            "{qtype:?} vs f32 source, frames in [0, 1]: max |diff| {max:.2e}, mean {mean:.2e}"
        );
        assert!(max > 0.0, "the quantized weights were used");
        assert!(
            max < max_tol && mean < mean_tol,
            "{qtype:?}: max {max}, mean {mean}"
        );
    }
}
