//! Shared helpers for the `t2v` tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The models crate's test fixtures (the tiny diffusers model among them).
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures")
}
