//! Upscaling a clip's frames as they are decoded, with a Real-ESRGAN network the user gives
//! ([`t2v_models::upscale`]): the choice ([`UpscaleTarget`]: a factor, or a 720P/1080P height
//! where the factor follows) and the file, plain data in the [`crate::Request`]. The network
//! runs at its own scale, then the frame is resized to the exact size asked.

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::metadata::UpscaleInfo;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use t2v_models::upscale::{Tiling, Upscaler};

/// The largest side an upscaled frame may have (4K): what the clip cache, the hosts and the
/// frame memory are sized for.
pub const MAX_OUTPUT_SIDE: usize = 4096;

/// How much a clip is upscaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpscaleTarget {
    #[serde(rename = "1.5x")]
    X1_5,
    #[serde(rename = "2x")]
    X2,
    #[serde(rename = "4x")]
    X4,
    /// The short side becomes 720 pixels.
    #[serde(rename = "720p")]
    To720p,
    /// The short side becomes 1080 pixels.
    #[serde(rename = "1080p")]
    To1080p,
}

impl UpscaleTarget {
    pub const ALL: [UpscaleTarget; 5] = [
        UpscaleTarget::X1_5,
        UpscaleTarget::X2,
        UpscaleTarget::X4,
        UpscaleTarget::To720p,
        UpscaleTarget::To1080p,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UpscaleTarget::X1_5 => "1.5x",
            UpscaleTarget::X2 => "2x",
            UpscaleTarget::X4 => "4x",
            UpscaleTarget::To720p => "720p",
            UpscaleTarget::To1080p => "1080p",
        }
    }

    /// The size of a `width` x `height` frame once upscaled: the factor, or the factor that
    /// makes the short side 720 or 1080, with the long side rounded to the nearest pixel.
    pub fn output_size(self, width: usize, height: usize) -> (usize, usize) {
        let factor = match self {
            UpscaleTarget::X1_5 => 1.5,
            UpscaleTarget::X2 => 2.0,
            UpscaleTarget::X4 => 4.0,
            UpscaleTarget::To720p => 720.0 / width.min(height).max(1) as f64,
            UpscaleTarget::To1080p => 1080.0 / width.min(height).max(1) as f64,
        };
        let side = |v: usize| ((v as f64 * factor).round() as usize).max(1);
        (side(width), side(height))
    }
}

impl fmt::Display for UpscaleTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for UpscaleTarget {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().to_ascii_lowercase();
        UpscaleTarget::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = UpscaleTarget::ALL.iter().map(|t| t.name()).collect();
                format!("unknown upscale `{s}`: choose one of {}", names.join(", "))
            })
    }
}

/// Upscale the clip to `target` with the Real-ESRGAN network in `upscaler` (`.pth` or
/// `.safetensors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upscale {
    pub target: UpscaleTarget,
    pub upscaler: PathBuf,
}

impl Upscale {
    pub fn new(target: UpscaleTarget, upscaler: impl Into<PathBuf>) -> Self {
        Upscale {
            target,
            upscaler: upscaler.into(),
        }
    }

    /// The upscaled size of a `width` x `height` clip, checked against [`MAX_OUTPUT_SIDE`].
    pub fn output_size(&self, width: usize, height: usize) -> Result<(usize, usize)> {
        let (w, h) = self.target.output_size(width, height);
        if w > MAX_OUTPUT_SIDE || h > MAX_OUTPUT_SIDE {
            return Err(Error::bad_input(format!(
                "upscaling {width}x{height} to {} gives {w}x{h}, more than {MAX_OUTPUT_SIDE} \
                 pixels a side: choose a smaller upscale",
                self.target
            )));
        }
        Ok((w, h))
    }

    /// The file's content identity (for the clip key): the same file anywhere is the same
    /// upscaler.
    pub fn fingerprint(&self) -> Result<String> {
        upscaler_fingerprint(&self.upscaler)
    }
}

/// The folder of a model folder that holds an upscaler made for that model (one Real-ESRGAN
/// `.safetensors` or `.pth` file; the demo model ships one): what an upscale uses when no
/// upscaler file is named.
pub const UPSCALER_FOLDER: &str = "upscaler";

/// The upscaler the model folder `model_dir` ships in its [`UPSCALER_FOLDER`], if any.
pub fn model_upscaler(model_dir: &Path) -> Option<PathBuf> {
    crate::fast_decode::first_weight_file(&model_dir.join(UPSCALER_FOLDER))
}

pub fn upscaler_fingerprint(path: &Path) -> Result<String> {
    if !path.is_file() {
        return Err(Error::bad_input(format!(
            "upscaler {}: no such file; choose a Real-ESRGAN .pth or .safetensors file",
            path.display()
        )));
    }
    crate::model_identity::file_fingerprint(path)
}

/// A loaded network and the size its frames go to: turns decoded frames into upscaled ones.
pub(crate) struct FrameUpscaler {
    pub upscaler: Arc<Upscaler>,
    pub width: usize,
    pub height: usize,
    pub device: Device,
}

impl FrameUpscaler {
    /// Frames `[n, H, W, 3]` in [0, 1] upscaled one at a time (memory for one frame's tiles),
    /// asking `keep_going` between frames.
    pub fn frames(
        &self,
        frames: &Tensor,
        keep_going: &dyn Fn() -> t2v_models::Result<()>,
    ) -> t2v_models::Result<Vec<Frame>> {
        (0..frames.dim(0)?)
            .map(|i| {
                keep_going()?;
                let frame = self.upscaler.upscale_frame(
                    &frames.get(i)?,
                    self.width,
                    self.height,
                    &Tiling::DEFAULT,
                    &self.device,
                )?;
                Ok(Frame::from_tensor(&frame)?)
            })
            .collect()
    }
}

/// The network in `path`, read once and kept while the next jobs use the same file.
#[derive(Default)]
pub(crate) struct UpscalerSlot {
    loaded: Option<(String, Arc<Upscaler>)>,
}

impl UpscalerSlot {
    /// The frame upscaler for a `width` x `height` clip and what the metadata says of it.
    pub fn prepare(
        &mut self,
        upscale: &Upscale,
        width: usize,
        height: usize,
        device: &Device,
    ) -> Result<(FrameUpscaler, UpscaleInfo)> {
        let upscaler = self.get(upscale, device)?;
        let (width, height) = upscale.output_size(width, height)?;
        let info = UpscaleInfo {
            target: upscale.target.name().to_string(),
            upscaler: upscale.upscaler.display().to_string(),
            fingerprint: upscale.fingerprint()?,
            network: upscaler.architecture().describe(),
            width,
            height,
        };
        let frames = FrameUpscaler {
            upscaler,
            width,
            height,
            device: device.clone(),
        };
        Ok((frames, info))
    }

    fn get(&mut self, upscale: &Upscale, device: &Device) -> Result<Arc<Upscaler>> {
        let fingerprint = upscale.fingerprint()?;
        if let Some((f, u)) = &self.loaded {
            if *f == fingerprint {
                return Ok(u.clone());
            }
        }
        self.loaded = None;
        let upscaler = Arc::new(Upscaler::load(&upscale.upscaler, device)?);
        self.loaded = Some((fingerprint, upscaler.clone()));
        Ok(upscaler)
    }

    pub fn unload(&mut self) {
        self.loaded = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_folder_brings_its_upscaler() {
        let model = tempfile::tempdir().unwrap();
        assert_eq!(model_upscaler(model.path()), None);
        let dir = model.path().join(UPSCALER_FOLDER);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("README.txt"), "not a network").unwrap();
        assert_eq!(model_upscaler(model.path()), None);
        std::fs::write(dir.join("b_x4.pth"), b"").unwrap();
        std::fs::write(dir.join("a_x2.safetensors"), b"").unwrap();
        assert_eq!(
            model_upscaler(model.path()),
            Some(dir.join("a_x2.safetensors"))
        );
    }

    #[test]
    fn sizes_follow_the_choice() {
        use UpscaleTarget::*;
        assert_eq!(X1_5.output_size(832, 480), (1248, 720));
        assert_eq!(X2.output_size(832, 480), (1664, 960));
        assert_eq!(X4.output_size(256, 160), (1024, 640));
        assert_eq!(To720p.output_size(832, 480), (1248, 720));
        assert_eq!(To1080p.output_size(832, 480), (1872, 1080));
        assert_eq!(To1080p.output_size(480, 832), (1080, 1872));
        assert_eq!(To720p.output_size(256, 160), (1152, 720));
        let e = Upscale::new(X4, "x.pth")
            .output_size(1280, 704)
            .unwrap_err();
        assert!(
            e.message.contains("5120x2816") && e.message.contains("smaller"),
            "{e}"
        );
    }

    #[test]
    fn choices_parse_and_round_trip_through_json() {
        for t in UpscaleTarget::ALL {
            assert_eq!(t.name().parse::<UpscaleTarget>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        assert_eq!("1080P".parse::<UpscaleTarget>(), Ok(UpscaleTarget::To1080p));
        let e = "3x".parse::<UpscaleTarget>().unwrap_err();
        assert!(e.contains("1.5x, 2x, 4x, 720p, 1080p"), "{e}");
    }
}
