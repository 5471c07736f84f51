//! Live previews in the node, through the test host on the tiny model: an interactive render
//! shows preview pixels while the clip denoises, the status says "preview, step k of N", and the
//! decoded frames replace them; a background (farm) render of the same clip, even one that
//! joins the job making previews, only ever returns decoded frames.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use std::sync::Mutex;
use t2v_bridge::{Frame, ModelSpec, Request, Service, ServiceConfig};
use t2v_common::*;

const STEPS: usize = 40;

fn natron(background: bool) -> Host {
    Host::new(HostProfile::natron().background(background))
}

/// The clip the service makes for these settings (no previews asked).
fn final_frames(prompt: &str, seed: u64) -> Vec<Frame> {
    let service = Service::new(ServiceConfig {
        device: t2v_bridge::DeviceChoice::Cpu,
        use_disk_cache: false,
        idle_unload: None,
        ..Default::default()
    })
    .unwrap();
    let request = Request::new(ModelSpec::folder(tiny_model()), params(prompt, seed, STEPS));
    service
        .submit(request)
        .unwrap()
        .wait()
        .unwrap()
        .frames
        .clone()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    Placeholder,
    Preview,
    Final,
}

#[test]
fn interactive_renders_show_previews_that_the_final_frames_replace() {
    let prompt = "previews: a lantern in the fog";
    let seed = 21;
    let expected = final_frames(prompt, seed);
    let host = natron(false);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, seed as i32);
    instance.set_param("steps", STEPS as i32).unwrap();
    instance.set_param("cache", false).unwrap();

    // A farm host in the same process, for the same clip: it joins the interactive job.
    let farm_host = natron(true);
    let farm_plugin = node_plugin(&farm_host);
    let farm = farm_plugin.create_instance(Context::Generator).unwrap();
    configure(&farm, prompt, seed as i32);
    farm.set_param("steps", STEPS as i32).unwrap();
    farm.set_param("cache", false).unwrap();

    let seen = Mutex::new(Vec::new());
    let statuses = Mutex::new(Vec::new());
    let farm_image = std::thread::scope(|s| {
        // Generate runs its modal progress loop on "the main thread" until the clip is done.
        let generate = s.spawn(|| instance.push_button("generate").unwrap());
        let mut farm_render = None;
        while !generate.is_finished() {
            let image = instance.render(3.0, PixelDepth::Float, 0).unwrap();
            let what = if is_placeholder(&image) {
                Seen::Placeholder
            } else if shows(&image, &expected[2]) {
                Seen::Final
            } else {
                Seen::Preview
            };
            seen.lock().unwrap().push(what);
            statuses
                .lock()
                .unwrap()
                .extend(instance.persistent_message().map(|m| m.text));
            if what == Seen::Preview && farm_render.is_none() {
                // Denoising with previews: a background render now waits for decoded frames.
                farm_render = Some(s.spawn(|| farm.render(3.0, PixelDepth::Float, 0)));
            }
        }
        farm_render.map(|r| r.join().unwrap().unwrap())
    });
    let seen = seen.into_inner().unwrap();
    let first_preview = seen.iter().position(|s| *s == Seen::Preview);
    let first_final = seen.iter().position(|s| *s == Seen::Final);
    let first_preview = first_preview.unwrap_or_else(|| panic!("no preview was shown: {seen:?}"));
    assert!(
        first_final.is_none_or(|f| f > first_preview)
            && seen[first_preview..]
                .iter()
                .all(|s| *s != Seen::Placeholder),
        "previews come before the final frames and never go back: {seen:?}"
    );
    if let Some(f) = first_final {
        assert!(seen[f..].iter().all(|s| *s == Seen::Final), "{seen:?}");
    }
    let statuses = statuses.into_inner().unwrap();
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("Generating: preview, step ")
                && s.contains(&format!(" of {STEPS} "))),
        "{statuses:?}"
    );
    // The final frames replace the preview; the clip is the one made without previews.
    assert!(string_param(&instance, "status").starts_with("Ready: 5 frames"));
    for t in 1..=5 {
        assert_shows(
            &instance.render(t as f64, PixelDepth::Float, 0).unwrap(),
            &expected[t - 1],
        );
    }
    // The farm render that joined the job while it made previews got the decoded frame.
    assert_shows(
        &farm_image.expect("the farm rendered during denoising"),
        &expected[2],
    );
}

#[test]
fn a_background_render_never_returns_a_preview() {
    let prompt = "previews: farm only";
    let seed = 22;
    let expected = final_frames(prompt, seed);
    let host = natron(true);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, seed as i32);
    instance.set_param("steps", STEPS as i32).unwrap();
    instance.set_param("cache", false).unwrap();
    let images = instance
        .render_concurrently(
            &[3.0, 1.0, 5.0, 2.0],
            &RenderRequest::new(0.0, PixelDepth::Float),
        )
        .unwrap();
    for (t, image) in [3usize, 1, 5, 2].iter().zip(&images) {
        assert_shows(image, &expected[t - 1]);
    }
}
