//! umT5's token embedding (vocabulary 256 384 x 4096: the largest tensor of the model). A dense
//! file's is a plain lookup table. A GGUF or fp8 file's stays as the file stores it, on the
//! encoder's device, and only the rows of a prompt's tokens are gathered and decoded, with the
//! decoding the dense path applies to the whole table (so the outputs are the same bits): a
//! GGUF row is a whole number of blocks, decoded by candle as [`crate::weights::GgufSource`]
//! decodes the tensor; an fp8 row is scaled as [`fp8_to_f32`] scales the tensor.

use crate::weights::stored::{fp8_to_f32, stored_only};
use crate::weights::StoredWeight;
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};
use std::borrow::Cow;

#[derive(Debug, Clone)]
pub enum TokenEmbedding {
    /// A dense table (possibly on another device than the encoder's).
    Dense(Embedding),
    /// GGUF blocks, one row of `row_bytes` per token: a [vocab, row_bytes] u8 tensor.
    Gguf {
        rows: Tensor,
        ggml: GgmlDType,
        hidden: usize,
        dtype: DType,
        name: String,
    },
    /// fp8 e4m3fn values [vocab, hidden] and the per-tensor scale.
    Fp8 {
        values: Tensor,
        scale: Option<f32>,
        dtype: DType,
        name: String,
    },
}

impl TokenEmbedding {
    /// The `weight` under `vb` ([vocab, hidden]), stored where the checkpoint being built stores
    /// it (GGUF, fp8), else dense. A GGUF row that is not a whole number of blocks is an error
    /// naming the tensor.
    pub fn new(vocab: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        let shape = (vocab, hidden).into();
        let dtype = vb.dtype();
        // Read on the CPU (where GGUF blocks can be laid out per row), then moved.
        let cpu = vb.clone().set_device(Device::Cpu);
        let stored = stored_only(&cpu, &shape, "weight")?;
        match stored {
            None => Ok(Self::Dense(candle_nn::embedding(vocab, hidden, vb)?)),
            Some((StoredWeight::Gguf { blocks, .. }, name)) => {
                let ggml = blocks.dtype();
                let (block, block_bytes) = (ggml.block_size(), ggml.type_size());
                if !hidden.is_multiple_of(block) {
                    candle_core::bail!(
                        "tensor `{name}`: its rows of {hidden} values are not a whole number of \
                         {ggml:?} blocks of {block}, so single rows cannot be read from it"
                    );
                }
                let row_bytes = hidden / block * block_bytes;
                let bytes = blocks.data()?;
                if bytes.len() != vocab * row_bytes {
                    candle_core::bail!(
                        "tensor `{name}`: {} bytes of blocks for {vocab} rows of {row_bytes}",
                        bytes.len()
                    );
                }
                let rows = Tensor::from_slice(bytes.as_ref(), (vocab, row_bytes), &Device::Cpu)?
                    .to_device(vb.device())?;
                Ok(Self::Gguf {
                    rows,
                    ggml,
                    hidden,
                    dtype,
                    name,
                })
            }
            Some((StoredWeight::Fp8 { values, scale }, name)) => Ok(Self::Fp8 {
                values: values.to_device(vb.device())?,
                scale,
                dtype,
                name,
            }),
            // Any other stored form (one with LoRA changes) is decoded whole, as before.
            Some((other, _)) => Ok(Self::Dense(Embedding::new(
                other.materialize(dtype)?.to_device(vb.device())?,
                hidden,
            ))),
        }
    }

    /// A table loaded elsewhere (for instance kept on the CPU).
    pub fn dense(embedding: Embedding) -> Self {
        Self::Dense(embedding)
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            Self::Dense(e) => e.hidden_size(),
            Self::Gguf { hidden, .. } => *hidden,
            Self::Fp8 { values, .. } => values.dim(1).unwrap_or(0),
        }
    }

    /// The bytes the table holds on its device.
    pub fn stored_bytes(&self) -> usize {
        let t = match self {
            Self::Dense(e) => e.embeddings(),
            Self::Gguf { rows, .. } => rows,
            Self::Fp8 { values, .. } => values,
        };
        t.elem_count() * t.dtype().size_in_bytes()
    }

    fn vocab(&self) -> usize {
        match self {
            Self::Dense(e) => e.embeddings().dim(0).unwrap_or(0),
            Self::Gguf { rows, .. } => rows.dim(0).unwrap_or(0),
            Self::Fp8 { values, .. } => values.dim(0).unwrap_or(0),
        }
    }

    /// `ids` [B, L] u32 -> [B, L, hidden] on `device`. A token id outside the table is an
    /// error; so is a stored row that decodes to a non-finite value (a corrupt file), naming
    /// the tensor and the row.
    pub fn forward(&self, ids: &Tensor, device: &Device) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        if let Self::Dense(e) = self {
            let on = e.embeddings().device();
            return e.forward(&ids.to_device(on)?)?.to_device(device);
        }
        let flat = ids.flatten_all()?;
        let vocab = self.vocab();
        let name = match self {
            Self::Gguf { name, .. } | Self::Fp8 { name, .. } => name.as_str(),
            Self::Dense(_) => unreachable!(),
        };
        if let Some(&bad) = flat
            .to_vec1::<u32>()?
            .iter()
            .find(|&&i| i as usize >= vocab)
        {
            candle_core::bail!("token id {bad} is outside the {vocab} rows of tensor `{name}`");
        }
        let decoded = match self {
            Self::Gguf {
                rows,
                ggml,
                hidden,
                dtype,
                ..
            } => {
                let picked = rows
                    .index_select(&flat.to_device(rows.device())?, 0)?
                    .flatten_all()?
                    .to_device(&Device::Cpu)?
                    .to_vec1::<u8>()?;
                let storage = QStorage::from_data(Cow::Owned(picked), &Device::Cpu, *ggml)?;
                let rows = QTensor::new(storage, (batch * len, *hidden))?;
                let rows = rows.dequantize(&Device::Cpu)?;
                check_finite(&rows, &flat, name)?;
                rows.to_dtype(*dtype)?
            }
            Self::Fp8 {
                values,
                scale,
                dtype,
                ..
            } => {
                let rows = fp8_to_f32(
                    &values.index_select(&flat.to_device(values.device())?, 0)?,
                    *scale,
                )?;
                check_finite(&rows, &flat, name)?;
                rows.to_dtype(*dtype)?
            }
            Self::Dense(_) => unreachable!(),
        };
        decoded.reshape((batch, len, ()))?.to_device(device)
    }
}

/// Errors on the first of the `ids`' decoded `rows` [n, hidden] (f32) holding a NaN or an
/// infinity.
fn check_finite(rows: &Tensor, ids: &Tensor, name: &str) -> Result<()> {
    let bad = rows
        .abs()?
        .sum_keepdim(1)?
        .flatten_all()?
        .to_device(&Device::Cpu)?
        .to_vec1::<f32>()?;
    if let Some(i) = bad.iter().position(|m| !m.is_finite()) {
        let id = ids.to_vec1::<u32>()?[i];
        candle_core::bail!(
            "tensor `{name}`: row {id} (a token of the prompt) decodes to non-finite values: \
             the file is corrupt"
        );
    }
    Ok(())
}
