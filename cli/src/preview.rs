//! Animated previews of a clip: GIF (`.gif`) or APNG (`.png`), 8-bit, looping.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use t2v_bridge::Frame;

/// Wan2.2 TI2V-5B makes 24 frames per second.
pub const PREVIEW_FPS: u16 = 24;

/// Writes `frames` as an animation; the format follows the extension (`.gif` or `.png`).
pub fn write_preview(path: &Path, frames: &[Frame], fps: u16) -> Result<(), String> {
    if frames.is_empty() {
        return Err("a preview needs at least one frame".into());
    }
    crate::frames_out::ensure_parent(path)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = File::create(path).map_err(|e| fail(&e))?;
    match ext.as_str() {
        "gif" => write_gif(BufWriter::new(file), frames, fps).map_err(|e| fail(&e)),
        "png" | "apng" => write_apng(BufWriter::new(file), frames, fps).map_err(|e| fail(&e)),
        _ => {
            drop(file);
            let _ = std::fs::remove_file(path);
            Err(format!(
                "preview {}: use a .gif or .png (animated PNG) file name",
                path.display()
            ))
        }
    }
}

fn write_gif(out: impl std::io::Write, frames: &[Frame], fps: u16) -> image::ImageResult<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut encoder = GifEncoder::new_with_speed(out, 10);
    encoder.set_repeat(Repeat::Infinite)?;
    let delay = image::Delay::from_numer_denom_ms(1000, fps.max(1) as u32);
    for frame in frames {
        let rgba = image::DynamicImage::ImageRgb8(frame.to_rgb8()).into_rgba8();
        encoder.encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))?;
    }
    Ok(())
}

fn write_apng(
    out: impl std::io::Write,
    frames: &[Frame],
    fps: u16,
) -> Result<(), png::EncodingError> {
    let mut encoder = png::Encoder::new(out, frames[0].width() as u32, frames[0].height() as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_animated(frames.len() as u32, 0)?;
    encoder.set_frame_delay(1, fps.max(1))?;
    let mut writer = encoder.write_header()?;
    for frame in frames {
        writer.write_image_data(frame.to_rgb8().as_raw())?;
    }
    writer.finish()
}
