//! A decoded frame as the service hands it out: 16-bit RGB, the same values whether the clip
//! was just generated or read from the disk cache (so cache hits are bit-identical).

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Serialises as `{"width": W, "height": H, "rgb": [...]}`; a buffer of the wrong size is
/// refused when read back.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "FrameData", try_from = "FrameData")]
pub struct Frame {
    width: usize,
    height: usize,
    rgb: Arc<Vec<u16>>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({}x{})", self.width, self.height)
    }
}

#[derive(Serialize, Deserialize)]
struct FrameData {
    width: usize,
    height: usize,
    rgb: Vec<u16>,
}

impl From<Frame> for FrameData {
    fn from(f: Frame) -> FrameData {
        FrameData {
            width: f.width,
            height: f.height,
            rgb: Arc::try_unwrap(f.rgb).unwrap_or_else(|shared| (*shared).clone()),
        }
    }
}

impl TryFrom<FrameData> for Frame {
    type Error = String;
    fn try_from(d: FrameData) -> Result<Frame, String> {
        if d.width.checked_mul(d.height).and_then(|n| n.checked_mul(3)) != Some(d.rgb.len()) {
            return Err(format!(
                "a {}x{} frame needs {} RGB samples, got {}",
                d.width,
                d.height,
                d.width.saturating_mul(d.height).saturating_mul(3),
                d.rgb.len()
            ));
        }
        Ok(Frame::from_rgb16(d.width, d.height, d.rgb))
    }
}

/// Rounds a value in [0, 1] (clamped) to 16 bits.
pub fn quantize_u16(v: f32) -> u16 {
    (v.clamp(0.0, 1.0) * 65535.0).round() as u16
}

impl Frame {
    /// `rgb` is `width * height * 3` interleaved samples, row by row from the top.
    pub fn from_rgb16(width: usize, height: usize, rgb: Vec<u16>) -> Self {
        assert_eq!(rgb.len(), width * height * 3, "frame buffer size");
        Frame {
            width,
            height,
            rgb: Arc::new(rgb),
        }
    }

    /// From an f32 tensor `[H, W, 3]` in [0, 1].
    pub fn from_tensor(frame: &Tensor) -> candle_core::Result<Self> {
        let (h, w, c) = frame.dims3()?;
        if c != 3 {
            candle_core::bail!("a frame has 3 channels, got {c}");
        }
        let data: Vec<f32> = frame
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        Ok(Frame::from_rgb16(
            w,
            h,
            data.into_iter().map(quantize_u16).collect(),
        ))
    }

    /// Splits frames `[n, H, W, 3]` into single frames.
    pub fn split(frames: &Tensor) -> candle_core::Result<Vec<Frame>> {
        (0..frames.dim(0)?)
            .map(|i| Frame::from_tensor(&frames.get(i)?))
            .collect()
    }

    pub fn width(&self) -> usize {
        self.width
    }
    pub fn height(&self) -> usize {
        self.height
    }
    /// Interleaved RGB samples, row 0 at the top.
    pub fn rgb16(&self) -> &[u16] {
        &self.rgb
    }
    /// Interleaved RGB in [0, 1].
    pub fn to_f32(&self) -> Vec<f32> {
        self.rgb.iter().map(|&v| v as f32 / 65535.0).collect()
    }
    pub fn to_rgb8(&self) -> image::RgbImage {
        let bytes = self
            .rgb
            .iter()
            .map(|&v| ((v as u32 * 255 + 32767) / 65535) as u8)
            .collect();
        image::RgbImage::from_raw(self.width as u32, self.height as u32, bytes)
            .expect("frame buffer size")
    }
    pub fn to_rgb16(&self) -> image::ImageBuffer<image::Rgb<u16>, Vec<u16>> {
        image::ImageBuffer::from_raw(self.width as u32, self.height as u32, self.rgb.to_vec())
            .expect("frame buffer size")
    }
    /// `[H, W, 3]` f32 in [0, 1] on the CPU.
    pub fn to_tensor(&self) -> candle_core::Result<Tensor> {
        Tensor::from_vec(self.to_f32(), (self.height, self.width, 3), &Device::Cpu)
    }
}

/// What a frame in a job's stream is: decoded by the VAE (the clip itself), or a preview made
/// from the sampler's estimate while denoising. Serialised as `"decoded"` or
/// `{"preview": {"step": 4, "steps": 50}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    Decoded,
    /// Made after `step` denoising steps of `steps`.
    Preview {
        step: usize,
        steps: usize,
    },
}

/// One frame of a job's stream with its index in the clip and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamedFrame {
    pub index: usize,
    pub kind: FrameKind,
    pub frame: Frame,
}

impl StreamedFrame {
    pub fn is_preview(&self) -> bool {
        matches!(self.kind, FrameKind::Preview { .. })
    }
}

/// Stacks frames into `[F, H, W, 3]` f32.
pub fn frames_to_tensor(frames: &[Frame]) -> candle_core::Result<Tensor> {
    let tensors = frames
        .iter()
        .map(Frame::to_tensor)
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::stack(&tensors, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_json_and_refuse_a_wrong_size() {
        let f = Frame::from_rgb16(2, 1, vec![0, 1, 65535, 300, 40000, 7]);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"width":2,"height":1,"rgb":[0,1,65535,300,40000,7]}"#
        );
        assert_eq!(serde_json::from_str::<Frame>(&json).unwrap(), f);
        let e = serde_json::from_str::<Frame>(r#"{"width":2,"height":2,"rgb":[1]}"#).unwrap_err();
        assert!(e.to_string().contains("needs 12 RGB samples"), "{e}");
    }
}
