//! Weights kept as the file stores them (GGUF blocks, fp8 with a scale) and decoded to the compute dtype
//! only when a layer runs, one layer at a time: [`StoredWeight`].
//!
//! Layers are built through candle's `VarBuilder`, which can only hand out dense tensors. While
//! [`build_with_stored`] builds a model, the layers that can hold a stored weight (the linear
//! layers of the transformer's blocks and of umT5) ask [`stored_weight`], which takes the
//! stored form from the model's [`TrackedWeights`] where its file has one; every other tensor,
//! and every tensor of a dense file, is read through the `VarBuilder` as before.

use super::TrackedWeights;
use crate::lora::LinearDeltas;
use candle_core::quantized::{QStorage, QTensor};
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use std::cell::RefCell;
use std::sync::Arc;

/// A weight as held by a layer.
#[derive(Debug, Clone)]
pub enum StoredWeight {
    /// Decoded at load, used as it is.
    Dense(Tensor),
    /// GGUF blocks on their device; `shape` is the model's shape.
    Gguf { blocks: Arc<QTensor>, shape: Shape },
    /// fp8 e4m3fn values on their device and the per-tensor scale they are multiplied by.
    Fp8 { values: Tensor, scale: Option<f32> },
    /// A stored weight with LoRA changes that are applied to the layer's input on the fly
    /// (`x·Wᵀ + s·(x·Aᵀ)·Bᵀ`), so the stored weight is never decoded whole with them merged.
    WithLora {
        base: Box<StoredWeight>,
        deltas: Arc<LinearDeltas>,
    },
}

impl StoredWeight {
    /// The weight in `dtype` on its device. A dense weight is returned as loaded (the dense
    /// path's numerics are those of a plain tensor); a stored one is decoded now, in f32, then
    /// rounded once to `dtype`.
    pub fn materialize(&self, dtype: DType) -> Result<Tensor> {
        match self {
            StoredWeight::Dense(t) => Ok(t.clone()),
            StoredWeight::Gguf { blocks, shape } => blocks
                .dequantize(&blocks.device())?
                .reshape(shape.clone())?
                .to_dtype(dtype),
            StoredWeight::Fp8 { values, scale } => fp8_to_f32(values, *scale)?.to_dtype(dtype),
            StoredWeight::WithLora { base, deltas } => {
                let shape = base.shape().dims().to_vec();
                let mut w = base.materialize(DType::F32)?;
                for d in &deltas.weight {
                    w = (w + d.dense(&shape)?)?;
                }
                w.to_dtype(dtype)
            }
        }
    }

    /// The weight a layer multiplies by and the LoRA changes it then adds on the fly, if any.
    pub fn split_lora(&self) -> (&StoredWeight, Option<&LinearDeltas>) {
        match self {
            StoredWeight::WithLora { base, deltas } => (base, Some(deltas)),
            other => (other, None),
        }
    }

    pub fn shape(&self) -> &Shape {
        match self {
            StoredWeight::Dense(t) => t.shape(),
            StoredWeight::Gguf { shape, .. } => shape,
            StoredWeight::Fp8 { values, .. } => values.shape(),
            StoredWeight::WithLora { base, .. } => base.shape(),
        }
    }

    pub fn device(&self) -> Device {
        match self {
            StoredWeight::Dense(t) | StoredWeight::Fp8 { values: t, .. } => t.device().clone(),
            StoredWeight::Gguf { blocks, .. } => blocks.device(),
            StoredWeight::WithLora { base, .. } => base.device(),
        }
    }

    /// The bytes it holds on its device.
    pub fn stored_bytes(&self) -> usize {
        match self {
            StoredWeight::Dense(t) | StoredWeight::Fp8 { values: t, .. } => {
                t.elem_count() * t.dtype().size_in_bytes()
            }
            StoredWeight::Gguf { blocks, .. } => blocks.storage_size_in_bytes(),
            StoredWeight::WithLora { base, deltas } => base.stored_bytes() + deltas.bytes(),
        }
    }

    /// Whether it is decoded per use rather than held dense.
    pub fn is_stored(&self) -> bool {
        !matches!(self, StoredWeight::Dense(_))
    }

    /// The same weight, stored the same way, on `device`.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        Ok(match self {
            StoredWeight::Dense(t) => StoredWeight::Dense(t.to_device(device)?),
            StoredWeight::Fp8 { values, scale } => StoredWeight::Fp8 {
                values: values.to_device(device)?,
                scale: *scale,
            },
            StoredWeight::WithLora { base, deltas } => StoredWeight::WithLora {
                base: Box::new(base.to_device(device)?),
                deltas: Arc::new(deltas.to_device(device)?),
            },
            StoredWeight::Gguf { blocks, shape } => {
                if blocks.device().same_device(device) {
                    return Ok(self.clone());
                }
                let storage = QStorage::from_data(blocks.data()?, device, blocks.dtype())?;
                StoredWeight::Gguf {
                    blocks: Arc::new(QTensor::new(storage, blocks.shape().clone())?),
                    shape: shape.clone(),
                }
            }
        })
    }
}

/// fp8 values decoded to f32 (exactly) and multiplied by their scale in f32: how both the
/// stored and the dense path decode an fp8 weight.
pub fn fp8_to_f32(values: &Tensor, scale: Option<f32>) -> Result<Tensor> {
    let decoded = values.to_dtype(DType::F32)?;
    match scale {
        Some(s) => decoded.broadcast_mul(&Tensor::new(s, values.device())?),
        None => Ok(decoded),
    }
}

thread_local! {
    static BUILDING: RefCell<Option<TrackedWeights>> = const { RefCell::new(None) };
}

/// Runs `build` (a model's constructor over `weights.var_builder(..)`) so that its layers take
/// the stored form of the weights whose file has one.
pub fn build_with_stored<R>(weights: &TrackedWeights, build: impl FnOnce() -> R) -> R {
    struct Reset(Option<TrackedWeights>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            BUILDING.with(|b| *b.borrow_mut() = previous);
        }
    }
    let previous = BUILDING.with(|b| b.borrow_mut().replace(weights.clone()));
    let _reset = Reset(previous);
    build()
}

/// The weight `name` under `vb`, of shape `shape`: stored where the model being built by
/// [`build_with_stored`] has it stored, otherwise read densely through `vb`.
pub fn stored_weight<S: Into<Shape>>(
    vb: &VarBuilder,
    shape: S,
    name: &str,
) -> Result<StoredWeight> {
    let shape = shape.into();
    match stored_only(vb, &shape, name)? {
        Some((w, _)) => Ok(w),
        None => Ok(StoredWeight::Dense(vb.get(shape, name)?)),
    }
}

/// The weight `name` under `vb` in its stored form on `vb`'s device, where the model being
/// built by [`build_with_stored`] has it stored; `None` for a dense one (read it through `vb`).
/// Also its name in the file, for error messages.
pub fn stored_only(
    vb: &VarBuilder,
    shape: &Shape,
    name: &str,
) -> Result<Option<(StoredWeight, String)>> {
    let prefix = vb.prefix();
    let path = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    };
    let stored = BUILDING.with(|b| {
        b.borrow()
            .as_ref()
            .map(|w| {
                let weight = w.stored(&path, shape, vb.device())?;
                let in_file = w.stored_name(&path).unwrap_or(&path).to_string();
                Ok::<_, candle_core::Error>(weight.map(|weight| (weight, in_file)))
            })
            .transpose()
    })?;
    Ok(stored.flatten())
}
