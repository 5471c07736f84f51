//! The GGUF header (versions 2 and 3, little-endian): metadata and tensor table, every claim
//! checked against the file, and each tensor's bytes read on demand.

use super::GgmlType;
use crate::{Error, Result};
use candle_core::quantized::{QStorage, QTensor};
use candle_core::{Device, Tensor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The metadata key ComfyUI-GGUF's converter records a reshaped tensor's original (torch)
/// shape under, as an array of INT32: `comfy.gguf.orig_shape.<tensor name>`.
pub const ORIG_SHAPE_KEY: &str = "comfy.gguf.orig_shape.";

/// Dimensions a tensor may have. GGUF allows 4; converters write Wan's 5-D patch embedding
/// with 5.
const MAX_DIMS: u32 = 8;
/// Nesting of metadata arrays.
const MAX_DEPTH: usize = 4;
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// One tensor of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensor {
    pub ggml_type: GgmlType,
    /// As stored, in torch order (the header's dimensions reversed).
    pub stored_shape: Vec<usize>,
    /// The shape the model uses: `stored_shape`, or the original shape the converter recorded.
    pub shape: Vec<usize>,
    /// From the start of the file.
    pub offset: u64,
    pub bytes: u64,
}

/// An open GGUF file: its header, read and checked; tensors are read when asked for.
pub struct GgufFile {
    path: PathBuf,
    version: u32,
    metadata: BTreeMap<String, Value>,
    tensors: BTreeMap<String, GgufTensor>,
    file: Mutex<File>,
}

/// A reader that knows how many bytes the file has left.
struct Cursor {
    inner: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Cursor {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn bytes(&mut self, n: u64) -> std::result::Result<Vec<u8>, String> {
        if n > self.remaining() {
            return Err(format!(
                "the header claims {n} bytes at offset {} but the file has {} left (truncated?)",
                self.pos,
                self.remaining()
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| format!("read failed at offset {}: {e}", self.pos))?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let v = self.bytes(N as u64)?;
        Ok(v.try_into().expect("N bytes"))
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        let len = self.u64()?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes).map_err(|_| "a string is not UTF-8".to_string())
    }

    fn value(&mut self, kind: u32, depth: usize) -> std::result::Result<Value, String> {
        Ok(match kind {
            0 => Value::UInt(self.array::<1>()?[0] as u64),
            1 => Value::Int(self.array::<1>()?[0] as i8 as i64),
            2 => Value::UInt(u16::from_le_bytes(self.array()?) as u64),
            3 => Value::Int(i16::from_le_bytes(self.array()?) as i64),
            4 => Value::UInt(self.u32()? as u64),
            5 => Value::Int(i32::from_le_bytes(self.array()?) as i64),
            6 => Value::Float(f32::from_le_bytes(self.array()?) as f64),
            7 => Value::Bool(self.array::<1>()?[0] != 0),
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err("metadata arrays nested too deep".into());
                }
                let inner = self.u32()?;
                let count = self.u64()?;
                let min_size = match inner {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 | 10..=12 => 8,
                    9 => 12,
                    other => return Err(format!("unknown metadata value type {other}")),
                };
                if count.saturating_mul(min_size) > self.remaining() {
                    return Err(format!(
                        "a metadata array claims {count} values but the file has {} bytes left",
                        self.remaining()
                    ));
                }
                let mut values = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    values.push(self.value(inner, depth + 1)?);
                }
                Value::Array(values)
            }
            10 => Value::UInt(self.u64()?),
            11 => Value::Int(i64::from_le_bytes(self.array()?)),
            12 => Value::Float(f64::from_le_bytes(self.array()?)),
            other => return Err(format!("unknown metadata value type {other}")),
        })
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |m: String| Error::checkpoint(path, format!("not a readable GGUF file: {m}"));
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut c = Cursor {
            inner: BufReader::new(file.try_clone().map_err(|e| Error::io(path, e))?),
            pos: 0,
            len,
        };
        let magic = c.array::<4>().map_err(bad)?;
        if &magic != b"GGUF" {
            return Err(bad("it does not start with `GGUF`".into()));
        }
        let version = c.u32().map_err(bad)?;
        match version {
            2 | 3 => {}
            1 => return Err(bad("GGUF version 1 is not supported (only 2 and 3)".into())),
            v if v.swap_bytes() <= 3 => {
                return Err(bad("big-endian GGUF files are not supported".into()))
            }
            v => return Err(bad(format!("unknown GGUF version {v}"))),
        }
        let tensor_count = c.u64().map_err(bad)?;
        let kv_count = c.u64().map_err(bad)?;
        // Each entry takes at least its length-prefixed name and a type.
        if tensor_count.saturating_add(kv_count).saturating_mul(12) > c.remaining() {
            return Err(bad(format!(
                "the header claims {tensor_count} tensors and {kv_count} metadata entries, more than the {}-byte file can hold (truncated?)",
                len
            )));
        }
        let mut metadata = BTreeMap::new();
        for i in 0..kv_count {
            let key = c
                .string()
                .map_err(|e| bad(format!("metadata entry #{i}: {e}")))?;
            let value = c
                .u32()
                .and_then(|kind| c.value(kind, 0))
                .map_err(|e| bad(format!("metadata `{key}`: {e}")))?;
            metadata.insert(key, value);
        }
        let mut raw = Vec::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            let name = c.string().map_err(|e| bad(format!("tensor #{i}: {e}")))?;
            let entry = (|| -> std::result::Result<_, String> {
                let n_dims = c.u32()?;
                if n_dims == 0 || n_dims > MAX_DIMS {
                    return Err(format!("{n_dims} dimensions"));
                }
                let mut dims = (0..n_dims)
                    .map(|_| c.u64())
                    .collect::<std::result::Result<Vec<u64>, _>>()?;
                dims.reverse();
                let code = c.u32()?;
                let offset = c.u64()?;
                Ok((dims, code, offset))
            })()
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            raw.push((name, entry));
        }
        let alignment = match metadata.get("general.alignment").map(Value::as_u64) {
            None => DEFAULT_ALIGNMENT,
            Some(Some(a)) if a > 0 && a <= 1 << 20 => a,
            Some(_) => return Err(bad("`general.alignment` is not a usable alignment".into())),
        };
        let data_start = c.pos.div_ceil(alignment) * alignment;
        let mut tensors = BTreeMap::new();
        for (name, (dims, code, offset)) in raw {
            let tensor = check_tensor(&name, &dims, code, offset, data_start, len, &metadata)
                .map_err(|e| Error::checkpoint(path, format!("tensor `{name}`: {e}")))?;
            if tensors.insert(name.clone(), tensor).is_some() {
                return Err(bad(format!("tensor `{name}` is listed twice")));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    pub fn tensors(&self) -> &BTreeMap<String, GgufTensor> {
        &self.tensors
    }

    /// Each tensor's name and its size in the file, in bytes: what holding it as stored costs.
    pub fn stored_sizes(&self) -> Vec<(String, u64)> {
        self.tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.bytes))
            .collect()
    }

    fn tensor(&self, name: &str) -> candle_core::Result<&GgufTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })
    }

    fn error(&self, name: &str, what: impl std::fmt::Display) -> candle_core::Error {
        candle_core::Error::Msg(format!("{}: tensor `{name}`: {what}", self.path.display()))
    }

    /// The tensor's bytes as stored, in a buffer aligned for any block type, and where they
    /// start in it.
    fn read_aligned(&self, name: &str) -> candle_core::Result<(Vec<u8>, usize)> {
        let t = self.tensor(name)?;
        let n = t.bytes as usize;
        let mut buf = vec![0u8; n + 8];
        let start = buf.as_ptr().align_offset(8);
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.seek(SeekFrom::Start(t.offset))
            .and_then(|_| file.read_exact(&mut buf[start..start + n]))
            .map_err(|e| self.error(name, format!("cannot read its {n} bytes: {e}")))?;
        Ok((buf, start))
    }

    /// The tensor's bytes as stored.
    pub fn raw_bytes(&self, name: &str) -> candle_core::Result<Vec<u8>> {
        let (buf, start) = self.read_aligned(name)?;
        Ok(buf[start..start + self.tensor(name)?.bytes as usize].to_vec())
    }

    /// A block-quantized tensor as candle holds it, on `device`, in its stored shape. `None`
    /// for F32, F16 and BF16 tensors (read them with [`Self::dense`]).
    pub fn quantized(&self, name: &str, device: &Device) -> candle_core::Result<Option<QTensor>> {
        let t = self.tensor(name)?;
        if t.ggml_type.dense_dtype().is_some() {
            return Ok(None);
        }
        let (buf, start) = self.read_aligned(name)?;
        let bytes = &buf[start..start + t.bytes as usize];
        let storage = QStorage::from_data(Cow::Borrowed(bytes), device, t.ggml_type.candle())
            .map_err(|e| self.error(name, e))?;
        QTensor::new(storage, t.stored_shape.as_slice())
            .map(Some)
            .map_err(|e| self.error(name, e))
    }

    /// The tensor in the model's shape on `device`: F32/F16/BF16 as stored, quantized types
    /// dequantized to f32 (on the CPU, candle's decoding; the reference's results bit for bit).
    pub fn dense(&self, name: &str, device: &Device) -> candle_core::Result<Tensor> {
        let t = self.tensor(name)?;
        let tensor = match t.ggml_type.dense_dtype() {
            Some(dtype) => {
                let (buf, start) = self.read_aligned(name)?;
                let bytes = &buf[start..start + t.bytes as usize];
                Tensor::from_raw_buffer(bytes, dtype, &t.shape, device)
            }
            None => self
                .quantized(name, device)?
                .expect("quantized type")
                .dequantize(device)
                .and_then(|d| d.reshape(t.shape.as_slice())),
        };
        tensor.map_err(|e| self.error(name, e))
    }
}

/// Checks one tensor's entry: its type, its shape (and the original shape recorded for it),
/// and that its bytes lie inside the file.
fn check_tensor(
    name: &str,
    dims: &[u64],
    code: u32,
    offset: u64,
    data_start: u64,
    file_len: u64,
    metadata: &BTreeMap<String, Value>,
) -> std::result::Result<GgufTensor, String> {
    let ggml_type = GgmlType::from_code(code).map_err(|e| format!("stored as {e}"))?;
    if dims.contains(&0) {
        return Err(format!("has an empty dimension in its shape {dims:?}"));
    }
    let elements = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= 1 << 48)
        .ok_or_else(|| format!("has an impossible shape {dims:?}"))?;
    let block = ggml_type.block_size() as u64;
    let row = *dims.last().expect("at least one dimension");
    if !row.is_multiple_of(block) {
        return Err(format!(
            "has rows of {row} elements, not a multiple of the {}-element {} block",
            block,
            ggml_type.name()
        ));
    }
    let bytes = elements / block * ggml_type.block_bytes() as u64;
    let start = data_start
        .checked_add(offset)
        .ok_or_else(|| format!("has an impossible offset {offset}"))?;
    if start.saturating_add(bytes) > file_len {
        return Err(format!(
            "needs {bytes} bytes at offset {start} but the file ends at {file_len} (truncated?)"
        ));
    }
    let stored_shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let shape = match metadata.get(&format!("{ORIG_SHAPE_KEY}{name}")) {
        None => stored_shape.clone(),
        Some(value) => {
            let shape = orig_shape(value).ok_or_else(|| {
                format!("its original shape (`{ORIG_SHAPE_KEY}{name}`) is not a list of sizes")
            })?;
            let n = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
            if n != Some(elements) {
                return Err(format!(
                    "its original shape {shape:?} does not hold the {elements} elements stored"
                ));
            }
            shape
        }
    };
    Ok(GgufTensor {
        ggml_type,
        stored_shape,
        shape,
        offset: start,
        bytes,
    })
}

fn orig_shape(value: &Value) -> Option<Vec<usize>> {
    let Value::Array(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|v| v.as_u64().filter(|&d| d > 0).map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .filter(|s| !s.is_empty())
}
