//! Shared by the Text to Video node's tests: the bundle (built once per test process with
//! `plugin/build-bundle.sh`), a per-process scratch folder for the plugin's log and clip cache,
//! node settings on the tiny model, and reference frames from the generation service itself.
#![allow(dead_code)]

use ofx_test_host::{Instance, RenderedImage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use t2v_bridge::GenerationParams;
use t2v_bridge::{Frame, ModelSpec, Request, Service, ServiceConfig};

pub const ID: &str = "org.texttovideo.TextToVideo";
pub const SIZE: usize = 64;
pub const FRAMES: usize = 5;
pub const STEPS: usize = 3;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn tiny_model() -> PathBuf {
    workspace().join("models/tests/fixtures/tiny-diffusers")
}

/// The scratch folder of this test process; its `plugin.log` is the plugin's log.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Folders of earlier test processes that are gone.
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("t2v-node-tests-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(format!("t2v-node-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The environment every plugin copy of this process reads, set before `main` (see
/// [`before_main!`]), so no test changes it while others run.
pub fn set_up_environment() {
    let dir = scratch();
    std::env::set_var("T2V_LOG", dir.join("plugin.log"));
    std::env::set_var("T2V_CACHE_DIR", dir.join("cache"));
    std::env::set_var("T2V_DEVICE", "cpu");
    std::env::set_var("T2V_IDLE_UNLOAD_SECS", "never");
    // The node tests run the tiny model, and test the case of no model at all: a plugin
    // copy loaded from a temporary folder (no bundle Resources beside it) finds no demo
    // model. text_to_video_demo.rs loads the bundle's own file, with its demo model.
    std::env::set_var("T2V_DEMO_MODEL", dir.join("no-demo-model"));
}

pub use t2v_support::before_main;

before_main!(SET_UP_ENVIRONMENT, set_up_environment);

pub fn log_text() -> String {
    std::fs::read_to_string(scratch().join("plugin.log")).unwrap_or_default()
}

/// `TextToVideo.ofx.bundle`, built by the documented command (into its own target folder, so
/// that it never waits on the lock of the `cargo test` running us).
/// A child process of a test (see [`child_test`]) uses its parent's bundle.
pub fn bundle() -> PathBuf {
    scratch();
    built_bundle()
}

/// The bundle as [`bundle`] builds it, without this process's scratch settings (the real-host
/// suite gives each host process its own).
pub fn built_bundle() -> PathBuf {
    static BUNDLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            if let Some(built) = std::env::var_os(BUNDLE_ENV) {
                return Ok(PathBuf::from(built));
            }
            let root = workspace();
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            let out = target.join("ofx-fixtures").join("bundles");
            let output = std::process::Command::new("bash")
                .arg(root.join("plugin/build-bundle.sh"))
                .arg("--out")
                .arg(&out)
                .env("CARGO_TARGET_DIR", target.join("ofx-fixtures"))
                .output()
                .map_err(|e| e.to_string())?;
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).into_owned());
            }
            Ok(out.join("TextToVideo.ofx.bundle"))
        })
        .clone()
        .expect("plugin/build-bundle.sh")
}

/// The bundle a parent test hands to its child processes.
const BUNDLE_ENV: &str = "T2V_TEST_BUNDLE";

/// A command that runs the ignored test `name` of this test binary in a child process, with
/// the parent's bundle; add its environment, run it, and read its output.
pub fn child_test(name: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(BUNDLE_ENV, bundle());
    command
}

/// Sets the node up for a small clip on the tiny model.
pub fn configure(instance: &Instance, prompt: &str, seed: i32) {
    instance
        .set_param("model", tiny_model().to_str().unwrap())
        .unwrap();
    instance.set_param("resolution", 4).unwrap(); // custom
    instance.set_param("width", SIZE as i32).unwrap();
    instance.set_param("height", SIZE as i32).unwrap();
    instance.set_param("frames", FRAMES as i32).unwrap();
    instance.set_param("steps", STEPS as i32).unwrap();
    instance.set_param("seed", seed).unwrap();
    instance.set_param("prompt", prompt).unwrap();
    // The model's sRGB codes as they are, whatever the host's working space, so that pixels
    // compare exactly with the service's (text_to_video_colour.rs tests the `auto` default).
    instance.set_param("colour", 0).unwrap();
}

pub fn params(prompt: &str, seed: u64, steps: usize) -> GenerationParams {
    GenerationParams {
        prompt: prompt.into(),
        width: SIZE,
        height: SIZE,
        frames: FRAMES,
        steps,
        guidance: 5.0,
        shift: 5.0,
        seed,
        ..Default::default()
    }
}

/// The service the reference frames come from: on the CPU, no disk cache.
pub fn reference_service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        Service::new(ServiceConfig {
            device: t2v_bridge::DeviceChoice::Cpu,
            use_disk_cache: false,
            idle_unload: None,
            ..Default::default()
        })
        .unwrap()
    })
}

/// The frames the service makes for the same settings from an 8-bit sRGB first frame.
pub fn reference_from_image(prompt: &str, seed: u64, first: image::RgbImage) -> Vec<Frame> {
    let (width, height) = first.dimensions();
    reference_with(prompt, seed, |request| {
        request.image =
            Some(t2v_bridge::Image::from_rgb8(width, height, first.into_raw()).unwrap());
    })
}

/// The frames the service makes for the node's settings on the tiny model, with `edit` made
/// to the request (a first frame, LoRAs).
pub fn reference_with(prompt: &str, seed: u64, edit: impl FnOnce(&mut Request)) -> Vec<Frame> {
    let mut request = Request::new(ModelSpec::folder(tiny_model()), params(prompt, seed, STEPS));
    edit(&mut request);
    reference_service()
        .submit(request)
        .unwrap()
        .wait()
        .unwrap()
        .frames
        .clone()
}

/// The node's plugin in a fresh load of the bundle.
pub fn node_plugin(host: &ofx_test_host::Host) -> ofx_test_host::Plugin {
    host.load_bundle(bundle())
        .unwrap()
        .plugin(Some(ID))
        .unwrap()
}

/// The frames the generation service makes for the same settings (what `t2v generate` writes).
pub fn reference(prompt: &str, seed: u64) -> Arc<Vec<Frame>> {
    /// Clips by prompt and seed.
    type Clips = HashMap<(String, u64), Arc<Vec<Frame>>>;
    static CLIPS: OnceLock<Mutex<Clips>> = OnceLock::new();
    let clips = CLIPS.get_or_init(Default::default);
    if let Some(c) = clips.lock().unwrap().get(&(prompt.to_string(), seed)) {
        return c.clone();
    }
    let clip = reference_service()
        .submit(Request::new(
            ModelSpec::folder(tiny_model()),
            params(prompt, seed, STEPS),
        ))
        .unwrap()
        .wait()
        .unwrap();
    let frames = Arc::new(clip.frames.clone());
    clips
        .lock()
        .unwrap()
        .insert((prompt.to_string(), seed), frames.clone());
    frames
}

/// The frame's 16-bit RGB at (x, y) counted from the bottom left, as the image is.
pub fn code(frame: &Frame, x: usize, y: usize) -> [u16; 3] {
    let row = frame.height() - 1 - y;
    let i = (row * frame.width() + x) * 3;
    let v = frame.rgb16();
    [v[i], v[i + 1], v[i + 2]]
}

/// Whether a rendered Float/Short/Byte image shows `frame` exactly, as [`assert_shows`] checks
/// (while a clip is made, an interactive render may show a live preview instead).
pub fn shows(image: &RenderedImage, frame: &Frame) -> bool {
    (image.width(), image.height()) == (frame.width(), frame.height())
        && (0..image.height()).all(|y| {
            (0..image.width()).all(|x| {
                let c = code(frame, x, y);
                match image.depth {
                    ofx_bindings::PixelDepth::Float => {
                        let p = image.pixel_f32(x, y);
                        (0..3).all(|k| (p[k] - c[k] as f32 / 65535.0).abs() <= 1.0 / 65535.0)
                    }
                    ofx_bindings::PixelDepth::Short => {
                        image.pixel_u16(x, y) == [c[0], c[1], c[2], 65535]
                    }
                    ofx_bindings::PixelDepth::Byte => {
                        let e = c.map(|v| (v as f32 / 65535.0 * 255.0).round() as u8);
                        image.pixel_u8(x, y) == [e[0], e[1], e[2], 255]
                    }
                    _ => false,
                }
            })
        })
}

/// Asserts a rendered Float/Short/Byte image shows `frame` exactly (sRGB display output).
pub fn assert_shows(image: &RenderedImage, frame: &Frame) {
    assert_eq!(
        (image.width(), image.height()),
        (frame.width(), frame.height())
    );
    for y in 0..image.height() {
        for x in 0..image.width() {
            let c = code(frame, x, y);
            match image.depth {
                ofx_bindings::PixelDepth::Float => {
                    let p = image.pixel_f32(x, y);
                    for k in 0..3 {
                        assert!(
                            (p[k] - c[k] as f32 / 65535.0).abs() <= 1.0 / 65535.0,
                            "pixel ({x},{y}) channel {k}: {} vs {}",
                            p[k],
                            c[k]
                        );
                    }
                    assert_eq!(p[3], 1.0);
                }
                ofx_bindings::PixelDepth::Short => assert_eq!(
                    image.pixel_u16(x, y),
                    [c[0], c[1], c[2], 65535],
                    "pixel ({x},{y})"
                ),
                ofx_bindings::PixelDepth::Byte => {
                    let e = c.map(|v| (v as f32 / 65535.0 * 255.0).round() as u8);
                    assert_eq!(
                        image.pixel_u8(x, y),
                        [e[0], e[1], e[2], 255],
                        "pixel ({x},{y})"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

/// Asserts a rendered Float image shows `frame` linearised (the sRGB EOTF of its codes).
pub fn assert_shows_linear(image: &RenderedImage, frame: &Frame) {
    assert_eq!(
        (image.width(), image.height()),
        (frame.width(), frame.height())
    );
    for y in 0..image.height() {
        for x in 0..image.width() {
            let c = code(frame, x, y);
            let p = image.pixel_f32(x, y);
            for k in 0..3 {
                let expected = srgb_to_linear(c[k] as f32 / 65535.0);
                assert!(
                    (p[k] - expected).abs() <= 2e-6,
                    "pixel ({x},{y}) channel {k}: {} vs linear {expected}",
                    p[k]
                );
            }
        }
    }
}

pub fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// Whether a Float image is the documented placeholder (dark with diagonal stripes: the
/// values 0.06 and 0.16, alpha 1, varying along x - y), outside the progress bar rows.
pub fn is_placeholder(image: &RenderedImage) -> bool {
    let (w, h) = (image.width(), image.height());
    (0..h)
        .filter(|&y| y < h * 46 / 100 || y >= h * 54 / 100)
        .all(|y| {
            (0..w).all(|x| {
                let p = image.pixel_normalised(x, y);
                let stripe = ((x as i64 - y as i64).rem_euclid(32)) < 16;
                let v = if stripe { 0.16 } else { 0.06 };
                (p[0] - v).abs() < 0.003 && p[0] == p[1] && p[1] == p[2] && p[3] == 1.0
            })
        })
}

pub fn int_param(instance: &Instance, name: &str) -> i32 {
    match instance.param(name).unwrap() {
        ofx_test_host::ParamValue::Int(v) => v,
        other => panic!("{name}: {other:?}"),
    }
}

pub fn string_param(instance: &Instance, name: &str) -> String {
    match instance.param(name).unwrap() {
        ofx_test_host::ParamValue::String(v) => v,
        other => panic!("{name}: {other:?}"),
    }
}

/// Whether the node's clip cache holds a complete entry under `key` (complete once its manifest
/// is written, just after the last frame), waiting up to a minute for it; else the entries it
/// holds, for the failure message.
pub fn clip_cached(key: &t2v_bridge::ClipKey) -> Result<(), String> {
    let clips = scratch().join("cache/clips");
    let manifest = clips.join(key.to_hex()).join("manifest.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !manifest.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if manifest.is_file() {
        return Ok(());
    }
    let held: Vec<_> = std::fs::read_dir(&clips)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    Err(format!("the cache holds {held:?}"))
}
