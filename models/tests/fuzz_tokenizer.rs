//! Hostile `tokenizer.json` files (a model folder's tokenizer): the tiny model's mutated, and
//! random bytes, loaded and used on a prompt. Every input is refused with an error or
//! tokenizes: no panic, no allocation sized by the file.

mod common;
mod fuzz_support;

use common::tiny_diffusers;
use fuzz_support::{fuzz, hostile};
use t2v_models::text::PromptTokenizer;

record_allocations!();

#[test]
fn fuzz_tokenizer_files() {
    let seed = std::fs::read(tiny_diffusers().join("tokenizer").join("tokenizer.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    let read = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        PromptTokenizer::from_file(&path).is_ok_and(|t| t.encode("a red ball bounces").is_ok())
    };
    assert!(read(&seed));
    // Found by the fuzzer: tokenizers panicked (`expect("Helper")`) on a syntax error inside
    // the `decoder` section.
    let text = String::from_utf8(seed.clone()).unwrap();
    let decoder = "\"decoder\": {\n    \"type\": \"Metaspace\"";
    assert!(text.contains(decoder), "the seed's decoder section");
    let broken = text.replace(decoder, "\"decoder\": {\n    \"type\" \"Metaspace\"");
    fuzz_support::assert_refused("a broken decoder section", || read(broken.as_bytes()));
    fuzz("tokenizer.json", 1000, hostile(seed), read);
}
