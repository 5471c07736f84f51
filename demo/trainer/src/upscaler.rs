//! The demo model's upscaler: a tiny SRVGGNetCompact (Real-ESRGAN's compact family, the
//! architecture of `realesr-animevideov3` at a reduced width and depth) trained on the demo
//! world, so that `--upscale` works on the demo model with no file to download. It is shipped as
//! `demo/model/upscaler/`, where the service looks for a model's upscaler, with the published
//! weight names (`body.<index>.*`) that `t2v_models::upscale::Upscaler::load` reads.
//!
//! Its factor is 2x: the demo model draws 256x160, so 2x gives 512x320 (and the 720P/1080P
//! choices resize from there, as with a published 2x network). A tiny network learns the demo
//! world's sharp, plain edges well at 2x; at 4x it would have to invent three of every four
//! pixels' worth of edge position from a 16-channel stack, and each frame would cost four times
//! as much.
//!
//! Training pairs: world frames rendered at twice the demo size (the same 3x3 supersampled
//! renderer as the clips), and the same frames box-averaged down to the demo size.

use crate::configs::Preset;
use crate::train::{
    adamw, cosine_to_zero, dataset_scenes, parallel_grads, ContextCrop, Log, Result, TrainError,
};
use crate::world::Scene;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use t2v_models::upscale::resize::resize_rgb;
use t2v_models::upscale::{Architecture, CompactConfig, Tiling, Upscaler};

/// The demo upscaler's file in a model folder.
pub const UPSCALER_FILE: &str = "upscaler/demo_compact_x2.safetensors";

/// The network's own factor.
pub const FACTOR: usize = 2;

/// The demo upscaler's architecture: `num_feat` channels, `num_conv` inner convolutions.
pub fn demo_config(num_feat: usize, num_conv: usize) -> CompactConfig {
    CompactConfig {
        num_in_ch: 3,
        num_out_ch: 3,
        num_feat,
        num_conv,
        upscale: FACTOR,
    }
}

/// One world frame at the demo size and at [`FACTOR`] times it, `[3, H, W]` in [0, 1].
pub struct FramePair {
    pub low: Tensor,
    pub high: Tensor,
}

/// `count` frames of world clips (scenes spread over the preset's dataset from `offset`, a frame
/// each), rendered at [`FACTOR`] times the demo size and box-averaged down to it.
pub fn frame_pairs(preset: &Preset, count: usize, offset: usize) -> Result<Vec<FramePair>> {
    let d = &preset.dataset;
    let scenes = dataset_scenes(preset);
    let stride = (scenes.len() / count.max(1)).max(1);
    (0..count)
        .map(|i| {
            let scene = &scenes[(offset + i * stride) % scenes.len()];
            let frame = (i * 7 + offset) % d.frames;
            frame_pair(scene, d.frames, frame, (d.width, d.height))
        })
        .collect()
}

/// Frame `frame` of `scene` (a clip of `clip_frames`) as a [`FramePair`] for the demo size
/// `(width, height)`.
pub fn frame_pair(
    scene: &Scene,
    clip_frames: usize,
    frame: usize,
    (width, height): (usize, usize),
) -> Result<FramePair> {
    let (w, h) = (width * FACTOR, height * FACTOR);
    let pixels: Vec<f32> = scene
        .render_scaled(clip_frames, frame, 1, (0, 0, w, h), FACTOR)
        .into_iter()
        .map(|v| (v + 1.0) * 0.5)
        .collect();
    let high = Tensor::from_vec(pixels, (1, 3, h, w), &Device::Cpu)?;
    let low = high.avg_pool2d(FACTOR)?;
    Ok(FramePair {
        low: low.squeeze(0)?,
        high: high.squeeze(0)?,
    })
}

/// How the upscaler is trained.
#[derive(Debug, Clone)]
pub struct UpscalerSchedule {
    pub steps: usize,
    pub lr: f64,
    /// Crops per step, each `crop` x `crop` low-resolution pixels.
    pub batch: usize,
    pub crop: usize,
    pub seed: u64,
}

/// A fresh network to train and its variables (named as the published files, `body.<i>.*`).
///
/// It starts as a bilinear upscale: its first three feature channels carry the picture through
/// every layer unchanged (centre taps of one, PReLU slopes of one), and the last convolution
/// turns them into bilinear's correction of the nearest upsampling the network adds its output
/// to. The other channels start He-initialised with PReLU slopes of 0.25 (PyTorch's default)
/// and no say in the output yet, so training starts from a sound picture and learns the edges.
pub fn new_upscaler(cfg: &CompactConfig, seed: u64) -> Result<(VarMap, Upscaler)> {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let upscaler = Upscaler::new(Architecture::Compact(*cfg), vb)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (c, s) = (cfg.num_in_ch, cfg.upscale);
    let last = 2 * (cfg.num_conv + 1);
    // Bilinear's weights of the neighbours (-1, 0, +1) for output sub-pixel `d` of `s`.
    let taps = |d: usize| -> [f32; 3] {
        let at = (d as f32 + 0.5) / s as f32 - 0.5;
        [(-at).max(0.0), 1.0 - at.abs(), at.max(0.0)]
    };
    for (name, var) in crate::train::named_vars(&map) {
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let index: usize = name
            .split('.')
            .nth(1)
            .and_then(|i| i.parse().ok())
            .expect("body.<i>.*");
        let mut v = vec![0f32; n];
        if dims.len() == 4 {
            let (o, i) = (dims[0], dims[1]);
            let w = |oc: usize, ic: usize, y: usize, x: usize| ((oc * i + ic) * 3 + y) * 3 + x;
            if index == last {
                for ch in 0..c {
                    for dy in 0..s {
                        for dx in 0..s {
                            let oc = ch * s * s + dy * s + dx;
                            for (y, ty) in taps(dy).iter().enumerate() {
                                for (x, tx) in taps(dx).iter().enumerate() {
                                    v[w(oc, ch, y, x)] = ty * tx;
                                }
                            }
                            v[w(oc, ch, 1, 1)] -= 1.0;
                        }
                    }
                }
            } else {
                let normal =
                    rand_distr::Normal::new(0f32, (2.0 / (i * 9) as f32).sqrt()).expect("std > 0");
                for (k, x) in v.iter_mut().enumerate() {
                    if k / (i * 9) >= c {
                        *x = rng.sample(normal);
                    }
                }
                for ch in 0..c.min(o) {
                    v[w(ch, ch, 1, 1)] = 1.0;
                }
            }
        } else if !name.ends_with(".bias") {
            v = (0..n).map(|k| if k < c { 1.0 } else { 0.25 }).collect();
        }
        var.set(&Tensor::from_vec(v, dims, &Device::Cpu)?)?;
    }
    Ok((map, upscaler))
}

/// Low-resolution pixels of context each crop gets on every side, judged on the crop alone.
fn context(cfg: &CompactConfig) -> usize {
    cfg.num_conv + 2
}

/// A random crop `(pair, y, x)` of `crop` x `crop` low-resolution pixels: one that touches the
/// frame's border, or one that shows an edge when one of a few tries finds one (most of a world
/// frame is plain background, which would otherwise drown the edges' gradient).
fn edgy_crop(
    pairs: &[FramePair],
    crop: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(usize, usize, usize)> {
    let mut pick = (0, 0, 0);
    // A quarter of the crops touch the frame's border: the convolutions' zero padding there
    // must be learnt too (whole frames are upscaled with it).
    let border = rng.random_range(0..4) == 0;
    for _ in 0..8 {
        let p = rng.random_range(0..pairs.len());
        let (_, h, w) = pairs[p].low.dims3()?;
        let (c, ch) = (crop.min(w), crop.min(h));
        pick = (p, rng.random_range(0..=h - ch), rng.random_range(0..=w - c));
        if border {
            match rng.random_range(0..4) {
                0 => pick.1 = 0,
                1 => pick.1 = h - ch,
                2 => pick.2 = 0,
                _ => pick.2 = w - c,
            }
            break;
        }
        let patch = pairs[p].low.narrow(1, pick.1, ch)?.narrow(2, pick.2, c)?;
        let range = (patch.max_all()? - patch.min_all()?)?.to_scalar::<f32>()?;
        if range > 0.1 {
            break;
        }
    }
    Ok(pick)
}

/// Trains the upscaler on random crops of `pairs` that show edges ([`edgy_crop`]), on the mean
/// squared error against the high-resolution frames. Not Real-ESRGAN's L1: on these crops an L1
/// loss settled below bicubic (39.7 against 42.1 dB on the held-out frames) while the squared
/// error, the loss PSNR measures, passes it.
pub fn train_upscaler(
    pairs: &[FramePair],
    cfg: &CompactConfig,
    schedule: &UpscalerSchedule,
    workers: usize,
    log: &Log,
) -> Result<VarMap> {
    let (map, upscaler) = new_upscaler(cfg, schedule.seed)?;
    let vars: Vec<Var> = map.all_vars();
    let mut opt = adamw(vars.clone(), schedule.lr)?;
    let mut rng = ChaCha8Rng::seed_from_u64(schedule.seed + 1);
    let m = context(cfg);
    let start = Instant::now();
    for step in 0..schedule.steps {
        let crops: Vec<(usize, usize, usize)> = (0..schedule.batch)
            .map(|_| edgy_crop(pairs, schedule.crop, &mut rng))
            .collect::<Result<_>>()?;
        let (loss, grads) = parallel_grads(&crops, workers, &vars, |&(p, y, x)| {
            let pair = &pairs[p];
            let (_, h, w) = pair.low.dims3()?;
            let at = ContextCrop::new((y, x), schedule.crop, m, (h, w));
            let low = pair
                .low
                .narrow(1, at.y0, at.height)?
                .narrow(2, at.x0, at.width)?
                .unsqueeze(0)?;
            let out = upscaler
                .network()
                .forward(&low)?
                .narrow(2, at.dy * FACTOR, at.crop_h * FACTOR)?
                .narrow(3, at.dx * FACTOR, at.crop_w * FACTOR)?;
            let target = pair
                .high
                .narrow(1, y * FACTOR, at.crop_h * FACTOR)?
                .narrow(2, x * FACTOR, at.crop_w * FACTOR)?
                .unsqueeze(0)?;
            Ok((out - target)?.sqr()?.mean_all()?)
        })?;
        opt.set_learning_rate(cosine_to_zero(step, schedule.steps, 0, schedule.lr));
        opt.step(&grads)?;
        if step % 50 == 0 || step + 1 == schedule.steps {
            log.line(&format!(
                "upscaler: step {step}/{} loss {:.5} ({:.2} s/step)",
                schedule.steps,
                loss / schedule.batch as f32,
                start.elapsed().as_secs_f64() / (step + 1) as f64
            ));
        }
    }
    Ok(map)
}

/// Mean PSNR over `pairs` of `upscaler` (as the product runs it: whole frames, clamped) and of
/// a bicubic resize of the same low-resolution frames, both against the high-resolution ones.
pub fn upscaler_psnr(upscaler: &Upscaler, pairs: &[FramePair]) -> Result<(f64, f64)> {
    let (mut net, mut bicubic) = (0.0, 0.0);
    for pair in pairs {
        let (_, h, w) = pair.high.dims3()?;
        let low = pair.low.permute((1, 2, 0))?.contiguous()?;
        let high = pair.high.permute((1, 2, 0))?.contiguous()?;
        let up = upscaler
            .upscale_frame(&low, w, h, &Tiling::WHOLE, &Device::Cpu)
            .map_err(|e| TrainError::Other(e.to_string()))?;
        net += crate::fast_decode::psnr(&up, &high)?;
        bicubic += crate::fast_decode::psnr(&resize_rgb(&low, w, h)?, &high)?;
    }
    let n = pairs.len().max(1) as f64;
    Ok((net / n, bicubic / n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_the_same_picture_at_two_sizes() {
        let preset = Preset::full();
        let d = &preset.dataset;
        let scenes = dataset_scenes(&preset);
        for (scene, frame) in [(&scenes[0], 0), (&scenes[scenes.len() / 2], 9)] {
            let pair = frame_pair(scene, d.frames, frame, (d.width, d.height)).unwrap();
            assert_eq!(pair.low.dims(), &[3, d.height, d.width]);
            assert_eq!(pair.high.dims(), &[3, d.height * 2, d.width * 2]);
            // The 2x render averaged down is the demo-size render of that frame, up to the
            // finer sampling of the edges.
            let clip: Vec<f32> = scene
                .render(d.frames, frame, 1, (0, 0, d.width, d.height))
                .into_iter()
                .map(|v| (v + 1.0) * 0.5)
                .collect();
            let clip = Tensor::from_vec(clip, (3, d.height, d.width), &Device::Cpu).unwrap();
            let diff = (&pair.low - &clip).unwrap().abs().unwrap();
            let mean = diff.mean_all().unwrap().to_scalar::<f32>().unwrap();
            let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(mean < 0.01 && max < 0.5, "mean {mean} max {max}");
        }
    }

    #[test]
    fn a_fresh_upscaler_is_a_bilinear_upscale_and_loads_as_published() {
        let cfg = demo_config(8, 2);
        let (map, upscaler) = new_upscaler(&cfg, 1).unwrap();
        // A ramp along x, a different one per channel.
        let ramp: Vec<f32> = (0..3 * 12 * 12)
            .map(|k| ((k / 144 + 1) * (k % 12)) as f32 / 64.0)
            .collect();
        let low = Tensor::from_vec(ramp, (1, 3, 12, 12), &Device::Cpu).unwrap();
        let out = upscaler.network().forward(&low).unwrap();
        let out: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
        for ch in 0..3 {
            for y in 2..22 {
                for x in 2..22 {
                    // Bilinear: high-resolution pixel x sits at low-resolution x / 2 - 0.25.
                    let expected = (ch + 1) as f32 * (x as f32 / 2.0 - 0.25) / 64.0;
                    let got = out[(ch * 24 + y) * 24 + x];
                    assert!(
                        (got - expected).abs() < 1e-5,
                        "{ch} {y} {x}: {got} {expected}"
                    );
                }
            }
        }
        // The saved tensors are what the product's loader detects as this network.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x2.safetensors");
        crate::train::save_tensors(&crate::train::weights_by_name(&map), &path).unwrap();
        let loaded = Upscaler::load(&path, &Device::Cpu).unwrap();
        assert_eq!(loaded.architecture(), &Architecture::Compact(cfg));
    }
}
