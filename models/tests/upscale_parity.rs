//! Real-ESRGAN's networks against the reference code (basicsr's `RRDBNet`, realesrgan's
//! `SRVGGNetCompact`, run through `RealESRGANer`'s pre-pad / tile / post-process) on tiny random
//! weights: `tests/fixtures/upscale/` (made by `make_upscalers.py` there).

mod common;

use candle_core::{DType, Device, Tensor};
use common::max_abs_diff;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use t2v_models::upscale::{tiles, Architecture, Tiling, Upscaler};

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upscale")
}

fn load(name: &str) -> Upscaler {
    Upscaler::load(&fixtures().join(name), &Device::Cpu).unwrap()
}

fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("reference.safetensors"), &Device::Cpu).unwrap()
}

/// Runs `case` of the reference file with the file `network`.
fn check_case(network: &str, case: &str) {
    let upscaler = load(network);
    let reference = reference();
    let t: Vec<i64> = reference[&format!("{case}.tiling")].to_vec1().unwrap();
    let tiling = Tiling {
        tile: (t[0] > 0).then_some(t[0] as usize),
        tile_pad: t[1] as usize,
        pre_pad: t[2] as usize,
    };
    let input = reference[&format!("{case}.input")].unsqueeze(0).unwrap();
    let out = upscaler
        .upscale(&input, &tiling)
        .unwrap()
        .squeeze(0)
        .unwrap();
    let diff = max_abs_diff(&out, &reference[&format!("{case}.output")]);
    println!("{case}: max abs diff {diff:e}");
    assert!(
        diff <= TOLERANCE,
        "{case} differs from Real-ESRGAN by {diff}"
    );
}

#[test]
fn compact_x4_matches_real_esrgan_whole_and_tiled() {
    check_case("compact_x4.pth", "compact_x4.whole");
    check_case("compact_x4.pth", "compact_x4.tiled");
}

#[test]
fn compact_x2_from_safetensors_matches_real_esrgan() {
    check_case("compact_x2.safetensors", "compact_x2.whole");
}

/// `rrdb_x4.pth` holds a zeroed `params` next to its `params_ema`: matching the reference
/// proves the moving average is the one loaded.
#[test]
fn rrdb_x4_matches_basicsr_whole_and_tiled() {
    check_case("rrdb_x4.pth", "rrdb_x4.whole");
    check_case("rrdb_x4.pth", "rrdb_x4.tiled");
}

/// Odd sides: the x2 network's pixel unshuffle needs the reflect mod-pad.
#[test]
fn rrdb_x2_matches_basicsr_whole_and_tiled() {
    check_case("rrdb_x2.pth", "rrdb_x2.whole");
    check_case("rrdb_x2.pth", "rrdb_x2.tiled");
}

#[test]
fn architectures_and_sizes_are_found_from_the_tensors() {
    let describe = |f: &str| load(f).architecture().describe();
    assert_eq!(
        describe("compact_x4.pth"),
        "SRVGGNetCompact x4 (2 convolutions, 8 features)"
    );
    assert_eq!(
        describe("compact_x2.safetensors"),
        "SRVGGNetCompact x2 (1 convolutions, 4 features)"
    );
    assert_eq!(describe("rrdb_x4.pth"), "RRDBNet x4 (1 blocks, 8 features)");
    assert_eq!(describe("rrdb_x2.pth"), "RRDBNet x2 (1 blocks, 8 features)");
    match load("rrdb_x2.pth").architecture() {
        Architecture::Rrdb(c) => assert_eq!((c.num_grow_ch, c.unshuffle()), (4, 2)),
        other => panic!("{other:?}"),
    }
}

fn random_frame(h: usize, w: usize) -> Tensor {
    Tensor::rand(0f32, 1f32, (1, 3, h, w), &Device::Cpu).unwrap()
}

/// With context that covers the receptive field, tiles change nothing; and no tile the
/// network sees is larger than the tile and its context, whatever the frame size.
#[test]
fn tiles_with_enough_context_equal_the_whole_frame_and_bound_the_network_input() {
    // Receptive radius in input pixels: 4 for the 2-conv compact x4, about 19 for the tiny
    // RRDBNet (1 + 15 + 1 convolutions at the input size, 4 more at 2x and 4x), twice that for
    // the x2 one, whose body runs at half the size.
    for (file, pad) in [
        ("compact_x4.pth", 4),
        ("rrdb_x4.pth", 20),
        ("rrdb_x2.pth", 40),
    ] {
        let upscaler = load(file);
        let x = random_frame(30, 46);
        let whole = upscaler.upscale(&x, &Tiling::WHOLE).unwrap();
        let tiling = Tiling {
            tile: Some(8),
            tile_pad: pad,
            pre_pad: 10,
        };
        let tiled = upscaler.upscale(&x, &tiling).unwrap();
        let diff = max_abs_diff(&whole, &tiled);
        println!("{file}: tiled vs whole {diff:e}");
        assert!(
            diff <= 1e-5,
            "{file}: tiles differ from the whole frame by {diff}"
        );

        let largest = std::cell::Cell::new(0usize);
        let network = |t: &Tensor| {
            let (_, _, h, w) = t.dims4()?;
            largest.set(largest.get().max(h).max(w));
            upscaler.network().forward(t)
        };
        let scale = upscaler.scale();
        let multiple = upscaler.architecture().size_multiple();
        let big = random_frame(40, 58);
        let out = tiles::upscale(&network, &big, scale, multiple, &tiling).unwrap();
        assert_eq!(out.dims(), &[1, 3, 40 * scale, 58 * scale]);
        assert!(
            largest.get() <= 8 + 2 * pad,
            "{file}: a tile of {} pixels",
            largest.get()
        );
    }
}

#[test]
fn a_frame_is_upscaled_and_resized_to_the_exact_size_asked() {
    let upscaler = load("compact_x2.safetensors");
    let frame = random_frame(16, 24)
        .squeeze(0)
        .unwrap()
        .permute((1, 2, 0))
        .unwrap();
    // 1.5x through the x2 network.
    let out = upscaler
        .upscale_frame(&frame, 36, 24, &Tiling::DEFAULT, &Device::Cpu)
        .unwrap();
    assert_eq!(out.dims(), &[24, 36, 3]);
    let values: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    // At the network's own size, no resize: the network's clamped output itself.
    let native = upscaler
        .upscale_frame(&frame, 48, 32, &Tiling::DEFAULT, &Device::Cpu)
        .unwrap();
    let direct = upscaler
        .upscale(
            &frame.permute((2, 0, 1)).unwrap().unsqueeze(0).unwrap(),
            &Tiling::DEFAULT,
        )
        .unwrap()
        .clamp(0f32, 1f32)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .permute((1, 2, 0))
        .unwrap();
    assert_eq!(max_abs_diff(&native, &direct), 0.0);
}

/// Regression: a decoded frame `[H, W, 3]` is laid out channels-last, so the network's input
/// is a permuted (non-contiguous) view, which the reflect pad's index select refused.
#[test]
fn a_channels_last_frame_is_upscaled() {
    let upscaler = load("rrdb_x2.pth");
    let frame = Tensor::rand(0f32, 1f32, (13, 15, 3), &Device::Cpu).unwrap();
    let out = upscaler
        .upscale_frame(&frame, 26, 30, &Tiling::DEFAULT, &Device::Cpu)
        .unwrap();
    assert_eq!(out.dims(), &[30, 26, 3]);
}

fn save(path: &Path, tensors: HashMap<String, Tensor>) {
    candle_core::safetensors::save(&tensors, path).unwrap();
}

fn compact_x2_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixtures().join("compact_x2.safetensors"), &Device::Cpu).unwrap()
}

fn load_error(path: &Path) -> String {
    Upscaler::load(path, &Device::Cpu).unwrap_err().to_string()
}

#[test]
fn bad_files_are_errors_that_name_the_file_and_the_tensor() {
    let dir = tempfile::tempdir().unwrap();

    let mut wrong_shape = compact_x2_tensors();
    wrong_shape.insert(
        "body.1.weight".into(),
        Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap(),
    );
    let path = dir.path().join("wrong_shape.safetensors");
    save(&path, wrong_shape);
    let e = load_error(&path);
    assert!(
        e.contains("wrong_shape.safetensors") && e.contains("`body.1.weight`"),
        "{e}"
    );
    assert!(e.contains("[5]") && e.contains("[4]"), "{e}");

    let mut extra = compact_x2_tensors();
    extra.insert(
        "body.9.alpha".into(),
        Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
    );
    let path = dir.path().join("extra.safetensors");
    save(&path, extra);
    let e = load_error(&path);
    assert!(
        e.contains("`body.9.alpha`") && e.contains("SRVGGNetCompact x2"),
        "{e}"
    );

    let mut missing = compact_x2_tensors();
    missing.remove("body.2.bias");
    let path = dir.path().join("missing.safetensors");
    save(&path, missing);
    let e = load_error(&path);
    assert!(e.contains("`body.2.bias`"), "{e}");

    let mut odd_scale = compact_x2_tensors();
    odd_scale.insert(
        "body.4.weight".into(),
        Tensor::zeros((7, 4, 3, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    odd_scale.insert(
        "body.4.bias".into(),
        Tensor::zeros(7, DType::F32, &Device::Cpu).unwrap(),
    );
    let path = dir.path().join("odd.safetensors");
    save(&path, odd_scale);
    let e = load_error(&path);
    assert!(
        e.contains("`body.4.weight`") && e.contains("7 channels"),
        "{e}"
    );

    let path = dir.path().join("vae.safetensors");
    save(
        &path,
        HashMap::from([(
            "decoder.conv_in.weight".to_string(),
            Tensor::zeros((2, 2, 3, 3), DType::F32, &Device::Cpu).unwrap(),
        )]),
    );
    let e = load_error(&path);
    assert!(
        e.contains("not a Real-ESRGAN network") && e.contains("decoder.conv_in.weight"),
        "{e}"
    );

    let bytes = std::fs::read(fixtures().join("rrdb_x4.pth")).unwrap();
    let path = dir.path().join("truncated.pth");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_error(&path);
    assert!(
        e.contains("truncated.pth") && e.contains("not a readable torch checkpoint"),
        "{e}"
    );

    let path = dir.path().join("weights.onnx");
    std::fs::write(&path, b"x").unwrap();
    assert!(load_error(&path).contains("expected a Real-ESRGAN .pth or .safetensors"));
    assert!(load_error(&dir.path().join("absent.pth")).contains("no such upscaler file"));
}
