//! The shipped demo model: where it is, how to run it and what it draws.

use crate::settings::{DemoSettings, SettingsFile, SETTINGS_FILE};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// The shipped model's `demo.json`, compiled in.
fn shipped_file() -> &'static SettingsFile {
    static FILE: OnceLock<SettingsFile> = OnceLock::new();
    FILE.get_or_init(|| {
        serde_json::from_str(include_str!("../model/demo.json"))
            .expect("demo/model/demo.json is valid")
    })
}

/// The recommended settings written next to the shipped model (`demo.json`), compiled in.
pub fn recommended_settings() -> DemoSettings {
    shipped_file().settings.clone()
}

/// The settings stored in a model folder's `demo.json`.
pub fn settings_in(model_dir: &Path) -> Result<DemoSettings, String> {
    let path = model_dir.join(SETTINGS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A one-line description of what the demo model can draw, for warnings and help texts (the
/// `capabilities` of its `demo.json`).
pub fn capabilities() -> String {
    shipped_file().capabilities.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_holds_settings_and_capabilities() {
        let settings = recommended_settings();
        assert_eq!(
            (settings.width, settings.height, settings.frames),
            (256, 160, 17)
        );
        assert!(settings.generation_params().is_ok());
        assert!(capabilities().starts_with("shapes ("), "{}", capabilities());
        assert_eq!(settings_in(&bundled_model_dir()).unwrap(), settings);
    }

    #[test]
    fn a_settings_file_without_capabilities_still_reads() {
        let old = r#"{"width": 64, "height": 64, "frames": 5, "fps": 16.0, "steps": 3,
            "guidance": 4.0, "shift": 3.0, "sampler": "unipc", "negative_prompt": ""}"#;
        let file: SettingsFile = serde_json::from_str(old).unwrap();
        assert_eq!(file.capabilities, "");
        assert_eq!(file.settings.frames, 5);
        let settings: DemoSettings = serde_json::from_str(old).unwrap();
        assert_eq!(settings, file.settings);
    }
}
