//! umT5 text encoder, tokenizer and prompt cleaning: prompt -> [1, 512, d_model] embeddings, as
//! the reference pipeline's `_get_t5_prompt_embeds` produces them.

pub mod clean;
mod html_entities;
pub mod token_embedding;
pub mod tokenizer;
pub mod umt5;

pub use clean::clean_prompt;
pub use tokenizer::{PromptTokenizer, TokenizerError, UnknownText, MAX_SEQUENCE_LENGTH};
pub use umt5::{Umt5Config, Umt5Encoder};

use candle_core::{Device, Result, Tensor};

/// Zero-pads [B, L, D] embeddings to [B, length, D]. The transformer's cross-attention sees these
/// zero rows (it has no text mask), so they are part of the conditioning.
pub fn pad_to_length(embeddings: &Tensor, length: usize) -> Result<Tensor> {
    let (batch, seq_len, dim) = embeddings.dims3()?;
    if seq_len > length {
        candle_core::bail!(
            "cannot pad {seq_len} text embeddings to {length}: there are more than that"
        );
    }
    if seq_len == length {
        return Ok(embeddings.clone());
    }
    let zeros = Tensor::zeros(
        (batch, length - seq_len, dim),
        embeddings.dtype(),
        embeddings.device(),
    )?;
    Tensor::cat(&[embeddings, &zeros], 1)
}

/// The embeddings of one prompt as the pipeline hands them to the transformer: cleaned,
/// tokenized, encoded on the real tokens and zero-padded to [1, 512, d_model], on `device`, in
/// the encoder's dtype.
pub fn encode_prompt(
    tokenizer: &PromptTokenizer,
    encoder: &Umt5Encoder,
    prompt: &str,
    device: &Device,
) -> Result<Tensor> {
    let ids = tokenizer.encode(prompt).map_err(candle_core::Error::wrap)?;
    let ids = Tensor::new(ids.as_slice(), device)?.unsqueeze(0)?;
    let embeddings = encoder.forward(&ids)?.to_device(device)?;
    pad_to_length(&embeddings, MAX_SEQUENCE_LENGTH)
}
