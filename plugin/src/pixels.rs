//! Writing frames and the placeholder into the host's output image: any depth, any row bytes
//! (the safe layer handles negative ones), only inside the render window, at any render scale.
//!
//! OFX images are bottom-up (row `y1` is the bottom); frames are top-down. At render scale `s`
//! an output pixel `(x, y)` covers the frame pixels `[x/s, (x+1)/s) x [y/s, (y+1)/s)` (at least
//! one): their 16-bit codes are averaged (rounded), then converted to the output colour.

use crate::colour::{tables, Colour, Tables};
use ofx_bindings::sys::OfxRectI;
use ofx_bindings::{Image, OfxError, Pixel, PixelDepth, Result};
use t2v_bridge::Frame;

/// An output channel type and how a 16-bit code or a [0, 1] value becomes one.
pub trait Out: Pixel + Default {
    fn from_code(tables: &Tables, code: u16) -> Self;
    fn from_unit(v: f32) -> Self;
}
impl Out for f32 {
    fn from_code(t: &Tables, code: u16) -> f32 {
        t.float[code as usize]
    }
    fn from_unit(v: f32) -> f32 {
        v
    }
}
impl Out for u16 {
    fn from_code(t: &Tables, code: u16) -> u16 {
        t.short[code as usize]
    }
    fn from_unit(v: f32) -> u16 {
        (v.clamp(0.0, 1.0) * 65535.0).round() as u16
    }
}
impl Out for u8 {
    fn from_code(t: &Tables, code: u16) -> u8 {
        t.byte[code as usize]
    }
    fn from_unit(v: f32) -> u8 {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// The render window clipped to the image bounds.
fn clip_window(image: &Image, window: OfxRectI) -> OfxRectI {
    let b = image.bounds();
    OfxRectI {
        x1: window.x1.max(b.x1),
        y1: window.y1.max(b.y1),
        x2: window.x2.min(b.x2),
        y2: window.y2.min(b.y2),
    }
}

/// Calls `row_fn(y, x1, x2, out)` for every row of the window, `out` being its pixels
/// `x1..x2` (4 channels each). `rows` are the image's rows with their `y`; `x0` is the
/// image's left bound.
fn for_each_row<T: Out>(
    rows: Vec<(i32, &mut [T])>,
    x0: i32,
    w: OfxRectI,
    mut row_fn: impl FnMut(i32, i32, i32, &mut [T]),
) {
    if w.x2 <= w.x1 {
        return;
    }
    for (y, row) in rows {
        if y < w.y1 || y >= w.y2 {
            continue;
        }
        let start = (w.x1 - x0) as usize * 4;
        let end = (w.x2 - x0) as usize * 4;
        row_fn(y, w.x1, w.x2, &mut row[start..end]);
    }
}

/// Source index range `[a, b)` covered by output index `i` at `scale`, within `0..len`.
fn span(i: i32, scale: f64, len: usize) -> (usize, usize) {
    let a = ((i as f64 / scale).floor().max(0.0) as usize).min(len.saturating_sub(1));
    let b = (((i + 1) as f64 / scale).floor() as usize).clamp(a + 1, len);
    (a, b)
}

/// [`write_frame`] over plain rows (`x0`: the left bound; `window` inside the bounds).
pub fn write_frame_rows<T: Out>(
    rows: Vec<(i32, &mut [T])>,
    x0: i32,
    window: OfxRectI,
    frame: &Frame,
    scale: f64,
    colour: Colour,
) {
    let t = tables(colour);
    let (fw, fh) = (frame.width(), frame.height());
    let rgb = frame.rgb16();
    let one = T::from_unit(1.0);
    let exact = (scale - 1.0).abs() < 1e-9;
    for_each_row::<T>(rows, x0, window, |y, x1, _, out| {
        if exact {
            // Canonical pixel y (from the bottom) is frame row fh-1-y (from the top).
            if y < 0 || y as usize >= fh {
                out.fill(T::default());
                return;
            }
            let src = &rgb[(fh - 1 - y as usize) * fw * 3..][..fw * 3];
            for (i, px) in out.chunks_exact_mut(4).enumerate() {
                let x = x1 + i as i32;
                if x < 0 || x as usize >= fw {
                    px.fill(T::default());
                    continue;
                }
                let s = &src[x as usize * 3..x as usize * 3 + 3];
                px[0] = T::from_code(t, s[0]);
                px[1] = T::from_code(t, s[1]);
                px[2] = T::from_code(t, s[2]);
                px[3] = one;
            }
            return;
        }
        let (ya, yb) = span(y, scale, fh);
        for (i, px) in out.chunks_exact_mut(4).enumerate() {
            let (xa, xb) = span(x1 + i as i32, scale, fw);
            let mut sum = [0u64; 3];
            for sy in ya..yb {
                let row = &rgb[(fh - 1 - sy) * fw * 3..][..fw * 3];
                for sx in xa..xb {
                    for c in 0..3 {
                        sum[c] += row[sx * 3 + c] as u64;
                    }
                }
            }
            let n = ((yb - ya) * (xb - xa)) as u64;
            for c in 0..3 {
                px[c] = T::from_code(t, ((sum[c] + n / 2) / n) as u16);
            }
            px[3] = one;
        }
    })
}

fn write_frame_as<T: Out>(
    image: &mut Image,
    window: OfxRectI,
    frame: &Frame,
    scale: f64,
    colour: Colour,
) -> Result<()> {
    let (x0, w) = (image.bounds().x1, clip_window(image, window));
    write_frame_rows(image.rows_mut::<T>()?, x0, w, frame, scale, colour);
    Ok(())
}

fn unsupported(depth: PixelDepth) -> OfxError {
    OfxError::new(
        ofx_bindings::sys::kOfxStatErrImageFormat,
        format!("cannot render {depth:?} images"),
    )
}

/// Writes `frame` into the render window of `image`.
pub fn write_frame(
    image: &mut Image,
    window: OfxRectI,
    frame: &Frame,
    scale: f64,
    colour: Colour,
) -> Result<()> {
    match image.pixel_depth() {
        PixelDepth::Float => write_frame_as::<f32>(image, window, frame, scale, colour),
        PixelDepth::Short => write_frame_as::<u16>(image, window, frame, scale, colour),
        PixelDepth::Byte => write_frame_as::<u8>(image, window, frame, scale, colour),
        other => Err(unsupported(other)),
    }
}

/// Placeholder colours (display values, written as they are whatever the colour choice).
pub const PLACEHOLDER_DARK: f32 = 0.06;
pub const PLACEHOLDER_STRIPE: f32 = 0.16;
pub const PLACEHOLDER_BAR_DONE: [f32; 3] = [0.95, 0.55, 0.10];
pub const PLACEHOLDER_BAR_LEFT: [f32; 3] = [0.30, 0.30, 0.30];
/// Stripe period in canonical pixels.
pub const STRIPE_PERIOD: i64 = 32;

/// The placeholder's colour at canonical pixel `(x, y)` (from the bottom left) of a
/// `width x height` frame; `progress` draws the bar (`None`: nothing is being generated).
pub fn placeholder_pixel(
    x: i64,
    y: i64,
    width: i64,
    height: i64,
    progress: Option<f32>,
) -> [f32; 3] {
    if let Some(fraction) = progress {
        let (bar_y1, bar_y2) = (
            height * 46 / 100,
            (height * 54 / 100).max(height * 46 / 100 + 1),
        );
        if y >= bar_y1 && y < bar_y2 {
            let done = (fraction.clamp(0.0, 1.0) as f64 * width as f64) as i64;
            return if x < done {
                PLACEHOLDER_BAR_DONE
            } else {
                PLACEHOLDER_BAR_LEFT
            };
        }
    }
    // Diagonal stripes rising to the right (x - y is constant along a stripe).
    if (x - y).rem_euclid(STRIPE_PERIOD) < STRIPE_PERIOD / 2 {
        [PLACEHOLDER_STRIPE; 3]
    } else {
        [PLACEHOLDER_DARK; 3]
    }
}

fn write_placeholder_as<T: Out>(
    image: &mut Image,
    window: OfxRectI,
    size: (usize, usize),
    scale: f64,
    progress: Option<f32>,
) -> Result<()> {
    let (w, h) = (size.0 as i64, size.1 as i64);
    let one = T::from_unit(1.0);
    let (x0, window) = (image.bounds().x1, clip_window(image, window));
    for_each_row::<T>(image.rows_mut::<T>()?, x0, window, |y, x1, _, out| {
        let cy = (y as f64 / scale).floor() as i64;
        for (i, px) in out.chunks_exact_mut(4).enumerate() {
            let cx = ((x1 + i as i32) as f64 / scale).floor() as i64;
            let v = placeholder_pixel(cx, cy, w, h, progress);
            px[0] = T::from_unit(v[0]);
            px[1] = T::from_unit(v[1]);
            px[2] = T::from_unit(v[2]);
            px[3] = one;
        }
    });
    Ok(())
}

/// Writes the placeholder (dark, diagonal stripes, and a progress bar while generating).
pub fn write_placeholder(
    image: &mut Image,
    window: OfxRectI,
    size: (usize, usize),
    scale: f64,
    progress: Option<f32>,
) -> Result<()> {
    match image.pixel_depth() {
        PixelDepth::Float => write_placeholder_as::<f32>(image, window, size, scale, progress),
        PixelDepth::Short => write_placeholder_as::<u16>(image, window, size, scale, progress),
        PixelDepth::Byte => write_placeholder_as::<u8>(image, window, size, scale, progress),
        other => Err(unsupported(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_source() {
        assert_eq!(span(0, 0.5, 64), (0, 2));
        assert_eq!(span(31, 0.5, 64), (62, 64));
        assert_eq!(span(0, 1.0, 64), (0, 1));
        assert_eq!(span(10, 0.3, 64), (33, 36));
        // Beyond the source: the last pixel, never empty.
        assert_eq!(span(40, 0.5, 64), (63, 64));
    }

    fn frame(w: usize, h: usize) -> Frame {
        Frame::from_rgb16(
            w,
            h,
            (0..w * h * 3).map(|i| (i * 7919 % 65536) as u16).collect(),
        )
    }

    fn write(frame: &Frame, w: usize, h: usize, scale: f64, colour: Colour) -> Vec<f32> {
        let mut buf = vec![-1.0f32; w * h * 4];
        let rows: Vec<(i32, &mut [f32])> = buf
            .chunks_exact_mut(w * 4)
            .enumerate()
            .map(|(y, r)| (y as i32, r))
            .collect();
        let window = OfxRectI {
            x1: 0,
            y1: 0,
            x2: w as i32,
            y2: h as i32,
        };
        write_frame_rows(rows, 0, window, frame, scale, colour);
        buf
    }

    #[test]
    fn frames_are_flipped_to_bottom_up_and_downsampled_by_averaging() {
        let f = frame(4, 2);
        let out = write(&f, 4, 2, 1.0, Colour::SrgbDisplay);
        // Output row 0 (bottom) is frame row 1 (top-down).
        let code = f.rgb16()[(4 + 2) * 3 + 1];
        assert_eq!(out[(2 * 4) + 1], code as f32 / 65535.0);
        assert_eq!(out[3], 1.0);
        let half = write(&f, 2, 1, 0.5, Colour::SrgbDisplay);
        let c = |x: usize, y: usize| f.rgb16()[(y * 4 + x) * 3] as u64;
        let avg = (c(0, 0) + c(1, 0) + c(0, 1) + c(1, 1) + 2) / 4;
        assert_eq!(half[0], avg as f32 / 65535.0);
    }

    /// Every pixel of a full-size frame is the colour conversion of its code, flipped to
    /// bottom-up, alpha 1 (the timing of this path: `cargo bench -p t2v-ofx-plugin --bench pixels`).
    #[test]
    fn a_full_frame_is_converted_pixel_by_pixel() {
        let (w, h) = (832, 480);
        let f = frame(w, h);
        for colour in [Colour::SrgbDisplay, Colour::Linear, Colour::Rec709] {
            let out = write(&f, w, h, 1.0, colour);
            for y in 0..h {
                for x in 0..w {
                    let src = &f.rgb16()[((h - 1 - y) * w + x) * 3..][..3];
                    let px = &out[(y * w + x) * 4..][..4];
                    for c in 0..3 {
                        assert_eq!(px[c], colour.convert(src[c]), "{colour:?} ({x},{y})");
                    }
                    assert_eq!(px[3], 1.0);
                }
            }
        }
    }

    #[test]
    fn placeholder_has_stripes_and_a_bar() {
        assert_eq!(
            placeholder_pixel(0, 0, 64, 64, None),
            [PLACEHOLDER_STRIPE; 3]
        );
        assert_eq!(
            placeholder_pixel(16, 0, 64, 64, None),
            [PLACEHOLDER_DARK; 3]
        );
        assert_eq!(
            placeholder_pixel(10, 32, 64, 64, Some(0.5)),
            PLACEHOLDER_BAR_DONE
        );
        assert_eq!(
            placeholder_pixel(40, 32, 64, 64, Some(0.5)),
            PLACEHOLDER_BAR_LEFT
        );
    }
}
