use super::{TensorInfo, TensorSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Hands out broadcast zero tensors of the shapes listed in a manifest (`name [d0, d1, ...]` per
/// line). A broadcast tensor has a one-element storage, so a real-size model can be built and
/// its weight names and shapes checked without allocating its memory.
pub struct ZeroSource {
    origin: PathBuf,
    infos: BTreeMap<String, TensorInfo>,
}

impl ZeroSource {
    pub fn from_manifest(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    pub fn parse(origin: &Path, text: &str) -> Result<Self> {
        let mut infos = BTreeMap::new();
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
            let (name, dims) = line.split_once(' ').ok_or_else(bad)?;
            let dims = dims
                .trim()
                .strip_prefix('[')
                .and_then(|d| d.strip_suffix(']'))
                .ok_or_else(bad)?;
            let shape = dims
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| d.parse::<usize>().map_err(|_| bad()))
                .collect::<Result<Vec<_>>>()?;
            infos.insert(
                name.to_string(),
                TensorInfo {
                    shape,
                    dtype: DType::BF16,
                },
            );
        }
        Ok(Self {
            origin: origin.to_path_buf(),
            infos,
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
}
