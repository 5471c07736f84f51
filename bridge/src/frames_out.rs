//! Writing decoded frames `[F, H, W, 3]` (f32 in [0, 1]) to numbered image files.

use candle_core::Tensor;
use std::path::{Path, PathBuf};

/// Expands a printf-style frame pattern: `%04d`, `%d`, or a run of `#` (padded to its length).
pub fn frame_path(pattern: &str, frame: usize) -> Result<PathBuf, String> {
    if let Some(start) = pattern.find('%') {
        let rest = &pattern[start + 1..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let after = &rest[digits.len()..];
        let Some(tail) = after.strip_prefix('d') else {
            return Err(format!("output pattern `{pattern}`: use %d, %04d or #### for the frame number"));
        };
        let width: usize = digits.trim_start_matches('0').parse().unwrap_or(0);
        return Ok(PathBuf::from(format!("{}{frame:0width$}{tail}", &pattern[..start])));
    }
    if let Some(start) = pattern.find('#') {
        let width = pattern[start..].chars().take_while(|&c| c == '#').count();
        return Ok(PathBuf::from(format!("{}{frame:0width$}{}", &pattern[..start], &pattern[start + width..])));
    }
    Err(format!("output pattern `{pattern}` has no frame number: add %04d or #### (e.g. out/frame.%04d.png)"))
}

/// Quantises one frame `[H, W, 3]` in [0, 1] to 8-bit RGB, rounding to nearest.
pub fn to_rgb8(frame: &Tensor) -> candle_core::Result<image::RgbImage> {
    let (h, w, _) = frame.dims3()?;
    let data: Vec<f32> = frame.flatten_all()?.to_vec1()?;
    let bytes = data.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
    Ok(image::RgbImage::from_raw(w as u32, h as u32, bytes).expect("frame buffer size matches"))
}

/// Writes frames `[n, H, W, 3]` as 8-bit PNGs, numbering from `first`.
pub fn write_png_frames(pattern: &str, first: usize, frames: &Tensor) -> Result<Vec<PathBuf>, String> {
    let n = frames.dim(0).map_err(|e| e.to_string())?;
    let mut written = Vec::with_capacity(n);
    for i in 0..n {
        let path = frame_path(pattern, first + i)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let frame = frames.get(i).map_err(|e| e.to_string())?;
        to_rgb8(&frame).map_err(|e| e.to_string())?.save(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
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
        assert_eq!(frame_path("out/frame.%04d.png", 7).unwrap(), PathBuf::from("out/frame.0007.png"));
        assert_eq!(frame_path("f%d.png", 12).unwrap(), PathBuf::from("f12.png"));
        assert_eq!(frame_path("f.###.png", 3).unwrap(), PathBuf::from("f.003.png"));
        assert!(frame_path("frame.png", 0).is_err());
        assert!(frame_path("frame.%s.png", 0).is_err());
    }

    #[test]
    fn quantisation_rounds_and_clamps() {
        let t = Tensor::from_vec(vec![0.0f32, 0.5, 1.2, -0.1, 1.0 / 255.0 * 0.6, 1.0], (1, 2, 3), &candle_core::Device::Cpu).unwrap();
        assert_eq!(to_rgb8(&t).unwrap().into_raw(), vec![0, 128, 255, 0, 1, 255]);
    }
}
