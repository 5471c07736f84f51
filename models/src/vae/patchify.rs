//! Pixels <-> the `patch_size^2 * 3` channels the Wan2.2 VAE works on. The channel of pixel
//! offset (dh, dw) in a patch is `c * p^2 + dw * p + dh`: the width offset comes first.

use candle_core::{Result, Tensor};

/// `[B, C, F, H, W]` video -> `[B, F, C*p*p, H/p, W/p]` (frames first, as inside the VAE).
pub fn patchify(video: &Tensor, p: usize) -> Result<Tensor> {
    let (b, c, f, h, w) = video.dims5()?;
    if h % p != 0 || w % p != 0 {
        candle_core::bail!("patchify: {h}x{w} is not divisible by the patch size {p}")
    }
    let (h, w) = (h / p, w / p);
    video
        .reshape(vec![b, c, f, h, p, w, p])?
        .permute(vec![0, 2, 1, 6, 4, 3, 5])?
        .reshape((b, f, c * p * p, h, w))
}

/// Inverse of [`patchify`]: `[B, F, C*p*p, h, w]` -> `[B, C, F, h*p, w*p]`.
pub fn unpatchify(x: &Tensor, p: usize) -> Result<Tensor> {
    let (b, f, cp, h, w) = x.dims5()?;
    if cp % (p * p) != 0 {
        candle_core::bail!("unpatchify: {cp} channels is not a multiple of {}", p * p)
    }
    let c = cp / (p * p);
    x.reshape(vec![b, f, c, p, p, h, w])?
        .permute(vec![0, 2, 1, 5, 4, 6, 3])?
        .reshape((b, c, f, h * p, w * p))
}
