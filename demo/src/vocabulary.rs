//! The words the shipped model knows, read from its tokenizer: each word is a unigram piece
//! "▁word" (and "▁Word"), so the tokenizer is the one list of them.

use std::sync::OnceLock;

/// The shipped tokenizer, compiled in.
const TOKENIZER_JSON: &str = include_str!("../model/tokenizer/tokenizer.json");

/// The lower-case words among the unigram pieces of a `tokenizer.json`, in id order.
pub fn words_of_tokenizer(json: &str) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct File {
        model: Model,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        vocab: Vec<(String, f64)>,
    }
    let file: File = serde_json::from_str(json).map_err(|e| format!("tokenizer.json: {e}"))?;
    Ok(file
        .model
        .vocab
        .into_iter()
        .filter_map(|(piece, _)| {
            let word = piece.strip_prefix('\u{2581}')?;
            (!word.is_empty() && word == word.to_lowercase()).then(|| word.to_string())
        })
        .collect())
}

/// Every word the demo model understands, in lower case.
pub fn vocabulary() -> Vec<&'static str> {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            words_of_tokenizer(TOKENIZER_JSON)
                .expect("demo/model/tokenizer/tokenizer.json is valid")
        })
        .iter()
        .map(String::as_str)
        .collect()
}

/// `text` with its first letter in upper case: the capitalised form of a word the tokenizer
/// also knows.
pub fn capitalise_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The words of `prompt` the demo model never saw in training, in order, each once. Punctuation
/// is ignored; capitalisation is not an unknown word for whole-word capitals ("Red") but is for
/// other casings ("RED").
pub fn unknown_words(prompt: &str) -> Vec<String> {
    let known = vocabulary();
    let mut unknown: Vec<String> = Vec::new();
    for raw in prompt.split_whitespace() {
        let word = raw.trim_matches(|c: char| c.is_ascii_punctuation());
        if word.is_empty() {
            continue;
        }
        let lower = word.to_lowercase();
        let recognised =
            known.contains(&lower.as_str()) && (word == lower || word == capitalise_first(&lower));
        if !recognised && !unknown.contains(&word.to_string()) {
            unknown.push(word.to_string());
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_is_the_tokenizers_lower_case_words() {
        let words = vocabulary();
        for word in [
            "a",
            "red",
            "circle",
            "moves",
            "left",
            "background",
            "bouncing",
        ] {
            assert!(words.contains(&word), "{word} missing from {words:?}");
        }
        assert!(!words.iter().any(|w| w.is_empty() || *w != w.to_lowercase()));
        assert!(!words.contains(&"magenta"));
    }

    #[test]
    fn unknown_words_are_listed_once() {
        assert_eq!(
            unknown_words("A red circle moves left."),
            Vec::<String>::new()
        );
        assert_eq!(
            unknown_words("A magenta circle zooms, zooms left"),
            vec!["magenta", "zooms"]
        );
        assert_eq!(unknown_words("RED circle"), vec!["RED"]);
        assert_eq!(
            unknown_words("\"Red\" circle; moves!"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_tokenizer_without_a_unigram_vocabulary_is_an_error() {
        assert!(words_of_tokenizer("{}").is_err());
        assert_eq!(
            words_of_tokenizer(r#"{"model": {"vocab": [["<pad>", 0], ["\u2581", -1], ["\u2581red", -5], ["\u2581Red", -5], [".", -8]]}}"#)
                .unwrap(),
            vec!["red"]
        );
    }
}
