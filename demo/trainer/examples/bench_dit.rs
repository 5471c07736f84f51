//! Times one transformer + text-encoder training step at 256x160x17 and one inference forward:
//! `bench_dit HEADS HEAD_DIM FFN LAYERS CLIPS_PER_GROUP GROUPS` (the full preset: 4 32 384 4 2 4).
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::time::Instant;
use t2v_models::dit::{TokenTimesteps, WanTransformer};
use t2v_models::text::{pad_to_length, Umt5Encoder};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (heads, hd, ffn, layers, per_group, groups) =
        (args[0], args[1], args[2], args[3], args[4], args[5]);
    let mut preset = t2v_demo_trainer::configs::Preset::full();
    preset.sizes.dit_heads = heads;
    preset.sizes.dit_head_dim = hd;
    preset.sizes.dit_ffn = ffn;
    preset.sizes.dit_layers = layers;
    let dev = Device::Cpu;
    let tm = VarMap::new();
    let dm = VarMap::new();
    let kernels = t2v_demo_trainer::kernels::training_kernels();
    let enc = Umt5Encoder::new_with_kernels(
        &preset.sizes.text_encoder(),
        VarBuilder::from_varmap(&tm, DType::F32, &dev),
        &kernels,
    )?;
    let dit = WanTransformer::new_with_kernels(
        &preset.sizes.transformer(),
        VarBuilder::from_varmap(&dm, DType::F32, &dev),
        kernels,
    )?;
    // The same variables with the inference kernels.
    let inference_enc = Umt5Encoder::new(
        &preset.sizes.text_encoder(),
        VarBuilder::from_varmap(&tm, DType::F32, &dev),
    )?;
    let inference_dit = WanTransformer::new(
        &preset.sizes.transformer(),
        VarBuilder::from_varmap(&dm, DType::F32, &dev),
    )?;
    t2v_demo_trainer::init::initialise(&tm, 1, 16)?;
    t2v_demo_trainer::init::initialise(&dm, 2, 16)?;
    let z = preset.sizes.z_dim;
    // The trainer builds a transformer over the variables per group of prompts (its kernels
    // carry the group's collapsed-text key bias): what that costs.
    let t = Instant::now();
    let builds = 100;
    for _ in 0..builds {
        WanTransformer::new_with_kernels(
            &preset.sizes.transformer(),
            VarBuilder::from_varmap(&dm, DType::F32, &dev),
            t2v_demo_trainer::kernels::training_kernels(),
        )?;
    }
    println!(
        "building the transformer from its variables: {:.3} ms",
        t.elapsed().as_secs_f64() * 1000.0 / builds as f64
    );
    for _ in 0..3 {
        let t = Instant::now();
        let loss = (|| -> candle_core::Result<Tensor> {
            let mut total = Tensor::zeros((), DType::F32, &dev)?;
            for _ in 0..groups {
                let mut texts = vec![];
                for _ in 0..per_group {
                    let ids =
                        Tensor::new(&[5u32, 6, 7, 8, 9, 10, 11, 12, 13, 1], &dev)?.unsqueeze(0)?;
                    texts.push(pad_to_length(&enc.forward(&ids)?, 512)?);
                }
                let ctx = dit.prepare_context(&Tensor::cat(&texts, 0)?)?;
                let x = Tensor::randn(0f32, 1., (per_group, z, 5, 10, 16), &dev)?;
                let pred = dit.forward(&x, &TokenTimesteps::uniform(200, 500.0), &ctx)?;
                total = (total + (pred - &x)?.sqr()?.mean_all()?)?;
            }
            Ok(total)
        })()?;
        let f = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let g = loss.backward()?;
        let b = t.elapsed().as_secs_f64();
        // inference forward, 1 sample
        let t = Instant::now();
        let ids = Tensor::new(&[5u32, 6, 7, 8, 9, 10, 11, 12, 13, 1], &dev)?.unsqueeze(0)?;
        let ctx =
            inference_dit.prepare_context(&pad_to_length(&inference_enc.forward(&ids)?, 512)?)?;
        let x = Tensor::randn(0f32, 1., (1, z, 5, 10, 16), &dev)?;
        let _ = inference_dit.forward(&x, &TokenTimesteps::uniform(200, 500.0), &ctx)?;
        let inf = t.elapsed().as_secs_f64();
        println!(
            "fwd {f:.2}s bwd {b:.2}s  (grads {}) | inference fwd {inf:.3}s",
            g.get_ids().count()
        );
    }
    Ok(())
}
