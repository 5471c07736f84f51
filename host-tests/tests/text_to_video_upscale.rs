//! The node's `upscale` and `upscaler` settings: the output size the host sees (region of
//! definition) follows the choice, the pixels that reach the host's buffer are the service's
//! upscaled frames, and the upscaled clip has its own clip key. The upscaler is a tiny
//! random-weight Real-ESRGAN network (`models/tests/fixtures/upscale`).

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use std::path::PathBuf;
use t2v_bridge::{
    DeviceChoice, ModelSpec, Request, Service, ServiceConfig, Upscale, UpscaleTarget,
};
use t2v_common::*;

/// Indices of the `upscale` choices.
const OFF: i32 = 0;
const X2: i32 = 2;
const TO_720P: i32 = 4;

fn upscaler(name: &str) -> PathBuf {
    tiny_model().parent().unwrap().join("upscale").join(name)
}

fn cpu_service() -> Service {
    Service::new(ServiceConfig {
        device: DeviceChoice::Cpu,
        use_disk_cache: false,
        ..Default::default()
    })
    .unwrap()
}

fn upscaled_request(prompt: &str, seed: u64, upscale: Option<Upscale>) -> Request {
    let mut r = Request::new(ModelSpec::folder(tiny_model()), params(prompt, seed, STEPS));
    r.upscale = upscale;
    r
}

#[test]
fn the_region_of_definition_and_the_pixels_follow_the_upscale() {
    let prompt = "upscaled: a red ball";
    let file = upscaler("compact_x2.safetensors");
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let names = plugin
        .describe_in_context(Context::Generator)
        .unwrap()
        .param_names();
    assert!(names.iter().any(|n| n == "upscale") && names.iter().any(|n| n == "upscaler"));
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 3);
    instance
        .set_param("upscaler", file.to_str().unwrap())
        .unwrap();

    let size = |instance: &Instance| {
        let rod = instance.region_of_definition(1.0, 1.0).unwrap();
        (rod.x2, rod.y2)
    };
    assert_eq!(
        size(&instance),
        (SIZE as f64, SIZE as f64),
        "off by default"
    );
    instance.set_param("upscale", TO_720P).unwrap();
    assert_eq!(size(&instance), (720.0, 720.0));
    instance.set_param("upscale", X2).unwrap();
    assert_eq!(size(&instance), (2.0 * SIZE as f64, 2.0 * SIZE as f64));

    let expected = cpu_service()
        .submit(upscaled_request(
            prompt,
            3,
            Some(Upscale::new(UpscaleTarget::X2, &file)),
        ))
        .unwrap()
        .wait()
        .unwrap()
        .frames
        .clone();
    assert_eq!(expected[0].width(), 2 * SIZE);
    let images = instance
        .render_sequence(&[1.0, 5.0], &RenderRequest::new(0.0, PixelDepth::Float))
        .unwrap();
    assert_shows(&images[0], &expected[0]);
    assert_shows(&images[1], &expected[4]);
    // A 16-bit buffer gets the same codes.
    let short = instance.render(3.0, PixelDepth::Short, 0).unwrap();
    assert_shows(&short, &expected[2]);

    // Off again: the generated size and the plain clip's pixels.
    instance.set_param("upscale", OFF).unwrap();
    assert_eq!(size(&instance), (SIZE as f64, SIZE as f64));
    let plain = instance.render(1.0, PixelDepth::Float, 0).unwrap();
    assert_shows(&plain, &reference(prompt, 3)[0]);
}

#[test]
fn the_upscaled_clip_has_its_own_key_covering_the_upscaler_content() {
    let service = cpu_service();
    let plain = service.key_for(&upscaled_request("key", 1, None)).unwrap();
    let with = |target, file: PathBuf| {
        let r = upscaled_request("key", 1, Some(Upscale::new(target, file)));
        service.key_for(&r).unwrap()
    };
    let two = with(UpscaleTarget::X2, upscaler("compact_x2.safetensors"));
    assert_ne!(plain, two);
    assert_ne!(
        two,
        with(UpscaleTarget::To720p, upscaler("compact_x2.safetensors"))
    );
    assert_ne!(two, with(UpscaleTarget::X2, upscaler("rrdb_x2.pth")));
    // The same bytes elsewhere are the same upscaler.
    let copy = scratch().join("renamed-upscaler.safetensors");
    std::fs::copy(upscaler("compact_x2.safetensors"), &copy).unwrap();
    assert_eq!(two, with(UpscaleTarget::X2, copy));
}

#[test]
fn an_upscale_without_a_file_says_what_to_set() {
    let host = Host::new(HostProfile::natron().background(false));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "upscale without a file", 1);
    instance.set_param("upscale", X2).unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(status.contains("no Upscaler file is set"), "{status}");
    assert!(instance.render(1.0, PixelDepth::Float, 0).is_err());

    instance.set_param("upscaler", "/no/such/net.pth").unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.contains("/no/such/net.pth") && status.contains("no such file"),
        "{status}"
    );
}
