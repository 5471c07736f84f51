use super::{TensorInfo, TensorSource};
use crate::{Error, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One or more safetensors files (the shards of one component), memory-mapped.
pub struct SafetensorsSource {
    origin: PathBuf,
    files: MmapedSafetensors,
    infos: BTreeMap<String, TensorInfo>,
}

impl SafetensorsSource {
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let origin = paths.first().cloned().unwrap_or_default();
        for p in paths {
            let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
            if meta.len() < 8 {
                return Err(Error::checkpoint(
                    p,
                    "file is empty or truncated: not a safetensors file",
                ));
            }
        }
        // SAFETY: the files are mapped read-only; like every mmap-based loader we rely on them not
        // being modified while the model is being loaded. Headers are validated by `safetensors`
        // (offsets are checked against the file length), so a truncated file is an error, not UB.
        let files = unsafe { MmapedSafetensors::multi(paths) }.map_err(|e| {
            Error::checkpoint(
                &origin,
                format!("not a readable safetensors file (corrupt or truncated?): {e}"),
            )
        })?;
        let mut infos = BTreeMap::new();
        for (name, view) in files.tensors() {
            let dtype = DType::try_from(view.dtype()).map_err(|_| {
                Error::checkpoint(
                    &origin,
                    format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()),
                )
            })?;
            infos.insert(
                name,
                TensorInfo {
                    shape: view.shape().to_vec(),
                    dtype,
                },
            );
        }
        Ok(Self {
            origin,
            files,
            infos,
        })
    }
}

impl TensorSource for SafetensorsSource {
    fn origin(&self) -> &Path {
        &self.origin
    }
    fn infos(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }
    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        // Convert on the CPU before moving: halves the transfer for f32 files run in bf16.
        let t = self.files.load(name, &Device::Cpu)?;
        t.to_dtype(dtype)?.to_device(device)
    }
}
