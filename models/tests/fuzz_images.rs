//! Hostile first-frame images (the `--image` file of image-to-video): PNG and JPEG seeds
//! mutated, and random bytes, read and fitted to the output as generation does. Every input is
//! refused with an error or becomes a first frame: no panic, no allocation sized by a header.

mod fuzz_support;

use candle_core::Device;
use fuzz_support::{assert_refused, fuzz, hostile};
use image::{DynamicImage, ImageFormat, RgbImage};
use t2v_models::pipeline::first_frame::{decode_image, first_frame_tensor};

record_allocations!();

fn encoded(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image.clone())
        .write_to(&mut bytes, format)
        .unwrap();
    bytes.into_inner()
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 20) as u8, (y * 30) as u8, 99])
    })
}

/// What image-to-video does with the file: decode, then cover and crop to a 64x32 output.
fn first_frame(bytes: &[u8]) -> bool {
    decode_image(bytes)
        .ok()
        .is_some_and(|image| first_frame_tensor(&image, 64, 32, &Device::Cpu).is_ok())
}

#[test]
fn fuzz_first_frame_images() {
    let png = encoded(&gradient(12, 7), ImageFormat::Png);
    let jpeg = encoded(&gradient(12, 7), ImageFormat::Jpeg);
    assert!(first_frame(&png) && first_frame(&jpeg));

    // Found by hand while fuzzing: a 1x4000 strip was resized to 64x256000 before the crop.
    let strip = encoded(&gradient(1, 4000), ImageFormat::Png);
    assert_refused("a 1x4000 strip", || first_frame(&strip));
    // A PNG header claiming 100000 x 100000 pixels.
    let mut huge = png.clone();
    let ihdr = huge.windows(4).position(|w| w == b"IHDR").unwrap() + 4;
    huge[ihdr..ihdr + 8].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
    assert_refused("a 100000x100000 PNG header", || first_frame(&huge));

    fuzz("PNG first frame", 5000, hostile(png), first_frame);
    fuzz("JPEG first frame", 5000, hostile(jpeg), first_frame);
}
