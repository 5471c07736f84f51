//! Resizing RGB frames to an exact size: after the network's own factor (to reach 1.5x, or a
//! 720P/1080P height), and as the bicubic baseline the upscaler is compared with.

use candle_core::{Device, Result, Tensor};
use image::imageops::{self, FilterType};
use image::{ImageBuffer, Rgb};

/// `frame` `[H, W, 3]` f32 in [0, 1] resized to `[height, width, 3]` with a bicubic
/// (Catmull-Rom) filter, clamped to [0, 1]; returned unchanged when the size already matches.
pub fn resize_rgb(frame: &Tensor, width: usize, height: usize) -> Result<Tensor> {
    let (h, w, c) = frame.dims3()?;
    if c != 3 {
        candle_core::bail!("resize: a frame has 3 channels, got {c}");
    }
    if (h, w) == (height, width) {
        return Ok(frame.clone());
    }
    if width == 0 || height == 0 {
        candle_core::bail!("resize: cannot resize to {width}x{height}");
    }
    let data: Vec<f32> = frame
        .to_device(&Device::Cpu)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let src: ImageBuffer<Rgb<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, data).expect("buffer of [H, W, 3]");
    let out = imageops::resize(&src, width as u32, height as u32, FilterType::CatmullRom);
    let data: Vec<f32> = out
        .into_raw()
        .into_iter()
        .map(|v| v.clamp(0.0, 1.0))
        .collect();
    Tensor::from_vec(data, (height, width, 3), &Device::Cpu)
}
