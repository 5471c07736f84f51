use super::gguf::GgmlType;
use super::{TensorInfo, TensorSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Hands out broadcast zero tensors of the shapes listed in a manifest (`name [d0, d1, ...]` per
/// line, optionally followed by the type its file stores it in: a GGUF type such as `Q4_K`, or
/// `F8_E4M3`). A broadcast tensor has a one-element storage, so a real-size model can be built
/// and its weight names and shapes checked without allocating its memory. An fp8 file's scales
/// and marker are left out, as [`super::SafetensorsSource`] leaves them out.
pub struct ZeroSource {
    origin: PathBuf,
    infos: BTreeMap<String, TensorInfo>,
    gguf_types: BTreeMap<String, GgmlType>,
}

impl ZeroSource {
    pub fn from_manifest(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(origin: &Path, text: &str) -> Result<Self> {
        let mut infos = BTreeMap::new();
        let mut gguf_types = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                Error::checkpoint(
                    origin,
                    format!("line {}: expected `name [d0, d1, ...]`", i + 1),
                )
            };
            let (name, rest) = line.split_once(' ').ok_or_else(bad)?;
            let (dims, gguf_type) = rest.split_once(']').ok_or_else(bad)?;
            let dims = dims.trim().strip_prefix('[').ok_or_else(bad)?;
            let shape = dims
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| d.parse::<usize>().map_err(|_| bad()))
                .collect::<Result<Vec<_>>>()?;
            if super::safetensors_files::is_fp8_companion(name) {
                continue;
            }
            let mut dtype = DType::BF16;
            match gguf_type.trim() {
                "" => {}
                "F8_E4M3" => dtype = DType::F8E4M3,
                other => {
                    let t = GgmlType::from_name(other).ok_or_else(bad)?;
                    dtype = t.dense_dtype().unwrap_or(DType::F32);
                    gguf_types.insert(name.to_string(), t);
                }
            }
            infos.insert(name.to_string(), TensorInfo { shape, dtype });
        }
        Ok(Self {
            origin: origin.to_path_buf(),
            infos,
            gguf_types,
        })
    }
}

impl TensorSource for ZeroSource {
    fn origin(&self) -> &Path {
        &self.origin
    }
    fn infos(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }
    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let info = self
            .infos
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })?;
        Tensor::zeros((), dtype, device)?.broadcast_as(info.shape.as_slice())
    }

    fn stored_as(&self, name: &str) -> Option<&'static str> {
        match self.gguf_types.get(name) {
            Some(t) => Some(t.name()),
            None => self.infos.get(name).map(|i| i.dtype.as_str()),
        }
    }

    /// A GGUF-typed entry counts the bytes its blocks take.
    fn stored_bytes(&self, name: &str) -> Option<u64> {
        let info = self.infos.get(name)?;
        Some(match self.gguf_types.get(name) {
            Some(t) => {
                let elements: u64 = info.shape.iter().map(|&d| d as u64).product();
                elements / t.block_size() as u64 * t.block_bytes() as u64
            }
            None => info.dense_bytes(),
        })
    }
}
