//! Per-token timesteps without per-token embeddings.
//!
//! With image conditioning the first frame's tokens run at t=0 and the others at t, so only two
//! distinct time embeddings exist. Tokens are grouped into runs that share one timestep; each
//! modulation is applied run by run with a broadcast row instead of a `[N, dim]` table.

use candle_core::{Result, Tensor};

/// Consecutive token ranges that share one timestep, covering the whole sequence in order.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenTimesteps {
    runs: Vec<(usize, f64)>,
}

impl TokenTimesteps {
    /// Every token at `t` (text-to-video).
    pub fn uniform(tokens: usize, t: f64) -> Self {
        Self {
            runs: vec![(tokens, t)],
        }
    }

    /// The first `conditioned` tokens (the image frame) at t=0, the rest at `t`.
    pub fn image_conditioned(tokens: usize, conditioned: usize, t: f64) -> Self {
        let conditioned = conditioned.min(tokens);
        let mut runs = Vec::with_capacity(2);
        if conditioned > 0 {
            runs.push((conditioned, 0.0));
        }
        if tokens > conditioned {
            runs.push((tokens - conditioned, t));
        }
        Self { runs }
    }

    pub fn runs(&self) -> &[(usize, f64)] {
        &self.runs
    }

    pub fn values(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.1).collect()
    }

    pub fn tokens(&self) -> usize {
        self.runs.iter().map(|r| r.0).sum()
    }

    /// Expands to one value per token, as the reference's `[B, N]` timestep tensor.
    pub fn per_token(&self) -> Vec<f64> {
        self.runs
            .iter()
            .flat_map(|&(n, t)| std::iter::repeat_n(t, n))
            .collect()
    }
}

/// Applies `f(segment, run_index)` to each run of tokens of `x` `[B, N, D]` and joins the results.
pub fn per_run(
    x: &Tensor,
    timesteps: &TokenTimesteps,
    mut f: impl FnMut(&Tensor, usize) -> Result<Tensor>,
) -> Result<Tensor> {
    per_run_pair(x, x, timesteps, |segment, _, run| f(segment, run))
}

/// Like [`per_run`] over two tensors of the same token layout, `f(x_segment, y_segment, run)`.
pub fn per_run_pair(
    x: &Tensor,
    y: &Tensor,
    timesteps: &TokenTimesteps,
    mut f: impl FnMut(&Tensor, &Tensor, usize) -> Result<Tensor>,
) -> Result<Tensor> {
    let runs = timesteps.runs();
    if runs.len() == 1 {
        return f(x, y, 0);
    }
    let mut parts = Vec::with_capacity(runs.len());
    let mut start = 0;
    for (i, &(len, _)) in runs.iter().enumerate() {
        parts.push(f(&x.narrow(1, start, len)?, &y.narrow(1, start, len)?, i)?);
        start += len;
    }
    Tensor::cat(&parts, 1)
}
