//! One transformer block: modulated self-attention with 3D RoPE, affine-normed cross-attention
//! to the text, modulated GELU feed-forward.

use super::attention::sdpa;
use super::modulation::{norm_modulate, per_run, per_run_pair, TokenTimesteps};
use super::rope;
use crate::ops::linear::{linear, Linear};
use crate::ops::rowwise::gated_residual;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

/// Q/K RMSNorm across all heads (over the full model dimension, before the head split).
#[derive(Debug, Clone)]
struct QkNorm {
    weight: Tensor,
    eps: f32,
}

impl QkNorm {
    fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::ops::rms_norm(x, &self.weight, self.eps)
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
}

/// Keys and values of the text for one block's cross-attention: step-invariant, so computed
/// once per prompt.
#[derive(Debug, Clone)]
pub struct CrossKv {
    pub k: Tensor,
    pub v: Tensor,
    /// `[B, 1, 1, M]` f32 added to the keys' scores: ln of how many identical padding rows a key
    /// stands for (see `WanTransformer::prepare_collapsed_context`); none for the full text.
    pub key_bias: Option<Tensor>,
}

impl Attention {
    pub fn new(dim: usize, heads: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            to_q: linear(dim, dim, vb.pp("to_q"))?,
            to_k: linear(dim, dim, vb.pp("to_k"))?,
            to_v: linear(dim, dim, vb.pp("to_v"))?,
            to_out: linear(dim, dim, vb.pp("to_out").pp("0"))?,
            norm_q: QkNorm::new(dim, eps, vb.pp("norm_q"))?,
            norm_k: QkNorm::new(dim, eps, vb.pp("norm_k"))?,
            heads,
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

    /// Attention and the output projection; `key_bias` (see [`CrossKv::key_bias`]) takes the
    /// chunked path that adds it.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        key_bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        let scale = 1.0 / (q.dim(3)? as f64).sqrt();
        let out = match key_bias {
            None => sdpa(q, k, v, scale)?,
            Some(bias) => super::attention::sdpa_with_key_bias(q, k, v, scale, bias)?,
        };
        self.to_out.forward(&Self::merge_heads(&out)?)
    }

    pub fn self_attention(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let q = self.split_heads(&self.norm_q.forward(&self.to_q.forward(x)?)?)?;
        let k = self.split_heads(&self.norm_k.forward(&self.to_k.forward(x)?)?)?;
        let v = self.split_heads(&self.to_v.forward(x)?)?;
        let q = rope::apply(&q, cos, sin)?;
        let k = rope::apply(&k, cos, sin)?;
        self.attend(&q, &k, &v, None)
    }

    pub fn cross_kv(&self, context: &Tensor) -> Result<CrossKv> {
        let k = self.split_heads(&self.norm_k.forward(&self.to_k.forward(context)?)?)?;
        let v = self.split_heads(&self.to_v.forward(context)?)?;
        Ok(CrossKv {
            k,
            v,
            key_bias: None,
        })
    }

    pub fn cross_attention(&self, x: &Tensor, kv: &CrossKv) -> Result<Tensor> {
        let q = self.split_heads(&self.norm_q.forward(&self.to_q.forward(x)?)?)?;
        self.attend(&q, &kv.k, &kv.v, kv.key_bias.as_ref())
    }
}

#[derive(Debug, Clone)]
pub struct FeedForward {
    proj_in: Linear,
    proj_out: Linear,
}

impl FeedForward {
    pub fn new(dim: usize, ffn_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            proj_in: linear(dim, ffn_dim, vb.pp("net").pp("0").pp("proj"))?,
            proj_out: linear(ffn_dim, dim, vb.pp("net").pp("2"))?,
        })
    }
}

impl Module for FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.proj_out
            .forward(&crate::ops::gelu_tanh(&self.proj_in.forward(x)?)?)
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
}

impl Block {
    pub fn new(
        dim: usize,
        ffn_dim: usize,
        heads: usize,
        cross_attn_norm: bool,
        eps: f64,
        vb: VarBuilder,
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
            attn1: Attention::new(dim, heads, eps, vb.pp("attn1"))?,
            attn2: Attention::new(dim, heads, eps, vb.pp("attn2"))?,
            norm2,
            ffn: FeedForward::new(dim, ffn_dim, vb.pp("ffn"))?,
            eps,
        })
    }

    pub fn cross_kv(&self, context: &Tensor) -> Result<CrossKv> {
        self.attn2.cross_kv(context)
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
        let mods: Vec<Vec<Tensor>> = time_proj
            .iter()
            .map(|tp| self.scale_shift_table.broadcast_add(tp)?.chunk(6, 1))
            .collect::<Result<_>>()?;

        let h = per_run(x, timesteps, |seg, r| {
            norm_modulate(seg, &mods[r][0], &mods[r][1], self.eps)
        })?;
        let attn = self.attn1.self_attention(&h, rope.0, rope.1)?;
        let x = per_run_pair(x, &attn, timesteps, |xs, ys, r| {
            gated_residual(xs, ys, &mods[r][2])
        })?;

        let h = match &self.norm2 {
            Some((w, b)) => {
                crate::ops::layer_norm(&x.to_dtype(DType::F32)?, w, b, self.eps as f32)?
                    .to_dtype(dtype)?
            }
            None => x.clone(),
        };
        let x = (&x + self.attn2.cross_attention(&h, cross)?)?;

        let h = per_run(&x, timesteps, |seg, r| {
            norm_modulate(seg, &mods[r][3], &mods[r][4], self.eps)
        })?;
        let ff = self.ffn.forward(&h)?;
        per_run_pair(&x, &ff, timesteps, |xs, ys, r| {
            gated_residual(xs, ys, &mods[r][5])
        })
    }
}
