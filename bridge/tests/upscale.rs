//! Clips upscaled by the service: each decoded frame goes through the Real-ESRGAN network
//! (the tiny random-weight fixtures of `models/tests/fixtures/upscale`) before it is
//! published, at the size the choice gives; the clip cache keeps the upscaled frames.

mod common;

use candle_core::Device;
use common::*;
use std::path::PathBuf;
use t2v_bridge::{ErrorKind, Frame, Request, Upscale, UpscaleTarget};
use t2v_models::upscale::{Tiling, Upscaler};

fn upscaler_file(name: &str) -> PathBuf {
    fixtures().join("upscale").join(name)
}

fn upscaled_request(prompt: &str, target: UpscaleTarget, file: &str) -> Request {
    let mut r = request(prompt);
    r.upscale = Some(Upscale::new(target, upscaler_file(file)));
    r
}

/// The pipeline's frames, then the upscaler on each, quantised as the service does.
fn reference_upscaled(request: &Request, width: usize, height: usize) -> Vec<Vec<u16>> {
    let frames = pipeline_frames(request);
    let upscale = request.upscale.as_ref().unwrap();
    let upscaler = Upscaler::load(&upscale.upscaler, &Device::Cpu).unwrap();
    (0..frames.dim(0).unwrap())
        .map(|i| {
            let f = upscaler
                .upscale_frame(
                    &frames.get(i).unwrap(),
                    width,
                    height,
                    &Tiling::DEFAULT,
                    &Device::Cpu,
                )
                .unwrap();
            Frame::from_tensor(&f).unwrap().rgb16().to_vec()
        })
        .collect()
}

#[test]
fn frames_are_upscaled_as_they_are_decoded_and_cached_upscaled() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(with_cache(dir.path()));
    // 1.5x through a x2 network: the network's scale, then a resize to 96x96.
    let r = upscaled_request("a red ball", UpscaleTarget::X1_5, "compact_x2.safetensors");
    // Held after the first decoded chunk: its frames are already published, upscaled.
    let (gate, observer) = Gate::new(|p| p.frames_done >= 1 && !p.stage.is_final());
    let handle = service.submit_observed(r.clone(), Some(observer)).unwrap();
    gate.wait_reached();
    let first = handle
        .frame(0)
        .expect("the first frame is published while decoding");
    assert_eq!((first.width(), first.height()), (96, 96));
    assert!(
        handle.frame(8).is_none(),
        "the last frame is not decoded yet"
    );
    gate.open();
    let clip = handle.wait().unwrap();
    assert!(clip
        .frames
        .iter()
        .all(|f| (f.width(), f.height()) == (96, 96)));
    assert_frames_close(&clip.frames, &reference_upscaled(&r, 96, 96));
    let info = clip
        .metadata
        .upscale
        .as_ref()
        .expect("upscale in the metadata");
    assert_eq!(
        (info.target.as_str(), info.width, info.height),
        ("1.5x", 96, 96)
    );
    assert_eq!(
        info.network,
        "SRVGGNetCompact x2 (1 convolutions, 4 features)"
    );
    assert_eq!((clip.metadata.width, clip.metadata.height), (64, 64));

    // The cache serves the upscaled frames; the plain clip is another entry.
    let again = service.submit(r.clone()).unwrap().wait().unwrap();
    assert!(again.from_cache);
    assert_eq!(again.frames, clip.frames);
    assert_ne!(service.key_for(&request("a red ball")).unwrap(), clip.key);
}

#[test]
fn to_1080p_with_an_rrdb_x4_gives_the_exact_size() {
    let service = service(no_cache());
    let mut r = upscaled_request("a cat", UpscaleTarget::To1080p, "rrdb_x4.pth");
    r.params.width = 96;
    r.params.height = 64;
    r.params.frames = 1;
    r.params.steps = 1;
    let clip = service.submit(r).unwrap().wait().unwrap();
    assert_eq!(
        (clip.frames[0].width(), clip.frames[0].height()),
        (1620, 1080)
    );
    assert!(clip.metadata.timings.upscale_s > 0.0);
}

#[test]
fn a_file_that_is_not_an_upscaler_fails_the_job_with_its_name() {
    let service = service(no_cache());
    let mut r = request("a cat");
    let vae = tiny_model().join("vae/diffusion_pytorch_model.safetensors");
    r.upscale = Some(Upscale::new(UpscaleTarget::X2, &vae));
    let e = service.submit(r).unwrap().wait().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(
        e.message.contains("diffusion_pytorch_model.safetensors"),
        "{e}"
    );
    assert!(e.message.contains("not a Real-ESRGAN network"), "{e}");

    let mut r = request("a cat");
    r.upscale = Some(Upscale::new(UpscaleTarget::X2, "/nowhere/net.pth"));
    let e = service.submit(r).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    assert!(e.message.contains("/nowhere/net.pth"), "{e}");
}
