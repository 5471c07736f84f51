//! Flicker of an upscaled clip: the mean absolute frame-to-frame change (in 8-bit steps) of
//! the Real-ESRGAN upscale of a clip's frames, next to a bicubic upscale of the same frames to
//! the same size. An upscaler that invents detail differently in each frame shows more change
//! than the bicubic one; one that is stable shows about the same.
//!
//! ```sh
//! # the demo model's clip, not upscaled, as f32 frames:
//! cargo run --release -p t2v-cli -- generate --model demo/model \
//!     --prompt "A red circle moves to the right on a black background." \
//!     --output out/demo.%04d.png --save-frames out/demo.safetensors
//! # through the demo model's shipped upscaler (a trained 2x SRVGGNetCompact), at its own
//! # factor and to 720P; any Real-ESRGAN .pth or .safetensors file works the same way:
//! cargo run --release -p t2v-cli --example upscale_flicker -- \
//!     --upscaler demo/model/upscaler/demo_compact_x2.safetensors --upscale 2x --frames out/demo.safetensors
//! cargo run --release -p t2v-cli --example upscale_flicker -- \
//!     --upscaler demo/model/upscaler/demo_compact_x2.safetensors --upscale 720p --frames out/demo.safetensors
//! ```
//!
//! Without `--frames` only the built-in moving test pattern is measured.

use candle_core::{Device, Tensor};
use std::path::PathBuf;
use t2v_bridge::UpscaleTarget;
use t2v_models::upscale::{resize::resize_rgb, Tiling, Upscaler};

/// Mean over consecutive pairs of the mean absolute difference, in 8-bit steps.
fn mean_frame_change(frames: &[Tensor]) -> candle_core::Result<f64> {
    let mut total = 0.0;
    for pair in frames.windows(2) {
        let d = (&pair[1] - &pair[0])?
            .abs()?
            .mean_all()?
            .to_scalar::<f32>()?;
        total += d as f64;
    }
    Ok(total / (frames.len().max(2) - 1) as f64 * 255.0)
}

/// 17 frames of 256x160: a soft-edged disc moving 3.5 pixels a frame over fine diagonal
/// stripes drifting 0.75 pixels a frame (sub-pixel motion, where upscalers alias).
fn moving_test_pattern() -> Vec<Tensor> {
    let (w, h) = (256usize, 160usize);
    (0..17)
        .map(|t| {
            let t = t as f32;
            let mut data = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    let (xf, yf) = (x as f32, y as f32);
                    let stripes = 0.5 + 0.4 * ((xf + yf - 0.75 * t) * 0.9).sin();
                    let (cx, cy) = (40.0 + 3.5 * t, 80.0);
                    let r = ((xf - cx).powi(2) + (yf - cy).powi(2)).sqrt();
                    let disc = (24.0 - r).clamp(0.0, 1.0);
                    let base = [0.2 * stripes, 0.5 * stripes, 0.8 * stripes];
                    let colour = [0.95, 0.15, 0.1];
                    for c in 0..3 {
                        data.push(base[c] * (1.0 - disc) + colour[c] * disc);
                    }
                }
            }
            Tensor::from_vec(data, (h, w, 3), &Device::Cpu).unwrap()
        })
        .collect()
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let upscaler = arg(&args, "--upscaler").ok_or("--upscaler FILE is required")?;
    let target: UpscaleTarget = arg(&args, "--upscale")
        .unwrap_or_else(|| "720p".into())
        .parse()?;
    let file = PathBuf::from(&upscaler);
    let upscaler = Upscaler::load(&file, &Device::Cpu)?;
    let mut clips = vec![("moving test pattern".to_string(), moving_test_pattern())];
    if let Some(path) = arg(&args, "--frames") {
        let frames = candle_core::safetensors::load(&path, &Device::Cpu)?
            .remove("frames")
            .ok_or("no tensor `frames` in --frames")?;
        let frames = (0..frames.dim(0)?)
            .map(|i| frames.get(i))
            .collect::<candle_core::Result<Vec<_>>>()?;
        clips.push((path, frames));
    }
    println!(
        "upscaler: {} ({}), upscale {target}\n| clip | size | input | bicubic | upscaler | upscaler / bicubic |\n|---|---|---|---|---|---|",
        file.display(),
        upscaler.architecture().describe()
    );
    for (name, frames) in clips {
        let (h, w, _) = frames[0].dims3()?;
        let (ow, oh) = target.output_size(w, h);
        let bicubic = frames
            .iter()
            .map(|f| resize_rgb(f, ow, oh))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let upscaled = frames
            .iter()
            .map(|f| upscaler.upscale_frame(f, ow, oh, &Tiling::DEFAULT, &Device::Cpu))
            .collect::<t2v_models::Result<Vec<_>>>()?;
        let (input, bicubic, upscaled) = (
            mean_frame_change(&frames)?,
            mean_frame_change(&bicubic)?,
            mean_frame_change(&upscaled)?,
        );
        println!(
            "| {name} | {w}x{h} -> {ow}x{oh} | {input:.3} | {bicubic:.3} | {upscaled:.3} | {:.2} |",
            upscaled / bicubic
        );
    }
    Ok(())
}
