//! Host-owned output images with unusual row layouts, and the rendered result.

use ofx_bindings::sys::OfxRectI;
use ofx_bindings::PixelDepth;
use std::path::Path;

/// How the host lays out the rows of an output image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowLayout {
    /// Bytes of padding after each row.
    pub padding: usize,
    /// Negative row bytes: the data pointer is the start of the bottom row, which is the
    /// *last* row in memory, and each row up is `row_bytes` lower (OFX allows this).
    pub negative: bool,
}

impl RowLayout {
    pub fn padded(padding: usize) -> Self {
        RowLayout {
            padding,
            negative: false,
        }
    }
    pub fn negative(padding: usize) -> Self {
        RowLayout {
            padding,
            negative: true,
        }
    }
}

/// Bytes before and after the image, and the value of every byte the plugin must not
/// touch (guards and row padding); checked after each render.
const GUARD: usize = 64;
const CANARY: u8 = 0xA5;

pub(crate) struct HostBuffer {
    storage: Vec<u64>, // u64 for 8-byte alignment of the pixels
    pub width: usize,
    pub height: usize,
    pub bytes_per_pixel: usize,
    pub stride: usize,
    pub negative: bool,
    pub depth: PixelDepth,
}

impl HostBuffer {
    pub fn new(width: usize, height: usize, depth: PixelDepth, layout: RowLayout) -> Self {
        let bytes_per_pixel = 4 * depth.bytes_per_component();
        let stride = width * bytes_per_pixel + layout.padding;
        let total = GUARD * 2 + stride * height;
        let mut storage = vec![0u64; total.div_ceil(8)];
        bytemuck_fill(&mut storage, CANARY);
        HostBuffer {
            storage,
            width,
            height,
            bytes_per_pixel,
            stride,
            negative: layout.negative,
            depth,
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: viewing initialised u64s as bytes; u8 has no alignment or validity needs.
        unsafe {
            std::slice::from_raw_parts(self.storage.as_ptr() as *const u8, self.storage.len() * 8)
        }
    }

    /// Offset (in `bytes()`) of the start of row `y`, 0 being the bottom row.
    fn row_offset(&self, y: usize) -> usize {
        if self.negative {
            GUARD + (self.height - 1 - y) * self.stride
        } else {
            GUARD + y * self.stride
        }
    }

    /// `kOfxImagePropData`: the bottom row's start.
    pub fn data_ptr(&mut self) -> usize {
        let offset = if self.height == 0 {
            GUARD
        } else {
            self.row_offset(0)
        };
        self.storage.as_mut_ptr() as usize + offset
    }

    /// `kOfxImagePropRowBytes`.
    pub fn row_bytes(&self) -> i32 {
        if self.negative {
            -(self.stride as i32)
        } else {
            self.stride as i32
        }
    }

    /// The first byte outside the pixels that changed, if any.
    pub fn check_canaries(&self) -> Result<(), String> {
        let bytes = self.bytes();
        let row_len = self.width * self.bytes_per_pixel;
        let mut inside = vec![false; bytes.len()];
        for y in 0..self.height {
            let o = self.row_offset(y);
            inside[o..o + row_len].iter_mut().for_each(|b| *b = true);
        }
        match bytes
            .iter()
            .zip(&inside)
            .position(|(b, inside)| !inside && *b != CANARY)
        {
            None => Ok(()),
            Some(i) => Err(format!(
                "byte {} of {} outside the rows changed",
                i as isize - GUARD as isize,
                bytes.len() - 2 * GUARD
            )),
        }
    }

    /// The pixels, bottom row first, rows packed.
    pub fn packed_pixels(&self) -> Vec<u8> {
        let bytes = self.bytes();
        let row_len = self.width * self.bytes_per_pixel;
        let mut out = Vec::with_capacity(row_len * self.height);
        for y in 0..self.height {
            let o = self.row_offset(y);
            out.extend_from_slice(&bytes[o..o + row_len]);
        }
        out
    }
}

fn bytemuck_fill(storage: &mut [u64], byte: u8) {
    let word = u64::from_ne_bytes([byte; 8]);
    storage.iter_mut().for_each(|w| *w = word);
}

/// One rendered frame, copied out of the host buffer after the render.
#[derive(Debug, Clone)]
pub struct RenderedImage {
    pub time: f64,
    pub depth: PixelDepth,
    pub bounds: OfxRectI,
    /// Row bytes the plugin was given (negative for bottom-up memory).
    pub row_bytes: i32,
    /// RGBA pixels, bottom row first, rows packed, native-endian channels.
    pixels: Vec<u8>,
}

impl RenderedImage {
    pub(crate) fn new(time: f64, bounds: OfxRectI, buffer: &HostBuffer) -> Self {
        RenderedImage {
            time,
            depth: buffer.depth,
            bounds,
            row_bytes: buffer.row_bytes(),
            pixels: buffer.packed_pixels(),
        }
    }
    pub fn width(&self) -> usize {
        (self.bounds.x2 - self.bounds.x1) as usize
    }
    pub fn height(&self) -> usize {
        (self.bounds.y2 - self.bounds.y1) as usize
    }
    /// Raw packed pixels, bottom row first.
    pub fn raw(&self) -> &[u8] {
        &self.pixels
    }
    fn channel_bytes(&self, x: usize, y: usize) -> &[u8] {
        assert!(
            x < self.width() && y < self.height(),
            "pixel ({x}, {y}) outside {}x{}",
            self.width(),
            self.height()
        );
        let bpc = self.depth.bytes_per_component();
        let o = (y * self.width() + x) * 4 * bpc;
        &self.pixels[o..o + 4 * bpc]
    }
    /// Pixel at (x, y) from the bottom left of the bounds, of a Byte image.
    pub fn pixel_u8(&self, x: usize, y: usize) -> [u8; 4] {
        assert_eq!(self.depth, PixelDepth::Byte);
        self.channel_bytes(x, y).try_into().unwrap()
    }
    pub fn pixel_u16(&self, x: usize, y: usize) -> [u16; 4] {
        assert_eq!(self.depth, PixelDepth::Short);
        let b = self.channel_bytes(x, y);
        std::array::from_fn(|i| u16::from_ne_bytes([b[2 * i], b[2 * i + 1]]))
    }
    pub fn pixel_f32(&self, x: usize, y: usize) -> [f32; 4] {
        assert_eq!(self.depth, PixelDepth::Float);
        let b = self.channel_bytes(x, y);
        std::array::from_fn(|i| f32::from_ne_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
    }
    /// Any depth, as 0..1 floats.
    pub fn pixel_normalised(&self, x: usize, y: usize) -> [f32; 4] {
        match self.depth {
            PixelDepth::Byte => self.pixel_u8(x, y).map(|v| v as f32 / 255.0),
            PixelDepth::Short => self.pixel_u16(x, y).map(|v| v as f32 / 65535.0),
            PixelDepth::Float => self.pixel_f32(x, y),
            other => panic!("no pixels of depth {other:?}"),
        }
    }
    /// 8-bit RGBA, top row first (image files), floats clamped and rounded.
    pub fn to_rgba8(&self) -> image::RgbaImage {
        let (w, h) = (self.width() as u32, self.height() as u32);
        image::RgbaImage::from_fn(w, h, |x, y| {
            let p = self.pixel_normalised(x as usize, (h - 1 - y) as usize);
            image::Rgba(p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
        })
    }
    pub fn save_png(&self, path: &Path) -> Result<(), image::ImageError> {
        self.to_rgba8()
            .save_with_format(path, image::ImageFormat::Png)
    }
}
