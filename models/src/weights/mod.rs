//! Where tensors come from: checkpoint files (safetensors, fp8 safetensors with their scales,
//! GGUF, torch `.pth`), or, for the real-size layout tests, a manifest that hands out zero tensors
//! without allocating them. GGUF blocks and fp8 weights can stay as stored in the layers that
//! decode them per call ([`stored`]). A [`TrackedWeights`] puts one canonical naming scheme over
//! any source, checks every shape the layers ask for, and records what was consumed so that
//! leftovers can be reported.

pub mod gguf;
mod pth;
mod pth_guard;
mod random;
mod random_model;
mod safetensors_files;
mod sparse_files;
pub mod stored;
mod tracked;
mod zeros;

pub use gguf::GgufSource;
pub use pth::PthSource;
pub use random::RandomWeights;
pub use random_model::ModelConfigs;
pub use safetensors_files::SafetensorsSource;
pub use sparse_files::write_sparse;
pub use stored::StoredWeight;
pub use tracked::TrackedWeights;
pub use zeros::ZeroSource;

use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub shape: Vec<usize>,
    pub dtype: DType,
}

/// A read-only collection of named tensors.
pub trait TensorSource: Send + Sync {
    /// A human-readable origin (usually the file path) for error messages.
    fn origin(&self) -> &Path;
    fn infos(&self) -> &BTreeMap<String, TensorInfo>;
    /// Loads `name` converted to `dtype` on `device`.
    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor>;

    /// `name` in the form its file stores it, on `device`, for a layer to decode per use
    /// ([`StoredWeight`]); `None` for a tensor stored densely (read it with [`Self::load`]).
    fn load_stored(
        &self,
        _name: &str,
        _device: &Device,
    ) -> candle_core::Result<Option<StoredWeight>> {
        Ok(None)
    }

    /// How `name` is stored in the file: its dtype, or a GGUF block type (`Q4_K`).
    fn stored_as(&self, name: &str) -> Option<&'static str> {
        self.infos().get(name).map(|i| i.dtype.as_str())
    }

    /// The bytes `name` takes as stored (what a plan holding it as stored counts).
    fn stored_bytes(&self, name: &str) -> Option<u64> {
        self.infos().get(name).map(TensorInfo::dense_bytes)
    }

    /// Every tensor's name and the bytes it takes as stored (from the header: a GGUF file's
    /// blocks, an fp8 file's bytes), for planning what fits in memory.
    fn stored_sizes(&self) -> Vec<(String, u64)> {
        self.infos()
            .keys()
            .filter_map(|n| self.stored_bytes(n).map(|b| (n.clone(), b)))
            .collect()
    }
}

impl TensorInfo {
    /// Its bytes at its dtype.
    pub fn dense_bytes(&self) -> u64 {
        let elements: u64 = self.shape.iter().map(|&d| d as u64).product();
        elements * self.dtype.size_in_bytes() as u64
    }
}

/// Opens a weights file by its extension: `.safetensors`, `.gguf` or a torch pickle (`.pth`,
/// `.pt`, `.bin`, `.ckpt`).
pub fn open_file(path: &Path) -> crate::Result<Box<dyn TensorSource>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "safetensors" => Ok(Box::new(SafetensorsSource::open(&[path.to_path_buf()])?)),
        "gguf" => Ok(Box::new(GgufSource::open(path)?)),
        "pth" | "pt" | "bin" | "ckpt" => Ok(Box::new(PthSource::open(path)?)),
        _ => Err(crate::Error::checkpoint(
            path,
            "unsupported weights file type: expected .safetensors, .gguf or a torch .pth file",
        )),
    }
}
