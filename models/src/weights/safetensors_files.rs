use super::stored::{fp8_to_f32, StoredWeight};
use super::{TensorInfo, TensorSource};
use crate::{Error, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One or more safetensors files (the shards of one component), memory-mapped. fp8 e4m3fn
/// weights are decoded with their per-tensor scale where the file has one (ComfyUI's
/// `<layer>.scale_weight` with the `scaled_fp8` marker, or `<layer>.weight_scale`); the scales,
/// the marker and the activation scales (`scale_input`/`input_scale`, unused: activations stay
/// in the compute dtype) are not listed among its tensors.
pub struct SafetensorsSource {
    origin: PathBuf,
    files: MmapedSafetensors,
    infos: BTreeMap<String, TensorInfo>,
    /// fp8 weight name -> its scale.
    scales: HashMap<String, f32>,
}

/// The weight a scale tensor scales, or `None` for a tensor that is not a scale.
fn scaled_weight(name: &str) -> Option<String> {
    [".scale_weight", ".weight_scale"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .map(|layer| format!("{layer}.weight"))
}

/// For a file that does not open: the first tensor whose bytes its header places past the end
/// of the file, from the header alone.
fn truncated_tensor(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).ok()?;
    let n = u64::from_le_bytes(n);
    if n > len.saturating_sub(8) || n > 100 << 20 {
        return None;
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).ok()?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).ok()?;
    let data = len - 8 - n;
    header.iter().find_map(|(name, info)| {
        let end = info.get("data_offsets")?.get(1)?.as_u64()?;
        (end > data).then(|| {
            format!(
                "tensor `{name}` needs {end} bytes of data but the file holds {data}: truncated"
            )
        })
    })
}

/// A tensor of the fp8 layouts that accompanies a weight (its scale, the marker).
pub(super) fn is_fp8_companion(name: &str) -> bool {
    scaled_weight(name).is_some() || is_fp8_bookkeeping(name)
}

/// Tensors of the fp8 layouts that carry no weight.
fn is_fp8_bookkeeping(name: &str) -> bool {
    name == "scaled_fp8"
        || name.ends_with(".scaled_fp8")
        || [".scale_input", ".input_scale", ".comfy_quant"]
            .iter()
            .any(|s| name.ends_with(s))
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
            let (path, cut) = paths
                .iter()
                .find_map(|p| truncated_tensor(p).map(|c| (p, c)))
                .map_or((&origin, String::new()), |(p, c)| (p, format!(" ({c})")));
            Error::checkpoint(
                path,
                format!("not a readable safetensors file (corrupt or truncated?): {e}{cut}"),
            )
        })?;
        let mut infos = BTreeMap::new();
        let mut scale_names = Vec::new();
        for (name, view) in files.tensors() {
            if let Some(weight) = scaled_weight(&name) {
                scale_names.push((name, weight));
                continue;
            }
            if is_fp8_bookkeeping(&name) {
                continue;
            }
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
        let mut scales = HashMap::new();
        for (name, weight) in scale_names {
            let bad = |m: String| Error::checkpoint(&origin, format!("tensor `{name}`: {m}"));
            match infos.get(&weight) {
                Some(info) if info.dtype == DType::F8E4M3 => {}
                Some(info) => {
                    return Err(bad(format!(
                        "scales `{weight}`, which is {} rather than fp8",
                        info.dtype.as_str()
                    )))
                }
                None => return Err(bad(format!("scales `{weight}`, which the file lacks"))),
            }
            let scale = files
                .load(&name, &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>())
                .map_err(|e| bad(format!("unreadable: {e}")))?;
            match scale[..] {
                [s] if s.is_finite() && s != 0.0 => scales.insert(weight, s),
                [s] => return Err(bad(format!("the scale {s} is not a usable number"))),
                _ => {
                    return Err(bad(format!(
                        "{} scales (one per channel) where one per tensor is supported",
                        scale.len()
                    )))
                }
            };
        }
        Ok(Self {
            origin,
            files,
            infos,
            scales,
        })
    }

    /// `name`, an fp8 tensor, decoded to f32 with its scale.
    fn fp8(&self, name: &str, device: &Device) -> candle_core::Result<Tensor> {
        let values = self.files.load(name, device)?;
        fp8_to_f32(&values, self.scales.get(name).copied())
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
        if self
            .infos
            .get(name)
            .is_some_and(|i| i.dtype == DType::F8E4M3)
        {
            return self
                .fp8(name, &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device);
        }
        // Convert on the CPU before moving: halves the transfer for f32 files run in bf16.
        let t = self.files.load(name, &Device::Cpu)?;
        t.to_dtype(dtype)?.to_device(device)
    }

    /// fp8 weights stay fp8, on `device`, with their scale.
    fn load_stored(
        &self,
        name: &str,
        device: &Device,
    ) -> candle_core::Result<Option<StoredWeight>> {
        if !self
            .infos
            .get(name)
            .is_some_and(|i| i.dtype == DType::F8E4M3)
        {
            return Ok(None);
        }
        Ok(Some(StoredWeight::Fp8 {
            values: self.files.load(name, &Device::Cpu)?.to_device(device)?,
            scale: self.scales.get(name).copied(),
        }))
    }

    fn stored_as(&self, name: &str) -> Option<&'static str> {
        let info = self.infos.get(name)?;
        Some(match (info.dtype, self.scales.contains_key(name)) {
            (DType::F8E4M3, true) => "f8e4m3 (scaled)",
            (dtype, _) => dtype.as_str(),
        })
    }
}
