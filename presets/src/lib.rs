//! Prompt presets shared by the OFX node and `t2v`: style presets and a tag library (actions,
//! styles, lighting, camera language), each a name and the words it appends to a prompt.
//!
//! The shipped file `presets/prompt-presets.json` is compiled in. Users extend it with files of
//! the same format, read in this order (a later entry with the same name replaces an earlier
//! one, new names are added):
//!
//! 1. the shipped presets;
//! 2. `prompt-presets.json` in the user config folder ([`user_presets_path`]), when present;
//! 3. the file named by `$T2V_PRESETS`, when set (it must exist).
//!
//! A style may also name LoRAs, merged into the model whenever the style is used (before the
//! user's own); a relative path is relative to the folder of the presets file that names it:
//!
//! ```json
//! { "format": 1,
//!   "styles": [ { "name": "anime", "append": "anime style, Studio Ghibli color palette" },
//!               { "name": "ink", "append": "ink drawing",
//!                 "loras": [ { "file": "loras/ink.safetensors", "strength": 0.8 } ] } ],
//!   "tag_groups": [ { "group": "lighting",
//!                     "tags": [ { "name": "golden-hour", "append": "golden hour sunlight" } ] } ] }
//! ```

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// The presets shipped with the project.
pub const SHIPPED: &str = include_str!("../prompt-presets.json");
/// A presets file that extends the shipped ones (must exist when set).
pub const PRESETS_ENV: &str = "T2V_PRESETS";
/// The file name looked for in the user config folder.
pub const FILE_NAME: &str = "prompt-presets.json";
/// The only format version this code reads.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    /// The words appended to the prompt (may be empty for a style that only sets sampling).
    pub append: String,
    /// LoRAs the style merges into the model (styles only; empty for tags).
    pub loras: Vec<PresetLora>,
    /// Sampling settings a style brings (styles only): they replace the model's defaults, and
    /// flags given on the command line still win.
    pub sampling: Option<SamplingPreset>,
}

/// A style's sampling settings, each optional; names as `t2v generate` takes them
/// (`"sampler": "unipc" | "euler" | "dmd"`, `"step_cache": "off" | "fast" | "faster"`,
/// `"decoder": "full" | "fast"`). The decoder is a preference: `fast` decodes with the model's
/// tiny decoder when it has one, with the full VAE otherwise.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingPreset {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_cache: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder: Option<String>,
}

/// `sampler dmd, steps 3, step_cache fast`: the settings a style sets, as `t2v presets` lists them.
impl fmt::Display for SamplingPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = &self.sampler {
            parts.push(format!("sampler {v}"));
        }
        if let Some(v) = self.steps {
            parts.push(format!("steps {v}"));
        }
        if let Some(v) = self.guidance {
            parts.push(format!("guidance {v}"));
        }
        if let Some(v) = self.shift {
            parts.push(format!("shift {v}"));
        }
        if let Some(v) = &self.step_cache {
            parts.push(format!("step_cache {v}"));
        }
        if let Some(v) = &self.decoder {
            parts.push(format!("decoder {v} (when the model has one)"));
        }
        f.write_str(&parts.join(", "))
    }
}

impl SamplingPreset {
    /// The sampler, parsed by the caller's type (`t2v_bridge::Sampler`).
    pub fn sampler<T: std::str::FromStr<Err = String>>(&self) -> Result<Option<T>, PresetError> {
        parse_named(self.sampler.as_deref(), "sampler")
    }

    /// The step cache, parsed by the caller's type (`t2v_bridge::StepCache`).
    pub fn step_cache<T: std::str::FromStr<Err = String>>(&self) -> Result<Option<T>, PresetError> {
        parse_named(self.step_cache.as_deref(), "step_cache")
    }

    /// The decoder preference, parsed by the caller's type (`t2v_bridge::Decoder`).
    pub fn decoder<T: std::str::FromStr<Err = String>>(&self) -> Result<Option<T>, PresetError> {
        parse_named(self.decoder.as_deref(), "decoder")
    }
}

fn parse_named<T: std::str::FromStr<Err = String>>(
    value: Option<&str>,
    what: &str,
) -> Result<Option<T>, PresetError> {
    value
        .map(|v| {
            v.parse()
                .map_err(|e| PresetError(format!("presets: \"{what}\": {e}")))
        })
        .transpose()
}

/// A LoRA a style names: its file (made absolute against the presets file's folder) and
/// strength.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetLora {
    pub file: PathBuf,
    pub strength: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagGroup {
    pub group: String,
    pub tags: Vec<Preset>,
}

/// Styles and tag groups, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Presets {
    pub styles: Vec<Preset>,
    pub tag_groups: Vec<TagGroup>,
    /// Where they came from: `built-in` and the files read, in order.
    pub sources: Vec<String>,
}

/// A presets file that can't be used, or a name that isn't there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetError(pub String);

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PresetError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    append: String,
    #[serde(default)]
    loras: Vec<FileLora>,
    #[serde(default)]
    sampling: Option<SamplingPreset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLora {
    file: PathBuf,
    #[serde(default = "full_strength")]
    strength: f64,
}

fn full_strength() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    group: String,
    tags: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetsFile {
    format: u32,
    #[serde(default)]
    styles: Vec<FileEntry>,
    #[serde(default)]
    tag_groups: Vec<FileGroup>,
}

/// Names are what users type after `--style` / `--tag`: lower case letters, digits and `-`.
fn check_name(source: &str, what: &str, name: &str) -> Result<(), PresetError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(PresetError(format!(
            "{source}: {what} name {name:?} must be lower case letters, digits and '-' (e.g. \"golden-hour\")"
        )))
    }
}

/// `base`: the folder relative LoRA paths are taken from (the presets file's).
fn check_entry(
    source: &str,
    what: &str,
    e: FileEntry,
    base: Option<&Path>,
) -> Result<Preset, PresetError> {
    check_name(source, what, &e.name)?;
    if what != "style" && !e.loras.is_empty() {
        return Err(PresetError(format!(
            "{source}: {what} {:?} names LoRAs; only styles may",
            e.name
        )));
    }
    let mut loras = Vec::new();
    for l in e.loras {
        if l.file.as_os_str().is_empty() || !l.strength.is_finite() {
            return Err(PresetError(format!(
                "{source}: style {:?} names a LoRA without a file or with strength {} (give \"file\" and a finite \"strength\")",
                e.name, l.strength
            )));
        }
        let file = match base {
            Some(dir) if l.file.is_relative() => dir.join(&l.file),
            _ => l.file,
        };
        loras.push(PresetLora {
            file,
            strength: l.strength,
        });
    }
    let append = e.append.trim().to_string();
    if let Some(sampling) = &e.sampling {
        if what != "style" {
            return Err(PresetError(format!(
                "{source}: {what} {:?} has \"sampling\": only styles set sampling",
                e.name
            )));
        }
        if sampling.steps == Some(0) {
            return Err(PresetError(format!(
                "{source}: style {:?}: \"steps\" must be at least 1",
                e.name
            )));
        }
    }
    if append.is_empty() && e.sampling.is_none() && loras.is_empty() {
        return Err(PresetError(format!(
            "{source}: {what} {:?} has an empty \"append\"",
            e.name
        )));
    }
    Ok(Preset {
        name: e.name,
        append,
        loras,
        sampling: e.sampling,
    })
}

/// Replaces the entry with the same name or adds it at the end.
fn upsert(list: &mut Vec<Preset>, p: Preset) {
    match list.iter_mut().find(|q| q.name == p.name) {
        Some(q) => *q = p,
        None => list.push(p),
    }
}

impl Presets {
    /// The shipped presets only.
    pub fn shipped() -> Presets {
        let mut p = Presets::default();
        p.extend_from_str(SHIPPED, "built-in")
            .expect("the shipped presets are valid (tested)");
        p
    }

    /// The shipped presets, extended by the user config file and `$T2V_PRESETS`.
    pub fn load() -> Result<Presets, PresetError> {
        let env = std::env::var_os(PRESETS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Presets::load_from(user_presets_path().as_deref(), env.as_deref())
    }

    /// [`Presets::load`] with explicit paths: `user` is read when it exists, `env` must exist.
    pub fn load_from(user: Option<&Path>, env: Option<&Path>) -> Result<Presets, PresetError> {
        let mut presets = Presets::shipped();
        if let Some(path) = user.filter(|p| p.is_file()) {
            presets.extend_from_file(path)?;
        }
        if let Some(path) = env {
            if !path.is_file() {
                return Err(PresetError(format!(
                    "${PRESETS_ENV} names {}, which is not a file",
                    path.display()
                )));
            }
            presets.extend_from_file(path)?;
        }
        Ok(presets)
    }

    pub fn extend_from_file(&mut self, path: &Path) -> Result<(), PresetError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PresetError(format!("{}: {e}", path.display())))?;
        self.extend(&text, &path.display().to_string(), path.parent())
    }

    /// Adds the styles and tags of one presets file; `source` names it in errors. Nothing is
    /// changed when the file has an error. Relative LoRA paths stay as written.
    pub fn extend_from_str(&mut self, text: &str, source: &str) -> Result<(), PresetError> {
        self.extend(text, source, None)
    }

    fn extend(&mut self, text: &str, source: &str, base: Option<&Path>) -> Result<(), PresetError> {
        let file: PresetsFile = serde_json::from_str(text)
            .map_err(|e| PresetError(format!("{source}: not a valid presets file: {e}")))?;
        if file.format != FORMAT {
            return Err(PresetError(format!(
                "{source}: format {} is not supported (this version reads format {FORMAT})",
                file.format
            )));
        }
        let mut next = self.clone();
        for e in file.styles {
            upsert(&mut next.styles, check_entry(source, "style", e, base)?);
        }
        for g in file.tag_groups {
            check_name(source, "tag group", &g.group)?;
            let index = match next.tag_groups.iter().position(|x| x.group == g.group) {
                Some(i) => i,
                None => {
                    next.tag_groups.push(TagGroup {
                        group: g.group.clone(),
                        tags: Vec::new(),
                    });
                    next.tag_groups.len() - 1
                }
            };
            for e in g.tags {
                let tag = check_entry(source, "tag", e, base)?;
                // A tag name means one thing: it may be redefined only in its own group.
                if let Some(other) = next
                    .tag_groups
                    .iter()
                    .find(|x| x.group != g.group && x.tags.iter().any(|t| t.name == tag.name))
                {
                    return Err(PresetError(format!(
                        "{source}: tag {:?} is in group {:?} and already in group {:?}; tag names must be unique",
                        tag.name, g.group, other.group
                    )));
                }
                upsert(&mut next.tag_groups[index].tags, tag);
            }
        }
        next.sources.push(source.to_string());
        *self = next;
        Ok(())
    }

    pub fn style(&self, name: &str) -> Result<&Preset, PresetError> {
        self.styles.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.styles.iter().map(|s| s.name.as_str()).collect();
            PresetError(format!(
                "unknown style {name:?}; known styles: {} (see `t2v presets`)",
                known.join(", ")
            ))
        })
    }

    pub fn tag(&self, name: &str) -> Result<&Preset, PresetError> {
        self.tag_groups.iter().flat_map(|g| &g.tags).find(|t| t.name == name).ok_or_else(|| {
            PresetError(format!("unknown tag {name:?}; `t2v presets` lists the tags (actions, styles, lighting, camera)"))
        })
    }

    /// The LoRAs `style` names (none without a style).
    pub fn style_loras(&self, style: Option<&str>) -> Result<Vec<PresetLora>, PresetError> {
        match style {
            Some(s) => Ok(self.style(s)?.loras.clone()),
            None => Ok(Vec::new()),
        }
    }

    /// `prompt` with the style's words, then each tag's, appended (see [`append_to_prompt`]).
    pub fn apply(
        &self,
        prompt: &str,
        style: Option<&str>,
        tags: &[String],
    ) -> Result<String, PresetError> {
        let mut parts = Vec::new();
        if let Some(s) = style {
            parts.push(self.style(s)?.append.as_str());
        }
        for t in tags {
            parts.push(self.tag(t)?.append.as_str());
        }
        Ok(append_to_prompt(prompt, &parts))
    }
}

/// Appends each part after a comma (a space after a sentence's full stop), skipping parts the
/// prompt already contains (case-insensitive), so applying a preset twice changes nothing.
pub fn append_to_prompt(prompt: &str, parts: &[&str]) -> String {
    let mut out = prompt.trim_end().to_string();
    for part in parts {
        let part = part.trim();
        if part.is_empty() || out.to_lowercase().contains(&part.to_lowercase()) {
            continue;
        }
        if out.is_empty() {
            out.push_str(part);
            continue;
        }
        let sep = if out.ends_with([',', ';', ':', '.', '!', '?']) {
            " "
        } else {
            ", "
        };
        out.push_str(sep);
        out.push_str(part);
    }
    out
}

/// `prompt-presets.json` in the user config folder: `$XDG_CONFIG_HOME/text-to-video` or
/// `~/.config/text-to-video` on Linux, `~/Library/Application Support/text-to-video` on macOS,
/// `%APPDATA%\text-to-video` on Windows.
pub fn user_presets_path() -> Option<PathBuf> {
    t2v_support::folders::config_dir().map(|d| d.join(FILE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_presets_are_valid_and_grouped() {
        let p = Presets::shipped();
        assert_eq!(p.sources, ["built-in"]);
        assert_eq!(
            p.style("anime").unwrap().append,
            "anime style, Studio Ghibli color palette"
        );
        assert_eq!(
            p.style("flat").unwrap().append,
            "flat design, pastel tones, soft shadows"
        );
        assert_eq!(
            p.style("cyberpunk").unwrap().append,
            "cyberpunk, neon glow, high contrast"
        );
        assert!(p.styles.len() >= 6);
        let groups: Vec<&str> = p.tag_groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(groups, ["actions", "styles", "lighting", "camera"]);
        assert!(p.tag_groups.iter().all(|g| g.tags.len() >= 4));
    }

    #[test]
    fn the_draft_style_sets_few_steps_and_the_step_cache_and_appends_nothing() {
        let p = Presets::shipped();
        let draft = p.style("draft").unwrap();
        let s = draft.sampling.as_ref().expect("draft sets sampling");
        assert_eq!(s.steps, Some(10));
        assert_eq!(s.step_cache.as_deref(), Some("fast"));
        assert_eq!(p.apply("a fox", Some("draft"), &[]).unwrap(), "a fox");
        assert_eq!(s.decoder.as_deref(), Some("fast"));
        assert_eq!(
            s.to_string(),
            "steps 10, step_cache fast, decoder fast (when the model has one)"
        );
        assert_eq!(
            p.styles.last().unwrap().name,
            "draft",
            "appended: menu indices keep"
        );
        assert!(p.style("anime").unwrap().sampling.is_none());
    }

    #[test]
    fn sampling_belongs_to_styles_and_is_checked() {
        let mut p = Presets::shipped();
        let bad_tag = r#"{"format": 1, "tag_groups": [{"group": "camera", "tags": [{"name": "x", "append": "y", "sampling": {"steps": 3}}]}]}"#;
        assert!(p
            .extend_from_str(bad_tag, "f")
            .unwrap_err()
            .0
            .contains("only styles"));
        let zero =
            r#"{"format": 1, "styles": [{"name": "x", "append": "", "sampling": {"steps": 0}}]}"#;
        assert!(p
            .extend_from_str(zero, "f")
            .unwrap_err()
            .0
            .contains("at least 1"));
        let typo =
            r#"{"format": 1, "styles": [{"name": "x", "append": "y", "sampling": {"stpes": 3}}]}"#;
        assert!(p.extend_from_str(typo, "f").is_err());
        let fast = r#"{"format": 1, "styles": [{"name": "fast-dmd", "append": "", "sampling": {"sampler": "dmd", "steps": 3, "guidance": 1.0}}]}"#;
        p.extend_from_str(fast, "f").unwrap();
        let s = p.style("fast-dmd").unwrap().sampling.clone().unwrap();
        let named: Option<Named> = s.sampler().unwrap();
        assert_eq!(named.map(|n| n.0).as_deref(), Some("dmd"));
        let parsed: Result<Option<u8>, _> = SamplingPreset {
            sampler: Some("x".into()),
            ..Default::default()
        }
        .sampler::<Strict>()
        .map(|_| None);
        assert!(parsed.unwrap_err().0.contains("sampler"));
    }

    /// A name type that accepts anything.
    struct Named(String);
    impl std::str::FromStr for Named {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            Ok(Named(s.to_string()))
        }
    }

    /// A name type that accepts nothing.
    struct Strict;
    impl std::str::FromStr for Strict {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            Err(format!("unknown `{s}`"))
        }
    }

    #[test]
    fn styles_and_tags_are_appended_in_order() {
        let p = Presets::shipped();
        assert_eq!(
            p.apply("a fox running through snow", Some("anime"), &[])
                .unwrap(),
            "a fox running through snow, anime style, Studio Ghibli color palette"
        );
        assert_eq!(
            p.apply("A fox runs.", Some("cyberpunk"), &["golden-hour".into(), "dolly-in".into()]).unwrap(),
            "A fox runs. cyberpunk, neon glow, high contrast, golden hour sunlight, warm tones, slow dolly in"
        );
        assert_eq!(
            p.apply("a fox, ", None, &["static".into()]).unwrap(),
            "a fox, static camera, locked-off shot"
        );
        assert_eq!(p.apply("a fox", None, &[]).unwrap(), "a fox");
        // Applying again changes nothing.
        let once = p.apply("a fox", Some("flat"), &[]).unwrap();
        assert_eq!(p.apply(&once, Some("flat"), &[]).unwrap(), once);
    }

    #[test]
    fn unknown_names_list_what_exists() {
        let p = Presets::shipped();
        let e = p.apply("a fox", Some("anim"), &[]).unwrap_err().0;
        assert!(
            e.contains("unknown style \"anim\"") && e.contains("anime, flat, cyberpunk"),
            "{e}"
        );
        let e = p.apply("a fox", None, &["nope".into()]).unwrap_err().0;
        assert!(
            e.contains("unknown tag \"nope\"") && e.contains("t2v presets"),
            "{e}"
        );
    }

    #[test]
    fn user_files_add_and_replace_entries() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.json");
        std::fs::write(
            &user,
            r#"{"format": 1,
                "styles": [{"name": "anime", "append": "anime, cel shading"}, {"name": "mine", "append": "my look"}],
                "tag_groups": [{"group": "lighting", "tags": [{"name": "candle", "append": "candlelight"}]},
                               {"group": "sound", "tags": [{"name": "quiet", "append": "calm scene"}]}]}"#,
        )
        .unwrap();
        let p = Presets::load_from(Some(&user), None).unwrap();
        assert_eq!(p.style("anime").unwrap().append, "anime, cel shading");
        assert_eq!(p.styles.last().unwrap().name, "mine");
        assert_eq!(p.styles.iter().filter(|s| s.name == "anime").count(), 1);
        assert_eq!(p.tag("candle").unwrap().append, "candlelight");
        assert_eq!(p.tag_groups.last().unwrap().group, "sound");
        assert_eq!(
            p.sources,
            ["built-in".to_string(), user.display().to_string()]
        );
        // A missing user file is fine; a missing $T2V_PRESETS file is not.
        assert!(Presets::load_from(Some(&dir.path().join("none.json")), None).is_ok());
        let e = Presets::load_from(None, Some(&dir.path().join("none.json")))
            .unwrap_err()
            .0;
        assert!(
            e.contains("$T2V_PRESETS") && e.contains("not a file"),
            "{e}"
        );
    }

    #[test]
    fn bad_files_say_what_to_fix() {
        let mut p = Presets::shipped();
        let before = p.clone();
        let cases = [
            ("{", "not a valid presets file"),
            (r#"{"format": 2}"#, "format 2 is not supported"),
            (
                r#"{"format": 1, "styles": [{"name": "Big Name", "append": "x"}]}"#,
                "must be lower case",
            ),
            (
                r#"{"format": 1, "styles": [{"name": "x", "append": "  "}]}"#,
                "empty \"append\"",
            ),
            (
                r#"{"format": 1, "styles": [{"name": "x", "text": "y"}]}"#,
                "unknown field `text`",
            ),
            (
                r#"{"format": 1, "tag_groups": [{"group": "camera", "tags": [{"name": "golden-hour", "append": "x"}]}]}"#,
                "must be unique",
            ),
            (
                r#"{"format": 1, "tag_groups": [{"group": "g", "tags": [{"name": "t", "append": "x", "loras": [{"file": "a.safetensors"}]}]}]}"#,
                "only styles may",
            ),
            (
                r#"{"format": 1, "styles": [{"name": "x", "append": "y", "loras": [{"file": ""}]}]}"#,
                "without a file",
            ),
            (
                r#"{"format": 1, "styles": [{"name": "x", "append": "y", "loras": [{"file": "a", "weight": 1}]}]}"#,
                "unknown field `weight`",
            ),
        ];
        for (text, expected) in cases {
            let e = p.extend_from_str(text, "my.json").unwrap_err().0;
            assert!(
                e.starts_with("my.json: ") && e.contains(expected),
                "{text}: {e}"
            );
            assert_eq!(p, before, "a bad file changes nothing");
        }
    }

    #[test]
    fn a_style_names_loras_relative_to_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.json");
        std::fs::write(
            &user,
            r#"{"format": 1, "styles": [{"name": "ink", "append": "ink drawing",
                "loras": [{"file": "loras/ink.safetensors", "strength": 0.8},
                          {"file": "/abs/motion.safetensors"}]}]}"#,
        )
        .unwrap();
        let p = Presets::load_from(Some(&user), None).unwrap();
        let loras = p.style_loras(Some("ink")).unwrap();
        assert_eq!(
            loras,
            vec![
                PresetLora {
                    file: dir.path().join("loras/ink.safetensors"),
                    strength: 0.8
                },
                PresetLora {
                    file: "/abs/motion.safetensors".into(),
                    strength: 1.0
                },
            ]
        );
        assert!(p.style_loras(None).unwrap().is_empty());
        assert!(p.style_loras(Some("anime")).unwrap().is_empty());
        assert!(p.style_loras(Some("nope")).is_err());
    }
}
