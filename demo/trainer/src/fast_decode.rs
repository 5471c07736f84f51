//! The demo model's cheap decoders, both made from its VAE and shipped beside it in
//! `demo/model/vae`:
//!
//! - the latent-to-RGB projection its live previews use ([`fit_latent_rgb`]): least squares from
//!   the normalised latents of world clips to their full decode, averaged over each latent cell;
//! - a tiny TAEHV decoder ([`distil_tiny_decoder`]), the architecture of `taew2_2` at a reduced
//!   width, trained to reproduce the VAE decoder's frames from the same latents.
//!
//! `t2v-train-demo-decoders` runs both (docs/demo-model.md).

use crate::configs::Preset;
use crate::train::{
    adamw, cosine_to_zero, dataset_scenes, parallel_grads, ContextCrop, Log, Result, TrainError,
};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::time::Instant;
use t2v_models::checkpoint::{self, ModelFiles, Overrides};
use t2v_models::pipeline::video_to_frames;
use t2v_models::preview::{latent_frame_of, LatentRgb};
use t2v_models::taehv::{TaehvConfig, TaehvDecoder};
use t2v_models::vae::WanVae;

/// The tiny decoder's file in a model folder.
pub const TINY_DECODER_FILE: &str = "tiny_decoder/tiny_decoder.safetensors";

/// A clip's normalised latents `[1, z, F', h, w]` and its full decode `[F, H, W, 3]` in [0, 1].
pub struct Sample {
    pub latents: Tensor,
    pub frames: Tensor,
}

/// Loads the model's whole VAE (encoder and decoder) in f32 on the CPU.
pub fn load_vae(model: &Path) -> Result<WanVae> {
    let files = ModelFiles::resolve(Some(model), &Overrides::default())?;
    Ok(checkpoint::load_vae(
        &files.vae,
        false,
        DType::F32,
        &Device::Cpu,
    )?)
}

/// `count` clips of the world at the preset's size, spread over its dataset (a different seed
/// gives other clips): encoded by the VAE, normalised, and decoded again.
pub fn decoded_samples(
    vae: &WanVae,
    preset: &Preset,
    count: usize,
    offset: usize,
    workers: usize,
) -> Result<Vec<Sample>> {
    let d = &preset.dataset;
    let scenes = dataset_scenes(preset);
    let stride = (scenes.len() / count.max(1)).max(1);
    let picked: Vec<_> = (0..count)
        .map(|i| scenes[(offset + i * stride) % scenes.len()].clone())
        .collect();
    crate::workers::map_items(&picked, workers, |scene| -> Result<Sample> {
        let video = Tensor::from_vec(
            scene.render(d.frames, 0, d.frames, (0, 0, d.width, d.height)),
            (1, 3, d.frames, d.height, d.width),
            &Device::Cpu,
        )?;
        let latents = vae.normalize_latents(&vae.encode(&video)?)?;
        let decoded = vae.decode(&vae.denormalize_latents(&latents)?)?;
        Ok(Sample {
            latents,
            frames: video_to_frames(&decoded)?,
        })
    })
    .into_iter()
    .collect()
}

/// Each latent cell's colour in the full decode, in [-1, 1]: the mean over the cell's pixels
/// and the video frames its latent frame stands for. `[F' * h * w, 3]`, row-major like the
/// latents' cells.
fn cell_colours(
    frames: &Tensor,
    latent_frames: usize,
    (h, w): (usize, usize),
    temporal: usize,
) -> Result<Vec<[f64; 3]>> {
    let (f, height, width, _) = frames.dims4()?;
    let data: Vec<f32> = frames.flatten_all()?.to_vec1()?;
    let (sy, sx) = (height / h, width / w);
    let mut sums = vec![[0f64; 4]; latent_frames * h * w];
    for frame in 0..f {
        let lf = latent_frame_of(frame, temporal);
        for y in 0..height {
            for x in 0..width {
                let cell = &mut sums[(lf * h + y / sy) * w + x / sx];
                let p = ((frame * height + y) * width + x) * 3;
                for k in 0..3 {
                    cell[k] += data[p + k] as f64 * 2.0 - 1.0;
                }
                cell[3] += 1.0;
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|s| [s[0] / s[3], s[1] / s[3], s[2] / s[3]])
        .collect())
}

/// Least squares `colour = latent · factors + bias` over every latent cell of `samples`.
/// Returns the projection and its root-mean-square error in [-1, 1] units.
pub fn fit_latent_rgb(samples: &[Sample], temporal: usize) -> Result<(LatentRgb, f64)> {
    let z = samples
        .first()
        .ok_or_else(|| TrainError::Other("no samples to fit".into()))?
        .latents
        .dim(1)?;
    let n = z + 1;
    let mut ata = vec![0f64; n * n];
    let mut atb = vec![[0f64; 3]; n];
    let mut rows: Vec<(Vec<f64>, [f64; 3])> = Vec::new();
    for sample in samples {
        let (_, _, lf, h, w) = sample.latents.dims5()?;
        let colours = cell_colours(&sample.frames, lf, (h, w), temporal)?;
        let lat: Vec<f32> = sample.latents.flatten_all()?.to_vec1()?;
        let cells = lf * h * w;
        for (cell, colour) in colours.iter().enumerate() {
            let mut x: Vec<f64> = (0..z).map(|c| lat[c * cells + cell] as f64).collect();
            x.push(1.0);
            for i in 0..n {
                for j in 0..n {
                    ata[i * n + j] += x[i] * x[j];
                }
                for k in 0..3 {
                    atb[i][k] += x[i] * colour[k];
                }
            }
            rows.push((x, *colour));
        }
    }
    // A touch of ridge keeps channels the clips never use from blowing up.
    for i in 0..z {
        ata[i * n + i] += 1e-3;
    }
    let solution = solve(ata, atb, n)?;
    let factors: Vec<[f32; 3]> = solution[..z]
        .iter()
        .map(|r| [r[0] as f32, r[1] as f32, r[2] as f32])
        .collect();
    let bias = solution[z].map(|v| v as f32);
    let mut sq = 0f64;
    for (x, colour) in &rows {
        for k in 0..3 {
            let pred: f64 = (0..n).map(|i| x[i] * solution[i][k]).sum();
            sq += (pred - colour[k]).powi(2);
        }
    }
    let rms = (sq / (rows.len() * 3) as f64).sqrt();
    Ok((LatentRgb { factors, bias }, rms))
}

/// Gaussian elimination with partial pivoting on the normal equations.
fn solve(mut a: Vec<f64>, mut b: Vec<[f64; 3]>, n: usize) -> Result<Vec<[f64; 3]>> {
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .expect("non-empty");
        if a[pivot * n + col].abs() < 1e-12 {
            return Err(TrainError::Other(
                "latent-to-RGB fit: singular system".into(),
            ));
        }
        for k in 0..n {
            a.swap(col * n + k, pivot * n + k);
        }
        b.swap(col, pivot);
        for row in 0..n {
            if row == col {
                continue;
            }
            let f = a[row * n + col] / a[col * n + col];
            if f == 0.0 {
                continue;
            }
            for k in col..n {
                a[row * n + k] -= f * a[col * n + k];
            }
            let pivot_row = b[col];
            for (v, p) in b[row].iter_mut().zip(pivot_row) {
                *v -= f * p;
            }
        }
    }
    Ok((0..n).map(|i| b[i].map(|v| v / a[i * n + i])).collect())
}

/// Peak signal-to-noise ratio of frames in [0, 1], in dB.
pub fn psnr(a: &Tensor, b: &Tensor) -> Result<f64> {
    let mse = (a - b)?.sqr()?.mean_all()?.to_scalar::<f32>()? as f64;
    Ok(10.0 * (1.0 / mse.max(1e-12)).log10())
}

/// The tiny decoder's configuration for a VAE with `z` latent channels: `taew2_2`'s layers
/// (patch 2, three 2x stages, 4x in time) at the given widths.
pub fn tiny_config(z: usize, widths: [usize; 4]) -> TaehvConfig {
    TaehvConfig {
        latent_channels: z,
        widths,
        ..TaehvConfig::taew2_2()
    }
}

/// How the tiny decoder is distilled.
#[derive(Debug, Clone)]
pub struct DistilSchedule {
    pub steps: usize,
    pub lr: f64,
    /// Crops per step, each `crop` x `crop` latent cells over every latent frame.
    pub batch: usize,
    pub crop: usize,
    pub seed: u64,
}

/// Latent cells of context the decoder sees around each training crop.
const CONTEXT: usize = 2;

/// A fresh tiny decoder to train, and the variables it is made of (named as the published
/// files, `decoder.<index>.*`).
///
/// Its temporal grows start as copies (each output frame its input frame: `VarBuilder::get`
/// would start them at zero, which makes the decoder's output the same for every latent and
/// leaves the grows before the last one without a gradient), its memory blocks as identities,
/// and its output near mid-grey. Every other variable is drawn from `seed` (He-normal weights,
/// biases uniform in +-1/sqrt(inputs), as candle's `conv2d` starts them, but reproducibly:
/// candle's CPU generator can't be seeded, and a start that changed from run to run made the
/// first frames' range, and the trained decoder, differ between machines).
pub fn new_tiny_decoder(cfg: &TaehvConfig, seed: u64) -> Result<(VarMap, TaehvDecoder)> {
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    let decoder = TaehvDecoder::from_var_builder(cfg, vb.pp("decoder"))?;
    seeded_start(&map, seed)?;
    {
        let data = map.data().lock().expect("var map");
        for (s, width) in cfg.widths[..3].iter().enumerate() {
            let var = &data[&format!("decoder.{}.conv.weight", 3 + s * 6 + 4)];
            let stride = var.dim(0)? / width;
            let eye = Tensor::eye(*width, DType::F32, &Device::Cpu)?;
            let copies = Tensor::cat(&vec![eye; stride], 0)?;
            var.set(&copies.reshape(var.shape())?)?;
        }
        // Each memory block starts as the identity (its last convolution at zero, its input
        // being a ReLU's): with nine random residual blocks the first frames came out around
        // +-10, and the first steps' huge gradients left the output's ReLUs dead.
        for s in 0..3 {
            for j in 0..3 {
                let var = &data[&format!("decoder.{}.conv.4.weight", 3 + s * 6 + j)];
                var.set(&var.zeros_like()?)?;
            }
        }
        // Small output weights: the first frames are mid-grey with a little of the latents.
        let out = &data["decoder.22.weight"];
        out.set(&(out.as_tensor() * 0.1)?)?;
        data["decoder.22.bias"].set(&Tensor::full(
            0.5f32,
            3 * cfg.patch_size * cfg.patch_size,
            &Device::Cpu,
        )?)?;
    }
    Ok((map, decoder))
}

/// Sets every variable of `map` (in name order) from `seed`: convolution weights He-normal
/// (std sqrt(2 / fan-in)), biases uniform in +-1/sqrt(their weight's input channels).
fn seeded_start(map: &VarMap, seed: u64) -> Result<()> {
    let vars = crate::train::named_vars(map);
    let shapes: std::collections::HashMap<&str, Vec<usize>> = vars
        .iter()
        .map(|(name, var)| (name.as_str(), var.dims().to_vec()))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in &vars {
        let dims = var.dims();
        let n = var.elem_count();
        let values: Vec<f32> = if let Some(layer) = name.strip_suffix(".bias") {
            let inputs = shapes
                .get(format!("{layer}.weight").as_str())
                .map_or(1, |w| w[1]);
            let bound = 1.0 / (inputs as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else {
            let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
            let normal = rand_distr::Normal::new(0.0, (2.0 / fan_in as f32).sqrt())
                .map_err(candle_core::Error::wrap)?;
            (0..n)
                .map(|_| rand_distr::Distribution::sample(&normal, &mut rng))
                .collect()
        };
        var.set(&Tensor::from_vec(values, dims, &Device::Cpu)?)?;
    }
    Ok(())
}

/// Trains a tiny decoder to reproduce `samples`' full decodes from their latents (mean squared
/// error on random crops). Returns its weights, named as the published files
/// (`decoder.<index>.*`).
pub fn distil_tiny_decoder(
    samples: &[Sample],
    cfg: &TaehvConfig,
    schedule: &DistilSchedule,
    workers: usize,
    log: &Log,
) -> Result<VarMap> {
    let (map, decoder) = new_tiny_decoder(cfg, schedule.seed)?;
    let vars: Vec<Var> = map.all_vars();
    let mut opt = adamw(vars.clone(), schedule.lr)?;
    let mut rng = ChaCha8Rng::seed_from_u64(schedule.seed);
    let space = cfg.space_factor();
    let start = Instant::now();
    for step in 0..schedule.steps {
        let crops: Vec<(usize, usize, usize)> = (0..schedule.batch)
            .map(|_| {
                let s = rng.random_range(0..samples.len());
                let (_, _, _, h, w) = samples[s].latents.dims5().expect("5-d latents");
                let c = schedule.crop;
                (
                    s,
                    rng.random_range(0..=h - c.min(h)),
                    rng.random_range(0..=w - c.min(w)),
                )
            })
            .collect();
        let (loss, grads) = parallel_grads(&crops, workers, &vars, |&(s, y, x)| {
            let sample = &samples[s];
            let (_, _, _, h, w) = sample.latents.dims5()?;
            // The decoder sees `CONTEXT` more cells on each side where the clip has them, and
            // is judged on the crop alone: the full decode it learns from saw the whole frame,
            // so a crop's border would otherwise ask for what the crop cannot know.
            let at = ContextCrop::new((y, x), schedule.crop, CONTEXT, (h, w));
            let latents = sample
                .latents
                .narrow(3, at.y0, at.height)?
                .narrow(4, at.x0, at.width)?;
            let frames = decoder
                .decode_unclamped(&latents)?
                .narrow(1, at.dy * space, at.crop_h * space)?
                .narrow(2, at.dx * space, at.crop_w * space)?;
            let target = sample
                .frames
                .narrow(1, y * space, at.crop_h * space)?
                .narrow(2, x * space, at.crop_w * space)?;
            Ok((frames - target)?.sqr()?.mean_all()?)
        })?;
        let warmup = schedule.steps / 20;
        opt.set_learning_rate(cosine_to_zero(step, schedule.steps, warmup, schedule.lr));
        opt.step(&grads)?;
        if step % 25 == 0 || step + 1 == schedule.steps {
            log.line(&format!(
                "tiny decoder: step {step}/{} loss {:.5} ({:.2} s/step)",
                schedule.steps,
                loss / schedule.batch as f32,
                start.elapsed().as_secs_f64() / (step + 1) as f64
            ));
        }
    }
    Ok(map)
}

/// Builds the decoder from trained weights for evaluation (no gradients kept).
pub fn tiny_decoder_from(map: &VarMap, cfg: &TaehvConfig) -> Result<TaehvDecoder> {
    let tensors: std::collections::HashMap<String, Tensor> =
        crate::train::weights_by_name(map).into_iter().collect();
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    Ok(TaehvDecoder::from_var_builder(cfg, vb.pp("decoder"))?)
}

/// Mean PSNR of the tiny decoder against the full decode over `samples`.
pub fn tiny_decoder_psnr(decoder: &TaehvDecoder, samples: &[Sample]) -> Result<f64> {
    let mut total = 0.0;
    for sample in samples {
        let frames = decoder.decode(&sample.latents)?;
        total += psnr(&frames, &sample.frames)?;
    }
    Ok(total / samples.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_tiny_decoder_answers_its_latents() {
        // Regression: the temporal grows started at zero, so every latent decoded to the same
        // grey and the distillation never left it. Then: nine random residual blocks started
        // the output around +-10, and the first steps killed its output ReLUs. The start is
        // seeded now (it differed from run to run, and so did this test's outcome); every seed
        // must hold.
        let cfg = tiny_config(4, [8, 4, 4, 4]);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut latents = || {
            let v: Vec<f32> = (0..4 * 2 * 2 * 3)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            Tensor::from_vec(v, (1, 4, 2, 2, 3), &Device::Cpu).unwrap()
        };
        let scalar = |t: Tensor| t.to_scalar::<f32>().unwrap();
        for seed in 0..16 {
            let (_, decoder) = new_tiny_decoder(&cfg, seed).unwrap();
            let a = decoder.decode_unclamped(&latents()).unwrap();
            let b = decoder.decode_unclamped(&latents()).unwrap();
            assert_eq!(a.dims(), &[5, 32, 48, 3]);
            let diff = scalar((&a - b).unwrap().abs().unwrap().mean_all().unwrap());
            assert!(
                diff > 1e-5,
                "seed {seed}: every latent decodes alike ({diff})"
            );
            let off = (a - 0.5).unwrap().abs().unwrap();
            let (mean, max) = (
                scalar(off.mean_all().unwrap()),
                scalar(off.max_all().unwrap()),
            );
            assert!(
                mean < 0.25 && max < 2.0,
                "seed {seed}: {mean} on average, {max} at most from grey"
            );
        }
        // The same seed, the same start.
        let weights =
            |seed| crate::train::weights_by_name(&new_tiny_decoder(&cfg, seed).unwrap().0);
        let (x, y, z) = (weights(7), weights(7), weights(8));
        let same = |p: &std::collections::BTreeMap<String, Tensor>,
                    q: &std::collections::BTreeMap<String, Tensor>| {
            p.iter().all(|(name, t)| {
                scalar((t - &q[name]).unwrap().abs().unwrap().max_all().unwrap()) == 0.0
            })
        };
        assert!(same(&x, &y));
        assert!(!same(&x, &z));
    }

    #[test]
    fn least_squares_recovers_a_known_projection() {
        // Latents whose cells' colours are an exact linear function of them.
        let truth = LatentRgb {
            factors: vec![[0.5, -0.25, 0.1], [0.0, 0.3, -0.4]],
            bias: [0.05, -0.1, 0.2],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let samples: Vec<Sample> = (0..3)
            .map(|_| {
                let lat: Vec<f32> = (0..2 * 2 * 2 * 3)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let latents = Tensor::from_vec(lat, (1, 2, 2, 2, 3), &Device::Cpu).unwrap();
                let small = truth
                    .images(&latents, 2, 3)
                    .unwrap()
                    .permute((0, 3, 1, 2))
                    .unwrap();
                let big = small
                    .contiguous()
                    .unwrap()
                    .upsample_nearest2d(32, 48)
                    .unwrap();
                // Frames 0 and 1..=4 from latent frames 0 and 1.
                let idx = Tensor::new(&[0u32, 1, 1, 1, 1], &Device::Cpu).unwrap();
                let video = big
                    .index_select(&idx, 0)
                    .unwrap()
                    .permute((0, 2, 3, 1))
                    .unwrap();
                Sample {
                    latents,
                    frames: video.contiguous().unwrap(),
                }
            })
            .collect();
        let (fit, rms) = fit_latent_rgb(&samples, 4).unwrap();
        assert!(rms < 1e-3, "{rms}");
        for (a, b) in fit.factors.iter().zip(&truth.factors) {
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 5e-3, "{fit:?}");
            }
        }
        for k in 0..3 {
            assert!((fit.bias[k] - truth.bias[k]).abs() < 5e-3, "{fit:?}");
        }
    }
}
