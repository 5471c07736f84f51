//! Few-step sampling in the node: a model folder that declares DMD (FastWan2.2's
//! `WanDMDPipeline`) has the node run it at its own settings, the clip `t2v` makes for the same
//! folder; the `sampler` menu's `dmd` makes the clip `t2v --sampler dmd` makes; `cache_steps`
//! and the `draft` style make the clips of `t2v --step-cache` and `t2v --style draft`.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use std::path::Path;
use t2v_bridge::{DeviceChoice, Service, ServiceConfig};
use t2v_common::*;

/// The tiny model as FastWan2.2 ships: its `model_index.json` names `WanDMDPipeline`.
fn dmd_folder(dir: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    copy(&tiny_model(), dir);
    let index = std::fs::read_to_string(dir.join("model_index.json"))
        .unwrap()
        .replace("\"WanPipeline\"", "\"WanDMDPipeline\"");
    std::fs::write(dir.join("model_index.json"), index).unwrap();
}

/// The tiny model as an ordinary (not DMD) model folder of its own.
fn plain_folder(dir: &Path) {
    dmd_folder(dir);
    let index = std::fs::read_to_string(dir.join("model_index.json"))
        .unwrap()
        .replace("\"WanDMDPipeline\"", "\"WanPipeline\"");
    std::fs::write(dir.join("model_index.json"), index).unwrap();
}

/// Renders frame 1 and waits until the clip `t2v` makes on `model` for `prompt`, `seed`, the
/// tests' size and frame count and the `extra` flags is in the cache, under `t2v`'s key.
fn assert_node_made_the_clip_of(
    instance: &Instance,
    model: &Path,
    prompt: &str,
    seed: i32,
    extra: &[&str],
) {
    instance
        .render_sequence(&[1.0], &RenderRequest::new(0.0, PixelDepth::Float))
        .unwrap();
    let (size, frames, seed) = (SIZE.to_string(), FRAMES.to_string(), seed.to_string());
    let mut flags = vec![
        "--quiet",
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
        "--seed",
        &seed,
    ];
    flags.extend_from_slice(extra);
    let args = t2v_cli::generate::GenerateArgs::parse_from(flags.iter().copied()).unwrap();
    let request = t2v_cli::generate::request(&args).unwrap();
    let service = Service::new(ServiceConfig {
        device: DeviceChoice::Cpu,
        use_disk_cache: false,
        ..Default::default()
    })
    .unwrap();
    let key = service.key_for(&request).unwrap();
    if let Err(held) = clip_cached(&key) {
        panic!(
            "the node's clip is not under t2v's key for {flags:?} ({:?}); {held}",
            request.params
        );
    }
}

#[test]
fn a_dmd_model_folder_runs_at_its_own_settings_in_the_node() {
    let folder = scratch().join("fastwan-like");
    dmd_folder(&folder);
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    let prompt = "dmd folder: a kite over a hill";
    configure(&instance, prompt, 5);
    // The node's own sampling settings give way to the folder's.
    instance
        .set_param("model", folder.to_str().unwrap())
        .unwrap();
    instance.set_param("steps", 40).unwrap();
    assert!(!enabled(&instance, "steps") && !enabled(&instance, "guidance"));
    assert_node_made_the_clip_of(&instance, &folder, prompt, 5, &[]);
}

/// Whether `name` is enabled in the host's UI.
fn enabled(instance: &Instance, name: &str) -> bool {
    instance
        .param_properties(name)
        .unwrap()
        .get_int(ofx_bindings::sys::kOfxParamPropEnabled, 0)
        .unwrap()
        == 1
}

#[test]
fn the_dmd_choice_is_the_clip_of_t2v_sampler_dmd() {
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    let prompt = "dmd choice: a boat on a lake";
    configure(&instance, prompt, 6);
    let sampling = ["steps", "guidance", "shift"];
    assert!(sampling.iter().all(|p| enabled(&instance, p)));
    // DMD's timesteps are the steps and guidance is off, whatever Steps, Guidance and Shift
    // say: they are disabled, and the clip is `t2v --sampler dmd`'s (3 steps, guidance 1,
    // shift 8 for the flags left out).
    instance.set_param("sampler", 2).unwrap(); // dmd, appended after unipc and euler
    assert!(sampling.iter().all(|p| !enabled(&instance, p)));
    assert_node_made_the_clip_of(&instance, &tiny_model(), prompt, 6, &["--sampler", "dmd"]);
    // Back to unipc: the parameters count again, with the values they kept.
    instance.set_param("sampler", 0).unwrap();
    assert!(sampling.iter().all(|p| enabled(&instance, p)));
    let steps = STEPS.to_string();
    assert_node_made_the_clip_of(&instance, &tiny_model(), prompt, 6, &["--steps", &steps]);
}

#[test]
fn cache_steps_is_the_clip_of_t2v_step_cache() {
    let folder = scratch().join("calibrated-tiny");
    // The same tiny model as an ordinary one, with a calibration of its own.
    plain_folder(&folder);
    std::fs::write(
        folder.join("step_cache.json"),
        r#"{"cond": [1.0, 0.99, 0.99], "uncond": [1.0, 0.99, 0.99]}"#,
    )
    .unwrap();
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    let prompt = "step cache: a lantern in fog";
    configure(&instance, prompt, 8);
    instance
        .set_param("model", folder.to_str().unwrap())
        .unwrap();
    instance.set_param("cache_steps", 2).unwrap(); // faster
    let steps = STEPS.to_string();
    assert_node_made_the_clip_of(
        &instance,
        &folder,
        prompt,
        8,
        &["--steps", &steps, "--step-cache", "faster"],
    );
    // The method by name: `magcache` (1) is the clip of `t2v --step-cache-method magcache`.
    instance.set_param("cache_steps_method", 1).unwrap();
    assert_node_made_the_clip_of(
        &instance,
        &folder,
        prompt,
        8,
        &[
            "--steps",
            &steps,
            "--step-cache",
            "faster",
            "--step-cache-method",
            "magcache",
        ],
    );
    instance.set_param("cache_steps_method", 0).unwrap();

    // The draft style brings its own steps and step cache over the node's.
    instance.set_param("style_name", "draft").unwrap();
    assert_node_made_the_clip_of(&instance, &folder, prompt, 8, &["--style", "draft"]);
}

/// The `draft` style prefers the fast decoder: on a model folder with a tiny decoder the node
/// makes the fast-decoded clip `t2v --style draft` makes there (without one, the full decode:
/// `cache_steps_is_the_clip_of_t2v_step_cache`).
#[test]
fn the_draft_style_decodes_fast_when_the_model_has_a_tiny_decoder() {
    let folder = scratch().join("tiny-with-decoder");
    plain_folder(&folder);
    let tiny_decoder = folder.join("tiny_decoder");
    std::fs::create_dir_all(&tiny_decoder).unwrap();
    std::fs::copy(
        tiny_model()
            .parent()
            .unwrap()
            .join("taehv/taehv-tiny.safetensors"),
        tiny_decoder.join("taew2_2.safetensors"),
    )
    .unwrap();
    let host = Host::new(HostProfile::natron().background(true));
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    let prompt = "draft: a paper boat on a pond";
    configure(&instance, prompt, 11);
    instance
        .set_param("model", folder.to_str().unwrap())
        .unwrap();
    instance.set_param("style_name", "draft").unwrap();
    // The node's Decoder stays `full`; the style's preference replaces it.
    assert_node_made_the_clip_of(&instance, &folder, prompt, 11, &["--style", "draft"]);
    assert_node_made_the_clip_of(
        &instance,
        &folder,
        prompt,
        11,
        &["--steps", "10", "--step-cache", "fast", "--decoder", "fast"],
    );
}
