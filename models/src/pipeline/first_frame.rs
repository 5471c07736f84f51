//! The first frame for image-to-video: read from a user's file with bounded sizes, resized to
//! cover the output size (Lanczos), centre-cropped, mapped to [-1, 1].

use candle_core::{Device, Result, Tensor};
use image::{imageops::FilterType, DynamicImage, GenericImageView};
use std::path::Path;

/// The largest image side read from a file.
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// The most the decoder may allocate for one image.
const MAX_IMAGE_BYTES: u64 = 1 << 30;
/// How much larger than the output the cover-resized image may be: an image whose aspect ratio
/// is this far from the output's would be resized into an enormous intermediate.
const MAX_COVER_FACTOR: u64 = 64;

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    limits
}

/// Decodes an image file's bytes (PNG, JPEG, or another format the build reads), refusing
/// sizes past [`MAX_IMAGE_SIDE`] before decoding.
pub fn decode_image(bytes: &[u8]) -> std::result::Result<DynamicImage, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits());
    reader.decode().map_err(|e| e.to_string())
}

/// Reads an image file (see [`decode_image`]).
pub fn load_image(path: &Path) -> std::result::Result<DynamicImage, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    decode_image(&bytes)
}

/// The size `image` is resized to before the centre crop: it covers `width` x `height`.
fn cover_size(iw: u32, ih: u32, w: u32, h: u32) -> (u32, u32) {
    let scale = (w as f64 / iw as f64).max(h as f64 / ih as f64);
    let rw = ((iw as f64 * scale).round() as u32).max(w);
    let rh = ((ih as f64 * scale).round() as u32).max(h);
    (rw, rh)
}

/// Resizes (if needed) and centre-crops `image` to exactly `width` x `height`.
pub fn fit_to_size(image: &DynamicImage, width: usize, height: usize) -> image::RgbImage {
    let (w, h) = (width as u32, height as u32);
    let (iw, ih) = image.dimensions();
    if (iw, ih) == (w, h) {
        return image.to_rgb8();
    }
    let (rw, rh) = cover_size(iw, ih, w, h);
    let resized = image.resize_exact(rw, rh, FilterType::Lanczos3);
    let (x, y) = ((rw - w) / 2, (rh - h) / 2);
    resized.crop_imm(x, y, w, h).to_rgb8()
}

/// `[1, 3, 1, H, W]` f32 in [-1, 1] (`pixel / 255 * 2 - 1`), as the reference preprocesses.
pub fn first_frame_tensor(
    image: &DynamicImage,
    width: usize,
    height: usize,
    device: &Device,
) -> Result<Tensor> {
    let (iw, ih) = image.dimensions();
    if iw == 0 || ih == 0 {
        candle_core::bail!("the first frame is {iw}x{ih}: it has no pixels");
    }
    let (rw, rh) = cover_size(iw, ih, width as u32, height as u32);
    if rw as u64 * rh as u64 > MAX_COVER_FACTOR * (width * height) as u64 {
        candle_core::bail!(
            "the first frame is {iw}x{ih}: its shape is too far from the {width}x{height} output to crop it; crop the image closer to the output's shape"
        );
    }
    let rgb = fit_to_size(image, width, height);
    let data: Vec<f32> = rgb
        .as_raw()
        .iter()
        .map(|&p| p as f32 / 255.0 * 2.0 - 1.0)
        .collect();
    Tensor::from_vec(data, (height, width, 3), &Device::Cpu)?
        .permute((2, 0, 1))?
        .reshape((1, 3, 1, height, width))?
        .to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_fitting_images_are_covered_and_centre_cropped() {
        // A 100x50 image whose left half is red and right half blue, fitted to 64x64: the scale
        // covers the height, so the crop keeps the centre where the colours meet.
        let mut img = image::RgbImage::new(100, 50);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 50 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            };
        }
        let out = fit_to_size(&DynamicImage::ImageRgb8(img), 64, 64);
        assert_eq!(out.dimensions(), (64, 64));
        assert_eq!(out.get_pixel(2, 32)[0], 255);
        assert_eq!(out.get_pixel(61, 32)[2], 255);
    }

    #[test]
    fn fitting_images_are_used_as_is() {
        let img = image::RgbImage::from_fn(32, 64, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let t = first_frame_tensor(&DynamicImage::ImageRgb8(img), 32, 64, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 3, 1, 64, 32]);
        let v: f32 = t
            .get(0)
            .unwrap()
            .get(1)
            .unwrap()
            .get(0)
            .unwrap()
            .get(10)
            .unwrap()
            .get(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((v - (10.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-7);
    }
}
