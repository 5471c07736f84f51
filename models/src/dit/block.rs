//! One transformer block: modulated self-attention with 3D RoPE, affine-normed cross-attention
//! to the text, modulated GELU feed-forward.

use super::modulation::{per_run, per_run_pair, TokenTimesteps};
use super::rope;
use crate::ops::linear::{linear, Linear};
use crate::ops::Kernels;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// Q/K RMSNorm across all heads (over the full model dimension, before the head split).
#[derive(Debug, Clone)]
struct QkNorm {
    weight: Tensor,
    eps: f32,
    kernels: Arc<dyn Kernels>,
}

impl QkNorm {
    fn new(dim: usize, eps: f64, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            eps: eps as f32,
            kernels: kernels.clone(),
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.kernels.rms_norm(x, &self.weight, self.eps)
    }
}

#[derive(Debug, Clone)]
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    norm_q: QkNorm,
    norm_k: QkNorm,
    heads: usize,
    kernels: Arc<dyn Kernels>,
}

/// Keys and values of the text for one block's cross-attention: step-invariant, so computed
/// once per prompt.
#[derive(Debug, Clone)]
pub struct CrossKv {
    pub k: Tensor,
    pub v: Tensor,
}

impl Attention {
    pub fn new(
        dim: usize,
        heads: usize,
        eps: f64,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        Ok(Self {
            to_q: linear(dim, dim, vb.pp("to_q"), kernels)?,
            to_k: linear(dim, dim, vb.pp("to_k"), kernels)?,
            to_v: linear(dim, dim, vb.pp("to_v"), kernels)?,
            to_out: linear(dim, dim, vb.pp("to_out").pp("0"), kernels)?,
            norm_q: QkNorm::new(dim, eps, vb.pp("norm_q"), kernels)?,
            norm_k: QkNorm::new(dim, eps, vb.pp("norm_k"), kernels)?,
            heads,
            kernels: kernels.clone(),
        })
    }

    /// `[B, L, D]` -> `[B, heads, L, head_dim]`
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        x.reshape((b, l, self.heads, d / self.heads))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn merge_heads(x: &Tensor) -> Result<Tensor> {
        let (b, h, l, d) = x.dims4()?;
        x.transpose(1, 2)?.reshape((b, l, h * d))
    }

    /// `1 / sqrt(head_dim)` for queries `[B, heads, N, head_dim]`.
    fn scale(q: &Tensor) -> Result<f64> {
        Ok(1.0 / (q.dim(3)? as f64).sqrt())
    }

    pub fn self_attention(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let q = self.split_heads(&self.norm_q.forward(&self.to_q.forward(x)?)?)?;
        let k = self.split_heads(&self.norm_k.forward(&self.to_k.forward(x)?)?)?;
        let v = self.split_heads(&self.to_v.forward(x)?)?;
        let q = rope::apply(&*self.kernels, &q, cos, sin)?;
        let k = rope::apply(&*self.kernels, &k, cos, sin)?;
        let out = self.kernels.attention(&q, &k, &v, Self::scale(&q)?)?;
        self.to_out.forward(&Self::merge_heads(&out)?)
    }

    pub fn cross_kv(&self, context: &Tensor) -> Result<CrossKv> {
        let k = self.split_heads(&self.norm_k.forward(&self.to_k.forward(context)?)?)?;
        let v = self.split_heads(&self.to_v.forward(context)?)?;
        Ok(CrossKv { k, v })
    }

    pub fn cross_attention(&self, x: &Tensor, kv: &CrossKv) -> Result<Tensor> {
        let q = self.split_heads(&self.norm_q.forward(&self.to_q.forward(x)?)?)?;
        let out = self
            .kernels
            .cross_attention(&q, &kv.k, &kv.v, Self::scale(&q)?)?;
        self.to_out.forward(&Self::merge_heads(&out)?)
    }
}

#[derive(Debug, Clone)]
pub struct FeedForward {
    proj_in: Linear,
    proj_out: Linear,
    /// Token slices run one after the other, so that the `[tokens, ffn_dim]` hidden activation
    /// exists for one slice at a time (a residency plan's choice at 720P); 1: all at once.
    chunks: usize,
    kernels: Arc<dyn Kernels>,
}

impl FeedForward {
    pub fn new(
        dim: usize,
        ffn_dim: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        Ok(Self {
            proj_in: linear(dim, ffn_dim, vb.pp("net").pp("0").pp("proj"), kernels)?,
            proj_out: linear(ffn_dim, dim, vb.pp("net").pp("2"), kernels)?,
            chunks: 1,
            kernels: kernels.clone(),
        })
    }

    fn whole(&self, x: &Tensor) -> Result<Tensor> {
        self.proj_out
            .forward(&self.kernels.gelu_tanh(&self.proj_in.forward(x)?)?)
    }
}

impl Module for FeedForward {
    /// `x` `[B, N, D]`: every token is independent, so slices of the tokens give the same rows.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let tokens = x.dim(1)?;
        if self.chunks <= 1 || tokens < 2 {
            return self.whole(x);
        }
        let rows = tokens.div_ceil(self.chunks.min(tokens));
        let slices = (0..tokens)
            .step_by(rows)
            .map(|start| self.whole(&x.narrow(1, start, rows.min(tokens - start))?))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&slices, 1)
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    /// `[1, 6, D]` f32: shift, scale, gate (self-attention), shift, scale, gate (feed-forward).
    scale_shift_table: Tensor,
    attn1: Attention,
    attn2: Attention,
    /// Affine layer norm before cross-attention: `(weight, bias)` in f32.
    norm2: Option<(Tensor, Tensor)>,
    ffn: FeedForward,
    eps: f64,
    kernels: Arc<dyn Kernels>,
}

impl Block {
    pub fn new(
        dim: usize,
        ffn_dim: usize,
        heads: usize,
        cross_attn_norm: bool,
        eps: f64,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let norm2 = if cross_attn_norm {
            let vb32 = vb.pp("norm2").to_dtype(DType::F32);
            Some((vb32.get(dim, "weight")?, vb32.get(dim, "bias")?))
        } else {
            None
        };
        Ok(Self {
            scale_shift_table: vb
                .to_dtype(DType::F32)
                .get((1, 6, dim), "scale_shift_table")?,
            attn1: Attention::new(dim, heads, eps, vb.pp("attn1"), kernels)?,
            attn2: Attention::new(dim, heads, eps, vb.pp("attn2"), kernels)?,
            norm2,
            ffn: FeedForward::new(dim, ffn_dim, vb.pp("ffn"), kernels)?,
            eps,
            kernels: kernels.clone(),
        })
    }

    pub fn cross_kv(&self, context: &Tensor) -> Result<CrossKv> {
        self.attn2.cross_kv(context)
    }

    /// Runs the feed-forward over `chunks` token slices (see [`FeedForward`]).
    pub fn set_ffn_chunks(&mut self, chunks: usize) {
        self.ffn.chunks = chunks.max(1);
    }

    /// `x` `[B, N, D]` in the compute dtype; `time_proj` holds one `[1, 6, D]` f32 row per run of
    /// `timesteps`.
    pub fn forward(
        &self,
        x: &Tensor,
        timesteps: &TokenTimesteps,
        time_proj: &[Tensor],
        rope: (&Tensor, &Tensor),
        cross: &CrossKv,
    ) -> Result<Tensor> {
        let dtype = x.dtype();
        let k = &*self.kernels;
        let mods: Vec<Vec<Tensor>> = time_proj
            .iter()
            .map(|tp| self.scale_shift_table.broadcast_add(tp)?.chunk(6, 1))
            .collect::<Result<_>>()?;

        let h = per_run(x, timesteps, |seg, r| {
            k.norm_modulate(seg, &mods[r][0], &mods[r][1], self.eps)
        })?;
        let attn = self.attn1.self_attention(&h, rope.0, rope.1)?;
        let x = per_run_pair(x, &attn, timesteps, |xs, ys, r| {
            k.gated_residual(xs, ys, &mods[r][2])
        })?;

        let h = match &self.norm2 {
            Some((w, b)) => k
                .layer_norm(&x.to_dtype(DType::F32)?, w, b, self.eps as f32)?
                .to_dtype(dtype)?,
            None => x.clone(),
        };
        let x = (&x + self.attn2.cross_attention(&h, cross)?)?;

        let h = per_run(&x, timesteps, |seg, r| {
            k.norm_modulate(seg, &mods[r][3], &mods[r][4], self.eps)
        })?;
        let ff = self.ffn.forward(&h)?;
        per_run_pair(&x, &ff, timesteps, |xs, ys, r| {
            k.gated_residual(xs, ys, &mods[r][5])
        })
    }
}
