//! Output and input colour follow the host's working space: by default (`auto`) Nuke and Natron
//! get linear values that their writers encode back to the model's sRGB, Resolve gets the
//! model's values as they are, a colour-managed host gets what it asks for and is told what it
//! got; an explicit choice stays; the `Source` input is read in the same colour, premultiplied
//! alpha undone.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::colour_management::CLIP_COLOURSPACE;
use ofx_test_host::*;
use t2v_bridge::Frame;
use t2v_common::*;

const AUTO: i32 = 3;

/// A node on the tiny model with the default (`auto`) colour, generated.
fn generated(host: &Host, context: Context, prompt: &str, seed: i32) -> Instance {
    let plugin = node_plugin(host);
    let instance = plugin.create_instance(context).unwrap();
    configure(&instance, prompt, seed);
    instance.set_param("colour", AUTO).unwrap();
    instance.push_button("generate").unwrap();
    assert!(string_param(&instance, "status").starts_with("Ready"));
    instance
}

/// What the host's 8-bit writer stores for the node's output equals the model's own 8-bit
/// pixels (within one code for rounding).
fn assert_written_as_the_model_made_it(image: &RenderedImage, frame: &Frame, space: WorkingSpace) {
    for y in 0..image.height() {
        for x in 0..image.width() {
            let c = code(frame, x, y);
            let p = image.pixel_normalised(x, y);
            for k in 0..3 {
                let model = (c[k] as f32 / 65535.0 * 255.0).round() as i32;
                let written = space.written_8bit(p[k]) as i32;
                assert!(
                    (written - model).abs() <= 1,
                    "pixel ({x},{y}) channel {k}: the host writes {written}, the model made {model}"
                );
            }
        }
    }
}

#[test]
fn auto_gives_linear_to_nuke_and_natron_and_display_values_to_resolve() {
    // The fault: Natron wrote a background of 19/255 as 78/255 (sRGB values encoded again).
    for (profile, context) in [
        (HostProfile::natron(), Context::Generator),
        (HostProfile::nuke(), Context::General),
        (HostProfile::resolve(), Context::Generator),
    ] {
        let space = profile.working_space;
        let name = profile.name.clone();
        let host = Host::new(profile);
        let prompt = format!("colour in {name}: a red door");
        let instance = generated(&host, context, &prompt, 21);
        let plugin = instance.plugin().clone();
        assert_eq!(
            plugin
                .describe_in_context(context)
                .unwrap()
                .param_properties("colour")
                .unwrap()
                .get_int(ofx_bindings::sys::kOfxParamPropDefault, 0)
                .unwrap(),
            AUTO,
            "auto is the default"
        );
        let frame = &reference(&prompt, 21)[2];
        let image = instance.render(3.0, PixelDepth::Float, 0).unwrap();
        match space {
            WorkingSpace::SceneLinear => assert_shows_linear(&image, frame),
            WorkingSpace::Display => assert_shows(&image, frame),
        }
        assert_written_as_the_model_made_it(&image, frame, space);
        // Written with the wrong colour, the file would not show the model's pixels.
        let wrong = match space {
            WorkingSpace::SceneLinear => WorkingSpace::Display,
            WorkingSpace::Display => WorkingSpace::SceneLinear,
        };
        let (x, y) = (20, 30);
        let c = (code(frame, x, y)[0] as f32 / 65535.0 * 255.0).round() as i32;
        if (30..220).contains(&c) {
            assert!(
                (wrong.written_8bit(image.pixel_f32(x, y)[0]) as i32 - c).abs() > 3,
                "{name}: the check can tell the spaces apart"
            );
        }

        // An explicit choice stays what it is (a script saved with sRGB display keeps it).
        instance.set_param("colour", 0).unwrap();
        assert_shows(&instance.render(3.0, PixelDepth::Float, 0).unwrap(), frame);
    }
}

#[test]
fn a_colour_managed_host_gets_its_working_space_or_is_told_what_it_got() {
    let core = "OfxImageEffectPropColourManagementCore";
    for (working, expected_space, linear) in [
        ("ACEScg", "lin_rec709_srgb", true),
        ("lin_rec709_srgb", "lin_rec709_srgb", true),
        ("srgb_tx", "srgb_tx", false),
    ] {
        let host = Host::new(HostProfile::generic().colour_managed(core, working));
        let prompt = format!("colour managed {working}: a blue boat");
        let instance = generated(&host, Context::Generator, &prompt, 23);
        let output = instance.clip_props("Output").unwrap();
        assert_eq!(
            output.get_string(CLIP_COLOURSPACE, 0).unwrap(),
            expected_space,
            "working space {working}"
        );
        let frame = &reference(&prompt, 23)[0];
        let image = instance.render(1.0, PixelDepth::Float, 0).unwrap();
        if linear {
            assert_shows_linear(&image, frame);
        } else {
            assert_shows(&image, frame);
        }
        // The node asks for its Source input in the colour it produces.
        assert_eq!(
            instance
                .clip_props("Source")
                .unwrap()
                .get_string(CLIP_COLOURSPACE, 0)
                .unwrap(),
            expected_space
        );
        // An explicit choice is announced as what it is.
        instance.set_param("colour", 0).unwrap();
        instance.get_clip_preferences().unwrap();
        assert_eq!(
            instance
                .clip_props("Output")
                .unwrap()
                .get_string(CLIP_COLOURSPACE, 0)
                .unwrap(),
            "srgb_tx"
        );
        assert_shows(&instance.render(1.0, PixelDepth::Float, 0).unwrap(), frame);
    }
    assert!(
        Host::new(HostProfile::generic().colour_managed(core, "ACEScg"))
            .load_bundle(bundle())
            .unwrap()
            .plugin(Some(ID))
            .unwrap()
            .descriptor_properties()
            .get_string(ofx_test_host::colour_management::STYLE, 0)
            .unwrap()
            == core,
        "the node says it understands core colourspaces"
    );
}

#[test]
fn a_linear_premultiplied_source_becomes_the_models_srgb_first_frame() {
    let prompt = "colour of the source: the grey square drifts";
    let seed = 29;
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, seed);
    instance.set_param("colour", AUTO).unwrap();
    // A linear image as Natron delivers it: left half sRGB (128, 64, 200) at alpha 0.5,
    // premultiplied; right half opaque sRGB (10, 240, 90).
    let left = [128u8, 64, 200];
    let right = [10u8, 240, 90];
    let lin = |b: u8| WorkingSpace::SceneLinear.read_8bit(b);
    let rgba: Vec<f32> = (0..SIZE * SIZE)
        .flat_map(|i| {
            if i % SIZE < SIZE / 2 {
                let a = 0.5;
                [lin(left[0]) * a, lin(left[1]) * a, lin(left[2]) * a, a]
            } else {
                [lin(right[0]), lin(right[1]), lin(right[2]), 1.0]
            }
        })
        .collect();
    instance.connect_input("Source", SIZE, SIZE, &rgba).unwrap();
    let images = instance
        .render_sequence(&[1.0, 3.0], &RenderRequest::new(0.0, PixelDepth::Float))
        .unwrap();

    // The service's clip from the 8-bit sRGB first frame the node must have made.
    let first = image::RgbImage::from_fn(SIZE as u32, SIZE as u32, |x, _| {
        image::Rgb(if (x as usize) < SIZE / 2 { left } else { right })
    });
    let expected = reference_from_image(prompt, seed as u64, first);
    assert_shows_linear(&images[0], &expected[0]);
    assert_shows_linear(&images[1], &expected[2]);
}
