//! Drives the ramp-generator fixture through the test host, like a real host would.

use ofx_bindings::sys::*;
use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use std::path::PathBuf;

fn bundle() -> PathBuf {
    ramp_generator_bundle().expect("build the ramp-generator fixture")
}

const ID: &str = "org.example.ofxtest.RampGenerator";

/// The fixture's documented formula, as the test's own copy.
#[allow(clippy::too_many_arguments)]
fn expected(
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    time: f64,
    seed: i32,
    gain: f64,
    invert: bool,
    label: &str,
) -> [f32; 4] {
    let mut r = (x as f32 / (w.max(2) - 1) as f32 * gain as f32).clamp(0.0, 1.0);
    if invert {
        r = 1.0 - r;
    }
    let g = y as f32 / (h.max(2) - 1) as f32;
    let b = ((time as i64 + seed as i64).rem_euclid(10)) as f32 / 10.0;
    let a = (label.chars().count() % 5) as f32 / 4.0;
    [r, g, b, a]
}

fn check_all_pixels(
    img: &RenderedImage,
    time: f64,
    seed: i32,
    gain: f64,
    invert: bool,
    label: &str,
) {
    let (w, h) = (img.width(), img.height());
    for y in 0..h {
        for x in 0..w {
            let e = expected(x, y, w, h, time, seed, gain, invert, label);
            match img.depth {
                PixelDepth::Float => assert_eq!(img.pixel_f32(x, y), e, "pixel ({x},{y})"),
                PixelDepth::Short => {
                    assert_eq!(
                        img.pixel_u16(x, y),
                        e.map(|c| (c * 65535.0).round() as u16),
                        "pixel ({x},{y})"
                    )
                }
                PixelDepth::Byte => assert_eq!(
                    img.pixel_u8(x, y),
                    e.map(|c| (c * 255.0).round() as u8),
                    "pixel ({x},{y})"
                ),
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn loads_bundle_and_follows_the_action_sequence() {
    let host = Host::new(HostProfile::natron());
    let bundle = host.load_bundle(bundle()).unwrap();
    assert_eq!(
        bundle.set_host_status(),
        Some(kOfxStatOK),
        "OfxSetHost is called when exported"
    );
    assert_eq!(bundle.plugins().len(), 1);
    let info = &bundle.plugins()[0];
    assert_eq!(
        (
            info.identifier.as_str(),
            info.version,
            info.api.as_str(),
            info.api_version
        ),
        (ID, (1, 2), "OfxImageEffectPluginAPI", 1)
    );
    {
        let plugin = bundle.plugin(Some(ID)).unwrap();
        assert_eq!(
            plugin.supported_contexts(),
            vec![Context::Generator, Context::General]
        );
        assert_eq!(
            plugin.supported_pixel_depths(),
            vec![PixelDepth::Byte, PixelDepth::Short, PixelDepth::Float]
        );
        let instance = plugin.create_instance(Context::General).unwrap();
        assert_eq!(instance.time_domain().unwrap(), Some((1.0, 10.0)));
        instance.render(1.0, PixelDepth::Float, 0).unwrap();
        instance.purge_caches().unwrap();
        instance.sync_private_data().unwrap();
        instance.destroy().unwrap();
    }
    drop(bundle);
    let actions = host.actions();
    let expected = [
        "OfxActionLoad",
        "OfxActionDescribe",
        "OfxImageEffectActionDescribeInContext",
        "OfxActionCreateInstance",
        "OfxImageEffectActionGetClipPreferences",
        "OfxImageEffectActionGetTimeDomain",
        "OfxImageEffectActionBeginSequenceRender",
        "OfxImageEffectActionGetRegionOfDefinition",
        "OfxImageEffectActionRender",
        "OfxImageEffectActionEndSequenceRender",
        "OfxActionPurgeCaches",
        "OfxActionSyncPrivateData",
        "OfxActionDestroyInstance",
        "OfxActionUnload",
    ];
    assert_eq!(actions, expected);
    // The plugin fetched the suites it needs, once, at Load.
    let requests = host.suite_requests();
    for (name, version) in [
        ("OfxPropertySuite", 1),
        ("OfxImageEffectSuite", 1),
        ("OfxParameterSuite", 1),
        ("OfxMessageSuite", 2),
        ("OfxProgressSuite", 2),
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.name == name && r.version == version && r.provided),
            "{name} v{version}"
        );
    }
}

#[test]
fn describes_both_contexts_with_clips_and_params() {
    let host = Host::new(HostProfile::natron());
    let plugin = host.load_bundle(bundle()).unwrap().plugin(None).unwrap();
    let generator = plugin.describe_in_context(Context::Generator).unwrap();
    assert_eq!(generator.clip_names(), vec!["Output"]);
    let general = plugin.describe_in_context(Context::General).unwrap();
    assert_eq!(general.clip_names(), vec!["Output", "Source"]);
    let source = general.clip_properties("Source").unwrap();
    assert_eq!(source.get_int(kOfxImageClipPropOptional, 0), Ok(1));
    assert_eq!(
        source
            .get_strings(kOfxImageEffectPropSupportedComponents)
            .unwrap(),
        vec!["OfxImageComponentRGBA"]
    );

    let names = generator.param_names();
    for n in [
        "main", "seed", "gain", "label", "invert", "mode", "reset", "status", "advanced",
        "delay_ms",
    ] {
        assert!(names.iter().any(|p| p == n), "param {n} in {names:?}");
    }
    let seed = generator.param_properties("seed").unwrap();
    assert_eq!(
        seed.get_string(kOfxParamPropType, 0).unwrap(),
        "OfxParamTypeInteger"
    );
    assert_eq!(seed.get_string(kOfxPropLabel, 0).unwrap(), "Seed");
    assert_eq!(seed.get_ints(kOfxParamPropDefault).unwrap(), vec![1]);
    assert_eq!(
        (
            seed.get_int(kOfxParamPropMin, 0),
            seed.get_int(kOfxParamPropMax, 0)
        ),
        (Ok(0), Ok(1000))
    );
    assert_eq!(
        (
            seed.get_int(kOfxParamPropDisplayMin, 0),
            seed.get_int(kOfxParamPropDisplayMax, 0)
        ),
        (Ok(0), Ok(100))
    );
    // A range without a display range gets the range as display range (Resolve needs both).
    let gain = generator.param_properties("gain").unwrap();
    assert_eq!(
        gain.get_doubles(kOfxParamPropDisplayMin).unwrap(),
        vec![0.0]
    );
    assert_eq!(
        gain.get_doubles(kOfxParamPropDisplayMax).unwrap(),
        vec![4.0]
    );
    let mode = generator.param_properties("mode").unwrap();
    assert_eq!(
        mode.get_strings(kOfxParamPropChoiceOption).unwrap(),
        vec!["ramp", "solid"]
    );
    let status = generator.param_properties("status").unwrap();
    assert_eq!(status.get_int(kOfxParamPropEnabled, 0), Ok(0));
    assert_eq!(
        generator
            .param_properties("delay_ms")
            .unwrap()
            .get_string(kOfxParamPropParent, 0)
            .unwrap(),
        "advanced"
    );
    assert_eq!(
        generator
            .param_properties("label")
            .unwrap()
            .get_string(kOfxParamPropStringMode, 0)
            .unwrap(),
        "OfxParamStringIsSingleLine"
    );
    assert_eq!(
        generator
            .param_properties("panic_in_render")
            .unwrap()
            .get_int(kOfxParamPropSecret, 0),
        Ok(1)
    );
    assert_eq!(
        generator
            .param_properties("main")
            .unwrap()
            .get_strings(kOfxParamPropPageChild)
            .unwrap()
            .len(),
        7
    );

    let d = plugin.descriptor_properties();
    assert_eq!(d.get_string(kOfxPropLabel, 0).unwrap(), "Ramp Generator");
    assert_eq!(
        d.get_string(kOfxImageEffectPluginRenderThreadSafety, 0)
            .unwrap(),
        "OfxImageEffectRenderFullySafe"
    );
    assert_eq!(d.get_int(kOfxImageEffectPropSupportsTiles, 0), Ok(0));
}

#[test]
fn instance_params_have_values_and_change_notifications() {
    let host = Host::new(HostProfile::natron());
    let plugin = host.load_bundle(bundle()).unwrap().plugin(None).unwrap();
    let instance = plugin.create_instance(Context::Generator).unwrap();
    assert_eq!(instance.param("seed").unwrap(), ParamValue::Int(1));
    assert_eq!(instance.param("gain").unwrap(), ParamValue::Double(1.0));
    assert_eq!(
        instance.param("label").unwrap(),
        ParamValue::String("ramp".into())
    );
    assert_eq!(instance.param("invert").unwrap(), ParamValue::Bool(false));
    assert_eq!(
        instance
            .clip_preferences()
            .get_int(kOfxImageEffectFrameVarying, 0),
        Ok(1)
    );

    instance.set_param("seed", 42).unwrap();
    assert_eq!(instance.param("seed").unwrap(), ParamValue::Int(42));
    assert!(
        instance.set_param("seed", "text").is_err(),
        "wrong value type is refused"
    );
    assert!(
        instance.set_param("mode", 5).is_err(),
        "choice index out of range is refused"
    );
    assert!(matches!(
        instance.set_param("nope", 1),
        Err(HostError::NoSuchParam(_))
    ));

    // Plugin-edited values come back as InstanceChanged(PluginEdited); text with printf
    // conversions travels verbatim.
    instance.set_param("label", "50% %s %n").unwrap();
    assert_eq!(
        instance.param("status").unwrap(),
        ParamValue::String("label is 50% %s %n".into())
    );
    let log: Vec<String> = instance
        .messages()
        .iter()
        .filter(|m| m.id == "changed")
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(
        log,
        vec![
            "seed Some(UserEdited)",
            "label Some(UserEdited)",
            "status Some(PluginEdited)"
        ]
    );

    // A push button: the plugin resets the seed and asks a question.
    host.set_question_reply(true);
    instance.push_button("reset").unwrap();
    assert_eq!(instance.param("seed").unwrap(), ParamValue::Int(1));
    host.set_question_reply(false);
    instance.push_button("reset").unwrap();
    assert_eq!(instance.param("seed").unwrap(), ParamValue::Int(7));
    assert!(instance.push_button("seed").is_err());

    // Every InstanceChanged is wrapped in Begin/EndInstanceChanged; the plugin's two
    // setValue calls in the last button press arrive as two PluginEdited changes.
    let actions = host.actions();
    let n = actions
        .iter()
        .rposition(|a| a == "OfxActionBeginInstanceChanged")
        .unwrap();
    assert_eq!(
        &actions[n..],
        [
            "OfxActionBeginInstanceChanged",
            "OfxActionInstanceChanged",
            "OfxActionInstanceChanged",
            "OfxActionEndInstanceChanged"
        ]
    );
}

#[test]
fn renders_every_depth_with_odd_row_layouts() {
    let host = Host::new(HostProfile::natron().project_size(13.0, 7.0));
    let plugin = host.load_bundle(bundle()).unwrap().plugin(None).unwrap();
    let instance = plugin.create_instance(Context::Generator).unwrap();
    instance.set_param("seed", 3).unwrap();
    instance.set_param("gain", 1.5).unwrap();
    instance.set_param("label", "abc").unwrap();
    for depth in [PixelDepth::Byte, PixelDepth::Short, PixelDepth::Float] {
        for layout in [
            RowLayout::padded(0),
            RowLayout::padded(12),
            RowLayout::negative(0),
            RowLayout::negative(20),
        ] {
            let req = RenderRequest::new(4.0, depth).layout(layout);
            let img = instance
                .render_with(&req)
                .unwrap_or_else(|e| panic!("{depth:?} {layout:?}: {e}"));
            assert_eq!((img.width(), img.height()), (13, 7));
            assert_eq!(img.row_bytes < 0, layout.negative);
            check_all_pixels(&img, 4.0, 3, 1.5, false, "abc");
        }
    }
    // Odd padding on a Byte image is fine; the host also checks nothing outside rows was touched.
    let img = instance.render(2.0, PixelDepth::Byte, 3).unwrap();
    check_all_pixels(&img, 2.0, 3, 1.5, false, "abc");
    assert_eq!(instance.outstanding_images(), 0);
    // Frames differ over time, as the plugin said (FrameVarying).
    let a = instance.render(1.0, PixelDepth::Float, 0).unwrap();
    let b = instance.render(2.0, PixelDepth::Float, 0).unwrap();
    assert_ne!(a.raw(), b.raw());
}

#[test]
fn interactive_and_background_render_modes() {
    let host = Host::new(HostProfile::natron().background(true));
    assert_eq!(
        host.properties()
            .get_int(kOfxImageEffectHostPropIsBackground, 0),
        Ok(1)
    );
    let plugin = host.load_bundle(bundle()).unwrap().plugin(None).unwrap();
    let instance = plugin.create_instance(Context::Generator).unwrap();
    instance.render(1.0, PixelDepth::Float, 0).unwrap();
    instance
        .render_with(&RenderRequest::new(1.0, PixelDepth::Float).interactive(true))
        .unwrap();
    let seq: Vec<String> = instance
        .messages()
        .iter()
        .filter(|m| m.id == "sequence")
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(
        seq[0],
        "BeginSequenceRender interactive=false sequential=Some(1)"
    );
    assert_eq!(
        seq[2],
        "BeginSequenceRender interactive=true sequential=Some(0)"
    );

    // Resolve has no SequentialRenderStatus at all.
    let host = Host::new(HostProfile::resolve());
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    instance.render(1.0, PixelDepth::Short, 0).unwrap();
    assert!(instance
        .messages()
        .iter()
        .any(|m| m.text == "BeginSequenceRender interactive=true sequential=None"));
}

#[test]
fn abort_stops_the_render_and_progress_is_reported() {
    let host = Host::new(HostProfile::natron());
    let plugin = host.load_bundle(bundle()).unwrap().plugin(None).unwrap();
    let instance = plugin.create_instance(Context::Generator).unwrap();
    instance.render(1.0, PixelDepth::Float, 0).unwrap();
    let progress = instance.progress_events();
    assert_eq!(
        progress.first(),
        Some(&ProgressEvent::Start {
            label: "Ramp".into(),
            id: Some("ramp".into())
        })
    );
    assert_eq!(progress.last(), Some(&ProgressEvent::End));
    assert!(progress.contains(&ProgressEvent::Update(1.0)));

    host.set_abort(true);
    let err = instance.render(2.0, PixelDepth::Float, 0).unwrap_err();
    assert_eq!(err.status(), Some(kOfxStatFailed));
    assert!(instance
        .messages()
        .iter()
        .any(|m| m.text == "aborted at row 0"));
    assert_eq!(
        instance.outstanding_images(),
        0,
        "the image is released on the error path too"
    );
    host.set_abort(false);

    host.set_progress_cancel(true);
    assert_eq!(
        instance
            .render(3.0, PixelDepth::Float, 0)
            .unwrap_err()
            .status(),
        Some(kOfxStatFailed)
    );
    host.set_progress_cancel(false);
    instance.render(3.0, PixelDepth::Float, 0).unwrap();
}

#[test]
fn persistent_messages_and_missing_optional_suites() {
    // Natron: message V2 with persistent messages.
    let host = Host::new(HostProfile::natron());
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    assert_eq!(instance.persistent_message().unwrap().text, "ready");
    instance.render(5.0, PixelDepth::Float, 0).unwrap();
    assert_eq!(
        instance.persistent_message().unwrap().text,
        "rendered 1 frame(s), last 5"
    );

    // Resolve: V2 with a NULL setPersistentMessage; the plugin falls back to a log message.
    let host = Host::new(HostProfile::resolve());
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    assert_eq!(instance.persistent_message(), None);
    assert!(instance
        .messages()
        .iter()
        .any(|m| m.id == "status" && m.text == "ready"));

    // No progress suite, no message V2, no multithread suite: still renders exact pixels.
    let profile = HostProfile::natron()
        .without_progress_suite()
        .without_message_v2()
        .without_multithread_suite();
    let host = Host::new(profile);
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    let img = instance.render(1.0, PixelDepth::Float, 8).unwrap();
    check_all_pixels(&img, 1.0, 1, 1.0, false, "ramp");
    assert!(instance.progress_events().is_empty());
    assert_eq!(instance.persistent_message(), None);
    assert!(host
        .suite_requests()
        .iter()
        .any(|r| r.name == "OfxProgressSuite" && !r.provided));

    // No message suite at all.
    let host = Host::new(HostProfile::natron().without_message_suite());
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    // InstanceChanged logs a message: without any message suite that is an error the plugin reports.
    assert!(instance.set_param("seed", 2).is_err());
    instance.render(1.0, PixelDepth::Float, 0).unwrap_err();
}

#[test]
fn host_profiles_restrict_contexts_and_depths() {
    let host = Host::new(HostProfile::nuke());
    let plugin = host.load_bundle(bundle()).unwrap().plugin(None).unwrap();
    assert!(matches!(
        plugin.create_instance(Context::Generator),
        Err(HostError::Unsupported(_))
    ));
    let instance = plugin.create_instance(Context::General).unwrap();
    assert!(matches!(
        instance.render(1.0, PixelDepth::Byte, 0),
        Err(HostError::Unsupported(_))
    ));
    instance.render(1.0, PixelDepth::Float, 0).unwrap();
    assert_eq!(
        host.properties().get_string(kOfxPropName, 0).unwrap(),
        "uk.co.thefoundry.nuke"
    );
}

#[test]
fn several_threads_render_one_instance_at_once() {
    let host = Host::new(HostProfile::natron().project_size(32.0, 16.0));
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    instance.set_param("delay_ms", 40).unwrap();
    let times: Vec<f64> = (1..=6).map(f64::from).collect();
    let images = instance
        .render_concurrently(
            &times,
            &RenderRequest::new(1.0, PixelDepth::Float).layout(RowLayout::negative(4)),
        )
        .unwrap();
    for (img, &t) in images.iter().zip(&times) {
        assert_eq!(img.time, t);
        check_all_pixels(img, t, 1, 1.0, false, "ramp");
    }
    assert!(
        instance.max_concurrent_renders() > 1,
        "FullySafe plugin renders concurrently"
    );
    assert_eq!(instance.outstanding_images(), 0);
}

#[test]
fn a_panic_in_the_plugin_becomes_kofxstatfailed() {
    let host = Host::new(HostProfile::natron());
    let instance = host
        .load_bundle(bundle())
        .unwrap()
        .plugin(None)
        .unwrap()
        .create_instance(Context::Generator)
        .unwrap();
    instance.set_param("panic_in_render", true).unwrap();
    assert_eq!(
        instance
            .render(1.0, PixelDepth::Float, 0)
            .unwrap_err()
            .status(),
        Some(kOfxStatFailed)
    );
    instance.set_param("panic_in_render", false).unwrap();
    instance.render(1.0, PixelDepth::Float, 0).unwrap();
}

#[test]
fn load_unload_and_reload_the_same_file() {
    // Not isolated: the very same file is dlopen'ed again, so the plugin's globals may survive
    // between Unload and the next Load, and it must cope.
    for round in 0..3 {
        let mut host = Host::new(HostProfile::natron());
        host.set_isolated_loading(false);
        let bundle = host.load_bundle(bundle()).unwrap();
        let plugin = bundle.plugin(None).unwrap();
        let instance = plugin.create_instance(Context::Generator).unwrap();
        instance.set_param("seed", round).unwrap();
        let img = instance.render(1.0, PixelDepth::Float, 0).unwrap();
        check_all_pixels(&img, 1.0, round, 1.0, false, "ramp");
        drop(instance);
        drop(plugin);
        drop(bundle);
        assert_eq!(
            host.actions().last().map(String::as_str),
            Some("OfxActionUnload")
        );
        assert_eq!(
            host.actions()
                .iter()
                .filter(|a| *a == "OfxActionLoad")
                .count(),
            1
        );
    }
}

#[test]
fn finds_bundles_on_a_search_path() {
    let bundle = bundle();
    let dir = bundle.parent().unwrap().to_path_buf();
    let found = find_bundles(&[dir.parent().unwrap().to_path_buf()]);
    assert!(found.contains(&bundle), "{found:?}");
    assert!(bundle_binary_path(&bundle)
        .unwrap()
        .ends_with("Contents/Linux-x86-64/RampGenerator.ofx"));
}
