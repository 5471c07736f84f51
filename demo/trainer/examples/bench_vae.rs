//! Times one VAE training step and plain encode/decode: `bench_vae BASE DECODER_BASE Z BATCH FRAMES HEIGHT WIDTH`
//! (run with RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 for the trainer's per-worker speed).
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::time::Instant;
use t2v_models::vae::WanVae;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (base, dec, z, b, f, h, w) = (
        args[0], args[1], args[2], args[3], args[4], args[5], args[6],
    );
    let mut preset = t2v_demo_trainer::configs::Preset::full();
    preset.sizes.vae_base_dim = base;
    preset.sizes.vae_decoder_base_dim = dec;
    preset.sizes.z_dim = z;
    let cfg = preset.sizes.vae();
    let map = VarMap::new();
    let vae = WanVae::new_with_kernels(
        &cfg,
        VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
        &t2v_demo_trainer::kernels::training_kernels(),
    )?;
    // The same variables with the inference kernels.
    let inference_vae = WanVae::new(
        &cfg,
        VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
    )?;
    t2v_demo_trainer::init::initialise(&map, 1, 16)?;
    let x = Tensor::randn(0f32, 0.5, (b, 3, f, h, w), &Device::Cpu)?;
    for _ in 0..2 {
        let t = Instant::now();
        let mu = vae.encode(&x)?;
        let rec = vae.decode(&mu)?;
        let fe = t.elapsed().as_secs_f64();
        let loss = (rec - &x)?.sqr()?.mean_all()?;
        let t = Instant::now();
        let g = loss.backward()?;
        let bw = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _m = inference_vae.encode(&x)?;
        let enc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _d = inference_vae.decode(&mu.detach())?;
        let dec = t.elapsed().as_secs_f64();
        println!(
            "fwd(train) {:.2}s bwd {:.2}s | enc {:.2}s dec {:.2}s  grads {}",
            fe,
            bw,
            enc,
            dec,
            g.get_ids().count()
        );
    }
    Ok(())
}
