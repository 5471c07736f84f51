//! The optional `Source` input as the model's first frame (image-to-video): the host's image,
//! in the node's colour (the host's working space for `auto`, or the clip's colourspace where
//! a colour-managed host names it), un-premultiplied when the host premultiplies, made display
//! sRGB, 8 bits per channel, top-down.

use crate::colour::Colour;
use crate::working_space;
use ofx_bindings::sys::*;
use ofx_bindings::{ImageEffect, PixelDepth};
use t2v_bridge::Image;

/// One RGBA pixel (values in the image's colour, alpha in [0, 1]) as the model's sRGB bytes.
pub fn rgb8(p: [f32; 4], premultiplied: bool, colour: Colour) -> [u8; 3] {
    let alpha = p[3];
    let unpremultiply = premultiplied && alpha > 0.0 && alpha < 1.0;
    let to8 = |v: f32| {
        let v = if unpremultiply { v / alpha } else { v };
        let v = if v.is_finite() { v } else { 0.0 };
        (colour.to_display(v) * 255.0).round() as u8
    };
    [to8(p[0]), to8(p[1]), to8(p[2])]
}

/// The `Source` clip's image at `time` as the first frame, read as `colour`; `None` when it is
/// not connected or gives no usable image (Resolve reports every clip connected).
pub fn first_frame(effect: &ImageEffect, time: f64, colour: Colour) -> Option<Image> {
    let clip = effect.clip("Source").ok()?;
    if !clip.is_connected().unwrap_or(false) {
        return None;
    }
    let img = clip.image(time, None).ok()?;
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 || img.components() != ofx_bindings::Components::Rgba {
        return None;
    }
    let colour = working_space::input_colour(effect, &clip, colour);
    let premultiplied = img
        .properties()
        .get_string(kOfxImageEffectPropPreMultiplication, 0)
        .or_else(|_| {
            clip.properties()
                .get_string(kOfxImageEffectPropPreMultiplication, 0)
        })
        .is_ok_and(|p| p.as_bytes() == kOfxImagePreMultiplied.to_bytes());
    let mut rgb = vec![0u8; w * h * 3];
    let b = img.bounds();
    for y in b.y1..b.y2 {
        let top = (b.y2 - 1 - y) as usize;
        let out = &mut rgb[top * w * 3..(top + 1) * w * 3];
        let mut put = |pixels: &mut dyn Iterator<Item = [f32; 4]>| {
            for (p, o) in pixels.zip(out.chunks_exact_mut(3)) {
                o.copy_from_slice(&rgb8(p, premultiplied, colour));
            }
        };
        match img.pixel_depth() {
            PixelDepth::Float => put(&mut img
                .row::<f32>(y)
                .ok()?
                .chunks_exact(4)
                .map(|p| [p[0], p[1], p[2], p[3]])),
            PixelDepth::Short => put(&mut img
                .row::<u16>(y)
                .ok()?
                .chunks_exact(4)
                .map(|p| [p[0], p[1], p[2], p[3]].map(|v| v as f32 / 65535.0))),
            PixelDepth::Byte => put(&mut img
                .row::<u8>(y)
                .ok()?
                .chunks_exact(4)
                .map(|p| [p[0], p[1], p[2], p[3]].map(|v| v as f32 / 255.0))),
            _ => return None,
        }
    }
    Image::from_rgb8(w as u32, h as u32, rgb).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_premultiplied_pixels_become_the_models_srgb() {
        // Linear 0.2140 is sRGB 0.5 (code 128); premultiplied by alpha 0.5 it is 0.1070.
        let half = crate::colour::srgb_to_linear(128.0 / 255.0);
        assert_eq!(
            rgb8([half * 0.5, 0.0, 1.0 * 0.5, 0.5], true, Colour::Linear),
            [128, 0, 255]
        );
        // Not premultiplied: the values are used as they are.
        assert_eq!(
            rgb8([half, 0.0, 1.0, 0.5], false, Colour::Linear),
            [128, 0, 255]
        );
        // sRGB display input is taken as is; Rec.709 input is decoded with the BT.709 curve.
        assert_eq!(
            rgb8([0.5, 0.25, 1.0, 1.0], true, Colour::SrgbDisplay),
            [128, 64, 255]
        );
        let rec709 = crate::colour::linear_to_rec709(half);
        assert_eq!(
            rgb8([rec709, 0.0, 0.0, 1.0], true, Colour::Rec709),
            [128, 0, 0]
        );
        // Transparent, negative, over-range and NaN values never panic.
        assert_eq!(rgb8([0.3, -1.0, f32::NAN, 0.0], true, Colour::Linear)[1], 0);
        assert_eq!(rgb8([8.0, 0.0, 0.0, 1.0], true, Colour::Linear)[0], 255);
    }
}
