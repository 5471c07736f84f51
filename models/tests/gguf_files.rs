//! GGUF files: every GGML type the node reads dequantizes to exactly the `gguf` Python
//! package's values (fixtures written by `fixtures/gguf/make_gguf_fixtures.py`), the two ways a
//! converter stores a tensor of more than four dimensions are restored, and damaged files are
//! errors that name the tensor.

mod common;

use candle_core::{DType, Device, Tensor};
use common::fixtures;
use std::path::{Path, PathBuf};
use t2v_models::weights::gguf::{GgmlType, GgufFile};
use t2v_models::weights::{open_file, TensorSource};

fn fixture(name: &str) -> PathBuf {
    fixtures().join("gguf").join(name)
}

fn expected() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("types-expected.safetensors"), &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn every_type_dequantizes_bit_for_bit_like_the_gguf_package() {
    let expected = expected();
    for file in ["types.gguf", "types-v2.gguf"] {
        let gguf = GgufFile::open(&fixture(file)).unwrap();
        assert_eq!(gguf.version(), if file == "types.gguf" { 3 } else { 2 });
        let mut types_seen = std::collections::BTreeSet::new();
        for (name, want) in &expected {
            let info = &gguf.tensors()[name];
            types_seen.insert(info.ggml_type);
            let got = gguf.dense(name, &Device::Cpu).unwrap();
            assert_eq!(got.dims(), want.dims(), "{file}: {name}");
            let (got, want) = (bits(&got), bits(want));
            let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ,
                0,
                "{file}: {name} ({}): {differ} of {} values differ",
                info.ggml_type.name(),
                want.len()
            );
        }
        assert_eq!(
            types_seen.len(),
            GgmlType::ALL.len(),
            "every type is in the fixture"
        );
    }
}

#[test]
fn the_source_names_block_types_and_their_stored_sizes() {
    let source = open_file(&fixture("types.gguf")).unwrap();
    assert_eq!(source.stored_as("Q4_K.random"), Some("Q4_K"));
    assert_eq!(source.stored_as("BF16.random"), Some("BF16"));
    // 3 x 512 elements: 6 blocks of 256 in 144 bytes; 48 blocks of 32 in 34 bytes.
    assert_eq!(source.stored_bytes("Q4_K.random"), Some(6 * 144));
    assert_eq!(source.stored_bytes("Q8_0.random"), Some(48 * 34));
    assert_eq!(source.stored_bytes("F32.random"), Some(3 * 512 * 4));
    let gguf = GgufFile::open(&fixture("types.gguf")).unwrap();
    let sizes = gguf.stored_sizes();
    assert_eq!(sizes.len(), gguf.tensors().len());
    let total: u64 = sizes.iter().map(|(_, b)| b).sum();
    let file_len = std::fs::metadata(fixture("types.gguf")).unwrap().len();
    assert!(
        total < file_len && total > file_len * 9 / 10,
        "{total} of {file_len}"
    );
    // Loading converts to the asked dtype from the decoded values.
    let t = source
        .load("Q6_K.random", DType::BF16, &Device::Cpu)
        .unwrap();
    assert_eq!((t.dtype(), t.dims()), (DType::BF16, &[3, 512][..]));
}

#[test]
fn tensors_of_more_than_four_dimensions_keep_their_shape() {
    let gguf = GgufFile::open(&fixture("types.gguf")).unwrap();
    // Written with five dimensions in the header (ComfyUI-GGUF's fix_5d_tensors.py).
    let patch = &gguf.tensors()["patch_embedding.weight"];
    assert_eq!(patch.shape, [4, 3, 1, 2, 2]);
    assert_eq!(patch.stored_shape, patch.shape);
    // Stored as rows of 256, its shape in `comfy.gguf.orig_shape.reshaped.weight`.
    let reshaped = &gguf.tensors()["reshaped.weight"];
    assert_eq!(reshaped.stored_shape, [3, 256]);
    assert_eq!(reshaped.shape, [3, 4, 1, 2, 32]);
    assert_eq!(reshaped.ggml_type, GgmlType::Q8_0);
}

/// The position just after the name of tensor `name` in the tensor table.
fn after_name(bytes: &[u8], name: &str) -> usize {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let at = bytes
        .windows(key.len())
        .rposition(|w| w == key.as_slice())
        .expect("name in the header");
    at + key.len()
}

fn open_bytes(dir: &Path, bytes: &[u8]) -> t2v_models::Result<Box<dyn TensorSource>> {
    let path = dir.join("damaged.gguf");
    std::fs::write(&path, bytes).unwrap();
    open_file(&path)
}

fn error_of(dir: &Path, bytes: &[u8]) -> String {
    match open_bytes(dir, bytes) {
        Ok(_) => panic!("a damaged file was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_truncated_file_names_the_tensor_it_cuts() {
    let seed = std::fs::read(fixture("types.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The last tensor in the data is `reshaped.weight` (816 bytes).
    let e = error_of(dir.path(), &seed[..seed.len() - 100]);
    assert!(e.contains("tensor `reshaped.weight`"), "{e}");
    assert!(e.contains("truncated"), "{e}");
    assert!(e.contains("damaged.gguf"), "{e}");
    // Cut inside the tensor table, just after a name.
    let cut = after_name(&seed, "Q4_K.random") + 3;
    let e = error_of(dir.path(), &seed[..cut]);
    assert!(e.contains("not a readable GGUF file"), "{e}");
    // Every cut of the header and data is an error, never a panic.
    for len in (0..seed.len()).step_by(97) {
        assert!(
            open_bytes(dir.path(), &seed[..len]).is_err(),
            "cut at {len}"
        );
    }
}

#[test]
fn a_garbled_tensor_entry_names_the_tensor() {
    let seed = std::fs::read(fixture("types.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Entry after the name: n_dims (u32), dims (u64 each), type (u32), offset (u64).
    let at = after_name(&seed, "Q5_K.random");
    let type_at = at + 4 + 2 * 8;

    let mut iq = seed.clone();
    iq[type_at..type_at + 4].copy_from_slice(&16u32.to_le_bytes());
    let e = error_of(dir.path(), &iq);
    assert!(
        e.contains("tensor `Q5_K.random`") && e.contains("IQ2_XXS"),
        "{e}"
    );

    let mut huge = seed.clone();
    huge[at + 4..at + 12].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = error_of(dir.path(), &huge);
    assert!(e.contains("tensor `Q5_K.random`"), "{e}");

    let mut far = seed.clone();
    far[type_at + 4..type_at + 12].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    let e = error_of(dir.path(), &far);
    assert!(e.contains("tensor `Q5_K.random`"), "{e}");

    let mut odd_row = seed.clone();
    odd_row[at + 4..at + 12].copy_from_slice(&100u64.to_le_bytes());
    let e = error_of(dir.path(), &odd_row);
    assert!(
        e.contains("tensor `Q5_K.random`") && e.contains("block"),
        "{e}"
    );

    let mut bad_shape = seed.clone();
    let key = b"comfy.gguf.orig_shape.reshaped.weight";
    let k = bad_shape.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    // Value type (u32 = ARRAY), item type (u32 = INT32), count (u64), then the first size.
    bad_shape[k + 16..k + 20].copy_from_slice(&5i32.to_le_bytes());
    let e = error_of(dir.path(), &bad_shape);
    assert!(e.contains("tensor `reshaped.weight`"), "{e}");
    assert!(e.contains("original shape"), "{e}");

    let mut v1 = seed.clone();
    v1[4..8].copy_from_slice(&1u32.to_le_bytes());
    assert!(error_of(dir.path(), &v1).contains("version 1"));
}
