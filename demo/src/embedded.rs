//! The shipped model compiled into the binary (feature `embed`), for a plugin or CLI installed
//! without this source tree: [`extract_to`] writes it to a folder that
//! `t2v_models::checkpoint::ModelFiles::resolve` reads.

use std::path::{Path, PathBuf};

macro_rules! file {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/model/", $path)) as &[u8],
        )
    };
}

/// Every file of the shipped model folder, by its path inside the folder.
pub const FILES: &[(&str, &[u8])] = &[
    file!("model_index.json"),
    file!("demo.json"),
    file!("transformer/config.json"),
    file!("transformer/diffusion_pytorch_model.safetensors"),
    file!("vae/config.json"),
    file!("vae/diffusion_pytorch_model.safetensors"),
    file!("vae/latent_rgb.json"),
    file!("tiny_decoder/tiny_decoder.safetensors"),
    file!("upscaler/demo_compact_x2.safetensors"),
    file!("text_encoder/config.json"),
    file!("text_encoder/model.safetensors"),
    file!("tokenizer/tokenizer.json"),
    file!("tokenizer/tokenizer_config.json"),
    file!("scheduler/scheduler_config.json"),
    file!("step_cache.json"),
];

/// Writes the embedded model into `dir` (files already there with the same size are kept) and
/// returns `dir`.
pub fn extract_to(dir: &Path) -> std::io::Result<PathBuf> {
    for (name, bytes) in FILES {
        let path = dir.join(name);
        if path.metadata().is_ok_and(|m| m.len() == bytes.len() as u64) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Write then rename, so that a concurrent reader never sees a half-written file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &path)?;
    }
    Ok(dir.to_path_buf())
}
