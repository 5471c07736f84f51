//! The node's `loras` setting: LoRAs listed there change the pixels that reach the host exactly
//! as the service makes them with the same LoRAs, and a bad line is an error the host shows.

mod t2v_common;

use ofx_bindings::{Context, PixelDepth};
use ofx_test_host::*;
use t2v_bridge::request::LoraSpec;
use t2v_common::*;

fn lora(name: &str) -> std::path::PathBuf {
    tiny_model().parent().unwrap().join("lora").join(name)
}

#[test]
fn loras_change_the_pixels_and_a_bad_line_shows_an_error() {
    let host = Host::new(HostProfile::natron());
    let plugin = node_plugin(&host);
    let instance = plugin.create_instance(Context::Generator).unwrap();
    configure(&instance, "a lantern", 5);
    let (kohya, wan) = (lora("kohya.safetensors"), lora("wan.safetensors"));
    let lines = format!(
        "# the style, then a little motion\n{}\n\n{}:0.5\n",
        kohya.display(),
        wan.display()
    );
    instance.set_param("loras", lines.as_str()).unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(status.starts_with("Ready"), "{status}");
    let expected = reference_with("a lantern", 5, |request| {
        request.model.loras = vec![
            LoraSpec {
                path: kohya.clone(),
                strength: 1.0,
            },
            LoraSpec {
                path: wan,
                strength: 0.5,
            },
        ]
    });
    let shown = instance.render(1.0, PixelDepth::Float, 0).unwrap();
    assert_shows(&shown, &expected[0]);
    let plain = reference("a lantern", 5);
    assert_ne!(
        plain[0].rgb16(),
        expected[0].rgb16(),
        "the LoRAs change the pixels"
    );

    // A strength that is not a number: the line is named, in the status and to the host.
    let bad = format!("{}\n{}:0.5.1\n", kohya.display(), kohya.display());
    instance.set_param("loras", bad.as_str()).unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.starts_with("Error: ") && status.contains("LoRA line 2"),
        "{status}"
    );
    let told = instance
        .messages()
        .into_iter()
        .chain(instance.persistent_message())
        .any(|m| m.text.contains("LoRA line 2"));
    assert!(told, "the host was told: {:?}", instance.messages());

    // A file that is not there.
    instance
        .set_param("loras", "/no/such/style.safetensors:0.8")
        .unwrap();
    instance.push_button("generate").unwrap();
    let status = string_param(&instance, "status");
    assert!(
        status.starts_with("Error: ") && status.contains("LoRA file not found"),
        "{status}"
    );
}
