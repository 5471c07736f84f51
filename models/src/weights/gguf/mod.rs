//! GGUF files (llama.cpp's format, also used for quantized diffusion models by ComfyUI-GGUF):
//! the header, the metadata, each tensor's GGML type, shape and bytes, and dequantization.
//!
//! The header is parsed here rather than by candle's reader, which refuses tensors of more than
//! four dimensions: ComfyUI-GGUF's converter writes Wan's 5-D patch-embedding weight with five
//! (`tools/fix_5d_tensors.py`). Every count, length and extent the header claims is checked
//! against the file before anything is sized from it, and every problem with a tensor names it.
//! Block decoding is candle's (`candle_core::quantized`), tested bit for bit against the `gguf`
//! Python package (`models/tests/gguf_files.rs`).

mod header;
mod source;

pub use header::{GgufFile, GgufTensor, Value};
pub use source::GgufSource;

use candle_core::quantized::GgmlDType;
use candle_core::DType;

/// A GGML tensor type this build reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
}

impl GgmlType {
    /// The type of GGML code `code`, or the name of a type this build does not read.
    pub fn from_code(code: u32) -> Result<Self, String> {
        Ok(match code {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            other => return Err(unsupported_name(other)),
        })
    }

    /// The name llama.cpp and the `gguf` package give the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q2K => "Q2_K",
            Self::Q3K => "Q3_K",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
        }
    }

    /// The type named `name` (`Q4_K`), as [`Self::name`] writes it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q2K | Self::Q3K | Self::Q4K | Self::Q5K | Self::Q6K => 256,
        }
    }

    /// Bytes per block (ggml-common.h).
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q2K => 84,
            Self::Q3K => 110,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }

    /// The candle dtype of an unquantized type; `None` for block-quantized ones.
    pub fn dense_dtype(self) -> Option<DType> {
        match self {
            Self::F32 => Some(DType::F32),
            Self::F16 => Some(DType::F16),
            Self::BF16 => Some(DType::BF16),
            _ => None,
        }
    }

    /// candle's block type of a quantized type.
    pub fn candle(self) -> GgmlDType {
        match self {
            Self::F32 => GgmlDType::F32,
            Self::F16 => GgmlDType::F16,
            Self::BF16 => GgmlDType::BF16,
            Self::Q4_0 => GgmlDType::Q4_0,
            Self::Q4_1 => GgmlDType::Q4_1,
            Self::Q5_0 => GgmlDType::Q5_0,
            Self::Q5_1 => GgmlDType::Q5_1,
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q2K => GgmlDType::Q2K,
            Self::Q3K => GgmlDType::Q3K,
            Self::Q4K => GgmlDType::Q4K,
            Self::Q5K => GgmlDType::Q5K,
            Self::Q6K => GgmlDType::Q6K,
        }
    }

    /// Every type this build reads.
    pub const ALL: [GgmlType; 13] = [
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q2K,
        Self::Q3K,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
    ];
}

fn unsupported_name(code: u32) -> String {
    let name = match code {
        9 => "Q8_1",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return format!("unknown GGML type {code}"),
    };
    format!(
        "GGML type {name}, which this build does not read (it reads F32, F16, BF16, Q8_0, \
         Q6_K, Q5_K, Q5_0, Q5_1, Q4_K, Q4_0, Q4_1, Q3_K and Q2_K files)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_layouts_agree_with_candle() {
        for t in GgmlType::ALL {
            assert_eq!(t.block_size(), t.candle().block_size(), "{}", t.name());
            assert_eq!(t.block_bytes(), t.candle().type_size(), "{}", t.name());
        }
    }

    #[test]
    fn unsupported_types_are_named() {
        let e = GgmlType::from_code(16).unwrap_err();
        assert!(e.contains("IQ2_XXS"), "{e}");
        assert!(GgmlType::from_code(1000).unwrap_err().contains("1000"));
    }
}
