//! The shipped demo model: where it is, how to run it, and which words it knows.

use crate::configs::DemoSettings;
use std::path::{Path, PathBuf};

/// Environment variable that points at another copy of the demo model folder.
pub const MODEL_DIR_ENV: &str = "T2V_DEMO_MODEL";

/// The folder of the shipped model inside this crate (`demo/model`).
pub fn bundled_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("model")
}

/// The demo model's folder: `$T2V_DEMO_MODEL` when set, else the one shipped in this crate.
/// It is a diffusers-layout folder for `t2v_models::checkpoint::ModelFiles::resolve`.
pub fn model_dir() -> PathBuf {
    match std::env::var_os(MODEL_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => bundled_model_dir(),
    }
}

/// The recommended settings written next to the shipped model (`demo.json`), compiled in.
pub fn recommended_settings() -> DemoSettings {
    serde_json::from_str(include_str!("../model/demo.json")).expect("demo/model/demo.json is valid")
}

/// The settings stored in a model folder's `demo.json`.
pub fn settings_in(model_dir: &Path) -> Result<DemoSettings, String> {
    let path = model_dir.join(crate::export::SETTINGS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every word the demo model understands, in lower case.
pub fn vocabulary() -> Vec<&'static str> {
    crate::vocab::vocabulary()
}

/// The words of `prompt` the demo model never saw, for a warning such as "the demo model
/// understands: ...". Empty when every word is known.
pub fn unknown_words(prompt: &str) -> Vec<String> {
    crate::vocab::unknown_words(prompt)
}

/// A one-line description of what the demo model can draw, for warnings and help texts.
pub fn capabilities() -> String {
    use crate::world::{BACKGROUND_COLOURS, MOTIONS, OBJECT_COLOURS, SHAPES};
    let names = |v: Vec<&str>| v.join(", ");
    format!(
        "shapes ({}) in {} moving left, right, up or down, growing, shrinking or bouncing ({}), on {} backgrounds",
        names(SHAPES.iter().map(|s| s.name()).collect()),
        names(OBJECT_COLOURS.iter().map(|c| c.name()).collect()),
        names(MOTIONS.iter().map(|m| m.name()).collect()),
        names(BACKGROUND_COLOURS.iter().map(|c| c.name()).collect()),
    )
}
