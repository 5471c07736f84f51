//! Finding a model's component files: a diffusers folder, a folder of original / ComfyUI single
//! files, and per-component overrides. Each file's role is decided from its tensor names.

use super::layout::{detect, Component, Layout};
use crate::weights::{open_file, SafetensorsSource, TensorSource};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One component's weight files (several for a sharded checkpoint) and where its config may be.
#[derive(Debug, Clone)]
pub struct ComponentFiles {
    pub layout: Layout,
    pub files: Vec<PathBuf>,
    pub config: Option<PathBuf>,
}

/// Explicit per-component files that take precedence over what a model folder holds.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub transformer: Option<PathBuf>,
    pub vae: Option<PathBuf>,
    pub text_encoder: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub root: Option<PathBuf>,
    pub transformer: ComponentFiles,
    pub vae: ComponentFiles,
    pub text_encoder: ComponentFiles,
    pub tokenizer: PathBuf,
}

const WEIGHT_EXTENSIONS: &[&str] = &["safetensors", "gguf", "pth", "pt", "bin", "ckpt"];

fn is_weights_file(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| WEIGHT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

/// Opens the files of one component as a single tensor source.
pub fn open_sources(files: &[PathBuf]) -> Result<Arc<dyn TensorSource>> {
    match files {
        [] => Err(Error::InvalidRequest("no weight files given".into())),
        [one] => Ok(Arc::from(open_file(one)?)),
        many => {
            if many
                .iter()
                .all(|p| p.extension().is_some_and(|e| e == "safetensors"))
            {
                Ok(Arc::new(SafetensorsSource::open(many)?))
            } else {
                Err(Error::checkpoint(
                    &many[0],
                    "sharded checkpoints must be safetensors files",
                ))
            }
        }
    }
}

/// Reads a file's tensor names (headers only) and says which component it holds.
fn classify(path: &Path) -> Result<Option<Layout>> {
    let source = open_file(path)?;
    Ok(detect(source.infos()))
}

impl ModelFiles {
    /// Resolves `model` (a diffusers folder or a folder of single files; `None` when every
    /// component is given as an override) together with the overrides.
    pub fn resolve(model: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        Self::find(model, overrides)?.finish(model)
    }

    /// The components `model` and the overrides give, whichever they are: for checking one
    /// component alone (`t2v info --transformer FILE`).
    pub fn find(model: Option<&Path>, overrides: &Overrides) -> Result<FoundComponents> {
        let mut found = FoundComponents::default();
        if let Some(root) = model {
            if !root.exists() {
                return Err(Error::folder(root, "does not exist"));
            }
            if !root.is_dir() {
                return Err(Error::folder(
                    root,
                    "is not a folder (pass a single file with --transformer/--vae/--text-encoder)",
                ));
            }
            if root.join("model_index.json").is_file() || root.join("transformer").is_dir() {
                found.scan_diffusers(root)?;
            } else {
                found.scan_single_files(root)?;
            }
        }
        for (component, file) in [
            (Component::Transformer, &overrides.transformer),
            (Component::Vae, &overrides.vae),
            (Component::TextEncoder, &overrides.text_encoder),
        ] {
            if let Some(file) = file {
                found.set_override(component, file, model)?;
            }
        }
        if let Some(t) = &overrides.tokenizer {
            if !t.is_file() {
                return Err(Error::checkpoint(t, "tokenizer file not found"));
            }
            found.tokenizer = Some(t.clone());
        }
        Ok(found)
    }

    /// Every file whose content defines the model: for fingerprints.
    pub fn all_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for c in [&self.transformer, &self.vae, &self.text_encoder] {
            files.extend(c.files.iter().cloned());
            files.extend(c.config.iter().cloned());
        }
        files.push(self.tokenizer.clone());
        files
    }
}

/// The components found so far; [`ModelFiles::resolve`] needs them all.
#[derive(Debug, Clone, Default)]
pub struct FoundComponents {
    pub transformer: Option<ComponentFiles>,
    pub vae: Option<ComponentFiles>,
    pub text_encoder: Option<ComponentFiles>,
    pub tokenizer: Option<PathBuf>,
}

impl FoundComponents {
    fn slot(&mut self, c: Component) -> &mut Option<ComponentFiles> {
        match c {
            Component::Transformer => &mut self.transformer,
            Component::Vae => &mut self.vae,
            Component::TextEncoder => &mut self.text_encoder,
        }
    }

    fn scan_diffusers(&mut self, root: &Path) -> Result<()> {
        for (component, sub) in [
            (Component::Transformer, "transformer"),
            (Component::Vae, "vae"),
            (Component::TextEncoder, "text_encoder"),
        ] {
            let dir = root.join(sub);
            if !dir.is_dir() {
                continue;
            }
            let files: Vec<PathBuf> = sorted_entries(&dir)?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                .collect();
            if files.is_empty() {
                continue;
            }
            let source = open_sources(&files)?;
            let layout = detect(source.infos()).ok_or_else(|| {
                Error::folder(
                    &dir,
                    "holds no tensors of a Wan2.2 transformer, VAE or umT5 encoder",
                )
            })?;
            if layout.component != component {
                return Err(Error::folder(
                    &dir,
                    format!(
                        "holds a {} checkpoint, not a {}",
                        layout.component.label(),
                        component.label()
                    ),
                ));
            }
            let config = Some(dir.join("config.json")).filter(|p| p.is_file());
            *self.slot(component) = Some(ComponentFiles {
                layout,
                files,
                config,
            });
        }
        let tok = root.join("tokenizer").join("tokenizer.json");
        if tok.is_file() {
            self.tokenizer = Some(tok);
        }
        Ok(())
    }

    fn scan_single_files(&mut self, root: &Path) -> Result<()> {
        let mut groups: Vec<(Layout, Vec<PathBuf>)> = Vec::new();
        let mut candidates: Vec<PathBuf> = sorted_entries(root)?;
        // ComfyUI keeps components in sub-folders (diffusion_models/, vae/, text_encoders/ ...).
        for sub in candidates.clone().iter().filter(|p| p.is_dir()) {
            candidates.extend(sorted_entries(sub)?);
        }
        for path in candidates.iter().filter(|p| is_weights_file(p)) {
            let Some(layout) = classify(path)? else {
                continue;
            };
            match groups
                .iter_mut()
                .find(|(l, _)| l.component == layout.component)
            {
                Some((existing, files)) if *existing == layout && is_shard_name(path) => {
                    files.push(path.clone())
                }
                Some((_, files)) => {
                    return Err(Error::folder(
                        root,
                        format!(
                            "holds more than one {} checkpoint ({} and {}); choose one with --{}",
                            layout.component.label(),
                            files[0].display(),
                            path.display(),
                            flag_name(layout.component)
                        ),
                    ))
                }
                None => groups.push((layout, vec![path.clone()])),
            }
        }
        for (layout, files) in groups {
            let config = component_config(root, layout.component);
            let component = layout.component;
            *self.slot(component) = Some(ComponentFiles {
                layout,
                files,
                config,
            });
        }
        for candidate in [
            root.join("tokenizer.json"),
            root.join("tokenizer").join("tokenizer.json"),
            root.join("google").join("umt5-xxl").join("tokenizer.json"),
        ] {
            if candidate.is_file() {
                self.tokenizer = Some(candidate);
                break;
            }
        }
        Ok(())
    }

    fn set_override(
        &mut self,
        component: Component,
        file: &Path,
        root: Option<&Path>,
    ) -> Result<()> {
        if !file.is_file() {
            return Err(Error::checkpoint(
                file,
                format!("{} file not found", component.label()),
            ));
        }
        let layout = classify(file)?.ok_or_else(|| {
            Error::checkpoint(
                file,
                format!(
                    "not a Wan2.2 {}: none of its tensor names match",
                    component.label()
                ),
            )
        })?;
        if layout.component != component {
            return Err(Error::checkpoint(
                file,
                format!(
                    "holds a {} checkpoint, but was given as the {}",
                    layout.component.label(),
                    component.label()
                ),
            ));
        }
        // Without a model folder, a config beside the file describes it.
        let config = root
            .or_else(|| file.parent())
            .and_then(|r| component_config(r, component));
        *self.slot(component) = Some(ComponentFiles {
            layout,
            files: vec![file.to_path_buf()],
            config,
        });
        Ok(())
    }

    pub fn finish(self, root: Option<&Path>) -> Result<ModelFiles> {
        let missing = |c: Component| {
            let msg = format!(
                "no {} checkpoint found; pass it with --{}",
                c.label(),
                flag_name(c)
            );
            match root {
                Some(r) => Error::folder(r, msg),
                None => Error::InvalidRequest(msg),
            }
        };
        let transformer = self
            .transformer
            .ok_or_else(|| missing(Component::Transformer))?;
        let vae = self.vae.ok_or_else(|| missing(Component::Vae))?;
        let text_encoder = self
            .text_encoder
            .ok_or_else(|| missing(Component::TextEncoder))?;
        let tokenizer = self.tokenizer.ok_or_else(|| {
            let msg = "no tokenizer.json found (looked in tokenizer/, the folder itself and google/umt5-xxl/); pass it with --tokenizer";
            match root {
                Some(r) => Error::folder(r, msg),
                None => Error::InvalidRequest(msg.into()),
            }
        })?;
        Ok(ModelFiles {
            root: root.map(Path::to_path_buf),
            transformer,
            vae,
            text_encoder,
            tokenizer,
        })
    }
}

fn flag_name(c: Component) -> &'static str {
    match c {
        Component::Transformer => "transformer",
        Component::Vae => "vae",
        Component::TextEncoder => "text-encoder",
    }
}

/// `name-00001-of-00003.safetensors` style shard names.
fn is_shard_name(path: &Path) -> bool {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem.contains("-of-")
}

/// The component config a single file may take its hyper-parameters from.
fn component_config(root: &Path, component: Component) -> Option<PathBuf> {
    let candidates: &[&str] = match component {
        Component::Transformer => &["transformer/config.json", "config.json"],
        Component::Vae => &["vae/config.json"],
        Component::TextEncoder => &["text_encoder/config.json"],
    };
    candidates
        .iter()
        .map(|c| root.join(c))
        .find(|p| p.is_file())
}
