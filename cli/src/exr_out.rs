//! OpenEXR frames: 32-bit float RGB. The values are the model's output unchanged (display
//! referred, sRGB-encoded, in [0, 1]); tag them as sRGB in the compositor's Read node.

use crate::frames_out::{ensure_parent, frame_path};
use std::path::PathBuf;
use t2v_bridge::Frame;

pub fn write_exr_frame(pattern: &str, index: usize, frame: &Frame) -> Result<PathBuf, String> {
    let path = frame_path(pattern, index)?;
    ensure_parent(&path)?;
    let w = frame.width();
    let rgb = frame.rgb16();
    let sample = |x: usize, y: usize, c: usize| rgb[(y * w + x) * 3 + c] as f32 / 65535.0;
    exr::prelude::write_rgb_file(&path, w, frame.height(), |x, y| {
        (sample(x, y, 0), sample(x, y, 1), sample(x, y, 2))
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
