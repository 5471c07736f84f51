//! Sampling settings a model folder declares for itself. A diffusers folder whose
//! `model_index.json` names FastVideo's `WanDMDPipeline` (FastWan2.2-TI2V-5B and the other
//! FastWan releases) holds a DMD-distilled transformer: it runs the DMD sampler, three steps,
//! no guidance.

use crate::sampling::{SamplerKind, SamplingSettings};
use std::path::Path;

/// The `_class_name` of FastVideo's DMD pipeline in `model_index.json`.
pub const DMD_PIPELINE_CLASS: &str = "WanDMDPipeline";

/// The settings `model_dir` declares, if any. An unreadable or foreign `model_index.json`
/// declares nothing: loading the model reports what is wrong with the folder.
pub fn declared_sampling(model_dir: &Path) -> Option<SamplingSettings> {
    let text = std::fs::read_to_string(model_dir.join("model_index.json")).ok()?;
    let index: serde_json::Value = serde_json::from_str(&text).ok()?;
    match index.get("_class_name")?.as_str()? {
        DMD_PIPELINE_CLASS => SamplerKind::Dmd.recommended(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dmd_pipeline_folder_declares_dmd_and_others_nothing() {
        let dir = std::env::temp_dir().join(format!("t2v-declared-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(declared_sampling(&dir), None, "no model_index.json");
        std::fs::write(
            dir.join("model_index.json"),
            r#"{"_class_name": "WanPipeline"}"#,
        )
        .unwrap();
        assert_eq!(declared_sampling(&dir), None);
        std::fs::write(dir.join("model_index.json"), "{ not json").unwrap();
        assert_eq!(declared_sampling(&dir), None);
        std::fs::write(
            dir.join("model_index.json"),
            r#"{"_class_name": "WanDMDPipeline", "_diffusers_version": "0.33.0.dev0"}"#,
        )
        .unwrap();
        let s = declared_sampling(&dir).expect("declared");
        assert_eq!(
            (s.sampler, s.steps, s.guidance, s.shift),
            (SamplerKind::Dmd, 3, 1.0, 8.0)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
