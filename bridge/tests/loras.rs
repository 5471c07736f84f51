//! LoRAs through the service: they change the pixels, a new set reloads only what it changes,
//! an unchanged set reloads nothing, and a LoRA that doesn't fit fails at submit.

mod common;

use common::*;
use t2v_bridge::request::LoraSpec;
use t2v_bridge::{ErrorKind, Request, ServiceConfig};

fn lora(name: &str, strength: f64) -> LoraSpec {
    LoraSpec {
        path: fixtures().join("lora").join(name),
        strength,
    }
}

fn with_loras(prompt: &str, loras: Vec<LoraSpec>) -> Request {
    let mut r = request(prompt);
    r.model.loras = loras;
    r
}

#[test]
fn a_lora_set_changes_pixels_and_reloads_only_when_it_changes() {
    let service = service(ServiceConfig {
        low_memory: false,
        ..no_cache()
    });
    let plain = service.submit(request("a cat")).unwrap().wait().unwrap();
    let loads = service.stats().component_loads;
    assert_eq!(loads, 3);

    let styled = with_loras("a cat", vec![lora("kohya.safetensors", 1.0)]);
    assert_ne!(
        service.key_for(&styled).unwrap(),
        service.key_for(&request("a cat")).unwrap()
    );
    let clip = service.submit(styled).unwrap().wait().unwrap();
    assert_eq!(
        clip.metadata.model.loras,
        vec![lora("kohya.safetensors", 1.0)]
    );
    assert_ne!(
        clip.frames[0].rgb16(),
        plain.frames[0].rgb16(),
        "the LoRA changes the pixels"
    );
    assert_eq!(
        service.stats().component_loads,
        loads + 2,
        "transformer and text encoder reloaded with the LoRA, the VAE kept"
    );
    assert_eq!(service.stats().model_loads, 1);

    // The same set again: nothing reloads.
    let loads = service.stats().component_loads;
    let again = with_loras("a dog", vec![lora("kohya.safetensors", 1.0)]);
    service.submit(again).unwrap().wait().unwrap();
    assert_eq!(service.stats().component_loads, loads);

    // Another strength is another set.
    let weaker = with_loras("a cat", vec![lora("kohya.safetensors", 0.5)]);
    let weaker_clip = service.submit(weaker).unwrap().wait().unwrap();
    assert_eq!(service.stats().component_loads, loads + 2);
    assert_ne!(weaker_clip.frames[0].rgb16(), clip.frames[0].rgb16());

    // Back to none: the plain model's pixels exactly.
    let back = service.submit(request("a cat")).unwrap().wait().unwrap();
    assert_eq!(back.frames[0].rgb16(), plain.frames[0].rgb16());
}

#[test]
fn a_lora_that_does_not_fit_fails_at_submit_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("wide.safetensors");
    let dev = candle_core::Device::Cpu;
    let t = |s: &[usize]| candle_core::Tensor::ones(s, candle_core::DType::F32, &dev).unwrap();
    let tensors = std::collections::HashMap::from([
        (
            "transformer.blocks.0.attn1.to_q.lora_A.weight".to_string(),
            t(&[4, 3072]),
        ),
        (
            "transformer.blocks.0.attn1.to_q.lora_B.weight".to_string(),
            t(&[3072, 4]),
        ),
    ]);
    candle_core::safetensors::save(&tensors, &bad).unwrap();
    let service = service(no_cache());
    let submit = |spec: LoraSpec| {
        service
            .submit(with_loras("a cat", vec![spec]))
            .map(|_| ())
            .expect_err("refused")
    };
    let e = submit(LoraSpec {
        path: bad.clone(),
        strength: 1.0,
    });
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(
        e.message
            .contains("`transformer.blocks.0.attn1.to_q.lora_A.weight`"),
        "{e}"
    );
    let e = submit(LoraSpec {
        path: dir.path().join("missing.safetensors"),
        strength: 1.0,
    });
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("missing.safetensors"), "{e}");
    assert_eq!(service.stats().component_loads, 0, "nothing was loaded");
}
