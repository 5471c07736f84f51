//! 3D rotary position embedding: the head dimension is split into time, height and width bands
//! (44/42/42 for head_dim 128), each with its own frequency table, positions starting at 0.

use candle_core::{DType, Device, Result, Tensor};

#[derive(Debug, Clone)]
pub struct Rope3d {
    /// Rotation pairs per band (t, h, w); their sum is head_dim / 2.
    pairs: [usize; 3],
    theta: f64,
}

impl Rope3d {
    pub fn new(head_dim: usize) -> Self {
        let hw = 2 * (head_dim / 6);
        let t = head_dim - 2 * hw;
        Self {
            pairs: [t / 2, hw / 2, hw / 2],
            theta: 10_000.0,
        }
    }

    /// Per-token `(cos, sin)`, each `[frames*height*width, head_dim/2]` in f32, tokens in row-major
    /// (f, h, w) order: the layout `candle_nn::rotary_emb::rope_i` expects.
    pub fn tables(&self, grid: (usize, usize, usize), device: &Device) -> Result<(Tensor, Tensor)> {
        let (nf, nh, nw) = grid;
        let half: usize = self.pairs.iter().sum();
        // Angles in f64 as the reference does, rounded once to f32.
        let band = |pairs: usize, pos: usize| -> Vec<f64> {
            let dim = (2 * pairs) as f64;
            (0..pairs)
                .map(|j| pos as f64 / self.theta.powf((2 * j) as f64 / dim))
                .collect()
        };
        let n = nf * nh * nw;
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for f in 0..nf {
            let bf = band(self.pairs[0], f);
            for h in 0..nh {
                let bh = band(self.pairs[1], h);
                for w in 0..nw {
                    let bw = band(self.pairs[2], w);
                    for a in bf.iter().chain(&bh).chain(&bw) {
                        cos.push(a.cos() as f32);
                        sin.push(a.sin() as f32);
                    }
                }
            }
        }
        let cos = Tensor::from_vec(cos, (n, half), device)?;
        let sin = Tensor::from_vec(sin, (n, half), device)?;
        Ok((cos, sin))
    }
}

/// Rotates interleaved pairs of `x` `[B, heads, N, head_dim]`; computed in f32 like the reference.
pub fn apply(
    kernels: &dyn crate::ops::Kernels,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    let dtype = x.dtype();
    let x32 = x.to_dtype(DType::F32)?.contiguous()?;
    kernels.rope_i(&x32, cos, sin)?.to_dtype(dtype)
}
