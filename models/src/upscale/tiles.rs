//! Running an upscaling network over a picture the way Real-ESRGAN's `RealESRGANer` does:
//! a reflect pad on the right and bottom (`pre_pad`, and up to the network's size multiple),
//! then the picture cut into `tile`-sized tiles, each run with `tile_pad` pixels of context
//! around it and cropped back, and the pads removed. Tiles bound the memory (a 4x RRDBNet on
//! a whole 832x480 frame holds 64 feature channels at 3328x1920, 1.6 GB a map); the context
//! keeps seams out where it covers the network's receptive field.

use candle_core::{Result, Tensor};

/// How to cut a picture for the network (sizes in input pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Tile side; `None` runs the whole picture at once.
    pub tile: Option<usize>,
    /// Context around each tile, cropped away after the network.
    pub tile_pad: usize,
    /// Reflect padding on the right and bottom before anything else, cropped away at the end
    /// (Real-ESRGAN's `pre_pad`: fewer artefacts at those borders).
    pub pre_pad: usize,
}

impl Tiling {
    /// `RealESRGANer`'s defaults for `tile_pad` and `pre_pad`, with tiles that keep a 4x
    /// RRDBNet under about 2 GB at any frame size.
    pub const DEFAULT: Tiling = Tiling {
        tile: Some(192),
        tile_pad: 16,
        pre_pad: 10,
    };

    /// The whole picture at once.
    pub const WHOLE: Tiling = Tiling {
        tile: None,
        tile_pad: 0,
        pre_pad: 10,
    };
}

impl Default for Tiling {
    fn default() -> Self {
        Tiling::DEFAULT
    }
}

/// `x` `[N, C, H, W]` with `pad_h` rows and `pad_w` columns mirrored (without repeating the
/// edge, as torch's `reflect`) onto its bottom and right. Pads are capped at the side less one.
pub fn reflect_pad_bottom_right(x: &Tensor, pad_h: usize, pad_w: usize) -> Result<Tensor> {
    let mirror = |x: &Tensor, dim: usize, pad: usize| -> Result<Tensor> {
        let n = x.dim(dim)?;
        let pad = pad.min(n.saturating_sub(1));
        if pad == 0 {
            return Ok(x.clone());
        }
        let idx: Vec<u32> = (0..n)
            .chain((0..pad).map(|i| n - 2 - i))
            .map(|i| i as u32)
            .collect();
        let idx = Tensor::new(idx.as_slice(), x.device())?;
        x.contiguous()?.index_select(&idx, dim)
    };
    mirror(&mirror(x, 2, pad_h)?, 3, pad_w)
}

fn round_up(n: usize, multiple: usize) -> usize {
    n.div_ceil(multiple) * multiple
}

/// `network` (scale `scale`, input sides multiples of `multiple`) over `x` `[N, C, H, W]`,
/// cut as `tiling` says. Returns `[N, C, H * scale, W * scale]`.
pub fn upscale(
    network: &dyn Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    scale: usize,
    multiple: usize,
    tiling: &Tiling,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let pre_pad = tiling.pre_pad.min(h.min(w).saturating_sub(1));
    let padded = reflect_pad_bottom_right(x, pre_pad, pre_pad)?;
    let (ph, pw) = (h + pre_pad, w + pre_pad);
    let padded = reflect_pad_bottom_right(
        &padded,
        round_up(ph, multiple) - ph,
        round_up(pw, multiple) - pw,
    )?;
    let out = match tiling.tile {
        Some(tile) if tile < padded.dim(2)?.max(padded.dim(3)?) => {
            let tile = round_up(tile.max(1), multiple);
            let tile_pad = round_up(tiling.tile_pad, multiple);
            tiled(network, &padded, scale, tile, tile_pad)?
        }
        _ => network(&padded)?,
    };
    out.narrow(2, 0, h * scale)?.narrow(3, 0, w * scale)
}

/// `RealESRGANer.tile_process`: tiles in rows, each run with its context and cropped to its
/// own area of the output.
fn tiled(
    network: &dyn Fn(&Tensor) -> Result<Tensor>,
    img: &Tensor,
    scale: usize,
    tile: usize,
    tile_pad: usize,
) -> Result<Tensor> {
    let (_, _, height, width) = img.dims4()?;
    let mut rows = Vec::with_capacity(height.div_ceil(tile));
    for y0 in (0..height).step_by(tile) {
        let y1 = (y0 + tile).min(height);
        let y0_pad = y0.saturating_sub(tile_pad);
        let y1_pad = (y1 + tile_pad).min(height);
        let mut row = Vec::with_capacity(width.div_ceil(tile));
        for x0 in (0..width).step_by(tile) {
            let x1 = (x0 + tile).min(width);
            let x0_pad = x0.saturating_sub(tile_pad);
            let x1_pad = (x1 + tile_pad).min(width);
            let input =
                img.narrow(2, y0_pad, y1_pad - y0_pad)?
                    .narrow(3, x0_pad, x1_pad - x0_pad)?;
            let output = network(&input)?;
            row.push(
                output
                    .narrow(2, (y0 - y0_pad) * scale, (y1 - y0) * scale)?
                    .narrow(3, (x0 - x0_pad) * scale, (x1 - x0) * scale)?,
            );
        }
        rows.push(Tensor::cat(&row, 3)?);
    }
    Tensor::cat(&rows, 2)
}
