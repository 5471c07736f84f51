//! Which compute device the service runs on.

use crate::error::{Error, Result};
use candle_core::Device;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
pub fn parse_dtype(s: &str) -> Result<candle_core::DType> {
    match s.to_ascii_lowercase().as_str() {
        "f32" => Ok(candle_core::DType::F32),
        "bf16" => Ok(candle_core::DType::BF16),
        "f16" => Ok(candle_core::DType::F16),
        other => Err(Error::bad_input(format!(
            "unknown dtype `{other}`: use f32, bf16 or f16"
        ))),
    }
}

pub fn dtype_name(d: candle_core::DType) -> &'static str {
    d.as_str()
}
