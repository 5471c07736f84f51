use super::TensorSource;
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

impl SimpleBackend for TrackedWeights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
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
        inner
            .used
            .lock()
            .expect("weights tracker poisoned")
            .insert(stored.clone());
        inner.source.load(stored, dtype, dev)
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
