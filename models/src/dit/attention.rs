//! Scaled dot-product attention that never holds more than a bounded block of scores.
//!
//! The full self-attention score matrix of the 5B model is 6.5 GiB per block at 480P and 33 GiB
//! at 720P. On CUDA (bf16/f16, sm_80+) a fused kernel keeps the scores in registers; elsewhere
//! queries are processed in chunks so that one chunk's scores stay under [`SCORE_BUDGET_BYTES`].
//! `T2V_ATTENTION=chunked` turns the fused kernel off.

use candle_core::{DType, Result, Tensor, D};

/// Upper bound on the f32 score block materialised at once.
pub const SCORE_BUDGET_BYTES: usize = 256 << 20;

/// Query rows per chunk so that `batch*heads*rows*keys` f32 scores fit the budget.
pub fn query_chunk_rows(batch_heads: usize, keys: usize, budget_bytes: usize) -> usize {
    let per_row = batch_heads.max(1) * keys.max(1) * std::mem::size_of::<f32>();
    (budget_bytes / per_row).max(1)
}

/// `softmax(q k^T * scale) v` for q `[B,H,N,d]`, k and v `[B,H,M,d]`, with softmax in f32.
pub fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if fused_kernel_allowed() && super::fused_attention::supported(q) {
        return super::fused_attention::sdpa(q, k, v, scale);
    }
    sdpa_with_budget(q, k, v, scale, SCORE_BUDGET_BYTES)
}

/// False when `T2V_ATTENTION=chunked` asks for the chunked path everywhere.
pub fn fused_kernel_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var("T2V_ATTENTION").map_or(true, |v| v != "chunked"))
}

pub fn sdpa_with_budget(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    budget_bytes: usize,
) -> Result<Tensor> {
    chunked(
        q,
        k,
        v,
        scale,
        crate::ops::fused::softmax_last_dim,
        budget_bytes,
    )
}

/// `softmax(q k^T * scale) v` in query chunks whose f32 scores stay under `budget_bytes`, with
/// the given softmax over the last dim of each chunk's `[B, H, rows, M]` f32 scores.
pub fn chunked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    softmax: impl Fn(&Tensor) -> Result<Tensor>,
    budget_bytes: usize,
) -> Result<Tensor> {
    let (b, h, n, _d) = q.dims4()?;
    let m = k.dim(2)?;
    let kt = k.transpose(2, 3)?.contiguous()?;
    let v = v.contiguous()?;
    let rows = query_chunk_rows(b * h, m, budget_bytes);
    let mut outputs = Vec::with_capacity(n.div_ceil(rows));
    let mut start = 0;
    while start < n {
        let len = rows.min(n - start);
        let qc = q.narrow(2, start, len)?.contiguous()?;
        let scores = (qc.matmul(&kt)? * scale)?.to_dtype(DType::F32)?;
        let probs = softmax(&scores)?.to_dtype(v.dtype())?;
        outputs.push(probs.matmul(&v)?);
        start += len;
    }
    if outputs.len() == 1 {
        Ok(outputs.pop().expect("one chunk"))
    } else {
        Tensor::cat(&outputs, 2)
    }
}

/// Plain attention over the whole score matrix; the reference the chunked version is tested against.
pub fn sdpa_naive(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let scores = (q.matmul(&k.transpose(2, 3)?.contiguous()?)? * scale)?;
    let probs =
        candle_nn::ops::softmax(&scores.to_dtype(DType::F32)?, D::Minus1)?.to_dtype(v.dtype())?;
    probs.matmul(&v.contiguous()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn chunked_matches_naive_and_respects_budget() -> Result<()> {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1., (1, 2, 37, 8), &dev)?;
        let k = Tensor::randn(0f32, 1., (1, 2, 29, 8), &dev)?;
        let v = Tensor::randn(0f32, 1., (1, 2, 29, 8), &dev)?;
        // A budget of 5 rows forces 8 chunks, the last one partial.
        let budget = 5 * 2 * 29 * 4;
        assert_eq!(query_chunk_rows(2, 29, budget), 5);
        let a = sdpa_with_budget(&q, &k, &v, 0.3, budget)?;
        let b = sdpa_naive(&q, &k, &v, 0.3)?;
        let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "max diff {diff}");
        Ok(())
    }

    #[test]
    fn score_block_at_720p_stays_under_one_gib() {
        // 1280x704x121: 27 280 tokens, 24 heads.
        let tokens = 27_280;
        let rows = query_chunk_rows(24, tokens, SCORE_BUDGET_BYTES);
        let block_bytes = 24 * rows * tokens * 4;
        assert!(block_bytes <= 1 << 30, "{block_bytes}");
        assert!(rows >= 64);
    }
}
