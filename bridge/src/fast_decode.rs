//! Which decoder turns the final latents into frames: the model's full VAE decoder, or a tiny
//! TAEHV decoder (`taew2_2` for Wan2.2; the demo model ships its own) that is many times faster
//! at a lower quality. The choice is part of the clip (its cache key includes the tiny
//! decoder's content); a tiny decoder present for the model also makes the live previews.

use crate::error::{Error, Result};
use crate::request::ModelSpec;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use t2v_models::checkpoint::ModelFiles;
use t2v_models::taehv::TINY_DECODER_FOLDER;

/// Serialised in lower case: `"full"`, `"fast"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// The model's VAE decoder: the clip at full quality.
    #[default]
    Full,
    /// The tiny decoder: a draft, much sooner.
    Fast,
}

impl Decoder {
    pub const ALL: [Decoder; 2] = [Decoder::Full, Decoder::Fast];

    pub fn name(self) -> &'static str {
        match self {
            Decoder::Full => "full",
            Decoder::Fast => "fast",
        }
    }
}

impl fmt::Display for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Decoder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Decoder::Full),
            "fast" => Ok(Decoder::Fast),
            other => Err(format!("unknown decoder `{other}`: use `full` or `fast`")),
        }
    }
}

/// The tiny decoder for a model: `named` when given (it must exist), else the first
/// `.safetensors` or `.pth` file in the model folder's [`TINY_DECODER_FOLDER`].
pub fn find_tiny_decoder(files: &ModelFiles, named: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(path) = named {
        if !path.is_file() {
            return Err(Error::bad_input(format!(
                "the fast decoder file {} does not exist: name a taew2_2 .safetensors or .pth file",
                path.display()
            )));
        }
        return Ok(Some(path.to_path_buf()));
    }
    let Some(dir) = files.root.as_ref().map(|r| r.join(TINY_DECODER_FOLDER)) else {
        return Ok(None);
    };
    Ok(first_weight_file(&dir))
}

/// The first `.safetensors` or `.pth` file in `dir` by name, if any (none when `dir` is not a
/// folder).
pub(crate) fn first_weight_file(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "safetensors" | "pth")
                })
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The decoder a preference gives for `model`: what a style's `"decoder": "fast"` (the `draft`
/// style) means, fast when present. `Fast` when the model has a tiny decoder (the file its
/// overrides name, else one in its folder's [`TINY_DECODER_FOLDER`]), `Full` when it has none.
/// A named file that is missing stays `Fast`, so that generating says so.
pub fn preferred_decoder(preference: Decoder, model: &ModelSpec) -> Decoder {
    if preference == Decoder::Full {
        return Decoder::Full;
    }
    let Ok(files) = ModelFiles::resolve(model.path.as_deref(), &model.overrides.to_models()) else {
        return Decoder::Full;
    };
    match find_tiny_decoder(&files, model.overrides.fast_decoder.as_deref()) {
        Ok(None) => Decoder::Full,
        Ok(Some(_)) | Err(_) => Decoder::Fast,
    }
}

/// The message for a fast decode asked of a model with no tiny decoder.
pub fn no_tiny_decoder(files: &ModelFiles) -> Error {
    let folder = files.root.as_ref().map_or_else(
        || format!("a {TINY_DECODER_FOLDER} folder of the model folder"),
        |r| r.join(TINY_DECODER_FOLDER).display().to_string(),
    );
    Error::bad_input(format!(
        "the fast decoder needs a tiny decoder for this model: put taew2_2.safetensors (or .pth, from madebyollin/taehv) in {folder}, name its file (t2v: --fast-decoder FILE), or choose the full decoder"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny model as a folder, with a tiny decoder in `tiny_decoder/` when `with_tiny`.
    fn tiny_model_folder(with_tiny: bool) -> tempfile::TempDir {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures");
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap().path();
                let target = to.join(e.file_name().unwrap());
                if e.is_dir() {
                    copy(&e, &target)
                } else {
                    std::fs::copy(&e, &target).map(drop).unwrap()
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        copy(&fixtures.join("tiny-diffusers"), dir.path());
        if with_tiny {
            let to = dir.path().join(TINY_DECODER_FOLDER);
            std::fs::create_dir_all(&to).unwrap();
            std::fs::copy(
                fixtures.join("taehv/taehv-tiny.safetensors"),
                to.join("taew2_2.safetensors"),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn a_fast_preference_is_fast_only_when_the_model_has_a_tiny_decoder() {
        let with = tiny_model_folder(true);
        let without = tiny_model_folder(false);
        let spec = |d: &tempfile::TempDir| ModelSpec::folder(d.path());
        assert_eq!(
            preferred_decoder(Decoder::Fast, &spec(&with)),
            Decoder::Fast
        );
        assert_eq!(
            preferred_decoder(Decoder::Fast, &spec(&without)),
            Decoder::Full
        );
        assert_eq!(
            preferred_decoder(Decoder::Full, &spec(&with)),
            Decoder::Full
        );
        // A tiny decoder named by file counts; a named file that is missing is left to say so.
        let mut named = spec(&without);
        named.overrides.fast_decoder = Some(
            with.path()
                .join(TINY_DECODER_FOLDER)
                .join("taew2_2.safetensors"),
        );
        assert_eq!(preferred_decoder(Decoder::Fast, &named), Decoder::Fast);
        named.overrides.fast_decoder = Some(without.path().join("absent.safetensors"));
        assert_eq!(preferred_decoder(Decoder::Fast, &named), Decoder::Fast);
        // A folder that is not a model has no tiny decoder.
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            preferred_decoder(Decoder::Fast, &spec(&empty)),
            Decoder::Full
        );
    }

    #[test]
    fn names_parse_and_round_trip() {
        for d in Decoder::ALL {
            assert_eq!(d.name().parse::<Decoder>().unwrap(), d);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.name()));
        }
        assert!("tiny"
            .parse::<Decoder>()
            .unwrap_err()
            .contains("`full` or `fast`"));
    }
}
