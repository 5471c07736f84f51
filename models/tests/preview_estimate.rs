//! The pipeline's clean-latent estimate for previews, on the tiny checkpoint: asked for only on
//! the steps the observer wants, and at the last Euler step exactly the final latents (the step
//! to sigma 0 lands on the estimate), so a preview converges to what is decoded.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use t2v_models::checkpoint::{load_latent_rgb, load_models, ModelFiles, Overrides};
use t2v_models::pipeline::{self, GenerationParams, Progress, RunInputs};
use t2v_models::sampling::SamplerKind;

struct Estimates {
    every: usize,
    seen: Vec<(usize, Tensor)>,
}

impl Progress for Estimates {
    fn wants_denoised(&self, index: usize, _steps: usize) -> bool {
        (index + 1).is_multiple_of(self.every)
    }
    fn denoised(&mut self, index: usize, _steps: usize, x0: &Tensor) -> t2v_models::Result<()> {
        self.seen.push((index, x0.clone()));
        Ok(())
    }
}

#[test]
fn the_estimate_comes_on_the_steps_asked_and_ends_at_the_final_latents() {
    let files = ModelFiles::resolve(Some(&tiny_diffusers()), &Overrides::default()).unwrap();
    let models = load_models(&files, DType::F32, &Device::Cpu).unwrap();
    let params = GenerationParams {
        prompt: "a red circle moves to the right".into(),
        negative_prompt: None,
        width: 64,
        height: 32,
        frames: 5,
        steps: 4,
        guidance: 4.0,
        shift: 5.0,
        sampler: SamplerKind::Euler,
        seed: 42,
        step_cache: Default::default(),
        step_cache_method: Default::default(),
    };
    let mut estimates = Estimates {
        every: 2,
        seen: Vec::new(),
    };
    let out = pipeline::generate(&models, &params, RunInputs::default(), &mut estimates).unwrap();
    let steps: Vec<usize> = estimates.seen.iter().map(|(i, _)| *i).collect();
    assert_eq!(steps, vec![1, 3]);
    let (_, last) = &estimates.seen[1];
    assert_eq!(last.dims(), out.latents.dims());
    assert!(max_abs_diff(last, &out.latents) < 1e-5);
    let (_, early) = &estimates.seen[0];
    assert!(
        max_abs_diff(early, &out.latents) > 1e-4,
        "an early estimate differs"
    );

    // The tiny checkpoint has Wan2.2's 48-channel latent space: its previews use the published
    // projection, one picture per latent frame at the output size.
    let rgb = load_latent_rgb(&files.vae, 48)
        .unwrap()
        .expect("Wan2.2 factors");
    let images = rgb.images(last, 32, 64).unwrap();
    assert_eq!(images.dims(), &[2, 32, 64, 3]);
    assert!(load_latent_rgb(&files.vae, 16).unwrap().is_none());
}
