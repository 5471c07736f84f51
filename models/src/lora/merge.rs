//! A tensor source whose tensors carry LoRA changes: a changed tensor is read in f32, its
//! changes are added, and the sum is rounded once to the dtype the layer asks for. A changed
//! weight that its file stores quantized stays stored, its changes applied on the fly.

use super::delta::{LinearDeltas, WeightDelta};
use crate::weights::{StoredWeight, TensorInfo, TensorSource};
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// What a patch adds, by the names of its tensors in its LoRA file.
#[derive(Debug, Clone)]
pub(super) enum PatchKind {
    LowRank {
        down: String,
        up: String,
        scale: f64,
    },
    Full {
        diff: String,
        scale: f64,
    },
}

/// One change to one tensor, read from its LoRA file when the tensor is read.
#[derive(Clone)]
pub(super) struct Patch {
    pub source: Arc<dyn TensorSource>,
    pub kind: PatchKind,
}

impl Patch {
    pub fn delta(&self, device: &Device) -> candle_core::Result<WeightDelta> {
        let load = |n: &str| self.source.load(n, DType::F32, device);
        Ok(match &self.kind {
            PatchKind::LowRank { down, up, scale } => WeightDelta::LowRank {
                down: load(down)?,
                up: load(up)?,
                scale: *scale,
            },
            PatchKind::Full { diff, scale } => WeightDelta::Full {
                diff: load(diff)?,
                scale: *scale,
            },
        })
    }
}

/// `base` with `patches` (by stored name) merged into the tensors they change.
pub(super) struct MergedSource {
    base: Arc<dyn TensorSource>,
    patches: HashMap<String, Vec<Patch>>,
}

impl MergedSource {
    pub fn new(base: Arc<dyn TensorSource>, patches: HashMap<String, Vec<Patch>>) -> Self {
        MergedSource { base, patches }
    }
}

impl TensorSource for MergedSource {
    fn origin(&self) -> &Path {
        self.base.origin()
    }

    fn infos(&self) -> &BTreeMap<String, TensorInfo> {
        self.base.infos()
    }

    fn load(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let Some(patches) = self.patches.get(name) else {
            return self.base.load(name, dtype, device);
        };
        let mut w = self.base.load(name, DType::F32, device)?;
        let shape = w.dims().to_vec();
        for p in patches {
            w = (w + p.delta(device)?.dense(&shape)?)?;
        }
        w.to_dtype(dtype)
    }

    fn load_stored(
        &self,
        name: &str,
        device: &Device,
    ) -> candle_core::Result<Option<StoredWeight>> {
        let Some(base) = self.base.load_stored(name, device)? else {
            return Ok(None);
        };
        let Some(patches) = self.patches.get(name) else {
            return Ok(Some(base));
        };
        let weight = patches
            .iter()
            .map(|p| p.delta(device))
            .collect::<candle_core::Result<_>>()?;
        Ok(Some(StoredWeight::WithLora {
            base: Box::new(base),
            deltas: Arc::new(LinearDeltas {
                weight,
                bias: Vec::new(),
            }),
        }))
    }

    fn stored_as(&self, name: &str) -> Option<&'static str> {
        self.base.stored_as(name)
    }

    fn stored_bytes(&self, name: &str) -> Option<u64> {
        self.base.stored_bytes(name)
    }
}
