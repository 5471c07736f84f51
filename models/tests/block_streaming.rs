//! Block streaming on the CPU path: the tiny transformer with its blocks copied into a ring of
//! slots before each one runs gives the resident model's output bit for bit, and the copies
//! really happen (one per block per forward when the ring is smaller than the model).
//! The feed-forward in token chunks gives the same output within float rounding.

mod common;

use candle_core::{DType, Device, Tensor};
use common::max_abs_diff;
use t2v_models::checkpoint::{self, configs, ModelFiles, Overrides};
use t2v_models::dit::{TokenTimesteps, WanTransformer};
use t2v_models::weights::TrackedWeights;

fn tiny() -> (TrackedWeights, t2v_models::dit::DitConfig) {
    let found = ModelFiles::find(Some(&common::tiny_diffusers()), &Overrides::default()).unwrap();
    let files = found.transformer.unwrap();
    let weights = checkpoint::open_component(&files).unwrap();
    let cfg = configs::transformer_config(&weights, files.config.as_deref()).unwrap();
    (weights, cfg)
}

fn run(model: &WanTransformer, seed: u64) -> Tensor {
    let cfg = model.config();
    let dev = Device::Cpu;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
    let mut randn = |shape: &[usize]| {
        use rand_distr::Distribution;
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| rand_distr::StandardNormal.sample(&mut rng))
            .collect();
        Tensor::from_vec(v, shape, &dev).unwrap()
    };
    let latents = randn(&[1, cfg.in_channels, 3, 8, 8]);
    let text = randn(&[1, 16, cfg.text_dim]);
    let (f, h, w) = model.token_grid(3, 8, 8);
    let context = model.prepare_context(&text).unwrap();
    model
        .forward(
            &latents,
            &TokenTimesteps::uniform(f * h * w, 500.0),
            &context,
        )
        .unwrap()
}

#[test]
fn streamed_blocks_give_the_resident_output_bit_for_bit() {
    let (weights, cfg) = tiny();
    let dev = Device::Cpu;
    let resident = checkpoint::build_transformer(&weights.fresh(), &cfg, DType::F32, &dev).unwrap();
    assert!(resident.block_stream().is_none());
    let expected = run(&resident, 1);
    let layers = cfg.num_layers as u64;
    assert!(layers >= 2, "the tiny model has blocks to stream");
    for slots in [1, 2, 3] {
        let streamed =
            checkpoint::build_transformer_streamed(&weights.fresh(), &cfg, DType::F32, &dev, slots)
                .unwrap();
        let stream = streamed.block_stream().expect("streamed");
        assert_eq!(stream.slot_count(), slots);
        assert_eq!(stream.len() as u64, layers);
        let out = run(&streamed, 1);
        assert_eq!(
            out.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            expected.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            "{slots} slots"
        );
        // prepare_context and forward each walk every block once.
        if (slots as u64) < layers {
            assert_eq!(stream.copies(), 2 * layers, "{slots} slots");
        }
    }
}

#[test]
fn a_slot_holds_the_block_copied_last_not_the_first_one() {
    // With one slot every block overwrites the previous one: if copies went anywhere else than
    // into the slot's tensors, the second forward (block 0 again, after the last block) would
    // differ from the resident model.
    let (weights, cfg) = tiny();
    let dev = Device::Cpu;
    let resident = checkpoint::build_transformer(&weights.fresh(), &cfg, DType::F32, &dev).unwrap();
    let streamed =
        checkpoint::build_transformer_streamed(&weights.fresh(), &cfg, DType::F32, &dev, 1)
            .unwrap();
    for seed in [2, 3] {
        let a = run(&resident, seed);
        let b = run(&streamed, seed);
        assert_eq!(max_abs_diff(&a, &b), 0.0, "seed {seed}");
    }
}

#[test]
fn chunked_feed_forward_matches_within_rounding() {
    let (weights, cfg) = tiny();
    let dev = Device::Cpu;
    let model = checkpoint::build_transformer(&weights.fresh(), &cfg, DType::F32, &dev).unwrap();
    let expected = run(&model, 4);
    // 3x4x4 = 48 tokens in 4 and 5 slices (the last one shorter), resident and streamed.
    for chunks in [4, 5] {
        let out = run(&model.with_ffn_chunks(chunks), 4);
        let d = max_abs_diff(&out, &expected);
        assert!(d <= 1e-5, "{chunks} chunks: {d}");
    }
    let streamed =
        checkpoint::build_transformer_streamed(&weights.fresh(), &cfg, DType::F32, &dev, 2)
            .unwrap()
            .with_ffn_chunks(5);
    let d = max_abs_diff(&run(&streamed, 4), &expected);
    assert!(d <= 1e-5, "streamed and chunked: {d}");
}
