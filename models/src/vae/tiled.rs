//! Tiled decode, as diffusers' `AutoencoderKLWan.enable_tiling`: the latents are cut into
//! overlapping spatial tiles, each decoded on its own (still one latent frame per decoder call,
//! with causal caches of its own), and the overlaps are blended linearly, so the decoder's
//! working memory is a tile's, whatever the frame size. The decoded tiles wait in host memory.

use super::decoder::WanVaeDecoder;
use super::patchify::unpatchify;
use candle_core::{DType, Device, Result, Tensor};

/// Tile size and stride in output pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    pub tile_px: usize,
    pub stride_px: usize,
}

impl Tiling {
    /// diffusers' defaults: 256 px tiles every 192 px (64 px blended overlaps).
    pub const DIFFUSERS: Tiling = Tiling {
        tile_px: 256,
        stride_px: 192,
    };
}

/// `b`'s first rows (`dim` 3) or columns (`dim` 4) blended from `a`'s last ones, as diffusers'
/// `blend_v` / `blend_h`: `a * (1 - y/e) + b * (y/e)` with f32 weights.
fn blend(a: &Tensor, b: &Tensor, extent: usize, dim: usize) -> Result<Tensor> {
    let (la, lb) = (a.dim(dim)?, b.dim(dim)?);
    let e = extent.min(la).min(lb);
    if e == 0 {
        return Ok(b.clone());
    }
    let mut shape = vec![1usize; 5];
    shape[dim] = e;
    let w: Vec<f32> = (0..e).map(|y| (y as f64 / e as f64) as f32).collect();
    let one_minus: Vec<f32> = (0..e).map(|y| (1.0 - y as f64 / e as f64) as f32).collect();
    let w = Tensor::from_vec(w, shape.as_slice(), b.device())?;
    let one_minus = Tensor::from_vec(one_minus, shape.as_slice(), b.device())?;
    let head = (a.narrow(dim, la - e, e)?.broadcast_mul(&one_minus)?
        + b.narrow(dim, 0, e)?.broadcast_mul(&w)?)?;
    if e == lb {
        return Ok(head);
    }
    Tensor::cat(&[&head, &b.narrow(dim, e, lb - e)?], dim)
}

impl WanVaeDecoder {
    /// [`Self::decode_streaming`] in tiles (see the module documentation). Latents no larger than
    /// one tile decode whole, as in diffusers. Chunks are handed on once every tile is decoded,
    /// f32 on the CPU, in the same 1-then-4-frame chunks.
    pub fn decode_tiled_streaming<E: From<candle_core::Error>>(
        &self,
        z: &Tensor,
        tiling: Tiling,
        on_chunk: &mut dyn FnMut(usize, Tensor) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let (_, _, _, h, w) = z.dims5()?;
        let (ratio, p) = (self.spatial_factor(), self.patch_size());
        let tile = tiling.tile_px / ratio;
        let stride = tiling.stride_px / ratio;
        if tile == 0
            || stride == 0
            || !tiling.stride_px.is_multiple_of(p)
            || !tiling.tile_px.is_multiple_of(p)
        {
            return Err(candle_core::Error::Msg(format!(
                "tiled VAE decode: {}px tiles every {}px do not fit a {ratio}x VAE",
                tiling.tile_px, tiling.stride_px
            ))
            .into());
        }
        if w <= tile && h <= tile {
            return self.decode_streaming(z, on_chunk);
        }
        let sample_stride = tiling.stride_px / p;
        let blend_extent = tiling.tile_px / p - sample_stride;
        let (sample_h, sample_w) = (h * ratio / p, w * ratio / p);
        let z = self.prepare(z)?;

        // Every tile, all frames, decoded with caches of its own; kept on the CPU in f32.
        let mut chunk_frames = Vec::new();
        let mut rows: Vec<Vec<Tensor>> = Vec::new();
        for i in (0..h).step_by(stride) {
            let mut row = Vec::new();
            for j in (0..w).step_by(stride) {
                let part = z
                    .narrow(3, i, tile.min(h - i))?
                    .narrow(4, j, tile.min(w - j))?;
                let mut frames = Vec::new();
                self.each_latent_frame(&part, &mut |x: Tensor| {
                    frames.push(x.to_dtype(DType::F32)?.to_device(&Device::Cpu)?);
                    Ok::<(), candle_core::Error>(())
                })?;
                if chunk_frames.is_empty() {
                    chunk_frames = frames.iter().map(|f| f.dim(1)).collect::<Result<_>>()?;
                }
                row.push(Tensor::cat(&frames, 1)?);
            }
            rows.push(row);
        }

        // Blend each tile with the (already blended) tiles above and to its left, keep its
        // stride's worth, then crop to the frame.
        let mut bands = Vec::new();
        for i in 0..rows.len() {
            let mut kept = Vec::new();
            for j in 0..rows[i].len() {
                let mut t = rows[i][j].clone();
                if i > 0 {
                    t = blend(&rows[i - 1][j], &t, blend_extent, 3)?;
                }
                if j > 0 {
                    t = blend(&rows[i][j - 1], &t, blend_extent, 4)?;
                }
                let (th, tw) = (t.dim(3)?, t.dim(4)?);
                kept.push(t.narrow(3, 0, sample_stride.min(th))?.narrow(
                    4,
                    0,
                    sample_stride.min(tw),
                )?);
                rows[i][j] = t;
            }
            bands.push(Tensor::cat(&kept, 4)?);
        }
        let full = Tensor::cat(&bands, 3)?;
        let full = full.narrow(3, 0, sample_h.min(full.dim(3)?))?.narrow(
            4,
            0,
            sample_w.min(full.dim(4)?),
        )?;

        let mut first = 0;
        for n in chunk_frames {
            let chunk =
                unpatchify(&full.narrow(1, first, n)?.contiguous()?, p)?.clamp(-1f32, 1f32)?;
            on_chunk(first, chunk)?;
            first += n;
        }
        Ok(())
    }
}
