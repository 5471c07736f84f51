//! The demo model's vocabulary and its `tokenizer.json`: a SentencePiece-style unigram model
//! whose pieces are the caption words (lower case and capitalised) prefixed with "▁", a few
//! punctuation pieces, and T5's special tokens `<pad>`=0, `</s>`=1, `<unk>`=2. It loads with
//! [`t2v_models::text::PromptTokenizer::from_file`] and tokenizes as the pipeline expects.

use crate::world::caption_words;
use std::path::Path;
use tokenizers::models::unigram::Unigram;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::Tokenizer;

pub const PAD_ID: u32 = 0;
pub const EOS_ID: u32 = 1;
pub const UNK_ID: u32 = 2;

/// Punctuation pieces: the pre-tokenizer splits on whitespace only, so "background." reaches the
/// model as "▁background" + ".".
const PUNCTUATION: [&str; 8] = [".", ",", "!", "?", ";", ":", "'", "\""];

/// The words the demo model understands, in lower case (the shipped model's are
/// `t2v_demo::vocabulary()`, read back from its tokenizer).
pub fn vocabulary() -> Vec<&'static str> {
    caption_words()
}

/// The unigram pieces in id order, with their scores.
pub fn pieces() -> Vec<(String, f64)> {
    let mut pieces: Vec<(String, f64)> = vec![
        ("<pad>".into(), 0.0),
        ("</s>".into(), 0.0),
        ("<unk>".into(), 0.0),
        ("\u{2581}".into(), -12.0),
    ];
    for p in PUNCTUATION {
        pieces.push((p.to_string(), -8.0));
    }
    for word in vocabulary() {
        pieces.push((format!("\u{2581}{word}"), -5.0));
        let capitalised = crate::world::capitalise_first(word);
        pieces.push((format!("\u{2581}{capitalised}"), -5.5));
    }
    pieces
}

/// The tokenizer, configured as transformers' `T5TokenizerFast` saves umT5's.
pub fn build_tokenizer() -> Result<Tokenizer, String> {
    let model = Unigram::from(pieces(), Some(UNK_ID as usize), false).map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Metaspace::new(
        '\u{2581}',
        PrependScheme::Always,
        true,
    )));
    let post = TemplateProcessing::builder()
        .try_single("$A </s>")?
        .try_pair("$A </s> $B </s>")?
        .special_tokens(vec![("</s>", EOS_ID)])
        .build()
        .map_err(|e| e.to_string())?;
    tokenizer.with_post_processor(Some(post));
    Ok(tokenizer)
}

pub fn save_tokenizer(path: &Path) -> Result<(), String> {
    build_tokenizer()?
        .save(path, true)
        .map_err(|e| e.to_string())
}

pub fn vocab_size() -> usize {
    pieces().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use t2v_models::text::PromptTokenizer;

    #[test]
    fn saved_tokenizer_loads_and_tokenizes_words_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        save_tokenizer(&path).unwrap();
        let tok = PromptTokenizer::from_file(&path).unwrap();
        let ids = tok
            .encode("A red circle moves left on a blue background.")
            .unwrap();
        // 9 words, ".", </s>
        assert_eq!(ids.len(), 11, "{ids:?}");
        assert_eq!(*ids.last().unwrap(), EOS_ID);
        assert!(!ids.contains(&UNK_ID));
        assert_eq!(tok.encode("").unwrap(), vec![EOS_ID]);
        let unknown = tok.unknown_text("a magenta circle").unwrap();
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(unknown[0].word, "magenta");
    }
}
