//! Activation estimates: what a stage allocates besides the weights, counted from the way the
//! layers of this crate hold their tensors. Upper estimates: `t2v bench --vram` measures them.

use crate::dit::attention::SCORE_BUDGET_BYTES;
use crate::dit::DitConfig;
use crate::text::Umt5Config;
use crate::vae::{VaeConfig, CACHE_T};

/// Text length the transformer's cross-attention always sees (prompts are zero-padded to it).
pub const TEXT_LEN: u64 = 512;

/// `[tokens, dim]` tensors alive at once inside one transformer block: the block input, the
/// three modulated norms, the attention and feed-forward outputs and residual sums (every
/// binding lives to the end of `Block::forward`), q/k/v before and after RoPE and the merged
/// heads, and the bias-add copies of the linear layers.
const BLOCK_TOKEN_TENSORS: u64 = 12;

/// `[tokens, ffn_dim]` tensors alive at once in the feed-forward: the first projection before
/// and after its bias, then the GELU output beside it.
const FFN_HIDDEN_TENSORS: u64 = 2;

/// The transformer's working memory for one forward pass of `tokens` tokens, with the
/// feed-forward run over `ffn_chunks` slices of the tokens.
pub fn transformer_activations(
    dit: &DitConfig,
    tokens: u64,
    bytes_per_elem: u64,
    ffn_chunks: u64,
) -> u64 {
    let dim = dit.dim() as u64;
    let ffn = dit.ffn_dim as u64;
    let rows = tokens.div_ceil(ffn_chunks.max(1));
    let block = BLOCK_TOKEN_TENSORS * tokens * dim * bytes_per_elem;
    let hidden = FFN_HIDDEN_TENSORS * rows * ffn * bytes_per_elem;
    // RoPE tables (f32 cos and sin per token) and the per-token timesteps.
    let tables = tokens * dit.attention_head_dim as u64 * 4 + tokens * 8;
    block + hidden + tables
}

/// The f32 score block of the chunked attention: scores, their softmax and its cast
/// (`dit::attention::chunked`). The fused CUDA kernel needs none of it; counted anyway.
pub fn attention_scores(dit: &DitConfig, tokens: u64) -> u64 {
    let full = dit.num_attention_heads as u64 * tokens * tokens * 4;
    let block = full.min(SCORE_BUDGET_BYTES as u64);
    block * 5 / 2
}

/// Cross-attention keys and values of one prompt for every block (step-invariant, prepared once
/// per prompt), plus the projected text.
pub fn prompt_context(dit: &DitConfig, bytes_per_elem: u64) -> u64 {
    let dim = dit.dim() as u64;
    (dit.num_layers as u64 * 2 + 1) * TEXT_LEN * dim * bytes_per_elem
}

/// The sampler's f32 latents: current, model input, conditional and unconditional flow, the
/// sampler's history (UniPC keeps two model outputs) and the next latents.
pub fn latents(latent_elements: u64) -> u64 {
    7 * latent_elements * 4
}

/// umT5 encoding one prompt of at most [`TEXT_LEN`] tokens: hidden states and their norms, the
/// f32 scores with the position bias and their softmax, the gated feed-forward.
pub fn text_encoder_activations(text: &Umt5Config, bytes_per_elem: u64) -> u64 {
    let t = TEXT_LEN;
    let hidden = 8 * t * text.d_model as u64 * bytes_per_elem;
    let scores = 3 * text.num_heads as u64 * t * t * 4;
    let ffn = 3 * t * text.d_ff as u64 * bytes_per_elem;
    hidden + scores + ffn
}

/// `[channels, frames, area]` activations alive at once in a decoder stage: the stage input (kept
/// for the shortcut), a resnet's norm, convolution outputs and sum, and the convolution's
/// accumulator.
const DECODER_STAGE_TENSORS: u64 = 6;

/// The VAE decoder's working set for one latent frame over a latent area of `latent_h` x
/// `latent_w` (the whole frame, or one tile): the causal caches of every 3x3x3 convolution
/// ([`CACHE_T`] input frames each) plus the largest stage's live tensors.
pub fn vae_decode_working_set(
    vae: &VaeConfig,
    latent_h: u64,
    latent_w: u64,
    bytes_per_elem: u64,
) -> u64 {
    let area = latent_h * latent_w;
    let base = vae.decoder_base_dim() as u64;
    let stages = vae.dim_mult.len();
    // Channel widths as `Decoder3d::new` builds them.
    let dims: Vec<u64> = std::iter::once(vae.dim_mult[stages - 1])
        .chain(vae.dim_mult.iter().rev().copied())
        .map(|m| base * m as u64)
        .collect();
    let temporal = vae.temperal_upsample();
    let res_convs = vae.num_res_blocks as u64 + 1;
    let cache_t = CACHE_T as u64;

    // Input channels of the cached convolutions, per area factor; and each stage's live tensors.
    let mut cached_channels_x_area = vae.z_dim as u64 * area; // conv_in
    cached_channels_x_area += 4 * dims[0] * area; // mid block: two resnets
    let mut stage_peak = 0u64;
    let (mut frames, mut scale) = (1u64, 1u64);
    for i in 0..stages {
        let (cin, cout) = (dims[i], dims[i + 1]);
        let a = area * scale * scale;
        // First resnet: conv1 reads cin, conv2 cout; the others read cout twice.
        cached_channels_x_area += (cin + cout + (res_convs - 1) * 2 * cout) * a;
        stage_peak = stage_peak.max(DECODER_STAGE_TENSORS * cin.max(cout) * frames * a);
        let up = i != stages - 1;
        if up {
            if temporal[i] {
                cached_channels_x_area += cout * a; // the upsampler's time convolution
                frames *= 2;
            }
            scale *= 2;
            // The upsampled tensor and its convolution at the next resolution.
            let next = area * scale * scale;
            stage_peak = stage_peak.max(DECODER_STAGE_TENSORS * cout * frames * next);
        }
    }
    let out = dims[stages] * area * scale * scale;
    cached_channels_x_area += out; // conv_out
    cached_channels_x_area * cache_t * bytes_per_elem + stage_peak * bytes_per_elem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_5b_at_480p_matches_the_hand_count() {
        let dit = DitConfig::wan22_ti2v_5b();
        // 832x480x121: 12 090 tokens; one FFN hidden tensor is 347 MB in bf16.
        let one_hidden = 12_090u64 * 14_336 * 2;
        assert_eq!(one_hidden, 346_644_480);
        let whole = transformer_activations(&dit, 12_090, 2, 1);
        let chunked = transformer_activations(&dit, 12_090, 2, 4);
        assert_eq!(whole - chunked, 2 * one_hidden - 2 * 3023 * 14_336 * 2);
        // Cross-attention K/V of one prompt: 30 x 2 x 512 x 3072 bf16 = 189 MB, as the reference.
        let kv = prompt_context(&dit, 2) - 512 * 3072 * 2;
        assert_eq!(kv, 188_743_680);
    }

    #[test]
    fn decode_working_set_grows_with_area_and_tiles_bound_it() {
        let vae = VaeConfig::wan22_ti2v_5b();
        let p480 = vae_decode_working_set(&vae, 30, 52, 2);
        let p720 = vae_decode_working_set(&vae, 44, 80, 2);
        let tile = vae_decode_working_set(&vae, 16, 16, 2);
        assert!(p720 > 2 * p480 && p720 < 3 * p480, "{p480} {p720}");
        assert!(tile * 5 < p480);
        // The widest live tensor at 720P is 512 ch x 4 frames x 352x640 (0.46 GB at 256 ch).
        assert!(p720 > 6 * 512 * 4 * 352 * 640 * 2);
    }
}
