//! Causal 3D convolution from 2D convolutions, and the frames it carries from one chunk to the next.
//!
//! Activations inside the VAE are laid out `[B, T, C, H, W]` (frames before channels), so that
//! folding frames into the batch for a 2D convolution is a free reshape.

use crate::ops::Kernels;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

/// How many input frames a causal convolution keeps for the next chunk (diffusers' `CACHE_T`).
pub const CACHE_T: usize = 2;

/// Upper bound on the im2col buffer of one 2D convolution call.
pub const IM2COL_BUDGET_BYTES: usize = 1 << 30;

/// The state carried between the chunks of one encode or decode: one slot per stateful layer.
/// Layers take their slot in the same order on every chunk, as diffusers' `feat_cache`/`feat_idx`.
#[derive(Debug, Default)]
pub struct CausalCache {
    slots: Vec<Option<Tensor>>,
    next: usize,
}

impl CausalCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rewinds to the first slot; call before each chunk.
    pub fn start_chunk(&mut self) {
        self.next = 0;
    }

    /// The next layer's slot; empty on the first chunk.
    pub fn next_slot(&mut self) -> &mut Option<Tensor> {
        if self.next == self.slots.len() {
            self.slots.push(None);
        }
        self.next += 1;
        &mut self.slots[self.next - 1]
    }
}

/// diffusers' `WanCausalConv3d`: a Conv3d whose time padding (twice the nominal one) is all in
/// front, so that an output frame never sees later input frames.
#[derive(Debug, Clone)]
pub struct CausalConv3d {
    /// `[out, in, kt, kh, kw]`, kept whole: the per-`kt` slices are views taken in `forward`.
    weight: Tensor,
    bias: Tensor,
    out_dim: usize,
    kernel: [usize; 3],
    time_padding: usize,
    spatial_padding: usize,
    time_stride: usize,
    im2col_budget_bytes: usize,
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    /// On CUDA (bf16/f16, time stride 1) `weight` holds the GEMM taps of
    /// [`crate::ops::conv_gemm::taps_3d`] instead of the `[Cout, Cin, kt, kh, kw]` kernel.
    gemm_taps: bool,
    kernels: Arc<dyn Kernels>,
}

impl CausalConv3d {
    /// `padding` is Conv3d's `(t, h, w)` padding; the spatial stride is always 1.
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        kernel: [usize; 3],
        padding: [usize; 3],
        time_stride: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        if padding[1] != padding[2] {
            candle_core::bail!("causal conv: unequal spatial padding {padding:?} is not supported")
        }
        let weight = vb.get((out_dim, in_dim, kernel[0], kernel[1], kernel[2]), "weight")?;
        let bias = vb.get(out_dim, "bias")?;
        #[cfg(feature = "cuda")]
        let (weight, gemm_taps) = if time_stride == 1 && crate::ops::conv_gemm::eligible(&weight) {
            (crate::ops::conv_gemm::taps_3d(&weight)?, true)
        } else {
            (weight, false)
        };
        #[cfg(not(feature = "cuda"))]
        let gemm_taps = false;
        Ok(Self {
            weight,
            bias,
            gemm_taps,
            out_dim,
            kernel,
            time_padding: 2 * padding[0],
            spatial_padding: padding[1],
            time_stride,
            im2col_budget_bytes: IM2COL_BUDGET_BYTES,
            kernels: kernels.clone(),
        })
    }

    /// Overrides [`IM2COL_BUDGET_BYTES`] (tests use it to force several conv2d calls).
    pub fn with_im2col_budget(mut self, bytes: usize) -> Self {
        self.im2col_budget_bytes = bytes;
        self
    }

    /// Convolution of a whole clip `[B, T, C, H, W]`, zero frames in front.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_after(None, x)
    }

    /// Convolution of one chunk, preceded by the frames the slot kept from earlier chunks (zero
    /// frames where there are none yet); the slot then keeps this chunk's last frames.
    pub fn forward_streaming(&self, x: &Tensor, slot: &mut Option<Tensor>) -> Result<Tensor> {
        let kept = last_frames(slot.as_ref(), x)?;
        let y = self.forward_after(slot.as_ref(), x)?;
        *slot = Some(kept);
        Ok(y)
    }

    /// [`Self::forward_streaming`] with the cache's next slot.
    pub fn forward_cached(&self, x: &Tensor, cache: &mut CausalCache) -> Result<Tensor> {
        self.forward_streaming(x, cache.next_slot())
    }

    fn forward_after(&self, previous: Option<&Tensor>, x: &Tensor) -> Result<Tensor> {
        let (b, _, c, h, w) = x.dims5()?;
        let ([kt, kh, kw], out_dim) = (self.kernel, self.out_dim);
        let mut parts = Vec::with_capacity(3);
        let mut zero_frames = self.time_padding;
        if let Some(previous) = previous.filter(|_| self.time_padding > 0) {
            zero_frames = zero_frames.saturating_sub(previous.dim(1)?);
            parts.push(previous.clone());
        }
        if zero_frames > 0 {
            parts.insert(
                0,
                Tensor::zeros((b, zero_frames, c, h, w), x.dtype(), x.device())?,
            );
        }
        let x = if parts.is_empty() {
            x.clone()
        } else {
            parts.push(x.clone());
            Tensor::cat(&parts, 1)?
        };
        let frames_in = x.dim(1)?;
        if frames_in < kt {
            candle_core::bail!("causal conv: {frames_in} frames for a temporal kernel of {kt}")
        }
        let frames_out = (frames_in - kt) / self.time_stride + 1;
        #[cfg(feature = "cuda")]
        if self.gemm_taps {
            return self.forward_gemm(&x);
        }
        // Per-kt inputs, frames folded into the batch: `[B*T_out, C, H, W]` each.
        let taps = (0..kt)
            .map(|k| {
                let frames = if self.time_stride == 1 {
                    x.narrow(1, k, frames_out)?
                } else {
                    let ids: Vec<u32> = (0..frames_out)
                        .map(|t| (t * self.time_stride + k) as u32)
                        .collect();
                    x.index_select(&Tensor::new(ids.as_slice(), x.device())?, 1)?
                };
                frames.reshape((b * frames_out, c, h, w))
            })
            .collect::<Result<Vec<_>>>()?;
        let images = b * frames_out;
        // CUDA materialises a conv2d's whole im2col buffer (about 1 GB per frame in bf16 in the
        // last decoder stage at 720P): bound it by convolving a few frames at a time.
        let p = 2 * self.spatial_padding;
        let pixels_out = (h + p + 1).saturating_sub(kh) * (w + p + 1).saturating_sub(kw);
        let im2col_per_image = pixels_out * c * kh * kw * x.dtype().size_in_bytes();
        let group = (self.im2col_budget_bytes / im2col_per_image.max(1)).clamp(1, images);
        let mut outputs = Vec::with_capacity(images.div_ceil(group));
        for start in (0..images).step_by(group) {
            let len = group.min(images - start);
            let mut sum: Option<Tensor> = None;
            for (k, tap) in taps.iter().enumerate() {
                let kernel = self.weight.narrow(2, k, 1)?.squeeze(2)?;
                let y = self.kernels.conv2d(
                    &tap.narrow(0, start, len)?,
                    &kernel,
                    self.spatial_padding,
                    1,
                )?;
                sum = Some(match sum {
                    None => y,
                    Some(s) => (s + y)?,
                });
            }
            let Some(y) = sum else {
                candle_core::bail!("causal conv: empty temporal kernel")
            };
            outputs.push(y);
        }
        let y = if outputs.len() == 1 {
            outputs.remove(0)
        } else {
            Tensor::cat(&outputs, 0)?
        };
        let y = y.broadcast_add(&self.bias.reshape((1, out_dim, 1, 1))?)?;
        let (_, _, h_out, w_out) = y.dims4()?;
        y.reshape((b, frames_out, out_dim, h_out, w_out))
    }
}

#[cfg(feature = "cuda")]
impl CausalConv3d {
    /// `x` `[B, T, C, H, W]`, already padded in time.
    fn forward_gemm(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.spatial_padding;
        let bias = self
            .bias
            .to_dtype(candle_core::DType::F32)?
            .reshape((1, self.out_dim, 1, 1))?;
        let clips = (0..x.dim(0)?)
            .map(|i| {
                let clip = x.get(i)?.pad_with_zeros(2, p, p)?.pad_with_zeros(3, p, p)?;
                crate::ops::conv_gemm::conv_valid(&clip, &self.weight, self.kernel)?
                    .broadcast_add(&bias)?
                    .to_dtype(x.dtype())
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&clips, 0)
    }
}

/// The last [`CACHE_T`] frames of `previous ++ x` (fewer if the clip is shorter), copied so the
/// cache never pins a whole activation.
fn last_frames(previous: Option<&Tensor>, x: &Tensor) -> Result<Tensor> {
    let t = x.dim(1)?;
    let tail = x.narrow(1, t.saturating_sub(CACHE_T), t.min(CACHE_T))?;
    match previous {
        Some(p) if t < CACHE_T => {
            let p_t = p.dim(1)?;
            Tensor::cat(&[&p.narrow(1, p_t - 1, 1)?, &tail], 1)
        }
        _ => tail.copy(),
    }
}
