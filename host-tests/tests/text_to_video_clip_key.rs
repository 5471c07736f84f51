//! The node and `t2v` ask the generation service for the same clip when their settings match:
//! one clip key, so a clip made by either is a cache hit for the other.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_bridge::{DeviceChoice, Precision, Service, ServiceConfig};
use t2v_common::*;

/// Regression: the node computed in bf16 on CUDA while `t2v` defaulted to f32, so their clips
/// never met in the cache. Both now leave the precision to the service.
#[test]
fn a_clip_rendered_by_the_node_has_the_key_t2v_asks_for() {
    let prompt = "shared cache: a lighthouse at dusk";
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 11);
    instance
        .render_sequence(&[1.0], &RenderRequest::new(0.0, PixelDepth::Float))
        .unwrap();

    let (size, frames, steps) = (SIZE.to_string(), FRAMES.to_string(), STEPS.to_string());
    let model = tiny_model();
    let args = t2v_cli::generate::GenerateArgs::parse_from([
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        prompt,
        "--width",
        &size,
        "--height",
        &size,
        "--frames",
        &frames,
        "--steps",
        &steps,
        "--seed",
        "11",
    ])
    .unwrap();
    let request = t2v_cli::generate::request(&args).unwrap();
    assert_eq!(
        request.precision,
        Precision::Auto,
        "t2v leaves it to the service"
    );
    // The node's services run on the CPU here ($T2V_DEVICE=cpu, see t2v_common).
    let service = Service::new(ServiceConfig {
        device: DeviceChoice::Cpu,
        use_disk_cache: false,
        ..Default::default()
    })
    .unwrap();
    let key = service.key_for(&request).unwrap();

    if let Err(held) = clip_cached(&key) {
        panic!("the node's clip is not under t2v's key {key}; {held}");
    }
}
