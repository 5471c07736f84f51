//! The fast decoder through the service, on the tiny model with the tiny TAEHV fixture: its
//! frames are the tiny decoder's decode of the same final latents, it is a different clip (key
//! and cache entry) from the full decode, it makes the previews, and a fast decode without a
//! tiny decoder says what to do.

mod common;

use candle_core::{DType, Device};
use common::*;
use t2v_bridge::{Decoder, ErrorKind, JobStage, PreviewCadence};

fn tiny_decoder() -> std::path::PathBuf {
    fixtures().join("taehv/taehv-tiny.safetensors")
}

#[test]
fn a_fast_decode_is_the_tiny_decoders_frames_and_its_own_clip() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    let full = request("fast: a blue square");
    let mut fast = full.clone();
    fast.decoder = Decoder::Fast;
    fast.model.overrides.fast_decoder = Some(tiny_decoder());
    assert_ne!(
        service.key_for(&full).unwrap(),
        service.key_for(&fast).unwrap()
    );

    let full_clip = service.submit(full).unwrap().wait().unwrap();
    let fast_clip = service.submit(fast.clone()).unwrap().wait().unwrap();
    assert!(!fast_clip.from_cache, "not the full decode's cache entry");
    // The same denoising, another decoder.
    assert_eq!(fast_clip.latents, full_clip.latents);
    let latents = fast_clip
        .latents
        .as_ref()
        .unwrap()
        .to_tensor(&Device::Cpu)
        .unwrap();
    let tiny = t2v_models::taehv::load_taehv(&tiny_decoder(), DType::F32, &Device::Cpu).unwrap();
    let want = t2v_bridge::Frame::split(&tiny.decode(&latents).unwrap()).unwrap();
    let want: Vec<Vec<u16>> = want.iter().map(|f| f.rgb16().to_vec()).collect();
    assert_frames_close(&fast_clip.frames, &want);
    assert_ne!(fast_clip.frames, full_clip.frames);
    assert!(service.submit(fast).unwrap().wait().unwrap().from_cache);
}

#[test]
fn the_tiny_decoder_makes_the_previews_when_present() {
    let service = service(no_cache());
    let mut r = request("fast: previews");
    r.params.steps = 3;
    r.preview = Some(PreviewCadence::Every(1));
    r.model.overrides.fast_decoder = Some(tiny_decoder());
    let (gate, observer) = Gate::new(|p| matches!(p.stage, JobStage::Denoising { step: 2, .. }));
    let handle = service.submit_observed(r, Some(observer)).unwrap();
    gate.wait_reached();
    let preview = handle.preview().expect("a preview after step 1");
    gate.open();
    handle.wait().unwrap();
    // A tiny decoder's frames, not the projection's cell-sized blocks: neighbouring pixels
    // inside one 16x16 latent cell differ.
    let f = &preview.frames[0];
    let px = |x: usize, y: usize| f.rgb16()[(y * f.width() + x) * 3];
    assert!((0..15).any(|x| px(x, 3) != px(x + 1, 3)));
}

#[test]
fn a_fast_decode_without_a_tiny_decoder_says_what_to_do() {
    let service = service(no_cache());
    let mut r = request("fast: none");
    r.decoder = Decoder::Fast;
    let e = service.submit(r.clone()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("taew2_2"), "{}", e.message);
    r.model.overrides.fast_decoder = Some("/no/such/taew2_2.pth".into());
    let e = service.submit(r).unwrap_err();
    assert!(e.message.contains("does not exist"), "{}", e.message);
}
