//! Which compute device the service runs on, and at which precision.

use crate::error::{Error, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Serialised as its command-line spelling: `"auto"`, `"cpu"` or `"cuda:N"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceChoice {
    /// CUDA when this build has it and a GPU answers, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(if cuda_built() {
                Device::new_cuda(0).unwrap_or(Device::Cpu)
            } else {
                Device::Cpu
            }),
            DeviceChoice::Cuda(i) => {
                if !cuda_built() {
                    return Err(Error::bad_input(
                        "this build has no CUDA support (built without the `cuda` feature); use the cpu device",
                    ));
                }
                Device::new_cuda(i).map_err(|e| {
                    Error::bad_input(format!(
                        "CUDA device {i} is not available ({e}); use the cpu device"
                    ))
                })
            }
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(i) => Ok(DeviceChoice::Cuda(i)),
                None => Err(format!(
                    "unknown device `{s}`: use auto, cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl From<DeviceChoice> for String {
    fn from(d: DeviceChoice) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DeviceChoice {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

/// The transformer's compute precision (the text encoder and VAE follow the rules of
/// `t2v_models::checkpoint::{text_encoder_dtype, vae_dtype}`). Part of the clip key: the same
/// settings at another precision are another clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Decided by the service from the device it runs on ([`Precision::for_device`]), so every
    /// submitter asking for the same clip on the same device gets the same clip key.
    #[default]
    Auto,
    F32,
    Bf16,
    F16,
}

impl Precision {
    /// The one place that decides the compute precision for a device: full precision on the
    /// CPU; bf16, the checkpoint's own precision, on a GPU.
    pub fn for_device(is_gpu: bool) -> Precision {
        if is_gpu {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    /// `Auto` decided for `device`; the others as they are.
    pub fn resolve(self, device: &Device) -> Precision {
        match self {
            Precision::Auto => Precision::for_device(!device.is_cpu()),
            p => p,
        }
    }

    /// The candle dtype of a resolved precision (`Auto` counts as the CPU's).
    pub fn dtype(self) -> DType {
        match self {
            Precision::Auto | Precision::F32 => DType::F32,
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::F16 => "f16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            other => Err(format!(
                "unknown precision `{other}`: use auto, f32, bf16 or f16"
            )),
        }
    }
}

/// Starts the CPU compute thread pool (rayon's global pool, which candle computes on and which
/// can never be shut down) with threads named `candle-cpu-N`; otherwise its threads inherit
/// their creator's name (e.g. `t2v-worker`). Call it once, early; later calls do nothing.
pub fn start_cpu_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("candle-cpu-{i}"))
        .build_global();
}

/// Whether this build was compiled with CUDA support.
pub fn cuda_built() -> bool {
    candle_core::utils::cuda_is_available()
}

/// A short name for a device: `cpu` or `cuda:N`.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Every device this build can use, each with a line saying whether it answers.
pub fn list_devices() -> Vec<(String, std::result::Result<(), String>)> {
    let mut out = vec![("cpu".to_string(), Ok(()))];
    if !cuda_built() {
        out.push((
            "cuda".into(),
            Err("not built (rebuild with --features cuda)".into()),
        ));
        return out;
    }
    for i in 0..16 {
        match Device::new_cuda(i) {
            Ok(_) => out.push((format!("cuda:{i}"), Ok(()))),
            Err(e) => {
                if i == 0 {
                    out.push(("cuda:0".into(), Err(e.to_string())));
                }
                break;
            }
        }
    }
    out
}

/// `f32`, `bf16` or `f16`.
pub fn parse_dtype(s: &str) -> Result<DType> {
    match s.parse::<Precision>() {
        Ok(p) if p != Precision::Auto => Ok(p.dtype()),
        _ => Err(Error::bad_input(format!(
            "unknown dtype `{}`: use f32, bf16 or f16",
            s.to_ascii_lowercase()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_precision_is_decided_by_the_device() {
        assert_eq!(Precision::Auto.resolve(&Device::Cpu), Precision::F32);
        assert_eq!(Precision::for_device(true), Precision::Bf16);
        assert_eq!(Precision::F16.resolve(&Device::Cpu), Precision::F16);
        assert_eq!(Precision::Bf16.dtype(), DType::BF16);
        for p in [
            Precision::Auto,
            Precision::F32,
            Precision::Bf16,
            Precision::F16,
        ] {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
            // The clip key hashes the resolved precision's name: it must be candle's.
            if p != Precision::Auto {
                assert_eq!(p.name(), p.dtype().as_str());
            }
        }
        assert!("f64".parse::<Precision>().is_err());
    }

    #[test]
    fn device_and_precision_round_trip_through_json() {
        for d in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda(3)] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<DeviceChoice>(&json).unwrap(), d);
        }
        assert_eq!(
            serde_json::to_string(&DeviceChoice::Cuda(1)).unwrap(),
            "\"cuda:1\""
        );
        assert!(serde_json::from_str::<DeviceChoice>("\"tpu\"").is_err());
        for p in [
            Precision::Auto,
            Precision::F32,
            Precision::Bf16,
            Precision::F16,
        ] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(serde_json::from_str::<Precision>(&json).unwrap(), p);
        }
    }
}
