//! Image-to-video through the node: an image connected to the optional `Source` clip becomes
//! the first frame, and the node shows what the generation service makes from that image.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_common::*;

/// Left half red, right half blue, top-down RGB: a first frame the model can't mistake.
fn split_colours(x: usize) -> [u8; 3] {
    if x < SIZE / 2 {
        [255, 0, 0]
    } else {
        [0, 0, 255]
    }
}

#[test]
fn source_clip_supplies_the_first_frame() {
    let prompt = "image to video: the red half slides over the blue";
    let seed = 11;
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, seed as i32);
    let rgba: Vec<f32> = (0..SIZE * SIZE)
        .flat_map(|i| {
            let [r, g, b] = split_colours(i % SIZE);
            [r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0, 1.0]
        })
        .collect();
    instance.connect_input("Source", SIZE, SIZE, &rgba).unwrap();
    let images = instance
        .render_sequence(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &RenderRequest::new(0.0, PixelDepth::Float),
        )
        .unwrap();

    // What the service makes from the same settings and the same 8-bit image.
    let first = image::RgbImage::from_fn(SIZE as u32, SIZE as u32, |x, _| {
        image::Rgb(split_colours(x as usize))
    });
    let expected = reference_from_image(prompt, seed, first);
    for (image, frame) in images.iter().zip(&expected) {
        assert_shows(image, frame);
    }
    // The image changed the clip: it is not the text-only one.
    let text_only = reference(prompt, seed);
    assert!(
        expected[0].rgb16() != text_only[0].rgb16(),
        "the first frame must come from the Source image"
    );
}

#[test]
fn the_host_refuses_to_connect_the_output_or_a_wrong_sized_image() {
    let host = Host::new(HostProfile::natron());
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    assert!(instance.connect_input("Output", 1, 1, &[0.0; 4]).is_err());
    assert!(instance.connect_input("Source", 2, 2, &[0.0; 4]).is_err());
}
