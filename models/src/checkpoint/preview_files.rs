//! The files beside a model's VAE that only previews use: the latent-to-RGB projection.

use super::ComponentFiles;
use crate::preview::{LatentRgb, LATENT_RGB_FILE};
use crate::{Error, Result};
use std::path::PathBuf;

/// Where a VAE's side files live: the folder of its config, else of its first weight file.
fn vae_folder(files: &ComponentFiles) -> Option<PathBuf> {
    files
        .config
        .as_ref()
        .or(files.files.first())
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
}

/// The latent-to-RGB projection for previews of a model whose VAE has `z_dim` latent channels:
/// `latent_rgb.json` beside the VAE when there is one, else Wan2.2's published factors for a
/// 48-channel latent space, else `None` (no previews). A file that doesn't fit is an error
/// naming it.
pub fn load_latent_rgb(files: &ComponentFiles, z_dim: usize) -> Result<Option<LatentRgb>> {
    if let Some(path) = vae_folder(files).map(|d| d.join(LATENT_RGB_FILE)) {
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let rgb = LatentRgb::from_json(&text).map_err(|e| Error::checkpoint(&path, e))?;
            if rgb.channels() != z_dim {
                return Err(Error::checkpoint(
                    &path,
                    format!(
                        "{} latent channels, but the VAE has {z_dim}: fit it again for this VAE or remove it",
                        rgb.channels()
                    ),
                ));
            }
            return Ok(Some(rgb));
        }
    }
    Ok((z_dim == 48).then(LatentRgb::wan22))
}
