use super::GgufFile;
use crate::weights::{StoredWeight, TensorInfo, TensorSource};
use crate::Result;
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A GGUF checkpoint as a tensor source. Its infos give each tensor's model shape (the original
/// shape where the converter recorded one); a quantized tensor's dtype there is f32, what it
/// decodes to ([`TensorSource::stored_as`] names its block type).
pub struct GgufSource {
    file: GgufFile,
    infos: BTreeMap<String, TensorInfo>,
}

impl GgufSource {
    pub fn open(path: &Path) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let infos = file
            .tensors()
            .iter()
            .map(|(name, t)| {
                let info = TensorInfo {
                    shape: t.shape.clone(),
                    dtype: t.ggml_type.dense_dtype().unwrap_or(DType::F32),
                };
                (name.clone(), info)
            })
            .collect();
        Ok(Self { file, infos })
    }

    pub fn file(&self) -> &GgufFile {
        &self.file
    }
}

impl TensorSource for GgufSource {
    fn origin(&self) -> &Path {
        self.file.path()
    }

    fn infos(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }

    /// Decoded on the CPU, converted, then moved.
    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        self.file
            .dense(name, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)
    }

    /// Block-quantized tensors stay in their blocks, on `device`.
    fn load_stored(
        &self,
        name: &str,
        device: &Device,
    ) -> candle_core::Result<Option<StoredWeight>> {
        let Some(blocks) = self.file.quantized(name, device)? else {
            return Ok(None);
        };
        let shape = self.file.tensors()[name].shape.clone();
        Ok(Some(StoredWeight::Gguf {
            blocks: Arc::new(blocks),
            shape: shape.into(),
        }))
    }

    fn stored_as(&self, name: &str) -> Option<&'static str> {
        self.file.tensors().get(name).map(|t| t.ggml_type.name())
    }

    fn stored_bytes(&self, name: &str) -> Option<u64> {
        self.file.tensors().get(name).map(|t| t.bytes)
    }
}
