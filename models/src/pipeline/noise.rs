//! Seeded initial noise, drawn on the CPU so that a seed gives the same clip on every device.

use candle_core::{Device, Result, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Standard normal f32 noise of `shape`, from a ChaCha8 stream seeded with `seed`: the first
/// draw of [`NoiseStream::new`]`(seed)`.
pub fn seeded_noise(seed: u64, shape: &[usize], device: &Device) -> Result<Tensor> {
    NoiseStream::new(seed).next(shape, device)
}

/// One clip's noise: a ChaCha8 stream seeded once, drawn from in order (the initial latents
/// first, then whatever a sampler re-noises with), like the one torch generator a reference
/// pipeline seeds per clip.
pub struct NoiseStream {
    rng: rand_chacha::ChaCha8Rng,
}

impl NoiseStream {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next `shape`-sized standard normal f32 draw.
    pub fn next(&mut self, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Tensor::from_vec(data, shape, &Device::Cpu)?.to_device(device)
    }

    /// Passes over `n` values (as many as a draw of `n` elements uses).
    pub fn skip(&mut self, n: usize) {
        for _ in 0..n {
            let _: f32 = StandardNormal.sample(&mut self.rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise_and_roughly_standard() {
        let a = seeded_noise(7, &[2, 3, 50], &Device::Cpu).unwrap();
        let b = seeded_noise(7, &[2, 3, 50], &Device::Cpu).unwrap();
        let c = seeded_noise(8, &[2, 3, 50], &Device::Cpu).unwrap();
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a, b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_ne!(a, c.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(
            mean.abs() < 0.2 && (var - 1.0).abs() < 0.3,
            "mean {mean} var {var}"
        );
    }

    #[test]
    fn a_stream_continues_after_its_first_draw() {
        let both = seeded_noise(7, &[2, 50], &Device::Cpu).unwrap();
        let both: Vec<f32> = both.flatten_all().unwrap().to_vec1().unwrap();
        let mut stream = NoiseStream::new(7);
        let first = stream.next(&[50], &Device::Cpu).unwrap();
        let second = stream.next(&[50], &Device::Cpu).unwrap();
        assert_eq!(first.to_vec1::<f32>().unwrap(), both[..50]);
        assert_eq!(second.to_vec1::<f32>().unwrap(), both[50..]);
        let mut skipped = NoiseStream::new(7);
        skipped.skip(50);
        let after_skip = skipped.next(&[50], &Device::Cpu).unwrap();
        assert_eq!(after_skip.to_vec1::<f32>().unwrap(), both[50..]);
    }
}
