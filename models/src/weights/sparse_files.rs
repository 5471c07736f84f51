//! Real-size checkpoint files whose data is a hole: the header a real file of a manifest's
//! layout has (GGUF when the manifest names GGUF types, safetensors otherwise), then the file
//! extended to its full length without writing the data (a sparse file). Whatever reads only
//! headers (`t2v info`, `t2v info --plan`, layout detection, the residency plan) runs on them
//! as on the published files, at real size, without their gigabytes on disk.

use super::gguf::GgmlType;
use super::{TensorSource, ZeroSource};
use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

const GGUF_ALIGNMENT: u64 = 32;
/// GGUF metadata value type of a string.
const GGUF_STRING: u32 = 8;

/// Writes `source`'s layout at `path`: a GGUF file if any of its tensors has a GGUF type, else
/// a safetensors file.
pub fn write_sparse(source: &ZeroSource, path: &Path) -> Result<()> {
    let gguf = source
        .infos()
        .keys()
        .any(|n| source.stored_as(n).and_then(GgmlType::from_name).is_some());
    let (header, data_len) = if gguf {
        gguf_header(source)?
    } else {
        safetensors_header(source)?
    };
    let mut file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    file.write_all(&header)
        .and_then(|_| file.set_len(header.len() as u64 + data_len))
        .map_err(|e| Error::io(path, e))
}

fn gguf_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The header of a GGUF version 3 file (arch from the tensor names), padded to the data's
/// alignment, and the data's length.
fn gguf_header(source: &ZeroSource) -> Result<(Vec<u8>, u64)> {
    let infos = source.infos();
    let arch = if infos.contains_key("token_embd.weight") {
        "t5encoder"
    } else {
        "wan"
    };
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(infos.len() as u64).to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    gguf_string(&mut out, "general.architecture");
    out.extend_from_slice(&GGUF_STRING.to_le_bytes());
    gguf_string(&mut out, arch);
    let mut offset = 0u64;
    for (name, info) in infos {
        let ggml = source
            .stored_as(name)
            .and_then(GgmlType::from_name)
            .or(match info.dtype {
                candle_core::DType::F32 => Some(GgmlType::F32),
                candle_core::DType::F16 => Some(GgmlType::F16),
                candle_core::DType::BF16 => Some(GgmlType::BF16),
                _ => None,
            })
            .ok_or_else(|| {
                Error::checkpoint(
                    source.origin(),
                    format!("tensor `{name}`: no GGUF type for {:?}", info.dtype),
                )
            })?;
        let code = (0..64)
            .find(|&c| GgmlType::from_code(c) == Ok(ggml))
            .expect("every type has a code");
        gguf_string(&mut out, name);
        out.extend_from_slice(&(info.shape.len() as u32).to_le_bytes());
        for &d in info.shape.iter().rev() {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&code.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        let bytes = source.stored_bytes(name).expect("listed");
        offset += bytes.div_ceil(GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
    }
    let padded = (out.len() as u64).div_ceil(GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
    out.resize(padded as usize, 0);
    Ok((out, offset))
}

/// A safetensors header (tensors in name order, at their stored dtype) and the data's length.
fn safetensors_header(source: &ZeroSource) -> Result<(Vec<u8>, u64)> {
    let mut entries = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, info) in source.infos() {
        let dtype = match info.dtype {
            candle_core::DType::F8E4M3 => "F8_E4M3",
            candle_core::DType::BF16 => "BF16",
            candle_core::DType::F16 => "F16",
            candle_core::DType::F32 => "F32",
            other => {
                return Err(Error::checkpoint(
                    source.origin(),
                    format!("tensor `{name}`: no safetensors dtype for {other:?}"),
                ))
            }
        };
        let end = offset + info.dense_bytes();
        entries.insert(
            name.clone(),
            serde_json::json!({ "dtype": dtype, "shape": info.shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut json = serde_json::Value::Object(entries).to_string().into_bytes();
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    Ok((out, offset))
}
