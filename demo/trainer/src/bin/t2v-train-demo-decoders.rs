//! Makes the demo model's cheap decoders from its VAE and writes them beside it: the live
//! previews' latent-to-RGB projection (`vae/latent_rgb.json`) and the tiny fast decoder
//! (`tiny_decoder/tiny_decoder.safetensors`); and, with `--make upscaler`, its 2x upscaler
//! trained on the world (`upscaler/demo_compact_x2.safetensors`).
//!
//! ```sh
//! cargo run --release -p t2v-demo-trainer --bin t2v-train-demo-decoders -- --model demo/model
//! ```

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use t2v_demo_trainer::configs::Preset;
use t2v_demo_trainer::fast_decode::{self as fd, DistilSchedule};
use t2v_demo_trainer::train::{save_tensors, Log, Result, TrainError};
use t2v_models::preview::LATENT_RGB_FILE;

#[derive(Parser)]
#[command(about = "Fit the demo model's preview projection and distil its tiny fast decoder")]
struct Args {
    /// The demo model folder: its VAE is read, and the results are written into its vae/.
    #[arg(long, default_value = "demo/model")]
    model: PathBuf,
    /// What to make, comma-separated: latent-rgb, tiny-decoder, upscaler.
    #[arg(long, default_value = "latent-rgb,tiny-decoder")]
    make: String,
    /// World clips the projection is fitted on.
    #[arg(long, default_value_t = 12)]
    fit_clips: usize,
    /// World clips the tiny decoder trains on.
    #[arg(long, default_value_t = 16)]
    train_clips: usize,
    /// Held-out clips both are measured on.
    #[arg(long, default_value_t = 4)]
    eval_clips: usize,
    #[arg(long, default_value_t = 500)]
    steps: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Crops per step, each --crop x --crop latent cells over every latent frame.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    #[arg(long, default_value_t = 3)]
    crop: usize,
    /// The tiny decoder's widths (taew2_2 has 256,128,64,64).
    #[arg(long, default_value = "32,16,16,16")]
    widths: String,
    #[arg(long)]
    workers: Option<usize>,
    /// The upscaler's training steps.
    #[arg(long, default_value_t = 3000)]
    upscaler_steps: usize,
    /// The upscaler's channels and inner convolutions (realesr-animevideov3: 64 and 16).
    #[arg(long, default_value = "16,4")]
    upscaler_size: String,
}

fn run(args: &Args) -> Result<()> {
    let log = Log::new();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let preset = Preset::full();
    let vae = fd::load_vae(&args.model)?;
    let temporal = vae.config().scale_factor_temporal;
    let out = args.model.join("vae");
    let eval = fd::decoded_samples(&vae, &preset, args.eval_clips, 7, workers)?;
    let make: Vec<&str> = args.make.split(',').map(str::trim).collect();
    if make.contains(&"latent-rgb") {
        let samples = fd::decoded_samples(&vae, &preset, args.fit_clips, 0, workers)?;
        let (rgb, rms) = fd::fit_latent_rgb(&samples, temporal)?;
        let (_, height, width, _) = eval[0].frames.dims4()?;
        let mut total = 0.0;
        for s in &eval {
            let pictures = rgb.images(&s.latents, height, width)?;
            let idx: Vec<u32> = (0..s.frames.dim(0)?)
                .map(|f| t2v_models::preview::latent_frame_of(f, temporal) as u32)
                .collect();
            let idx = candle_core::Tensor::new(idx.as_slice(), pictures.device())?;
            total += fd::psnr(&pictures.index_select(&idx, 0)?, &s.frames)?;
        }
        let path = out.join(LATENT_RGB_FILE);
        std::fs::write(&path, rgb.to_json() + "\n")
            .map_err(|e| TrainError::Other(format!("{}: {e}", path.display())))?;
        log.line(&format!(
            "latent-rgb: fit on {} clips, rms {rms:.4} per cell; preview PSNR against the full decode {:.2} dB on {} held-out clips -> {}",
            samples.len(),
            total / eval.len() as f64,
            eval.len(),
            path.display()
        ));
    }
    if make.contains(&"tiny-decoder") {
        let widths: Vec<usize> = args
            .widths
            .split(',')
            .map(|w| w.trim().parse())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| TrainError::Other(format!("--widths: {e}")))?;
        let widths: [usize; 4] = widths
            .try_into()
            .map_err(|_| TrainError::Other("--widths: give four numbers".into()))?;
        let cfg = fd::tiny_config(vae.config().z_dim, widths);
        let samples = fd::decoded_samples(&vae, &preset, args.train_clips, 3, workers)?;
        log.line(&format!(
            "tiny decoder: {} training clips decoded",
            samples.len()
        ));
        let schedule = DistilSchedule {
            steps: args.steps,
            lr: args.lr,
            batch: args.batch,
            crop: args.crop,
            seed: 2,
        };
        let map = fd::distil_tiny_decoder(&samples, &cfg, &schedule, workers, &log)?;
        let decoder = fd::tiny_decoder_from(&map, &cfg)?;
        let psnr = fd::tiny_decoder_psnr(&decoder, &eval)?;
        let path = args.model.join(fd::TINY_DECODER_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| TrainError::Other(format!("{}: {e}", dir.display())))?;
        }
        save_tensors(&t2v_demo_trainer::train::weights_by_name(&map), &path)?;
        log.line(&format!(
            "tiny decoder: PSNR against the full decode {psnr:.2} dB on {} held-out clips -> {}",
            eval.len(),
            path.display()
        ));
    }
    if make.contains(&"upscaler") {
        make_upscaler(args, &preset, workers, &log)?;
    }
    Ok(())
}

fn make_upscaler(args: &Args, preset: &Preset, workers: usize, log: &Log) -> Result<()> {
    use t2v_demo_trainer::upscaler as up;
    let size: Vec<usize> = args
        .upscaler_size
        .split(',')
        .map(|w| w.trim().parse())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| TrainError::Other(format!("--upscaler-size: {e}")))?;
    let [feat, conv] = size[..] else {
        return Err(TrainError::Other(
            "--upscaler-size: give two numbers".into(),
        ));
    };
    let cfg = up::demo_config(feat, conv);
    let train = up::frame_pairs(preset, 64, 3)?;
    let held_out = up::frame_pairs(preset, 8, 7)?;
    let schedule = up::UpscalerSchedule {
        steps: args.upscaler_steps,
        lr: 2e-3,
        batch: 8,
        crop: 24,
        seed: 4,
    };
    let map = up::train_upscaler(&train, &cfg, &schedule, workers, log)?;
    let path = args.model.join(up::UPSCALER_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| TrainError::Other(format!("{}: {e}", dir.display())))?;
    }
    save_tensors(&t2v_demo_trainer::train::weights_by_name(&map), &path)?;
    // Measured through the product's loader, on frames of scenes it did not train on.
    let upscaler = t2v_models::upscale::Upscaler::load(&path, &candle_core::Device::Cpu)?;
    let (net, bicubic) = up::upscaler_psnr(&upscaler, &held_out)?;
    log.line(&format!(
        "upscaler: PSNR {net:.2} dB against the 2x render (bicubic {bicubic:.2} dB) on {} held-out frames -> {}",
        held_out.len(),
        path.display()
    ));
    Ok(())
}

fn main() -> ExitCode {
    t2v_demo_trainer::train::single_threaded_candle();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
