use super::causal_conv::{CausalCache, CausalConv3d};
use crate::ops::Conv2d;
use crate::ops::Kernels;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResampleMode {
    Downsample2d,
    Downsample3d,
    Upsample2d,
    Upsample3d,
}

/// diffusers' `WanResample`: a per-frame 2x spatial resampling (`resample.1`), and for the 3D
/// modes a temporal convolution (`time_conv`) that halves or doubles the frame count.
#[derive(Debug, Clone)]
pub struct Resample {
    mode: ResampleMode,
    resample: Conv2d,
    time_conv: Option<CausalConv3d>,
}

impl Resample {
    /// `upsample_out_dim` is the spatial convolution's output width in the up modes.
    pub fn new(
        dim: usize,
        mode: ResampleMode,
        upsample_out_dim: usize,
        vb: VarBuilder,
        kernels: &Arc<dyn Kernels>,
    ) -> Result<Self> {
        let conv_vb = vb.pp("resample").pp(1);
        let resample = match mode {
            ResampleMode::Upsample2d | ResampleMode::Upsample3d => {
                Conv2d::new(dim, upsample_out_dim, 3, 1, 1, conv_vb, kernels)?
            }
            ResampleMode::Downsample2d | ResampleMode::Downsample3d => {
                Conv2d::new(dim, dim, 3, 0, 2, conv_vb, kernels)?
            }
        };
        let time_conv = match mode {
            ResampleMode::Upsample3d => Some(CausalConv3d::new(
                dim,
                2 * dim,
                [3, 1, 1],
                [1, 0, 0],
                1,
                vb.pp("time_conv"),
                kernels,
            )?),
            ResampleMode::Downsample3d => Some(CausalConv3d::new(
                dim,
                dim,
                [3, 1, 1],
                [0, 0, 0],
                2,
                vb.pp("time_conv"),
                kernels,
            )?),
            _ => None,
        };
        Ok(Self {
            mode,
            resample,
            time_conv,
        })
    }

    /// `x`: one chunk `[B, T, C, H, W]`. The 3D modes take one cache slot.
    ///
    /// Upsample3d skips its temporal convolution on the decoder's first chunk (diffusers' "Rep"
    /// sentinel), so that the first latent frame becomes one frame, and the next chunk sees zero
    /// frames before it rather than the first chunk. Downsample3d leaves the first chunk's frames
    /// alone and convolves each later chunk after the previous chunk's last frame.
    pub fn forward(
        &self,
        x: &Tensor,
        cache: &mut CausalCache,
        first_chunk: bool,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        if let (ResampleMode::Upsample3d, Some(time_conv)) = (self.mode, &self.time_conv) {
            let slot = cache.next_slot();
            if !first_chunk {
                let (b, t, c, h, w) = x.dims5()?;
                // Channels [0, C) become the even frames, [C, 2C) the odd ones.
                x = time_conv
                    .forward_streaming(&x, slot)?
                    .reshape((b, 2 * t, c, h, w))?;
            }
        }
        let (b, t, c, h, w) = x.dims5()?;
        let frames = x.reshape((b * t, c, h, w))?;
        let frames = match self.mode {
            ResampleMode::Upsample2d | ResampleMode::Upsample3d => {
                frames.upsample_nearest2d(2 * h, 2 * w)?
            }
            // ZeroPad2d((0, 1, 0, 1)): one column right, one row below.
            ResampleMode::Downsample2d | ResampleMode::Downsample3d => {
                frames.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?
            }
        };
        let y = self.resample.forward(&frames)?;
        let (_, c, h, w) = y.dims4()?;
        let mut x = y.reshape((b, t, c, h, w))?;
        if let (ResampleMode::Downsample3d, Some(time_conv)) = (self.mode, &self.time_conv) {
            let slot = cache.next_slot();
            let last = x.narrow(1, t - 1, 1)?.copy()?;
            if let Some(previous) = slot.take() {
                x = time_conv.forward(&Tensor::cat(&[&previous, &x], 1)?)?;
            }
            *slot = Some(last);
        }
        Ok(x)
    }
}
