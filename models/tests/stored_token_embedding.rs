//! umT5's token embedding from a GGUF (or fp8) file stays as the file stores it: only the rows of
//! a prompt's tokens are gathered and decoded, with the same decoding as the dense path, so the
//! encoder's output is the same bits. The residency plan counts the table at its stored bytes.
//! A corrupt row or a truncated table is an error naming the tensor.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::Embedding;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use t2v_models::checkpoint::{self, configs, layout::detect, Component, ModelFiles, Overrides};
use t2v_models::text::token_embedding::TokenEmbedding;
use t2v_models::text::Umt5Encoder;
use t2v_models::weights::gguf::GgufFile;
use t2v_models::weights::stored::build_with_stored;
use t2v_models::weights::{TensorSource, TrackedWeights};

fn tiny_gguf() -> PathBuf {
    fixtures().join("gguf").join("tiny-umt5-Q8_0.gguf")
}

fn open(path: &Path) -> t2v_models::Result<TrackedWeights> {
    let files = ModelFiles::find(
        None,
        &Overrides {
            text_encoder: Some(path.to_path_buf()),
            ..Overrides::default()
        },
    )?;
    checkpoint::open_component(files.text_encoder.as_ref().expect("a text encoder"))
}

/// [1, vocab] token ids, every row of the table once (reversed, so the gather reorders).
fn every_id(vocab: usize) -> Tensor {
    let ids: Vec<u32> = (0..vocab as u32).rev().collect();
    Tensor::from_vec(ids, (1, vocab), &Device::Cpu).unwrap()
}

#[test]
fn gguf_embedding_stays_stored_and_matches_the_dense_decode_exactly() {
    let dev = Device::Cpu;
    let weights = open(&tiny_gguf()).unwrap();
    let cfg = configs::text_encoder_config(&weights, None).unwrap();
    let stored = checkpoint::build_text_encoder(&weights, &cfg, DType::F32, &dev).unwrap();
    let table = stored.token_embedding();
    assert!(
        matches!(table, TokenEmbedding::Gguf { .. }),
        "kept as GGUF blocks: {table:?}"
    );
    // Q8_0: 34 bytes per 32 values, the file's bytes; not the 4 bytes a dense f32 value takes.
    let file_bytes = weights.source().stored_bytes("token_embd.weight").unwrap() as usize;
    assert_eq!(table.stored_bytes(), file_bytes);
    assert_eq!(file_bytes, cfg.vocab_size * cfg.d_model / 32 * 34);

    // The dense path: the whole table decoded at load (what the loader did before).
    let dense_table = weights
        .source()
        .load("token_embd.weight", DType::F32, &dev)
        .unwrap();
    let dense = Embedding::new(dense_table.clone(), cfg.d_model);
    let ids = every_id(cfg.vocab_size);
    let gathered = table.forward(&ids, &dev).unwrap();
    let looked_up = candle_core::Module::forward(&dense, &ids).unwrap();
    assert_eq!(max_abs_diff(&gathered, &looked_up), 0.0);
    assert!(max_abs(&gathered) > 0.0);

    // The whole encoder: the same linears (stored), the embedding dense-decoded or gathered.
    let reference = build_with_stored(&weights, || {
        Umt5Encoder::with_embedding(
            &cfg,
            dense,
            "shared.weight",
            weights.var_builder(DType::F32, &dev),
        )
    })
    .unwrap();
    let prompt = Tensor::new(&[[5u32, 17, 3, 99, 1, 0, 42]], &dev).unwrap();
    let (a, b) = (
        stored.forward(&prompt).unwrap(),
        reference.forward(&prompt).unwrap(),
    );
    assert_eq!(a.dims(), b.dims());
    assert_eq!(max_abs_diff(&a, &b), 0.0, "same bits");

    // In bf16 too: each row is decoded in f32 then rounded once, as the dense table is.
    let bf16 = checkpoint::build_text_encoder(&weights, &cfg, DType::BF16, &dev).unwrap();
    let rows = bf16.token_embedding().forward(&ids, &dev).unwrap();
    assert_eq!(rows.dtype(), DType::BF16);
    let dense_bf16 = Embedding::new(dense_table.to_dtype(DType::BF16).unwrap(), cfg.d_model);
    let expected = candle_core::Module::forward(&dense_bf16, &ids).unwrap();
    assert_eq!(max_abs_diff(&rows, &expected), 0.0);
}

#[test]
fn a_dense_file_keeps_a_dense_table() {
    let path = tiny_original().join("umt5_tiny_bf16.safetensors");
    let weights = open(&path).unwrap();
    let cfg = configs::text_encoder_config(&weights, None).unwrap();
    let encoder = checkpoint::build_text_encoder(&weights, &cfg, DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(
        encoder.token_embedding(),
        TokenEmbedding::Dense(_)
    ));
}

/// The tiny GGUF umT5 copied to `dir`, with `edit` applied to its bytes given the table's
/// offset in the file and the bytes of one row.
fn edited_copy(dir: &Path, edit: impl Fn(&mut Vec<u8>, usize, usize)) -> PathBuf {
    let file = GgufFile::open(&tiny_gguf()).unwrap();
    let t = &file.tensors()["token_embd.weight"];
    let row_bytes = t.bytes as usize / t.shape[0];
    let mut bytes = std::fs::read(tiny_gguf()).unwrap();
    edit(&mut bytes, t.offset as usize, row_bytes);
    let path = dir.join("edited.gguf");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_corrupt_row_is_an_error_naming_the_tensor_and_the_row_only_when_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // Row 7's first Q8_0 block gets a NaN scale (f16 0x7E00).
    let path = edited_copy(dir.path(), |b, offset, row| {
        let at = offset + 7 * row;
        b[at..at + 2].copy_from_slice(&[0x00, 0x7E]);
    });
    let weights = open(&path).unwrap();
    let cfg = configs::text_encoder_config(&weights, None).unwrap();
    let encoder = checkpoint::build_text_encoder(&weights, &cfg, DType::F32, &Device::Cpu).unwrap();
    // A prompt without token 7 never decodes its row.
    let fine = Tensor::new(&[[1u32, 2, 3]], &Device::Cpu).unwrap();
    assert!(encoder.forward(&fine).is_ok());
    let bad = Tensor::new(&[[1u32, 7, 3]], &Device::Cpu).unwrap();
    let e = encoder.forward(&bad).unwrap_err().to_string();
    assert!(e.contains("`token_embd.weight`"), "{e}");
    assert!(e.contains("row 7") && e.contains("corrupt"), "{e}");
    // A token id beyond the table names it too.
    let beyond = Tensor::new(&[[cfg.vocab_size as u32]], &Device::Cpu).unwrap();
    let e = encoder.forward(&beyond).unwrap_err().to_string();
    assert!(
        e.contains("outside the") && e.contains("`token_embd.weight`"),
        "{e}"
    );
}

#[test]
fn a_truncated_table_is_an_error_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_copy(dir.path(), |b, offset, row| b.truncate(offset + 3 * row));
    let e = match open(&path) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a truncated file opened"),
    };
    assert!(
        e.contains("token_embd.weight") && e.contains("truncated"),
        "{e}"
    );
}

/// fp8 e4m3fn tables (no published file has one, but the layout allows it) are gathered the
/// same way: the rows of the stored values, scaled as the dense decode scales them.
#[test]
fn an_fp8_embedding_stays_stored_and_matches_the_dense_decode_exactly() {
    use safetensors::{tensor::TensorView, Dtype};
    let dev = Device::Cpu;
    let source =
        candle_core::safetensors::load(tiny_original().join("umt5_tiny_bf16.safetensors"), &dev)
            .unwrap();
    let (vocab, hidden) = source["shared.weight"].dims2().unwrap();
    // Every e4m3fn code but the two NaNs, spread over the table.
    let codes: Vec<u8> = (0..vocab * hidden)
        .map(|i| (i * 37 % 256) as u8)
        .map(|c| if c & 0x7F == 0x7F { 0 } else { c })
        .collect();
    let scale = 0.0625f32.to_le_bytes();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in &source {
        if name == "shared.weight" || name == "encoder.embed_tokens.weight" {
            continue;
        }
        let t = t.to_dtype(DType::F32).unwrap();
        let data: Vec<u8> = t
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        owned.push((name.clone(), Dtype::F32, t.dims().to_vec(), data));
    }
    owned.push((
        "shared.weight".into(),
        Dtype::F8_E4M3,
        vec![vocab, hidden],
        codes,
    ));
    owned.push((
        "shared.scale_weight".into(),
        Dtype::F32,
        vec![],
        scale.to_vec(),
    ));
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("umt5-fp8-embedding.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();

    let opened: Arc<dyn TensorSource> = Arc::from(t2v_models::weights::open_file(&path).unwrap());
    let layout = detect(opened.infos()).unwrap();
    assert_eq!(layout.component, Component::TextEncoder);
    let weights = checkpoint::track(opened, &layout);
    let cfg = configs::text_encoder_config(&weights, None).unwrap();
    let encoder = checkpoint::build_text_encoder(&weights, &cfg, DType::F32, &dev).unwrap();
    let table = encoder.token_embedding();
    assert!(matches!(table, TokenEmbedding::Fp8 { .. }), "{table:?}");
    assert_eq!(table.stored_bytes(), vocab * hidden);
    let dense = weights
        .source()
        .load("shared.weight", DType::F32, &dev)
        .unwrap();
    let ids = every_id(vocab);
    let gathered = table.forward(&ids, &dev).unwrap();
    let expected = candle_core::Module::forward(&Embedding::new(dense, hidden), &ids).unwrap();
    assert_eq!(max_abs_diff(&gathered, &expected), 0.0);
    assert!(max_abs(&gathered) > 0.0);
}

/// The real-size plan counts a GGUF umT5's table at its blocks' bytes and never makes room
/// for decoding it whole: the largest layer decoded at a time is a feed-forward weight.
#[test]
fn the_plan_counts_the_stored_table_and_no_whole_table_decode() {
    use t2v_models::residency::ComponentWeights;
    let source =
        t2v_models::weights::ZeroSource::from_manifest(&manifests().join("umt5-gguf-q4_k_m.txt"))
            .unwrap();
    let layout = detect(source.infos()).unwrap();
    let weights = checkpoint::track(Arc::new(source) as Arc<dyn TensorSource>, &layout);
    let c = ComponentWeights::from_tracked(Component::TextEncoder, &weights);
    let table = c
        .entries
        .iter()
        .find(|e| e.name == "shared.weight")
        .expect("the token embedding");
    // Q6_K: 210 bytes per 256 values.
    assert!(table.packed);
    assert_eq!(table.stored_bytes, 256_384 * 4096 / 256 * 210);
    assert_eq!(table.device_bytes(DType::BF16), table.stored_bytes);
    assert_eq!(c.dequantize_scratch_bytes(DType::BF16), 10_240 * 4096 * 2);
}

/// A GGUF table stored reshaped (ComfyUI-GGUF's `comfy.gguf.orig_shape`) so that a row of the
/// model's shape is not a whole number of blocks cannot be read row by row: an error naming
/// the tensor, not a wrong gather.
#[test]
fn rows_that_are_not_whole_blocks_are_an_error_naming_the_tensor() {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    let dev = Device::Cpu;
    // 4 rows of 48 values stored as 6 rows of one 32-value Q8_0 block.
    let values = Tensor::arange(0f32, 192., &dev)
        .unwrap()
        .reshape((6, 32))
        .unwrap();
    let q = QTensor::quantize(&values, GgmlDType::Q8_0).unwrap();
    let shape = gguf_file::Value::Array(vec![gguf_file::Value::I32(4), gguf_file::Value::I32(48)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reshaped.gguf");
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(
        &mut file,
        &[("comfy.gguf.orig_shape.shared.weight", &shape)],
        &[("shared.weight", &q)],
    )
    .unwrap();
    drop(file);
    let source: Arc<dyn TensorSource> = Arc::from(t2v_models::weights::open_file(&path).unwrap());
    assert_eq!(source.infos()["shared.weight"].shape, [4, 48]);
    let weights = TrackedWeights::new(source, |n| Some(n.to_string()));
    let e = build_with_stored(&weights, || {
        TokenEmbedding::new(4, 48, weights.var_builder(DType::F32, &dev).pp("shared"))
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`shared.weight`") && e.contains("whole number"),
        "{e}"
    );
}
