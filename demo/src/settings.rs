//! The demo model's recommended generation settings, as stored in its folder's `demo.json`.

/// The file name of the recommended settings, next to `model_index.json`.
pub const SETTINGS_FILE: &str = "demo.json";

/// Recommended generation settings (`demo.json`; other fields of the file are ignored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DemoSettings {
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub fps: f64,
    pub steps: usize,
    pub guidance: f64,
    pub shift: f64,
    pub sampler: String,
    pub negative_prompt: String,
}

impl DemoSettings {
    /// Generation parameters with these settings (prompt empty, seed 0: set them).
    pub fn generation_params(&self) -> Result<t2v_models::pipeline::GenerationParams, String> {
        let sampler = self
            .sampler
            .parse()
            .map_err(|e| format!("demo model settings: {e}"))?;
        Ok(t2v_models::pipeline::GenerationParams {
            width: self.width,
            height: self.height,
            frames: self.frames,
            steps: self.steps,
            guidance: self.guidance,
            shift: self.shift,
            sampler,
            negative_prompt: Some(self.negative_prompt.clone()),
            ..Default::default()
        })
    }
}

/// What `demo.json` holds: the settings and a one-line description of what the model draws.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SettingsFile {
    #[serde(flatten)]
    pub settings: DemoSettings,
    /// For warnings and help texts, e.g. "shapes (circle, ...) in red, ... on black or white
    /// backgrounds". Empty in files written before it was added.
    #[serde(default)]
    pub capabilities: String,
}
