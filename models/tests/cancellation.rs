//! Cancellation reaches into the transformer's block loop and the VAE's chunk loop: a
//! generation stops within one block (not at the end of the step) and within one VAE chunk.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use std::cell::Cell;
use t2v_models::checkpoint::{load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{self, GenerationParams, Models, Progress, RunInputs, Stage};

/// Answers "cancelled" from the `cancel_at`-th question on (counting from 1) during `stage`,
/// and records what the pipeline did.
struct CancelAt {
    stage: Option<Stage>,
    during: Stage,
    cancel_at: usize,
    asked: Cell<usize>,
    steps: usize,
    chunks: usize,
}

impl CancelAt {
    fn new(during: Stage, cancel_at: usize) -> Self {
        CancelAt {
            stage: None,
            during,
            cancel_at,
            asked: Cell::new(0),
            steps: 0,
            chunks: 0,
        }
    }
}

impl Progress for CancelAt {
    fn cancelled(&self) -> bool {
        if self.stage != Some(self.during) {
            return false;
        }
        self.asked.set(self.asked.get() + 1);
        self.asked.get() >= self.cancel_at
    }
    fn stage(&mut self, stage: Stage) -> t2v_models::Result<()> {
        self.stage = Some(stage);
        Ok(())
    }
    fn step(&mut self, _i: usize, _n: usize, _l: &Tensor) -> t2v_models::Result<()> {
        self.steps += 1;
        Ok(())
    }
    fn frames(&mut self, _first: usize, _frames: &Tensor) -> t2v_models::Result<()> {
        self.chunks += 1;
        Ok(())
    }
}

fn small_request() -> GenerationParams {
    GenerationParams {
        prompt: "a red circle moves to the right".into(),
        width: 64,
        height: 32,
        frames: 5,
        steps: 3,
        guidance: 4.0,
        seed: 42,
        ..Default::default()
    }
}

fn models() -> Models {
    let files = ModelFiles::resolve(Some(&tiny_diffusers()), &Overrides::default()).unwrap();
    load_models(&files, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn the_transformer_stops_within_one_block() {
    let models = models();
    let blocks = models.transformer.config().num_layers;
    assert!(blocks >= 2, "the tiny transformer has {blocks} blocks");
    let params = GenerationParams {
        steps: 4,
        ..small_request()
    };
    assert!(params.uses_guidance());
    // Blocks are asked about in order: cond blocks of step 1, then uncond blocks. Cancel before
    // the second block of the unconditional pass of step 1.
    let cancel_at = blocks + 2;
    let mut p = CancelAt::new(Stage::Denoising, cancel_at);
    let r = pipeline::generate(&models, &params, RunInputs::default(), &mut p);
    assert!(
        matches!(r, Err(t2v_models::Error::Cancelled)),
        "{:?}",
        r.err()
    );
    assert_eq!(
        p.asked.get(),
        cancel_at,
        "no block ran after the cancel was seen"
    );
    assert_eq!(p.steps, 0, "stopped inside the first step, not at its end");
    assert_eq!(p.chunks, 0);
}

#[test]
fn the_vae_stops_within_one_chunk() {
    let models = models();
    let params = GenerationParams {
        frames: 13, // latent frames 4: chunks of 1, 4, 4, 4 frames
        steps: 2,
        ..small_request()
    };
    let mut p = CancelAt::new(Stage::Decoding, 2);
    let r = pipeline::generate(&models, &params, RunInputs::default(), &mut p);
    assert!(
        matches!(r, Err(t2v_models::Error::Cancelled)),
        "{:?}",
        r.err()
    );
    assert_eq!(p.steps, 2);
    assert_eq!(
        p.chunks, 1,
        "one chunk decoded after the cancel was asked for"
    );
}

#[test]
fn never_cancelled_the_hook_changes_nothing() {
    let models = models();
    let params = GenerationParams {
        steps: 2,
        ..small_request()
    };
    let plain = pipeline::generate(
        &models,
        &params,
        RunInputs::default(),
        &mut pipeline::NoProgress,
    )
    .unwrap();
    let mut p = CancelAt::new(Stage::Denoising, usize::MAX);
    let hooked = pipeline::generate(&models, &params, RunInputs::default(), &mut p).unwrap();
    let diff = (plain.frames - hooked.frames)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
    let blocks = models.transformer.config().num_layers;
    assert_eq!(
        p.asked.get(),
        2 * 2 * blocks,
        "asked before every block of every pass"
    );
}
