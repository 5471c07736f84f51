//! Hostile prompt presets files (`T2V_PRESETS`, the user's presets file): the shipped file
//! mutated, and random bytes. Every input is refused with an error naming the file, or read:
//! no panic, no allocation sized by the input.

#[path = "../../models/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use fuzz_support::{fuzz, hostile};
use t2v_presets::Presets;

record_allocations!();

#[test]
fn fuzz_presets_files() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prompt-presets.json");
    let seed = std::fs::read(&shipped)
        .unwrap_or_else(|e| panic!("presets seed {}: {e}", shipped.display()));
    let read = |bytes: &[u8]| {
        let mut presets = Presets::shipped();
        match std::str::from_utf8(bytes) {
            Ok(text) => match presets.extend_from_str(text, "user.json") {
                Ok(()) => true,
                Err(e) => {
                    assert!(e.to_string().contains("user.json"), "{e}");
                    false
                }
            },
            Err(_) => false,
        }
    };
    assert!(read(&seed));
    fuzz("prompt presets", 10000, hostile(seed), read);
}
