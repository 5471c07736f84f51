//! The Text to Video node (plugin/) driven through the test host on the tiny model: its
//! description, interactive and background behaviour, pixels against the generation service,
//! abort, bad inputs, hosts without optional suites, threads, depths, layouts and scales.

mod t2v_common;

use ofx_bindings::sys::*;
use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_common::*;

fn natron(background: bool) -> Host {
    Host::new(HostProfile::natron().background(background))
}

fn render_f32(instance: &Instance, time: f64) -> RenderedImage {
    instance.render(time, PixelDepth::Float, 0).unwrap()
}

#[test]
fn describes_both_contexts_with_every_parameter() {
    let host = natron(false);
    let plugin = node_plugin(&host);
    assert_eq!(plugin.info().version, (1, 0));
    assert_eq!(
        plugin.supported_contexts(),
        vec![Context::Generator, Context::General]
    );
    assert_eq!(
        plugin.supported_pixel_depths(),
        vec![PixelDepth::Float, PixelDepth::Short, PixelDepth::Byte]
    );
    assert_eq!(
        plugin.render_thread_safety(),
        ofx_bindings::RenderThreadSafety::FullySafe
    );
    let d = plugin.descriptor_properties();
    assert_eq!(
        d.get_int(kOfxImageEffectPluginPropHostFrameThreading, 0)
            .unwrap(),
        0
    );
    assert_eq!(d.get_int(kOfxImageEffectPropSupportsTiles, 0).unwrap(), 0);
    assert_eq!(d.get_string(kOfxPropLabel, 0).unwrap(), "Text to Video");

    let numeric = [
        "seed",
        "steps",
        "guidance",
        "shift",
        "width",
        "height",
        "frames",
        "first_frame",
        "generation",
    ];
    let all = [
        "prompt",
        "style",
        "tags",
        "negative",
        "seed",
        "steps",
        "guidance",
        "shift",
        "sampler",
        "cache_steps",
        "resolution",
        "width",
        "height",
        "frames",
        "first_frame",
        "model",
        "loras",
        "device",
        "memory",
        "queue",
        "credentials",
        "colour",
        "cache",
        "decoder",
        "cache_steps_method",
        "generate",
        "cancel",
        "status",
        "generation",
    ];
    for context in [Context::Generator, Context::General] {
        let desc = plugin.describe_in_context(context).unwrap();
        assert_eq!(desc.clip_names(), vec!["Output", "Source"]);
        assert_eq!(
            desc.clip_properties("Source")
                .unwrap()
                .get_int(kOfxImageClipPropOptional, 0)
                .unwrap(),
            1
        );
        let names = desc.param_names();
        for name in all {
            assert!(names.iter().any(|n| n == name), "{name} in {context:?}");
            assert!(!name.contains('-') && name == name.to_lowercase());
        }
        for name in numeric {
            let p = desc.param_properties(name).unwrap();
            let get = |prop| {
                p.get_doubles(prop)
                    .or_else(|_| {
                        p.get_ints(prop)
                            .map(|v| v.iter().map(|&i| i as f64).collect())
                    })
                    .unwrap()
            };
            let (min, max, dmin, dmax) = (
                get(kOfxParamPropMin)[0],
                get(kOfxParamPropMax)[0],
                get(kOfxParamPropDisplayMin)[0],
                get(kOfxParamPropDisplayMax)[0],
            );
            assert!(
                min < max && dmin < dmax && min <= dmin && dmax <= max,
                "{name}: range {min}..{max}, display {dmin}..{dmax}"
            );
            let t = p.get_string(kOfxParamPropType, 0).unwrap();
            assert!(
                t == "OfxParamTypeInteger" || t == "OfxParamTypeDouble",
                "{name} is 1-D: {t}"
            );
        }
        let prop = |name: &str| desc.param_properties(name).unwrap();
        assert_eq!(
            prop("prompt")
                .get_string(kOfxParamPropStringMode, 0)
                .unwrap(),
            "OfxParamStringIsMultiLine"
        );
        assert_eq!(
            prop("model")
                .get_string(kOfxParamPropStringMode, 0)
                .unwrap(),
            "OfxParamStringIsDirectoryPath"
        );
        assert_eq!(
            prop("status")
                .get_string(kOfxParamPropStringMode, 0)
                .unwrap(),
            "OfxParamStringIsSingleLine"
        );
        assert_eq!(prop("status").get_int(kOfxParamPropEnabled, 0).unwrap(), 0);
        assert_eq!(
            prop("generation").get_int(kOfxParamPropSecret, 0).unwrap(),
            1
        );
        assert_eq!(
            prop("generate").get_string(kOfxParamPropType, 0).unwrap(),
            "OfxParamTypePushButton"
        );
        assert_eq!(
            prop("cancel").get_string(kOfxParamPropType, 0).unwrap(),
            "OfxParamTypePushButton"
        );
        assert_eq!(
            prop("resolution")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["832x480", "480x832", "1280x704", "704x1280", "custom"]
        );
        assert_eq!(
            prop("sampler")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["unipc", "euler", "dmd"]
        );
        assert_eq!(
            prop("cache_steps")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["off", "fast", "faster"]
        );
        assert_eq!(
            prop("cache_steps_method")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["easycache", "magcache"]
        );
        assert_eq!(
            prop("device")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["auto", "CUDA", "CPU", "remote"]
        );
        assert_eq!(
            prop("memory")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["auto", "24 GB", "16 GB", "12 GB", "8 GB"]
        );
        assert_eq!(
            prop("colour")
                .get_strings(kOfxParamPropChoiceOption)
                .unwrap(),
            ["sRGB display", "linear", "Rec.709", "auto"]
        );
        assert_eq!(
            prop("cache").get_string(kOfxParamPropType, 0).unwrap(),
            "OfxParamTypeBoolean"
        );
        for name in ["prompt", "seed", "steps", "guidance"] {
            assert!(
                prop(name)
                    .get_string(kOfxParamPropParent, 0)
                    .unwrap()
                    .starts_with("group_"),
                "{name} is in a group"
            );
        }
    }

    // A fresh node: no model yet, says so, and shows the placeholder; size follows the choice.
    let instance = plugin.create_instance(Context::Generator).unwrap();
    assert_eq!(
        string_param(&instance, "status"),
        "No model: set Model Path to a Wan2.2 TI2V-5B folder"
    );
    assert_eq!(
        instance
            .param_properties("width")
            .unwrap()
            .get_int(kOfxParamPropEnabled, 0)
            .unwrap(),
        0
    );
    let rod = instance.region_of_definition(1.0, 1.0).unwrap();
    assert_eq!((rod.x2, rod.y2), (832.0, 480.0));
    let rod = instance.region_of_definition(1.0, 0.5).unwrap();
    assert_eq!(
        (rod.x2, rod.y2),
        (832.0, 480.0),
        "the RoD is canonical: not scaled"
    );
    assert_eq!(
        instance
            .clip_preferences()
            .get_int(kOfxImageEffectFrameVarying, 0)
            .unwrap(),
        1
    );
    instance.set_param("resolution", 4).unwrap();
    assert_eq!(
        instance
            .param_properties("width")
            .unwrap()
            .get_int(kOfxParamPropEnabled, 0)
            .unwrap(),
        1
    );

    // Nuke: the General context, Float only; the time domain is the clip from first_frame.
    let nuke = Host::new(HostProfile::nuke());
    let plugin = nuke
        .load_bundle(bundle())
        .unwrap()
        .plugin(Some(ID))
        .unwrap();
    let instance = plugin.create_instance(Context::General).unwrap();
    instance.set_param("first_frame", 1001).unwrap();
    instance.set_param("frames", 121).unwrap();
    assert_eq!(instance.time_domain().unwrap(), Some((1001.0, 1121.0)));
    let image = render_f32(&instance, 1001.0);
    assert_eq!((image.width(), image.height()), (832, 480));
    assert!(is_placeholder(&image));
}

#[test]
fn instances_come_and_go_and_share_one_model() {
    let host = natron(false);
    let plugin = node_plugin(&host);
    for _ in 0..20 {
        let a = plugin.create_instance(Context::Generator).unwrap();
        let b = plugin.create_instance(Context::General).unwrap();
        a.set_param("prompt", "nothing").unwrap();
        drop((a, b));
    }
    let a = plugin.create_instance(Context::Generator).unwrap();
    let b = plugin.create_instance(Context::Generator).unwrap();
    configure(&a, "shared model one: a red fox", 1);
    configure(&b, "shared model two: a blue bird", 2);
    a.push_button("generate").unwrap();
    b.push_button("generate").unwrap();
    let stats = b
        .messages()
        .into_iter()
        .rfind(|m| m.id == "t2v.stats")
        .expect("a stats line")
        .text;
    assert!(stats.contains("model_loads=1 generations=2"), "{stats}");
    assert!(
        string_param(&a, "status").starts_with("Ready: 5 frames"),
        "{}",
        string_param(&a, "status")
    );
    assert!(string_param(&b, "status").starts_with("Ready: 5 frames"));
}

#[test]
fn background_render_gives_the_services_pixels() {
    let prompt = "background parity: waves on a beach";
    let host = natron(true);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 7);
    let expected = reference(prompt, 7);
    // Rendering generates on demand (no Generate press), frames 1..=5 are clip frames 0..=4.
    let images = instance
        .render_sequence(
            &[1.0, 2.0, 3.0, 4.0, 5.0],
            &RenderRequest::new(0.0, PixelDepth::Float),
        )
        .unwrap();
    for (i, image) in images.iter().enumerate() {
        assert_shows(image, &expected[i]);
    }
    // Outside the clip the nearest frame is held.
    assert_shows(&render_f32(&instance, 9.0), &expected[4]);
    assert!(instance
        .progress_events()
        .iter()
        .any(|e| matches!(e, ProgressEvent::Start { .. })));
    assert_eq!(
        int_param(&instance, "generation"),
        0,
        "nothing is announced on a farm"
    );
}

#[test]
fn interactive_render_shows_the_placeholder_until_generate() {
    let prompt = "interactive: a lighthouse at dusk";
    let host = natron(false);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 3);
    assert_eq!(
        string_param(&instance, "status"),
        "Press Generate to make the clip (on the CPU: this bundle has no CUDA engine)"
    );
    // Editing never generates: the placeholder, however long we wait.
    for _ in 0..3 {
        assert!(is_placeholder(&render_f32(&instance, 1.0)));
    }
    assert!(!log_text().contains(&format!("\"{prompt}\": submitted")));
    let before = int_param(&instance, "generation");
    instance.push_button("generate").unwrap();
    // The modal progress bar ran in InstanceChanged, and the counter moved there.
    let events = instance.progress_events();
    assert!(
        matches!(events.first(), Some(ProgressEvent::Start { .. }))
            && events.last() == Some(&ProgressEvent::End),
        "{events:?}"
    );
    assert!(int_param(&instance, "generation") > before);
    assert!(
        instance
            .instance_changes()
            .contains(&("generation".into(), "OfxChangePluginEdited".into())),
        "the host was told"
    );
    assert!(string_param(&instance, "status").starts_with("Ready: 5 frames, 64x64"));
    assert_eq!(
        instance.persistent_message(),
        None,
        "no stale 'Generating' message"
    );
    let expected = reference(prompt, 3);
    for t in 1..=5 {
        assert_shows(&render_f32(&instance, t as f64), &expected[t - 1]);
    }
    // A changed seed shows the placeholder again until Generate; going back is instant.
    instance.set_param("seed", 4).unwrap();
    assert!(is_placeholder(&render_f32(&instance, 1.0)));
    assert_eq!(
        string_param(&instance, "status"),
        "Press Generate to make the clip (on the CPU: this bundle has no CUDA engine)"
    );
    instance.set_param("seed", 3).unwrap();
    assert_shows(&render_f32(&instance, 2.0), &expected[1]);

    // A new instance with the same settings finds the clip in the disk cache without Generate.
    let other = plugin.create_instance(Context::Generator).unwrap();
    configure(&other, prompt, 3);
    assert_shows(&render_f32(&other, 3.0), &expected[2]);
}

#[test]
fn abort_stops_a_background_generation_within_one_step() {
    let prompt = "abort: a very long clip of a train";
    let steps = 400;
    let host = natron(true);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 5);
    instance.set_param("steps", steps).unwrap();
    instance.set_param("cache", false).unwrap();
    let result = std::thread::scope(|s| {
        let render = s.spawn(|| instance.render(1.0, PixelDepth::Float, 0));
        // Abort once a few denoising steps are done (progress = 0.05 + 0.85 * steps_done / steps).
        loop {
            let done = instance.progress_events().iter().any(
                |e| matches!(e, ProgressEvent::Update(f) if *f > 0.05 + 0.85 * 3.0 / steps as f64),
            );
            if done || render.is_finished() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        host.set_abort(true);
        render.join().unwrap()
    });
    assert!(result.is_err(), "an aborted render fails");
    // The plugin logs the step it saw when it cancelled (A) and the worker the step it stopped at (B).
    let tag = format!("job \"{prompt}\"");
    let (mut seen, mut stopped) = (None, None);
    for _ in 0..3000 {
        for line in log_text().lines().filter(|l| l.contains(&tag)) {
            let step = |l: &str, marker: &str| {
                l.split(marker)
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .and_then(|n| n.trim().parse::<usize>().ok())
            };
            if line.contains("aborted by the host") {
                seen = step(line, "at step ");
            }
            if line.contains("cancelled after") {
                stopped = step(line, "cancelled after ");
            }
        }
        if seen.is_some() && stopped.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (seen, stopped) = (
        seen.expect("the abort is logged"),
        stopped.expect("the worker's stop is logged"),
    );
    assert!(
        stopped <= seen + 1,
        "the worker stopped at step {stopped}, one step at most after the abort at {seen}"
    );
    assert!(stopped < steps as usize);
    assert!(instance.messages().iter().any(|m| m.id == "t2v.abort"));
}

#[test]
fn bad_inputs_give_messages_and_failed_renders() {
    let host = natron(false);
    let plugin = node_plugin(&host);
    type SetUp = Box<dyn Fn(&Instance)>;
    let cases: Vec<(&str, SetUp, &str)> = vec![
        (
            "empty prompt",
            Box::new(|i: &Instance| i.set_param("prompt", "  ").unwrap()),
            "prompt is empty",
        ),
        (
            "missing model",
            Box::new(|i: &Instance| i.set_param("model", "/nonexistent/wan").unwrap()),
            "is not a folder",
        ),
        (
            "no model",
            Box::new(|i: &Instance| i.set_param("model", "").unwrap()),
            "No model: set Model Path",
        ),
        (
            "zero frames",
            Box::new(|i: &Instance| i.set_param("frames", 0).unwrap()),
            "frame count 0",
        ),
        (
            "oversized",
            Box::new(|i: &Instance| i.set_param("width", 4096).unwrap()),
            "larger than the maximum",
        ),
        (
            "odd size",
            Box::new(|i: &Instance| i.set_param("height", 50).unwrap()),
            "not a multiple of 32",
        ),
    ];
    for (what, break_it, expected) in cases {
        let instance = plugin.create_instance(Context::Generator).unwrap();
        configure(&instance, &format!("bad input {what}"), 1);
        break_it(&instance);
        instance.push_button("generate").unwrap();
        let status = string_param(&instance, "status");
        assert!(status.contains(expected), "{what}: status {status:?}");
        let message = instance
            .persistent_message()
            .unwrap_or_else(|| panic!("{what}: a persistent message"));
        assert_eq!(message.kind, "OfxMessageError");
        assert!(message.text.contains(expected), "{what}: {message:?}");
        assert!(
            instance.render(1.0, PixelDepth::Float, 0).is_err(),
            "{what}: render fails"
        );
    }
    // Hosts need not enforce ranges: a huge size never makes the host allocate it (the
    // fuzzer's find: a width of i32::MAX asked the host for a 64 GB image).
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "bad input: a huge size", 1);
    instance.set_param("width", i32::MAX).unwrap();
    let rod = instance.region_of_definition(1.0, 1.0).unwrap();
    assert_eq!((rod.x2, rod.y2), (2048.0, SIZE as f64));
    instance.push_button("generate").unwrap();
    assert!(string_param(&instance, "status").contains("larger than the maximum"));
    assert!(instance.render(1.0, PixelDepth::Float, 0).is_err());

    // On a farm, without Generate: the render fails with the message on the node.
    let host = natron(true);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "bad input on a farm", 1);
    instance.set_param("frames", 6).unwrap();
    assert!(instance.render(1.0, PixelDepth::Float, 0).is_err());
    assert!(instance
        .persistent_message()
        .unwrap()
        .text
        .contains("frame count 6"));
}

#[test]
fn hosts_without_optional_suites_still_work() {
    // Resolve: NULL setPersistentMessage. Then no progress suite and no message V2 at all:
    // Generate returns at once and the clip is announced on the next main-thread action.
    for (i, profile) in [
        HostProfile::resolve(),
        HostProfile::resolve()
            .without_progress_suite()
            .without_message_v2(),
    ]
    .into_iter()
    .enumerate()
    {
        let prompt = format!("minimal host {i}: snow falling");
        let host = Host::new(profile);
        let plugin = node_plugin(&host);
        let instance = plugin.create_instance(Context::Generator).unwrap();
        configure(&instance, &prompt, 11);
        instance.push_button("generate").unwrap();
        let expected = reference(&prompt, 11);
        let mut shown = None;
        // The last frame: the clip is complete (frames stream in as they are decoded; live
        // previews come before them).
        for _ in 0..6000 {
            let image = instance.render(5.0, PixelDepth::Short, 0).unwrap();
            if shows(&image, &expected[4]) {
                shown = Some(image);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_shows(&shown.expect("the frames arrive"), &expected[4]);
        assert_shows(
            &instance.render(1.0, PixelDepth::Short, 0).unwrap(),
            &expected[0],
        );
        // The job ends (after writing the cache); the next main-thread action announces it.
        for _ in 0..6000 {
            instance.sync_private_data().unwrap();
            if int_param(&instance, "generation") > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            int_param(&instance, "generation") > 0,
            "profile {i}: announced"
        );
        assert!(
            string_param(&instance, "status").starts_with("Ready"),
            "profile {i}"
        );
        // Errors still reach the user: status and a log message.
        instance.set_param("prompt", "").unwrap();
        instance.push_button("generate").unwrap();
        assert!(string_param(&instance, "status").contains("prompt is empty"));
        assert!(instance
            .messages()
            .iter()
            .any(|m| m.text.contains("prompt is empty")));
        assert!(instance.render(1.0, PixelDepth::Byte, 0).is_err());
    }
}

#[test]
fn renders_from_several_threads_at_once() {
    let prompt = "threads: a busy street";
    let host = natron(true);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 13);
    instance.set_param("cache", false).unwrap();
    let times = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 1.0, 5.0];
    let images = instance
        .render_concurrently(&times, &RenderRequest::new(0.0, PixelDepth::Float))
        .unwrap();
    let expected = reference(prompt, 13);
    for (t, image) in times.iter().zip(&images) {
        assert_shows(image, &expected[*t as usize - 1]);
    }
    assert!(instance.max_concurrent_renders() >= 2);
    assert_eq!(
        log_text()
            .matches(&format!("job \"{prompt}\": submitted"))
            .count(),
        1,
        "one job for every thread"
    );
}

#[test]
fn depths_row_layouts_scales_windows_and_colours() {
    let prompt = "layouts: a garden with flowers";
    let host = natron(false);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 17);
    instance.push_button("generate").unwrap();
    let expected = reference(prompt, 17);
    let frame = &expected[1];
    for depth in [PixelDepth::Byte, PixelDepth::Short, PixelDepth::Float] {
        for layout in [
            RowLayout::padded(0),
            RowLayout::padded(13 * 4),
            RowLayout::negative(0),
            RowLayout::negative(36),
        ] {
            let image = instance
                .render_with(&RenderRequest::new(2.0, depth).layout(layout))
                .unwrap();
            assert_eq!(image.row_bytes < 0, layout.negative);
            assert_shows(&image, frame);
        }
    }
    // Proxy: half scale averages 2x2 blocks of 16-bit codes.
    let half = instance
        .render_with(&RenderRequest::new(2.0, PixelDepth::Short).render_scale(0.5))
        .unwrap();
    assert_eq!((half.width(), half.height()), (SIZE / 2, SIZE / 2));
    for (x, y) in [(0, 0), (5, 9), (31, 31)] {
        let mut sum = [0u32; 3];
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let c = code(frame, 2 * x + dx, 2 * y + dy);
            (0..3).for_each(|k| sum[k] += c[k] as u32);
        }
        let avg = sum.map(|s| ((s + 2) / 4) as u16);
        assert_eq!(half.pixel_u16(x, y), [avg[0], avg[1], avg[2], 65535]);
    }
    // A window smaller than the bounds: only its pixels are written.
    let window = OfxRectI {
        x1: 8,
        y1: 16,
        x2: 40,
        y2: 20,
    };
    let image = instance
        .render_with(&RenderRequest::new(2.0, PixelDepth::Byte).window(window))
        .unwrap();
    for y in 0..SIZE {
        for x in 0..SIZE {
            let inside = (8..40).contains(&x) && (16..20).contains(&y);
            let p = image.pixel_u8(x, y);
            if inside {
                assert_eq!(p[3], 255, "({x},{y}) written");
            } else {
                assert_eq!(p, [0xA5; 4], "({x},{y}) untouched");
            }
        }
    }
    // Output colour: linear is the sRGB EOTF of the model's values, Rec.709 the BT.709 OETF of those.
    let srgb = |v: f32| {
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let bt709 = |l: f32| {
        if l < 0.018 {
            4.5 * l
        } else {
            1.099 * l.powf(0.45) - 0.099
        }
    };
    let c = code(frame, 10, 20)[0] as f32 / 65535.0;
    instance.set_param("colour", 1).unwrap();
    assert!((render_f32(&instance, 2.0).pixel_f32(10, 20)[0] - srgb(c)).abs() < 1e-6);
    instance.set_param("colour", 2).unwrap();
    assert!((render_f32(&instance, 2.0).pixel_f32(10, 20)[0] - bt709(srgb(c))).abs() < 1e-6);
    assert!(
        string_param(&instance, "status").starts_with("Ready"),
        "colour needs no new clip"
    );
}

#[test]
fn cancel_and_purge() {
    let host = natron(false);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "cancelled from the progress bar", 19);
    instance.set_param("steps", 200).unwrap();
    instance.set_param("cache", false).unwrap();
    host.set_progress_cancel(true);
    instance.push_button("generate").unwrap();
    host.set_progress_cancel(false);
    assert!(
        string_param(&instance, "status").starts_with("Cancelled"),
        "{}",
        string_param(&instance, "status")
    );
    assert!(is_placeholder(&render_f32(&instance, 1.0)));
    instance.push_button("cancel").unwrap();
    instance.purge_caches().unwrap();
    assert!(log_text().contains("purge caches: models unloaded"));
}

#[test]
fn style_and_tags_append_their_words_to_the_prompt() {
    let host = natron(false);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "a paper kite", 6);
    let presets = t2v_presets::Presets::shipped();
    let styles: Vec<&str> = presets.styles.iter().map(|s| s.name.as_str()).collect();
    let anime = styles.iter().position(|s| *s == "anime").unwrap();
    instance.set_param("style", anime as i32 + 1).unwrap(); // 0 is "none"
    instance.set_param("tags", "golden-hour, dolly-in").unwrap();
    instance.push_button("generate").unwrap();
    assert!(string_param(&instance, "status").starts_with("Ready"));
    // The clip is the service's clip for the prompt `t2v --style anime --tag ... --tag ...` makes.
    let full = presets
        .apply(
            "a paper kite",
            Some("anime"),
            &["golden-hour".to_string(), "dolly-in".to_string()],
        )
        .unwrap();
    assert!(full.starts_with("a paper kite, anime style"), "{full}");
    assert_shows(&render_f32(&instance, 1.0), &reference(&full, 6)[0]);

    // An unknown tag is bad input that names it.
    instance.set_param("tags", "golden-hour, moonwalk").unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.starts_with("Error: unknown tag \"moonwalk\""),
        "{status}"
    );
    assert!(instance.render(1.0, PixelDepth::Float, 0).is_err());
}

#[test]
fn the_memory_choice_reaches_the_service_and_its_plan_is_logged() {
    let prompt = "memory budget: a lighthouse at night";
    let host = natron(true);
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, prompt, 3);
    instance.set_param("memory", 4).unwrap(); // 8 GB
    let expected = reference(prompt, 3);
    let image = render_f32(&instance, 1.0);
    assert_shows(&image, &expected[0]);
    let log = log_text();
    let plan: Vec<&str> = log.lines().filter(|l| l.contains("memory 8: ")).collect();
    assert!(plan.iter().any(|l| l.contains("residency plan: ")), "{log}");
    assert!(
        plan.iter()
            .any(|l| l.contains("planned peak: ") && l.contains("budget 8.00 GiB")),
        "{log}"
    );
}
