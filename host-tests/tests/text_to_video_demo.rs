//! The node as installed, with no Model Path: the bundle's demo model answers, the status says
//! so and how to use real weights, and the clip rendered into the host's buffers shows what the
//! prompt says (judged from the pixels, like the demo model's own tests).

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_common::*;
use t2v_demo_trainer::judge::{judge, Clip, Expectation};
use t2v_demo_trainer::world::{Colour, Motion};

#[test]
fn a_fresh_node_generates_with_the_bundled_demo_model() {
    let bundle = bundle();
    assert!(
        bundle
            .join("Contents/Resources/demo-model/model_index.json")
            .is_file(),
        "the bundle carries the demo model"
    );
    let mut host = Host::new(HostProfile::natron());
    // The bundle's own file, as a real host loads it: the demo model is in its Resources.
    host.set_isolated_loading(false);
    let plugin = host.load_bundle(&bundle).unwrap().plugin(Some(ID)).unwrap();
    let instance = plugin.create_instance(Context::Generator).unwrap();
    instance
        .set_param(
            "prompt",
            "A red circle moves to the right on a black background.",
        )
        .unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.starts_with("Press Generate to make the clip"),
        "{status}"
    );
    assert!(status.contains("Demo model"), "{status}");
    assert!(
        status.contains("set Model Path to a Wan2.2 TI2V-5B folder"),
        "{status}"
    );
    // The demo model's size, not the 832x480 default.
    let rod = instance.region_of_definition(1.0, 1.0).unwrap();
    assert_eq!((rod.x2, rod.y2), (256.0, 160.0));

    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(status.starts_with("Ready: 17 frames, 256x160"), "{status}");
    // Frames as the host gets them (bottom row first, RGBA) back to top-down RGB for the judge.
    let mut data = Vec::new();
    for t in 1..=17 {
        let image = instance.render(t as f64, PixelDepth::Float, 0).unwrap();
        assert_eq!((image.width(), image.height()), (256, 160));
        for y in (0..160).rev() {
            for x in 0..256 {
                data.extend_from_slice(&image.pixel_f32(x, y)[..3]);
            }
        }
    }
    let verdict = judge(
        &Clip {
            frames: 17,
            height: 160,
            width: 256,
            data: &data,
        },
        &Expectation {
            background: Colour::Black,
            objects: vec![(Colour::Red, Motion::Right)],
        },
    );
    assert!(verdict.passed(), "{}", verdict.notes);

    // Words the demo model never saw: a warning that says what it understands.
    instance
        .set_param(
            "prompt",
            "A red circle moves right on a black background, cinematic",
        )
        .unwrap();
    let status = string_param(&instance, "status");
    assert!(status.contains("It doesn't know: cinematic"), "{status}");
}
