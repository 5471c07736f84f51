//! The node keeps its style preset by name: a script saved with a user style loads with that
//! style after the presets file changed (new styles shift the menu), and a style the presets
//! lost is an error that names it, not another style. Its own test binary: `$T2V_PRESETS`
//! names a file of this process, set before `main`, that this test rewrites.

mod t2v_common;

use ofx_bindings::Context;
use ofx_test_host::*;
use std::path::PathBuf;
use t2v_common::*;
use t2v_presets::Presets;

fn presets_file() -> PathBuf {
    scratch().join("prompt-presets.json")
}

fn set_presets_env() {
    std::env::set_var("T2V_PRESETS", presets_file());
}
before_main!(SET_PRESETS_ENV, set_presets_env);

/// Writes the user presets file with `styles` (name, words).
fn write_presets(styles: &[(&str, &str)]) -> Presets {
    let entries: Vec<String> = styles
        .iter()
        .map(|(name, append)| format!("{{ \"name\": \"{name}\", \"append\": \"{append}\" }}"))
        .collect();
    let text = format!(
        "{{ \"format\": 1, \"styles\": [ {} ], \"tag_groups\": [] }}",
        entries.join(", ")
    );
    std::fs::write(presets_file(), &text).unwrap();
    let mut presets = Presets::shipped();
    presets.extend_from_str(&text, "test").unwrap();
    presets
}

/// A fresh load of the bundle (an isolated copy: the presets are read again).
fn load(host: &Host) -> Plugin {
    node_plugin(host)
}

fn menu(plugin: &Plugin) -> Vec<String> {
    plugin
        .describe_in_context(Context::Generator)
        .unwrap()
        .param_properties("style")
        .unwrap()
        .get_strings(ofx_bindings::sys::kOfxParamPropChoiceOption)
        .unwrap()
}

#[test]
fn a_saved_style_survives_edited_presets() {
    let host = Host::new(HostProfile::natron());
    write_presets(&[
        ("mine-a", "watercolour wash"),
        ("mine-b", "charcoal sketch"),
    ]);
    let plugin = load(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "a lighthouse", 31);
    let index = menu(&plugin).iter().position(|s| s == "mine-b").unwrap();
    instance.set_param("style", index as i32).unwrap();
    assert_eq!(string_param(&instance, "style_name"), "mine-b");
    let saved = instance.saved_values();
    assert!(saved
        .iter()
        .any(|(n, v)| n == "style_name" && *v == ParamValue::from("mine-b")));
    drop((instance, plugin));

    // A new style before it: the menu entry moved, the script's index now means mine-a.
    let presets = write_presets(&[
        ("mine-new", "oil on canvas"),
        ("mine-a", "watercolour wash"),
        ("mine-b", "charcoal sketch"),
    ]);
    let plugin = load(&host);
    let moved = menu(&plugin).iter().position(|s| s == "mine-b").unwrap();
    assert_ne!(moved, index, "the edit moved the entry");
    assert_eq!(menu(&plugin)[index], "mine-a");
    let instance = plugin
        .create_instance_from(Context::Generator, &saved)
        .unwrap();
    assert_eq!(string_param(&instance, "style_name"), "mine-b");
    assert_eq!(
        int_param(&instance, "style"),
        moved as i32,
        "the menu shows it"
    );
    instance.push_button("generate").unwrap();
    assert!(string_param(&instance, "status").starts_with("Ready"));
    let full = presets.apply("a lighthouse", Some("mine-b"), &[]).unwrap();
    assert!(full.contains("charcoal sketch"), "{full}");
    assert_shows(
        &instance
            .render(1.0, ofx_bindings::PixelDepth::Float, 0)
            .unwrap(),
        &reference(&full, 31)[0],
    );
    drop((instance, plugin));

    // The style is gone: an error that names it; the name is kept for when it comes back.
    write_presets(&[("mine-a", "watercolour wash")]);
    let plugin = load(&host);
    // The saved index is past the end of the shorter menu: the host clamps it.
    let last = menu(&plugin).len() as i32 - 1;
    let clamped: Vec<(String, ParamValue)> = saved
        .iter()
        .map(|(n, v)| match (n.as_str(), v) {
            ("style", ParamValue::Int(i)) => (n.clone(), ParamValue::Int((*i).min(last))),
            _ => (n.clone(), v.clone()),
        })
        .collect();
    let instance = plugin
        .create_instance_from(Context::Generator, &clamped)
        .unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.starts_with("Error: ") && status.contains("mine-b"),
        "{status}"
    );
    assert_eq!(string_param(&instance, "style_name"), "mine-b");

    // A script from before style_name (its index only) takes the entry's name.
    let legacy: Vec<(String, ParamValue)> = clamped
        .iter()
        .filter(|(n, _)| n != "style_name")
        .cloned()
        .collect();
    let mine_a = menu(&plugin).iter().position(|s| s == "mine-a").unwrap();
    let legacy: Vec<_> = legacy
        .into_iter()
        .map(|(n, v)| match n.as_str() {
            "style" => (n, ParamValue::Int(mine_a as i32)),
            _ => (n, v),
        })
        .collect();
    let instance = plugin
        .create_instance_from(Context::Generator, &legacy)
        .unwrap();
    assert_eq!(string_param(&instance, "style_name"), "mine-a");
}
