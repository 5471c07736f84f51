//! LoRAs: low-rank (and full) changes of the transformer's and the text encoder's weights, in the
//! namings users bring ([`names`]). A LoRA file is read and checked once ([`LoraFile::open`]);
//! [`Loras::apply`] then puts a component's changes over its weights, so that each changed
//! tensor is `W + Σ s·(alpha/rank)·B·A` (plus `s·diff`) when the layers read it: the layers
//! themselves never change. Over a weight stored quantized (fp8, GGUF) the changes are applied to
//! the layer's input on the fly instead ([`LinearDeltas`] in a [`StoredWeight::WithLora`]).
//!
//! [`StoredWeight::WithLora`]: crate::weights::StoredWeight::WithLora

pub mod delta;
mod merge;
pub mod names;

pub use delta::{LinearDeltas, WeightDelta};
pub use names::{LoraName, Part};

use crate::checkpoint::Component;
use crate::weights::{open_file, TensorSource, TrackedWeights};
use crate::{Error, Result};
use candle_core::{DType, Device};
use merge::{MergedSource, Patch, PatchKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A LoRA a user asks for: its file and its strength (1 is the file's own scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSpec {
    pub path: PathBuf,
    #[serde(default = "one")]
    pub strength: f64,
}

fn one() -> f64 {
    1.0
}

impl LoraSpec {
    /// `FILE[:STRENGTH]`; the strength is 1 when left out. A path may hold colons of its own
    /// (`C:\loras\a.safetensors`): only a number after the last one is a strength.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::InvalidRequest(
                "a LoRA needs a file: FILE or FILE:STRENGTH".into(),
            ));
        }
        let (path, strength) = match text.rsplit_once(':') {
            Some((path, s)) if !path.is_empty() && looks_numeric(s) => {
                let strength = s.trim().parse::<f64>().map_err(|_| {
                    Error::InvalidRequest(format!(
                        "LoRA `{text}`: strength `{s}` is not a number (FILE:STRENGTH, e.g. {path}:0.8)"
                    ))
                })?;
                (path.trim(), strength)
            }
            _ => (text, 1.0),
        };
        let spec = LoraSpec {
            path: PathBuf::from(path),
            strength,
        };
        spec.check_strength()?;
        Ok(spec)
    }

    /// One LoRA per line (`FILE[:STRENGTH]`); blank lines and lines starting with `#` are
    /// skipped. The error names the line.
    pub fn parse_lines(text: &str) -> Result<Vec<Self>> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| {
                Self::parse(l)
                    .map_err(|e| Error::InvalidRequest(format!("LoRA line {}: {e}", i + 1)))
            })
            .collect()
    }

    pub fn check_strength(&self) -> Result<()> {
        if !self.strength.is_finite() {
            return Err(Error::InvalidRequest(format!(
                "LoRA {}: strength {} is not a finite number",
                self.path.display(),
                self.strength
            )));
        }
        Ok(())
    }
}

/// A strength-like suffix: digits, a sign, a point, an exponent. A drive letter's `\` or a
/// file name's letters are not.
fn looks_numeric(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
}

/// The tensors of one module in a LoRA file, by their names in the file.
#[derive(Debug, Default, Clone)]
struct ModuleTensors {
    down: Option<String>,
    up: Option<String>,
    alpha: Option<f64>,
    diff: Option<String>,
    diff_b: Option<String>,
}

/// One LoRA file, read and checked on its own (names, pairs, ranks): what is left to check is
/// that it fits the model, when it is applied.
pub struct LoraFile {
    origin: PathBuf,
    source: Arc<dyn TensorSource>,
    modules: BTreeMap<(Component, String), ModuleTensors>,
    /// diffusers' saved adapter settings: `lora_alpha` per component (PEFT scales by
    /// `lora_alpha / rank` when no per-module `alpha` tensor is stored).
    default_alpha: HashMap<Component, f64>,
}

impl std::fmt::Debug for LoraFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoraFile")
            .field("origin", &self.origin)
            .field("modules", &self.modules.len())
            .finish()
    }
}

impl LoraFile {
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::checkpoint(path, "LoRA file not found"));
        }
        let source: Arc<dyn TensorSource> = Arc::from(open_file(path)?);
        let bad = |m: String| Error::checkpoint(path, format!("not a usable LoRA: {m}"));
        if source.infos().is_empty() {
            return Err(bad("it holds no tensors".into()));
        }
        let mut modules: BTreeMap<(Component, String), ModuleTensors> = BTreeMap::new();
        for (stored, info) in source.infos() {
            if stored.ends_with(".dora_scale") {
                return Err(bad(format!(
                    "tensor `{stored}` is a DoRA magnitude; DoRA files are not supported"
                )));
            }
            let name = names::parse(stored).ok_or_else(|| {
                bad(format!(
                    "tensor `{stored}` is in no LoRA naming this program reads (diffusers/PEFT \
                     `lora_A`/`lora_B`, Wan/ComfyUI `lora_down`/`lora_up`/`alpha`/`diff`/`diff_b`, \
                     kohya `lora_unet_*`/`lora_te_*`)"
                ))
            })?;
            if !matches!(
                info.dtype,
                DType::F16 | DType::BF16 | DType::F32 | DType::F64
            ) {
                return Err(bad(format!(
                    "tensor `{stored}` is {:?}; LoRA tensors are floating point",
                    info.dtype
                )));
            }
            let m = modules
                .entry((name.component, name.module.clone()))
                .or_default();
            let slot = match name.part {
                Part::Down => &mut m.down,
                Part::Up => &mut m.up,
                Part::WeightDiff => &mut m.diff,
                Part::BiasDiff => &mut m.diff_b,
                Part::Alpha => {
                    if m.alpha.is_some() {
                        return Err(bad(format!(
                            "tensor `{stored}`: a second alpha for `{}`",
                            name.module
                        )));
                    }
                    m.alpha = Some(read_alpha(&*source, stored).map_err(bad)?);
                    continue;
                }
            };
            if let Some(first) = slot.replace(stored.clone()) {
                return Err(bad(format!(
                    "tensors `{first}` and `{stored}` both hold the same part of `{}`",
                    name.module
                )));
            }
        }
        for ((_, module), m) in &modules {
            check_pair(&*source, module, m).map_err(bad)?;
        }
        let default_alpha = read_adapter_alphas(path).map_err(bad)?;
        Ok(LoraFile {
            origin: path.to_path_buf(),
            source,
            modules,
            default_alpha,
        })
    }

    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Whether the file changes `component`.
    pub fn changes(&self, component: Component) -> bool {
        self.modules.keys().any(|(c, _)| *c == component)
    }

    /// The patches this file makes, at `strength`, to the tensors of `weights` (a `component`),
    /// keyed by canonical name. Every module must exist in the model with the shape the LoRA
    /// was trained for; the error names the LoRA tensor that does not fit.
    fn patches(
        &self,
        component: Component,
        strength: f64,
        weights: &TrackedWeights,
    ) -> Result<Vec<(String, Patch)>> {
        let mut out = Vec::new();
        let misfit = |stored: &str, m: String| {
            Error::checkpoint(
                &self.origin,
                format!(
                    "LoRA tensor `{stored}` does not fit this model's {}: {m}",
                    component.label()
                ),
            )
        };
        for ((c, module), m) in &self.modules {
            if *c != component {
                continue;
            }
            // A weight is `{module}.weight`, except a bare parameter (`modulation`).
            let weight_name = [format!("{module}.weight"), module.clone()]
                .into_iter()
                .find(|n| weights.contains(n));
            let target = |stored: &str, canonical: Option<&String>| {
                canonical
                    .and_then(|c| weights.shape_of(c).map(|s| (c.clone(), s.to_vec())))
                    .ok_or_else(|| misfit(stored, format!("the model has no `{module}`")))
            };
            if let (Some(down), Some(up)) = (&m.down, &m.up) {
                let (canonical, shape) = target(down, weight_name.as_ref())?;
                let infos = self.source.infos();
                let (d, u) = (&infos[down].shape, &infos[up].shape);
                let rank = d[0];
                let inner: usize = d[1..].iter().product();
                if shape.len() < 2
                    || u[0] != shape[0]
                    || inner != shape[1..].iter().product::<usize>()
                {
                    return Err(misfit(
                        down,
                        format!(
                            "its pair makes a [{}, {inner}] change, the weight `{canonical}` is {shape:?}",
                            u[0]
                        ),
                    ));
                }
                let alpha = m
                    .alpha
                    .or_else(|| self.default_alpha.get(&component).copied())
                    .unwrap_or(rank as f64);
                let kind = PatchKind::LowRank {
                    down: down.clone(),
                    up: up.clone(),
                    scale: strength * alpha / rank as f64,
                };
                out.push((canonical, self.patch(kind)));
            }
            if let Some(diff) = &m.diff {
                let (canonical, shape) = target(diff, weight_name.as_ref())?;
                self.same_shape(diff, &canonical, &shape)
                    .map_err(|e| misfit(diff, e))?;
                let kind = PatchKind::Full {
                    diff: diff.clone(),
                    scale: strength,
                };
                out.push((canonical, self.patch(kind)));
            }
            if let Some(diff_b) = &m.diff_b {
                let bias = format!("{module}.bias");
                let (canonical, shape) = target(diff_b, Some(&bias))?;
                self.same_shape(diff_b, &canonical, &shape)
                    .map_err(|e| misfit(diff_b, e))?;
                let kind = PatchKind::Full {
                    diff: diff_b.clone(),
                    scale: strength,
                };
                out.push((canonical, self.patch(kind)));
            }
        }
        Ok(out)
    }

    fn patch(&self, kind: PatchKind) -> Patch {
        Patch {
            source: self.source.clone(),
            kind,
        }
    }

    fn same_shape(
        &self,
        stored: &str,
        canonical: &str,
        shape: &[usize],
    ) -> std::result::Result<(), String> {
        let s = &self.source.infos()[stored].shape;
        if s.as_slice() == shape {
            Ok(())
        } else {
            Err(format!(
                "it is {s:?}, the tensor `{canonical}` is {shape:?}"
            ))
        }
    }
}

fn read_alpha(source: &dyn TensorSource, stored: &str) -> std::result::Result<f64, String> {
    let info = &source.infos()[stored];
    if info.shape.iter().product::<usize>() != 1 {
        return Err(format!(
            "tensor `{stored}` should be one number (alpha), it is {:?}",
            info.shape
        ));
    }
    let value = source
        .load(stored, DType::F64, &Device::Cpu)
        .and_then(|t| t.flatten_all()?.to_vec1::<f64>())
        .map_err(|e| format!("tensor `{stored}`: {e}"))?[0];
    if !value.is_finite() {
        return Err(format!("tensor `{stored}`: alpha {value} is not finite"));
    }
    Ok(value)
}

/// A module's low-rank pair is whole and its ranks agree; its alpha belongs to a pair.
fn check_pair(
    source: &dyn TensorSource,
    module: &str,
    m: &ModuleTensors,
) -> std::result::Result<(), String> {
    let infos = source.infos();
    match (&m.down, &m.up) {
        (Some(down), Some(up)) => {
            let (d, u) = (&infos[down].shape, &infos[up].shape);
            if d.len() < 2 || u.len() < 2 || u[2..].iter().any(|&x| x != 1) {
                return Err(format!(
                    "`{down}` {d:?} and `{up}` {u:?} are not a low-rank pair ([rank, in] and [out, rank])"
                ));
            }
            if d[0] == 0 || d[0] != u[1] {
                return Err(format!(
                    "`{down}` has rank {} but `{up}` has rank {}",
                    d[0], u[1]
                ));
            }
            Ok(())
        }
        (Some(one), None) | (None, Some(one)) => Err(format!(
            "`{one}` has no partner: `{module}` needs both halves of its low-rank pair"
        )),
        (None, None) if m.alpha.is_some() => {
            Err(format!("`{module}` has an alpha but no low-rank pair"))
        }
        (None, None) => Ok(()),
    }
}

/// The largest header a safetensors file may claim before we refuse to read it.
const MAX_HEADER: u64 = 100 << 20;

/// diffusers' `lora_adapter_metadata` (a JSON string in the safetensors header's
/// `__metadata__`): `{"transformer.lora_alpha": 8, "transformer.r": 4, ...}`.
fn read_adapter_alphas(path: &Path) -> std::result::Result<HashMap<Component, f64>, String> {
    let mut out = HashMap::new();
    if !path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
    {
        return Ok(out);
    }
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|e| e.to_string())?;
    let n = u64::from_le_bytes(n);
    if n > len.saturating_sub(8) || n > MAX_HEADER {
        return Err(format!("its header claims {n} bytes"));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(|e| e.to_string())?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| format!("its header: {e}"))?;
    let Some(meta) = header
        .get("__metadata__")
        .and_then(|m| m.get("lora_adapter_metadata"))
        .and_then(|m| m.as_str())
    else {
        return Ok(out);
    };
    let meta: serde_json::Value =
        serde_json::from_str(meta).map_err(|e| format!("its lora_adapter_metadata: {e}"))?;
    for (prefix, component) in [
        ("transformer.", Component::Transformer),
        ("text_encoder.", Component::TextEncoder),
    ] {
        let get = |k: &str| meta.get(format!("{prefix}{k}"));
        if get("use_dora").and_then(|v| v.as_bool()) == Some(true) {
            return Err("it is a DoRA adapter; DoRA files are not supported".into());
        }
        if get("alpha_pattern").is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty())) {
            return Err(format!(
                "its metadata gives `{prefix}alpha_pattern` (a different alpha per module), which this program does not read"
            ));
        }
        if let Some(alpha) = get("lora_alpha").and_then(|v| v.as_f64()) {
            if !alpha.is_finite() {
                return Err(format!("its metadata's lora_alpha {alpha} is not finite"));
            }
            out.insert(component, alpha);
        }
    }
    Ok(out)
}

/// The LoRAs of one generation, opened and checked, each with its strength.
#[derive(Debug, Default, Clone)]
pub struct Loras {
    items: Vec<(Arc<LoraFile>, f64)>,
}

impl Loras {
    pub fn none() -> Self {
        Loras::default()
    }

    /// Opens and checks every file ([`LoraFile::open`]): each changes the transformer or the
    /// text encoder, since a file with no tensors, or with a tensor in no known naming, is
    /// refused there.
    pub fn open(specs: &[LoraSpec]) -> Result<Self> {
        let mut items = Vec::with_capacity(specs.len());
        for spec in specs {
            spec.check_strength()?;
            let file = LoraFile::open(&spec.path)?;
            items.push((Arc::new(file), spec.strength));
        }
        Ok(Loras { items })
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// `weights` (of `component`, named canonically by `canonical`) with every LoRA's changes
    /// to that component merged in as each tensor is read. Fails, naming the LoRA tensor, when
    /// a change does not fit the model.
    pub fn apply(
        &self,
        component: Component,
        weights: TrackedWeights,
        canonical: impl Fn(&str) -> Option<String>,
    ) -> Result<TrackedWeights> {
        let mut patches: HashMap<String, Vec<Patch>> = HashMap::new();
        for (file, strength) in &self.items {
            for (name, patch) in file.patches(component, *strength, &weights)? {
                let stored = weights
                    .stored_name(&name)
                    .expect("patches target tensors the weights hold")
                    .to_string();
                patches.entry(stored).or_default().push(patch);
            }
        }
        if patches.is_empty() {
            return Ok(weights);
        }
        let merged = MergedSource::new(weights.source().clone(), patches);
        Ok(TrackedWeights::new(Arc::new(merged), canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_and_without_a_strength() {
        let s = LoraSpec::parse("style.safetensors").unwrap();
        assert_eq!((s.path, s.strength), ("style.safetensors".into(), 1.0));
        let s = LoraSpec::parse(" /loras/a b.safetensors:0.75 ").unwrap();
        assert_eq!(
            (s.path, s.strength),
            ("/loras/a b.safetensors".into(), 0.75)
        );
        let s = LoraSpec::parse(r"C:\loras\x.safetensors").unwrap();
        assert_eq!(s.path, PathBuf::from(r"C:\loras\x.safetensors"));
        assert_eq!(
            LoraSpec::parse(r"C:\x.safetensors:-1e-1").unwrap().strength,
            -0.1
        );
        assert!(LoraSpec::parse("a.safetensors:1.2.3").is_err());
        assert!(LoraSpec::parse("  ").is_err());
        assert!(LoraSpec::parse("a.safetensors:1e999").is_err(), "infinite");
        let list =
            LoraSpec::parse_lines("# styles\na.safetensors:0.5\n\n b.safetensors \n").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].strength, 1.0);
        let e = LoraSpec::parse_lines("a.safetensors\nb.safetensors:1.0.0").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
