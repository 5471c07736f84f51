//! The prompt tokenizer: a Hugging Face `tokenizer.json` (umT5's SentencePiece unigram model),
//! set up the way transformers' `T5Tokenizer` sets it up and called the way the reference
//! pipeline calls it.

use super::clean::clean_prompt;
use std::path::{Path, PathBuf};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// The pipeline's `max_sequence_length`: the prompt is truncated to this many tokens, `</s>`
/// included.
pub const MAX_SEQUENCE_LENGTH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: not a usable tokenizer.json: {message}")]
    Load { path: PathBuf, message: String },
    #[error("cannot tokenize the prompt: {0}")]
    Encode(String),
}

/// A span of the prompt that the tokenizer maps to its unknown token: the text the model cannot
/// see, and the whitespace-delimited word it sits in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownText {
    pub text: String,
    pub word: String,
}

pub struct PromptTokenizer {
    tokenizer: Tokenizer,
    unk_id: Option<u32>,
}

/// Just enough of `tokenizer.json` to find the unknown token, which the tokenizers crate does not
/// expose for every model type.
#[derive(serde::Deserialize)]
struct TokenizerJson {
    model: ModelJson,
}

#[derive(serde::Deserialize)]
struct ModelJson {
    unk_id: Option<u32>,
    unk_token: Option<String>,
}

impl PromptTokenizer {
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let load_error = |message: String| TokenizerError::Load {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| load_error(e.to_string()))?;
        // Read first: it refuses what is not JSON, which tokenizers may panic on.
        let json: TokenizerJson =
            serde_json::from_slice(&bytes).map_err(|e| load_error(e.to_string()))?;
        // tokenizers panics (`expect("Helper")`) on some malformed `decoder` sections: a damaged
        // file must be an error, never a panic in the host.
        let parsed = std::panic::catch_unwind(|| Tokenizer::from_bytes(&bytes)).map_err(|_| {
            load_error("malformed tokenizer file (its `decoder` section can't be read)".into())
        })?;
        let mut tokenizer = parsed.map_err(|e| load_error(e.to_string()))?;
        let unk_id = json
            .model
            .unk_id
            .or_else(|| tokenizer.token_to_id(json.model.unk_token.as_deref()?));
        rebuild_like_transformers_t5(&mut tokenizer).map_err(load_error)?;
        // As the pipeline calls it: `max_length=512, truncation=True`, no padding (the caller
        // encodes only the real tokens).
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_SEQUENCE_LENGTH,
                strategy: TruncationStrategy::LongestFirst,
                direction: TruncationDirection::Right,
                stride: 0,
            }))
            .map_err(|e| load_error(e.to_string()))?;
        tokenizer.with_padding(None);
        Ok(Self { tokenizer, unk_id })
    }

    /// The ids the reference feeds the text encoder, without the padding: the cleaned prompt's
    /// tokens (at most 511) followed by `</s>`.
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>, TokenizerError> {
        Ok(self
            .encode_cleaned(&clean_prompt(prompt))?
            .get_ids()
            .to_vec())
    }

    /// The id of the unknown token, if the vocabulary has one.
    pub fn unk_id(&self) -> Option<u32> {
        self.unk_id
    }

    /// The parts of the (cleaned) prompt that the tokenizer maps to the unknown token, in order of
    /// appearance, each once. The text encoder sees all of them as the same token.
    pub fn unknown_text(&self, prompt: &str) -> Result<Vec<UnknownText>, TokenizerError> {
        let Some(unk_id) = self.unk_id else {
            return Ok(Vec::new());
        };
        let cleaned = clean_prompt(prompt);
        let encoding = self.encode_cleaned(&cleaned)?;
        let mut found: Vec<UnknownText> = Vec::new();
        for (&id, &(start, end)) in encoding.get_ids().iter().zip(encoding.get_offsets()) {
            if id != unk_id || start >= end {
                continue;
            }
            // The cleaned prompt separates words with single spaces.
            let word_start = cleaned[..start].rfind(' ').map_or(0, |i| i + 1);
            let word_end = cleaned[end..].find(' ').map_or(cleaned.len(), |i| end + i);
            let unknown = UnknownText {
                text: cleaned[start..end].to_string(),
                word: cleaned[word_start..word_end].to_string(),
            };
            if !found.contains(&unknown) {
                found.push(unknown);
            }
        }
        Ok(found)
    }

    fn encode_cleaned(&self, cleaned: &str) -> Result<tokenizers::Encoding, TokenizerError> {
        self.tokenizer
            .encode(cleaned, true)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }
}

/// transformers (5.x) `T5Tokenizer` does not use `tokenizer.json` as saved: it keeps the vocabulary
/// and only the `Precompiled` (SentencePiece) part of the normaliser, and sets its own
/// pre-tokenizer and `$A </s>` post-processor. Do the same, so that a `tokenizer.json` saved with
/// other settings (extra normalisers, a bare `Metaspace`) still tokenizes as the reference does.
fn rebuild_like_transformers_t5(tokenizer: &mut Tokenizer) -> Result<(), String> {
    let precompiled = match tokenizer.get_normalizer() {
        Some(n @ NormalizerWrapper::Precompiled(_)) => Some(n.clone()),
        Some(NormalizerWrapper::Sequence(sequence)) => sequence
            .as_ref()
            .iter()
            .find(|n| matches!(n, NormalizerWrapper::Precompiled(_)))
            .cloned(),
        _ => None,
    };
    tokenizer
        .with_normalizer(precompiled)
        .map_err(|e| e.to_string())?;
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        WhitespaceSplit.into(),
        Metaspace::new('\u{2581}', PrependScheme::Always, true).into(),
    ])));
    let eos_id = tokenizer
        .token_to_id("</s>")
        .ok_or("the vocabulary has no `</s>` token")?;
    let post_processor = TemplateProcessing::builder()
        .try_single("$A </s>")?
        .try_pair("$A </s> $B </s>")?
        .special_tokens(vec![("</s>", eos_id)])
        .build()
        .map_err(|e| e.to_string())?;
    tokenizer.with_post_processor(Some(post_processor));
    Ok(())
}
