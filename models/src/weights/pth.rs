use super::{TensorInfo, TensorSource};
use crate::{Error, Result};
use candle_core::pickle::PthTensors;
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A torch pickle checkpoint such as the original `Wan2.2_VAE.pth`.
pub struct PthSource {
    origin: PathBuf,
    file: PthTensors,
    infos: BTreeMap<String, TensorInfo>,
}

impl PthSource {
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, |path| {
            PthTensors::new(path, None).or_else(|_| PthTensors::new(path, Some("state_dict")))
        })
    }

    /// A checkpoint whose tensors sit in the first of the `dicts` it holds (training
    /// checkpoints such as Real-ESRGAN's keep `params_ema` and `params`), or at the top level
    /// when it holds none of them.
    pub fn open_state_dict(path: &Path, dicts: &[&str]) -> Result<Self> {
        Self::open_with(path, |path| {
            for key in dicts {
                match PthTensors::new(path, Some(key)) {
                    Ok(file) if !file.tensor_infos().is_empty() => return Ok(file),
                    _ => {}
                }
            }
            PthTensors::new(path, None)
        })
    }

    fn open_with(
        path: &Path,
        read: impl Fn(&Path) -> candle_core::Result<PthTensors>,
    ) -> Result<Self> {
        let unreadable =
            |e: String| Error::checkpoint(path, format!("not a readable torch checkpoint: {e}"));
        super::pth_guard::check_pickles(path).map_err(unreadable)?;
        let file = read(path).map_err(|e| {
            Error::checkpoint(path, format!("not a readable torch checkpoint: {e}"))
        })?;
        super::pth_guard::check_tensor_extents(path, file.tensor_infos()).map_err(unreadable)?;
        let infos = file
            .tensor_infos()
            .iter()
            .map(|(name, info)| {
                (
                    name.clone(),
                    TensorInfo {
                        shape: info.layout.shape().dims().to_vec(),
                        dtype: info.dtype,
                    },
                )
            })
            .collect();
        Ok(Self {
            origin: path.to_path_buf(),
            file,
            infos,
        })
    }
}

impl TensorSource for PthSource {
    fn origin(&self) -> &Path {
        &self.origin
    }
    fn infos(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }
    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let t = self
            .file
            .get(name)?
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_string(),
            })?;
        t.to_dtype(dtype)?.to_device(device)
    }
}
