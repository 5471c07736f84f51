//! The parameter-free shortcuts of the Wan2.2 residual down/up blocks: space and time folded into
//! channels and averaged (AvgDown3D), or channels repeated and unfolded into space and time
//! (DupUp3D).

use candle_core::{Result, Tensor};

/// diffusers' `AvgDown3D`.
#[derive(Debug, Clone)]
pub struct AvgDown3d {
    out_dim: usize,
    factor_t: usize,
    factor_s: usize,
    group_size: usize,
}

impl AvgDown3d {
    pub fn new(in_dim: usize, out_dim: usize, factor_t: usize, factor_s: usize) -> Result<Self> {
        let factor = factor_t * factor_s * factor_s;
        let group_size = in_dim * factor / out_dim;
        if group_size * out_dim != in_dim * factor {
            candle_core::bail!(
                "AvgDown3D: {in_dim} channels x {factor} is not divisible by {out_dim}"
            )
        }
        Ok(Self {
            out_dim,
            factor_t,
            factor_s,
            group_size,
        })
    }

    /// `x`: `[B, T, C, H, W]`; zero frames are put in front to make T a multiple of `factor_t`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ft, fs) = (self.factor_t, self.factor_s);
        let t = x.dim(1)?;
        let x = x.pad_with_zeros(1, (ft - t % ft) % ft, 0)?;
        let (b, t, c, h, w) = x.dims5()?;
        // Channel c, offsets (dt, dh, dw) become channel `((c*ft + dt)*fs + dh)*fs + dw`; groups of
        // consecutive channels are averaged.
        x.reshape(vec![b, t / ft, ft, c, h / fs, fs, w / fs, fs])?
            .permute(vec![0, 1, 3, 2, 5, 7, 4, 6])?
            .reshape((b, t / ft, self.out_dim, self.group_size, h / fs, w / fs))?
            .mean(3)
    }
}

/// diffusers' `DupUp3D`.
#[derive(Debug, Clone)]
pub struct DupUp3d {
    out_dim: usize,
    factor_t: usize,
    factor_s: usize,
    repeats: usize,
}

impl DupUp3d {
    pub fn new(in_dim: usize, out_dim: usize, factor_t: usize, factor_s: usize) -> Result<Self> {
        let factor = factor_t * factor_s * factor_s;
        let repeats = out_dim * factor / in_dim;
        if repeats * in_dim != out_dim * factor {
            candle_core::bail!(
                "DupUp3D: {out_dim} channels x {factor} is not divisible by {in_dim}"
            )
        }
        Ok(Self {
            out_dim,
            factor_t,
            factor_s,
            repeats,
        })
    }

    /// `x`: `[B, T, C, H, W]`. On the decoder's first chunk the leading `factor_t - 1` frames
    /// are dropped, as the main path there does not upsample in time.
    pub fn forward(&self, x: &Tensor, first_chunk: bool) -> Result<Tensor> {
        let (ft, fs) = (self.factor_t, self.factor_s);
        let (b, t, c, h, w) = x.dims5()?;
        let x = x
            .unsqueeze(3)?
            .broadcast_as((b, t, c, self.repeats, h, w))?
            .reshape(vec![b, t, self.out_dim, ft, fs, fs, h, w])?
            .permute(vec![0, 1, 3, 2, 6, 4, 7, 5])?
            .reshape((b, t * ft, self.out_dim, h * fs, w * fs))?;
        if first_chunk {
            x.narrow(1, ft - 1, t * ft - (ft - 1))
        } else {
            Ok(x)
        }
    }
}
