//! The transformer against diffusers' `WanTransformer3DModel` on the tiny checkpoint, in both
//! layouts (diffusers sharded f32, original/ComfyUI single fp16 file).

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::checkpoint::{self, ModelFiles, Overrides};
use t2v_models::dit::{TokenTimesteps, WanTransformer};

fn load_transformer(root: &std::path::Path) -> WanTransformer {
    let files =
        ModelFiles::resolve(Some(root), &Overrides::default()).expect("resolve model folder");
    checkpoint::load_transformer(&files.transformer, DType::F32, &Device::Cpu)
        .expect("load transformer")
}

/// Reconstructs the runs of a reference per-token timestep tensor.
fn token_timesteps(timestep: &Tensor) -> TokenTimesteps {
    let values: Vec<f32> = timestep.flatten_all().unwrap().to_vec1().unwrap();
    let n = values.len();
    let zeros = values.iter().take_while(|&&v| v == 0.0).count();
    let t = values[n - 1] as f64;
    assert!(
        values[zeros..].iter().all(|&v| v as f64 == t),
        "more than two timestep values"
    );
    if zeros == 0 {
        TokenTimesteps::uniform(n, t)
    } else {
        TokenTimesteps::image_conditioned(n, zeros, t)
    }
}

fn check_single_forwards(model: &WanTransformer, label: &str) {
    let fx = load("transformer.safetensors");
    for case in ["t2v", "i2v"] {
        let ts = token_timesteps(&fx[&format!("{case}.timestep")]);
        assert_eq!(
            ts.per_token().len(),
            fx[&format!("{case}.timestep")].elem_count()
        );
        let prompt = model
            .prepare_context(&fx[&format!("{case}.encoder_hidden_states")])
            .unwrap();
        let out = model
            .forward(&fx[&format!("{case}.hidden_states")], &ts, &prompt)
            .unwrap();
        assert_close(
            &format!("{label} {case} forward"),
            &out,
            &fx[&format!("{case}.output")],
            1e-4,
        );
    }
}

#[test]
fn diffusers_layout_matches_reference_forwards() {
    check_single_forwards(&load_transformer(&tiny_diffusers()), "diffusers");
}

#[test]
fn original_fp16_single_file_matches_reference_forwards() {
    // The tiny weights are fp16-representable, so the fp16 file holds the same numbers.
    check_single_forwards(&load_transformer(&tiny_original()), "original fp16");
}

#[test]
fn every_pipeline_transformer_call_matches() {
    let model = load_transformer(&tiny_diffusers());
    for case in [
        "t2v_cfg_unipc",
        "t2v_nocfg_euler",
        "i2v_cfg_unipc",
        "t2v_cfg_euler_shift",
    ] {
        let fx = load(&format!("pipeline_{case}.safetensors"));
        let cond = model.prepare_context(&fx["prompt_embeds"]).unwrap();
        let uncond = fx
            .get("negative_prompt_embeds")
            .map(|n| model.prepare_context(n).unwrap());
        for call in 0.. {
            let key = format!("call{call}.cond.hidden_states");
            if !fx.contains_key(&key) {
                assert!(call > 0, "{case}: no calls recorded");
                break;
            }
            for (branch, prompt) in [("cond", Some(&cond)), ("uncond", uncond.as_ref())] {
                let Some(prompt) = prompt else { continue };
                let p = format!("call{call}.{branch}");
                let ts = token_timesteps(&fx[&format!("{p}.timestep")]);
                let out = model
                    .forward(&fx[&format!("{p}.hidden_states")], &ts, prompt)
                    .unwrap();
                assert_close(
                    &format!("{case} {p}"),
                    &out,
                    &fx[&format!("{p}.output")],
                    1e-4,
                );
            }
        }
    }
}
