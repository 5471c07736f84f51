//! Real-ESRGAN's two network families, to upscale decoded frames: [`SrVggNetCompact`]
//! (`realesr-animevideov3`, `realesr-general-x4v3`) and [`RrdbNet`] (`RealESRGAN_x4plus`,
//! `RealESRGAN_x2plus`). [`Upscaler::load`] reads the user's `.pth` (the published files keep
//! the weights in a `params_ema` or `params` dict) or safetensors file and finds the
//! architecture and its sizes from the tensors' names and shapes ([`detect`]);
//! [`Upscaler::upscale`] runs it the way Real-ESRGAN's `RealESRGANer` does (reflect pre-pad,
//! overlapping tiles, [`tiles`]), and [`resize`] brings the result to an exact size.

mod compact;
mod detect;
pub mod resize;
mod rrdb;
pub mod tiles;

pub use compact::{CompactConfig, SrVggNetCompact};
pub use detect::{detect, Architecture};
pub use rrdb::{RrdbConfig, RrdbNet};
pub use tiles::Tiling;

use crate::weights::{PthSource, SafetensorsSource, TensorSource, TrackedWeights};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::path::Path;
use std::sync::Arc;

/// Dicts of a training checkpoint that hold the weights, in order of preference (the
/// exponential moving average first, as Real-ESRGAN's inference does).
pub const STATE_DICTS: [&str; 2] = ["params_ema", "params"];

/// One of the two networks, built.
#[derive(Debug, Clone)]
pub enum Network {
    Compact(SrVggNetCompact),
    Rrdb(Box<RrdbNet>),
}

impl Network {
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Network::Compact(n) => n.forward(x),
            Network::Rrdb(n) => n.forward(x),
        }
    }
}

/// A loaded upscaling network with what it needs of its input.
#[derive(Debug, Clone)]
pub struct Upscaler {
    network: Network,
    architecture: Architecture,
}

/// A stored name without the prefixes some converters leave (`params_ema.`, `module.`).
fn canonical_name(stored: &str) -> Option<String> {
    let mut name = stored;
    for prefix in ["params_ema.", "params.", "module."] {
        name = name.strip_prefix(prefix).unwrap_or(name);
    }
    Some(name.to_string())
}

impl Upscaler {
    /// Reads a Real-ESRGAN weights file (`.pth`, `.pt` or `.safetensors`) onto `device`, in f32.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !path.is_file() {
            return Err(Error::checkpoint(path, "no such upscaler file"));
        }
        let source: Arc<dyn TensorSource> = match ext.as_str() {
            "safetensors" => Arc::new(SafetensorsSource::open(&[path.to_path_buf()])?),
            "pth" | "pt" => Arc::new(PthSource::open_state_dict(path, &STATE_DICTS)?),
            _ => return Err(Error::checkpoint(
                path,
                "unsupported upscaler file type: expected a Real-ESRGAN .pth or .safetensors file",
            )),
        };
        Self::from_weights(&TrackedWeights::new(source, canonical_name), device)
    }

    /// Builds the network the tensors describe; every tensor must be used.
    pub fn from_weights(weights: &TrackedWeights, device: &Device) -> Result<Self> {
        let origin = weights.source().origin().to_path_buf();
        let architecture = detect(weights).map_err(|m| Error::checkpoint(&origin, m))?;
        let vb = weights.var_builder(DType::F32, device);
        let upscaler =
            Self::new(architecture, vb).map_err(|e| Error::checkpoint(&origin, e.to_string()))?;
        let unused = weights.unused(|_| false);
        if let Some(first) = unused.first() {
            return Err(Error::checkpoint(
                &origin,
                format!(
                    "{} tensor(s) are not part of the {} it otherwise describes, e.g. `{first}`",
                    unused.len(),
                    architecture.describe()
                ),
            ));
        }
        Ok(upscaler)
    }

    /// `architecture` with the weights `vb` gives (e.g. random ones, for benchmarks).
    pub fn new(architecture: Architecture, vb: candle_nn::VarBuilder) -> candle_core::Result<Self> {
        let network = match &architecture {
            Architecture::Compact(cfg) => Network::Compact(SrVggNetCompact::new(cfg, vb)?),
            Architecture::Rrdb(cfg) => Network::Rrdb(Box::new(RrdbNet::new(cfg, vb)?)),
        };
        Ok(Self {
            network,
            architecture,
        })
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// The network's own factor (2 or 4 for the published files).
    pub fn scale(&self) -> usize {
        self.architecture.scale()
    }

    /// `x` `[1, C, H, W]` f32 in [0, 1] upscaled by [`Self::scale`], as `RealESRGANer` does it
    /// (see [`tiles`]); not clamped.
    pub fn upscale(&self, x: &Tensor, tiling: &Tiling) -> Result<Tensor> {
        Ok(tiles::upscale(
            &|t| self.network.forward(t),
            x,
            self.scale(),
            self.architecture.size_multiple(),
            tiling,
        )?)
    }

    /// One frame `[H, W, 3]` f32 in [0, 1] (any device) upscaled to exactly `width` x `height`:
    /// the network at its own scale on `device`, clamped to [0, 1], then [`resize::resize_rgb`]
    /// when the size differs. Returns `[height, width, 3]` f32 on the CPU.
    pub fn upscale_frame(
        &self,
        frame: &Tensor,
        width: usize,
        height: usize,
        tiling: &Tiling,
        device: &Device,
    ) -> Result<Tensor> {
        let x = frame
            .to_dtype(DType::F32)?
            .to_device(device)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?;
        let y = self
            .upscale(&x, tiling)?
            .clamp(0f32, 1f32)?
            .squeeze(0)?
            .permute((1, 2, 0))?
            .to_device(&Device::Cpu)?;
        Ok(resize::resize_rgb(&y, width, height)?)
    }
}
