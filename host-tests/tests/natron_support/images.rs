//! The image files of the real-host suite, read into one shape: values in [0, 1] (8-bit codes
//! divided by 255), the top row first.

use std::path::Path;

pub struct Image {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<f32>,
}

impl Image {
    /// The pixel at (x, y), y counted from the top.
    pub fn at(&self, x: usize, y: usize) -> &[f32] {
        let i = (y * self.width + x) * self.channels;
        &self.data[i..i + self.channels]
    }

    /// Its RGB as 8-bit codes.
    pub fn codes(&self, x: usize, y: usize) -> [u8; 3] {
        let p = self.at(x, y);
        [0, 1, 2].map(|c| (p[c].clamp(0.0, 1.0) * 255.0).round() as u8)
    }

    /// An 8-bit RGB PNG of it (values rounded), as a user would hand `t2v --image` a frame.
    pub fn write_png(&self, path: &Path) {
        let mut rgb = Vec::with_capacity(self.width * self.height * 3);
        for y in 0..self.height {
            for x in 0..self.width {
                rgb.extend_from_slice(&self.codes(x, y));
            }
        }
        image::RgbImage::from_raw(self.width as u32, self.height as u32, rgb)
            .unwrap()
            .save(path)
            .unwrap();
    }
}

/// A PNG, 8 or 16 bits, as RGB.
pub fn read_png(path: &Path) -> Image {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb32f();
    Image {
        width: img.width() as usize,
        height: img.height() as usize,
        channels: 3,
        data: img.into_raw(),
    }
}

/// A Portable Float Map: `PF` (RGB) or `Pf` (grey), width and height, a scale whose sign gives
/// the byte order (negative: little endian), then rows from the bottom up.
pub fn read_pfm(path: &Path) -> Image {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut header = Vec::new();
    let mut at = 0;
    while header.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        header.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    at += 1; // the single whitespace character before the data
    let channels = match header[0].as_str() {
        "PF" => 3,
        "Pf" => 1,
        other => panic!("{}: not a PFM ({other})", path.display()),
    };
    let width: usize = header[1].parse().unwrap();
    let height: usize = header[2].parse().unwrap();
    let little = header[3].parse::<f32>().unwrap() < 0.0;
    let body = &bytes[at..];
    assert_eq!(
        body.len(),
        width * height * channels * 4,
        "{}",
        path.display()
    );
    let value = |i: usize| {
        let b: [u8; 4] = body[i * 4..i * 4 + 4].try_into().unwrap();
        if little {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        }
    };
    let row = width * channels;
    let mut data = Vec::with_capacity(body.len() / 4);
    for y in (0..height).rev() {
        data.extend((y * row..(y + 1) * row).map(value));
    }
    Image {
        width,
        height,
        channels,
        data,
    }
}

/// An f32 tensor of a safetensors file, flattened.
pub fn read_safetensors_f32(path: &Path, name: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensor = tensors.tensor(name).unwrap();
    assert_eq!(tensor.dtype(), safetensors::Dtype::F32);
    tensor
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The sRGB EOTF (IEC 61966-2-1), as docs/node.md defines `linear` (written here from the
/// formula, not taken from the plugin: the reference must not share the code it judges).
pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// The BT.709 OETF, as docs/node.md defines `Rec.709` (applied to the linear values).
pub fn linear_to_rec709(l: f32) -> f32 {
    if l < 0.018 {
        4.5 * l
    } else {
        1.099 * l.powf(0.45) - 0.099
    }
}
