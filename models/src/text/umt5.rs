//! The umT5 encoder (transformers `UMT5EncoderModel`), as Wan uses it to embed prompts.
//!
//! umT5 is T5 v1.1 with a relative position bias owned by every layer instead of the first one
//! only. Attention scores are not scaled by `1/sqrt(d_kv)` and embeddings are not scaled either.
//!
//! The encoder takes no attention mask: feed it the real token ids only (no padding). The bias is
//! relative and the pipeline's mask only hides pad keys, so this is exactly what the reference
//! computes for the real rows.
//!
//! Run it in f32 or bf16 (the dtype of the `VarBuilder`). umT5-XXL activations overflow f16, so
//! an f16 checkpoint should be loaded as bf16 or f32.

use super::token_embedding::TokenEmbedding;
use crate::ops::linear::{linear_no_bias, LinearNoBias as Linear};
use crate::ops::Kernels;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Activation, Embedding, VarBuilder};
use std::sync::Arc;

fn default_num_buckets() -> usize {
    32
}
fn default_max_distance() -> usize {
    128
}
fn default_layer_norm_epsilon() -> f64 {
    1e-6
}
fn default_feed_forward_proj() -> String {
    "gated-gelu".to_string()
}

/// The fields of a transformers `UMT5Config` (`config.json`) that the encoder uses; the optional
/// ones default as in transformers.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Umt5Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    #[serde(default = "default_num_buckets")]
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// `gated-{act}` or `{act}`. transformers derives the activation from this and ignores a
    /// `dense_act_fn` saved next to it, so this is the only field read for it.
    #[serde(default = "default_feed_forward_proj")]
    pub feed_forward_proj: String,
}

impl Umt5Config {
    /// google/umt5-xxl, the text encoder of Wan2.1 and Wan2.2.
    pub fn umt5_xxl() -> Self {
        Self {
            vocab_size: 256_384,
            d_model: 4096,
            d_kv: 64,
            d_ff: 10_240,
            num_layers: 24,
            num_heads: 64,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "gated-gelu".to_string(),
        }
    }

    /// The feed-forward activation and whether it is gated, as transformers reads
    /// `feed_forward_proj` (`gated-gelu` means the tanh approximation, `gelu_new`).
    pub fn feed_forward_activation(&self) -> Result<(Activation, bool)> {
        let (gated, name) = match self.feed_forward_proj.strip_prefix("gated-") {
            Some(name) => (true, name),
            None => (false, self.feed_forward_proj.as_str()),
        };
        let activation = match name {
            "gelu" if gated => Activation::NewGelu,
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::NewGelu,
            "relu" => Activation::Relu,
            "silu" => Activation::Silu,
            other => candle_core::bail!(
                "umT5 feed_forward_proj `{}`: activation `{other}` is not supported \
                 (use gelu, gelu_new, relu or silu)",
                self.feed_forward_proj
            ),
        };
        Ok((activation, gated))
    }
}

/// The bucket of the relative position `key - query`, as transformers computes it for the
/// (bidirectional) encoder: half the buckets per direction, exact below a quarter of the buckets,
/// log-spaced up to `max_distance`, clamped beyond.
pub fn relative_position_bucket(
    relative_position: i64,
    num_buckets: usize,
    max_distance: usize,
) -> u32 {
    let num_buckets = num_buckets / 2;
    let direction = if relative_position > 0 {
        num_buckets
    } else {
        0
    };
    let distance = relative_position.unsigned_abs() as usize;
    let max_exact = num_buckets / 2;
    let bucket = if distance < max_exact {
        distance
    } else {
        // f32 arithmetic as in transformers, so the bucket edges fall where its truncation puts them.
        let log_ratio = (distance as f32 / max_exact as f32).ln()
            / ((max_distance as f64 / max_exact as f64).ln() as f32)
            * (num_buckets - max_exact) as f32;
        (max_exact + log_ratio as usize).min(num_buckets - 1)
    };
    (direction + bucket) as u32
}

/// T5's RMSNorm: no mean subtraction, no bias; statistics in f32, the normalised values cast to
/// the weight's dtype before the weight is applied.
#[derive(Debug, Clone)]
struct T5LayerNorm {
    weight: Tensor,
    eps: f64,
}

impl T5LayerNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            eps,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let xs = xs.to_dtype(DType::F32)?;
        let variance = xs.sqr()?.mean_keepdim(D::Minus1)?;
        let inv_rms = (variance + self.eps)?.sqrt()?.recip()?;
        xs.broadcast_mul(&inv_rms)?
            .to_dtype(self.weight.dtype())?
            .broadcast_mul(&self.weight)
    }
}

#[derive(Debug, Clone)]
struct SelfAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    relative_attention_bias: Embedding,
    num_heads: usize,
    d_kv: usize,
    kernels: Arc<dyn Kernels>,
}

impl SelfAttention {
    fn new(cfg: &Umt5Config, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(Self {
            q: linear_no_bias(cfg.d_model, inner, vb.pp("q"))?,
            k: linear_no_bias(cfg.d_model, inner, vb.pp("k"))?,
            v: linear_no_bias(cfg.d_model, inner, vb.pp("v"))?,
            o: linear_no_bias(inner, cfg.d_model, vb.pp("o"))?,
            relative_attention_bias: candle_nn::embedding(
                cfg.relative_attention_num_buckets,
                cfg.num_heads,
                vb.pp("relative_attention_bias"),
            )?,
            num_heads: cfg.num_heads,
            d_kv: cfg.d_kv,
            kernels: kernels.clone(),
        })
    }

    /// `xs`: [B, L, d_model]; `buckets`: [L, L] relative position buckets.
    fn forward(&self, xs: &Tensor, buckets: &Tensor) -> Result<Tensor> {
        let (b, l, _) = xs.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            proj.forward(xs)?
                .reshape((b, l, self.num_heads, self.d_kv))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (heads(&self.q)?, heads(&self.k)?, heads(&self.v)?);
        // [L, L, H] -> [1, H, L, L]
        let position_bias = self
            .relative_attention_bias
            .forward(buckets)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(&position_bias)?;
        let probs = self
            .kernels
            .softmax_last_dim(&scores.to_dtype(DType::F32)?)?
            .to_dtype(scores.dtype())?;
        let attn =
            probs
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, l, self.num_heads * self.d_kv))?;
        self.o.forward(&attn)
    }
}

#[derive(Debug, Clone)]
struct GatedFeedForward {
    wi_0: Linear,
    wi_1: Linear,
    wo: Linear,
    activation: Activation,
}

impl GatedFeedForward {
    fn new(cfg: &Umt5Config, vb: VarBuilder) -> Result<Self> {
        let (activation, gated) = cfg.feed_forward_activation()?;
        if !gated {
            candle_core::bail!(
                "umT5 feed_forward_proj `{}`: only gated feed-forward layers (`gated-...`) are supported",
                cfg.feed_forward_proj
            );
        }
        Ok(Self {
            wi_0: linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi_0"))?,
            wi_1: linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi_1"))?,
            wo: linear_no_bias(cfg.d_ff, cfg.d_model, vb.pp("wo"))?,
            activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let gate = self.activation.forward(&self.wi_0.forward(xs)?)?;
        self.wo.forward(&(gate * self.wi_1.forward(xs)?)?)
    }
}

#[derive(Debug, Clone)]
struct Block {
    attention_norm: T5LayerNorm,
    attention: SelfAttention,
    feed_forward_norm: T5LayerNorm,
    feed_forward: GatedFeedForward,
}

impl Block {
    fn new(cfg: &Umt5Config, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Self> {
        let (attention_vb, feed_forward_vb) = (vb.pp("layer").pp(0), vb.pp("layer").pp(1));
        Ok(Self {
            attention_norm: T5LayerNorm::new(
                cfg.d_model,
                cfg.layer_norm_epsilon,
                attention_vb.pp("layer_norm"),
            )?,
            attention: SelfAttention::new(cfg, attention_vb.pp("SelfAttention"), kernels)?,
            feed_forward_norm: T5LayerNorm::new(
                cfg.d_model,
                cfg.layer_norm_epsilon,
                feed_forward_vb.pp("layer_norm"),
            )?,
            feed_forward: GatedFeedForward::new(cfg, feed_forward_vb.pp("DenseReluDense"))?,
        })
    }

    fn forward(&self, xs: &Tensor, buckets: &Tensor) -> Result<Tensor> {
        let xs = (xs
            + self
                .attention
                .forward(&self.attention_norm.forward(xs)?, buckets)?)?;
        &xs + self
            .feed_forward
            .forward(&self.feed_forward_norm.forward(&xs)?)?
    }
}

/// The umT5 encoder stack with HF (transformers) tensor names.
#[derive(Debug, Clone)]
pub struct Umt5Encoder {
    embed_tokens: TokenEmbedding,
    embedding_name: &'static str,
    blocks: Vec<Block>,
    final_layer_norm: T5LayerNorm,
    num_buckets: usize,
    max_distance: usize,
    device: Device,
}

impl Umt5Encoder {
    /// Builds the encoder from `encoder.*` and the token embedding: `encoder.embed_tokens.weight`
    /// when the checkpoint has it, else `shared.weight` (transformers saves both, tied). See
    /// [`Self::embedding_name`] for which one was used.
    pub fn new(cfg: &Umt5Config, vb: VarBuilder) -> Result<Self> {
        Self::new_with_kernels(cfg, vb, &crate::ops::fused_kernels())
    }

    /// [`Self::new`] with other [`Kernels`] than the fused inference ones.
    pub fn new_with_kernels(
        cfg: &Umt5Config,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let embedding_name = if vb.contains_tensor("encoder.embed_tokens.weight") {
            "encoder.embed_tokens.weight"
        } else {
            "shared.weight"
        };
        let embedding_vb = vb.pp(embedding_name.trim_end_matches(".weight"));
        let embed_tokens = TokenEmbedding::new(cfg.vocab_size, cfg.d_model, embedding_vb)?;
        Self::build(cfg, embed_tokens, embedding_name, vb, kernels)
    }

    /// Builds the encoder around an embedding loaded elsewhere, for instance kept on the CPU:
    /// only the rows of the prompt's tokens are gathered and moved to the device of `vb`.
    /// `embedding_name` is what [`Self::embedding_name`] reports.
    pub fn with_embedding(
        cfg: &Umt5Config,
        embed_tokens: Embedding,
        embedding_name: &'static str,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::build(
            cfg,
            TokenEmbedding::dense(embed_tokens),
            embedding_name,
            vb,
            &crate::ops::fused_kernels(),
        )
    }

    fn build(
        cfg: &Umt5Config,
        embed_tokens: TokenEmbedding,
        embedding_name: &'static str,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let encoder_vb = vb.pp("encoder");
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::new(cfg, encoder_vb.pp("block").pp(i), kernels))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_tokens,
            embedding_name,
            blocks,
            final_layer_norm: T5LayerNorm::new(
                cfg.d_model,
                cfg.layer_norm_epsilon,
                encoder_vb.pp("final_layer_norm"),
            )?,
            num_buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            device: vb.device().clone(),
        })
    }

    /// d_model, the width of the embeddings [`Self::forward`] returns.
    pub fn hidden_size(&self) -> usize {
        self.embed_tokens.hidden_size()
    }

    /// The device the encoder computes on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The token embedding as held: dense, or as its file stores it.
    pub fn token_embedding(&self) -> &TokenEmbedding {
        &self.embed_tokens
    }

    /// The checkpoint name the token embedding was read from.
    pub fn embedding_name(&self) -> &'static str {
        self.embedding_name
    }

    /// `input_ids`: [B, L] u32, the real tokens only (no padding). Returns [B, L, d_model] in the
    /// dtype of the weights.
    pub fn forward(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (_, seq_len) = input_ids.dims2()?;
        let mut xs = self.embed_tokens.forward(input_ids, &self.device)?;
        let buckets = self.position_buckets(seq_len)?;
        for block in &self.blocks {
            xs = block.forward(&xs, &buckets)?;
        }
        self.final_layer_norm.forward(&xs)
    }

    /// [L, L] buckets of `key - query`.
    fn position_buckets(&self, seq_len: usize) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..seq_len as i64)
            .flat_map(|query| {
                (0..seq_len as i64).map(move |key| {
                    relative_position_bucket(key - query, self.num_buckets, self.max_distance)
                })
            })
            .collect();
        Tensor::from_vec(buckets, (seq_len, seq_len), &self.device)
    }
}
