//! The kernels the layers run, behind one extension point: [`Kernels`].
//!
//! Every constructor of the transformer, the VAE and the text encoder uses [`Fused`]: candle's
//! fused softmax, RMS norm, layer norm and interleaved RoPE, and on CUDA (bf16/f16) the row,
//! convolution and attention kernels of this module and of `dit`. The layers' `new_with_kernels`
//! constructors take another implementation instead; the demo-model trainer (`t2v-demo-trainer`)
//! passes differentiable ones there, since candle's fused kernels have no backward pass.
//! Nothing here knows about training.

pub mod conv2d;
#[cfg(feature = "cuda")]
pub mod conv_gemm;
#[cfg(feature = "cuda")]
pub mod cuda_kernels;
pub mod fused;
mod kernels;
pub mod linear;
pub mod rowwise;

pub use conv2d::Conv2d;
pub use kernels::{fused_kernels, Fused, Kernels};
