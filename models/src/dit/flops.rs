//! Floating-point operation counts of one transformer forward as the reference runs it
//! (a multiply-add counts 2), for reporting achieved throughput.

use super::DitConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardFlops {
    /// Projections and feed-forward of every block, plus the head.
    pub linear: f64,
    /// The reference's per-token time embedding MLP (which this port computes once per run).
    pub time_embedding: f64,
    pub self_attention: f64,
    pub cross_attention: f64,
}

impl ForwardFlops {
    pub fn total(&self) -> f64 {
        self.linear + self.time_embedding + self.self_attention + self.cross_attention
    }
}

/// Counts for `tokens` video tokens attending to `text_len` text positions, with the prompt's
/// cross-attention keys and values cached.
pub fn forward_flops(cfg: &DitConfig, tokens: usize, text_len: usize) -> ForwardFlops {
    let (n, d, f, l) = (
        tokens as f64,
        cfg.dim() as f64,
        cfg.ffn_dim as f64,
        cfg.num_layers as f64,
    );
    let t = text_len as f64;
    let per_token_temb = 2.0 * (cfg.freq_dim as f64 * d + d * d + d * 6.0 * d);
    ForwardFlops {
        // q, k, v, o of self-attention and q, o of cross-attention; two FFN matrices.
        linear: n * l * (12.0 * d * d + 4.0 * d * f),
        time_embedding: n * per_token_temb,
        self_attention: l * 4.0 * n * n * d,
        cross_attention: l * 4.0 * n * t * d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures measured with torch's FlopCounterMode (reference doc, section 8).
    #[test]
    fn matches_the_measured_reference_counts() {
        let cfg = DitConfig::wan22_ti2v_5b();
        for (tokens, total_tflops) in [
            (12_090, 163.4),
            (27_280, 520.7),
            (8_190, 99.1),
            (18_480, 292.9),
        ] {
            let got = forward_flops(&cfg, tokens, 512).total() / 1e12;
            assert!(
                (got - total_tflops).abs() / total_tflops < 0.01,
                "{tokens}: {got} vs {total_tflops}"
            );
        }
    }
}
