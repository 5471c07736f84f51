//! Writing decoded frames to numbered image files: the frame-number pattern, and 8- or 16-bit PNG.

use candle_core::Tensor;
use std::path::{Path, PathBuf};

/// Expands a printf-style frame pattern: `%04d`, `%d`, or a run of `#` (padded to its length).
pub fn frame_path(pattern: &str, frame: usize) -> Result<PathBuf, String> {
    if let Some(start) = pattern.find('%') {
        let rest = &pattern[start + 1..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let after = &rest[digits.len()..];
        let Some(tail) = after.strip_prefix('d') else {
            return Err(format!(
                "output pattern `{pattern}`: use %d, %04d or #### for the frame number"
            ));
        };
        let width: usize = digits.trim_start_matches('0').parse().unwrap_or(0);
        return Ok(PathBuf::from(format!(
            "{}{frame:0width$}{tail}",
            &pattern[..start]
        )));
    }
    if let Some(start) = pattern.find('#') {
        let width = pattern[start..].chars().take_while(|&c| c == '#').count();
        return Ok(PathBuf::from(format!(
            "{}{frame:0width$}{}",
            &pattern[..start],
            &pattern[start + width..]
        )));
    }
    Err(format!("output pattern `{pattern}` has no frame number: add %04d or #### (e.g. out/frame.%04d.png)"))
}

/// The part of a pattern that stands for the frame number (`%04d`, `%d`, `####`).
pub fn frame_token(pattern: &str) -> Result<String, String> {
    frame_path(pattern, 0)?;
    if let Some(start) = pattern.find('%') {
        let digits = pattern[start + 1..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .count();
        return Ok(pattern[start..start + digits + 2].to_string());
    }
    let start = pattern.find('#').expect("frame_path accepted it");
    let width = pattern[start..].chars().take_while(|&c| c == '#').count();
    Ok("#".repeat(width))
}

/// Quantises one frame `[H, W, 3]` in [0, 1] to 8-bit RGB, rounding to nearest.
pub fn to_rgb8(frame: &Tensor) -> candle_core::Result<image::RgbImage> {
    let (h, w, _) = frame.dims3()?;
    let data: Vec<f32> = frame.flatten_all()?.to_vec1()?;
    let bytes = data
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    Ok(image::RgbImage::from_raw(w as u32, h as u32, bytes).expect("frame buffer size matches"))
}

/// Writes frames `[n, H, W, 3]` as 8-bit PNGs, numbering from `first`.
pub fn write_png_frames(
    pattern: &str,
    first: usize,
    frames: &Tensor,
) -> Result<Vec<PathBuf>, String> {
    let n = frames.dim(0).map_err(|e| e.to_string())?;
    let mut written = Vec::with_capacity(n);
    for i in 0..n {
        let path = frame_path(pattern, first + i)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let frame = frames.get(i).map_err(|e| e.to_string())?;
        to_rgb8(&frame)
            .map_err(|e| e.to_string())?
            .save(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Bits per sample of exported PNGs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitDepth {
    Eight,
    Sixteen,
}

impl std::str::FromStr for BitDepth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "8" => Ok(BitDepth::Eight),
            "16" => Ok(BitDepth::Sixteen),
            other => Err(format!("bit depth `{other}`: use 8 or 16")),
        }
    }
}

/// Writes one service frame as a PNG numbered `index`.
pub fn write_png_frame(
    pattern: &str,
    index: usize,
    frame: &t2v_bridge::Frame,
    depth: BitDepth,
) -> Result<PathBuf, String> {
    let path = frame_path(pattern, index)?;
    ensure_parent(&path)?;
    let saved = match depth {
        BitDepth::Eight => frame
            .to_rgb8()
            .save_with_format(&path, image::ImageFormat::Png),
        BitDepth::Sixteen => frame
            .to_rgb16()
            .save_with_format(&path, image::ImageFormat::Png),
    };
    saved.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

pub fn ensure_parent(path: &Path) -> Result<(), String> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            frame_path("out/frame.%04d.png", 7).unwrap(),
            PathBuf::from("out/frame.0007.png")
        );
        assert_eq!(frame_path("f%d.png", 12).unwrap(), PathBuf::from("f12.png"));
        assert_eq!(
            frame_path("f.###.png", 3).unwrap(),
            PathBuf::from("f.003.png")
        );
        assert!(frame_path("frame.png", 0).is_err());
        assert!(frame_path("frame.%s.png", 0).is_err());
    }

    #[test]
    fn quantisation_rounds_and_clamps() {
        let t = Tensor::from_vec(
            vec![0.0f32, 0.5, 1.2, -0.1, 1.0 / 255.0 * 0.6, 1.0],
            (1, 2, 3),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        assert_eq!(
            to_rgb8(&t).unwrap().into_raw(),
            vec![0, 128, 255, 0, 1, 255]
        );
    }
}
