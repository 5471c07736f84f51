use super::{StoredWeight, TensorSource};
use crate::{Error, Result};
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// A tensor source seen through the canonical names the layers use, with shape checks and a
/// record of which stored tensors the model consumed.
#[derive(Clone)]
pub struct TrackedWeights {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn TensorSource>,
    /// canonical name -> stored name
    stored_name: HashMap<String, String>,
    used: Mutex<BTreeSet<String>>,
}

impl TrackedWeights {
    /// `canonical` maps a stored name to the canonical one, or `None` for a tensor the layers
    /// never ask for (it is then reported as unused).
    pub fn new(source: Arc<dyn TensorSource>, canonical: impl Fn(&str) -> Option<String>) -> Self {
        let stored_name = source
            .infos()
            .keys()
            .filter_map(|stored| canonical(stored).map(|c| (c, stored.clone())))
            .collect();
        Self {
            inner: Arc::new(Inner {
                source,
                stored_name,
                used: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// The same names over the same source, with nothing recorded as consumed yet.
    pub fn fresh(&self) -> Self {
        Self {
            inner: Arc::new(Inner {
                source: self.inner.source.clone(),
                stored_name: self.inner.stored_name.clone(),
                used: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// The name in the file of the tensor the layers call `canonical`.
    pub fn stored_name(&self, canonical: &str) -> Option<&str> {
        self.inner.stored_name.get(canonical).map(String::as_str)
    }

    /// Every tensor the layers can ask for: `(canonical name, stored name)`, in no order.
    pub fn canonical_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .stored_name
            .iter()
            .map(|(c, s)| (c.as_str(), s.as_str()))
    }

    /// Records `canonical` as consumed without reading it (header-only checks).
    pub fn mark_used(&self, canonical: &str) {
        if let Some(stored) = self.inner.stored_name.get(canonical) {
            self.inner
                .used
                .lock()
                .expect("weights tracker poisoned")
                .insert(stored.clone());
        }
    }

    pub fn source(&self) -> &Arc<dyn TensorSource> {
        &self.inner.source
    }

    pub fn contains(&self, canonical: &str) -> bool {
        self.inner.stored_name.contains_key(canonical)
    }

    pub fn shape_of(&self, canonical: &str) -> Option<&[usize]> {
        let stored = self.inner.stored_name.get(canonical)?;
        self.inner
            .source
            .infos()
            .get(stored)
            .map(|i| i.shape.as_slice())
    }

    /// The dtype most of the stored tensors have (what the file "is").
    pub fn dominant_dtype(&self) -> Option<DType> {
        let mut counts: HashMap<DType, usize> = HashMap::new();
        for info in self.inner.source.infos().values() {
            *counts.entry(info.dtype).or_default() += info.shape.iter().product::<usize>();
        }
        counts.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| d)
    }

    /// How the file stores its tensors, by the bytes each storage type holds, largest first:
    /// `f16 100% of 117.38 KiB`, `Q8_0 96%, f32 3%, bf16 1% of 5.03 GiB, decoded per layer`.
    /// GGUF block types and fp8 are decoded to the compute dtype one layer at a time.
    pub fn storage_summary(&self) -> String {
        let source = &self.inner.source;
        let mut bytes: HashMap<&'static str, u64> = HashMap::new();
        for name in source.infos().keys() {
            if let (Some(kind), Some(b)) = (source.stored_as(name), source.stored_bytes(name)) {
                *bytes.entry(kind).or_default() += b;
            }
        }
        let total: u64 = bytes.values().sum();
        let mut kinds: Vec<(&str, u64)> = bytes.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        if kinds.is_empty() {
            return "?".into();
        }
        let shares: Vec<String> = kinds
            .iter()
            .map(|(k, b)| format!("{k} {}%", (b * 100).checked_div(total).unwrap_or(100)))
            .collect();
        let decoded = kinds.iter().any(|(k, _)| {
            k.starts_with("f8")
                || super::gguf::GgmlType::from_name(k).is_some_and(|t| t.dense_dtype().is_none())
        });
        format!(
            "{} of {}{}",
            shares.join(", "),
            human_bytes(total),
            if decoded { ", decoded per layer" } else { "" }
        )
    }

    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// Stored tensors the model did not consume, except those whose canonical name `ignorable`
    /// accepts.
    pub fn unused(&self, ignorable: impl Fn(&str) -> bool) -> Vec<String> {
        let used = self.inner.used.lock().expect("weights tracker poisoned");
        let canonical_of: HashMap<&str, &str> = self
            .inner
            .stored_name
            .iter()
            .map(|(c, s)| (s.as_str(), c.as_str()))
            .collect();
        self.inner
            .source
            .infos()
            .keys()
            .filter(|k| !used.contains(*k))
            .filter(|k| !canonical_of.get(k.as_str()).is_some_and(|c| ignorable(c)))
            .cloned()
            .collect()
    }

    /// Fails when the checkpoint holds tensors the model didn't use: a sign of a different
    /// architecture that happens to share some names.
    pub fn ensure_all_used(&self, component: &str, ignorable: impl Fn(&str) -> bool) -> Result<()> {
        let unused = self.unused(ignorable);
        if unused.is_empty() {
            return Ok(());
        }
        let shown: Vec<_> = unused.iter().take(5).map(|s| format!("`{s}`")).collect();
        Err(Error::checkpoint(
            self.inner.source.origin(),
            format!(
                "{} tensor(s) are not part of the Wan2.2 TI2V-5B {component}, e.g. {}{}",
                unused.len(),
                shown.join(", "),
                if unused.len() > 5 { ", ..." } else { "" }
            ),
        ))
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

impl TrackedWeights {
    /// The stored name of `name`, after checking that it has `shape`.
    fn checked(&self, name: &str, shape: &Shape) -> candle_core::Result<&str> {
        let inner = &self.inner;
        let stored = inner.stored_name.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "missing tensor `{name}` in {}",
                inner.source.origin().display()
            ))
        })?;
        let info = &inner.source.infos()[stored];
        if info.shape != shape.dims() {
            let alias = if stored == name {
                String::new()
            } else {
                format!(" (stored as `{stored}`)")
            };
            return Err(candle_core::Error::Msg(format!(
                "tensor `{name}`{alias} in {} has shape {:?}, expected {:?}",
                inner.source.origin().display(),
                info.shape,
                shape.dims()
            )));
        }
        Ok(stored)
    }

    fn record_used(&self, stored: &str) {
        self.inner
            .used
            .lock()
            .expect("weights tracker poisoned")
            .insert(stored.to_string());
    }

    /// `name` as its file stores it (GGUF blocks) on `device`, after the same checks as a
    /// dense read; `None` where the file holds it densely or lacks it.
    pub fn stored(
        &self,
        name: &str,
        shape: &Shape,
        device: &Device,
    ) -> candle_core::Result<Option<StoredWeight>> {
        if !self.contains(name) {
            return Ok(None);
        }
        let stored = self.checked(name, shape)?;
        let weight = self.inner.source.load_stored(stored, device)?;
        if weight.is_some() {
            self.record_used(stored);
        }
        Ok(weight)
    }
}

impl SimpleBackend for TrackedWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let stored = self.checked(name, &shape)?;
        self.record_used(stored);
        self.inner.source.load(stored, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let inner = &self.inner;
        let stored = inner.stored_name.get(name).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "missing tensor `{name}` in {}",
                inner.source.origin().display()
            ))
        })?;
        inner
            .used
            .lock()
            .expect("weights tracker poisoned")
            .insert(stored.clone());
        inner.source.load(stored, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.stored_name.contains_key(name)
    }
}
