//! Stride-1 convolutions on CUDA as cuBLAS GEMMs over the zero-padded input, with no im2col
//! buffer (candle's CUDA conv2d spends most of its time writing one).
//!
//! The padded input of one clip, `[T, C, Hp, Wp]`, is read in place: for the spatial tap
//! `(dy, dx)`, the matrix whose row `j` is channel `j % C` of frame `t + j / C` and whose column
//! `i` is padded pixel `dy * Wp + dx + i` has the uniform row stride `Hp * Wp` (one frame is
//! exactly `C` rows), so all temporal taps of one spatial tap form a single GEMM with
//! `K = kt * C`, batched over output frames. Outputs are computed on the padded row width (the
//! last `kw - 1` columns of each row are discarded) and accumulated over the `kh * kw` spatial
//! taps in f32.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::cublas::{result as cublas, sys};
use candle_core::cuda_backend::cudarc::driver::{DevicePtr, DevicePtrMut};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// Whether the GEMM path handles a convolution of `x` (CUDA, bf16 or f16).
pub fn eligible(x: &Tensor) -> bool {
    x.device().is_cuda() && matches!(x.dtype(), DType::BF16 | DType::F16)
}

/// A 3D kernel `[Cout, Cin, kt, kh, kw]` rearranged to the GEMM's `[kh * kw, Cout, kt * Cin]`.
pub fn taps_3d(weight: &Tensor) -> Result<Tensor> {
    let (cout, cin, kt, kh, kw) = weight.dims5()?;
    weight
        .permute((3, 4, 0, 2, 1))?
        .contiguous()?
        .reshape((kh * kw, cout, kt * cin))
}

/// A 2D kernel `[Cout, Cin, kh, kw]` rearranged to `[kh * kw, Cout, Cin]`.
pub fn taps_2d(weight: &Tensor) -> Result<Tensor> {
    let (cout, cin, kh, kw) = weight.dims4()?;
    weight
        .permute((2, 3, 0, 1))?
        .contiguous()?
        .reshape((kh * kw, cout, cin))
}

/// Valid (unpadded) convolution of one clip `x` `[T, C, Hp, Wp]` (already padded) with `taps`
/// from [`taps_3d`]/[`taps_2d`]; returns `[T - kt + 1, Cout, Hp - kh + 1, Wp - kw + 1]` in f32,
/// without bias.
pub fn conv_valid(x: &Tensor, taps: &Tensor, kernel: [usize; 3]) -> Result<Tensor> {
    let (_, _, hp, wp) = x.dims4()?;
    let [_, kh, kw] = kernel;
    if hp < kh || wp < kw {
        candle_core::bail!("conv: input {hp}x{wp} smaller than the kernel {kh}x{kw}")
    }
    let y = x
        .contiguous()?
        .apply_op2_no_bwd(&taps.contiguous()?, &TapGemm { kernel })?;
    y.narrow(3, 0, wp - kw + 1)
}

struct TapGemm {
    kernel: [usize; 3],
}

impl CustomOp2 for TapGemm {
    fn name(&self) -> &'static str {
        "conv-tap-gemm"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &Layout,
        _: &candle_core::CpuStorage,
        _: &Layout,
    ) -> Result<(candle_core::CpuStorage, Shape)> {
        candle_core::bail!("conv-tap-gemm runs on CUDA only")
    }

    fn cuda_fwd(
        &self,
        x: &CudaStorage,
        lx: &Layout,
        w: &CudaStorage,
        lw: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let [kt, kh, kw] = self.kernel;
        let (t_in, c, hp, wp) = lx.shape().dims4()?;
        let (taps, cout, k) = lw.shape().dims3()?;
        if taps != kh * kw || k != kt * c || t_in < kt {
            candle_core::bail!(
                "conv-tap-gemm: input {:?}, taps {:?}, kernel {:?}",
                lx.dims(),
                lw.dims(),
                self.kernel
            )
        }
        let (t_out, h_out, w_out) = (t_in - kt + 1, hp - kh + 1, wp - kw + 1);
        // Columns computed per output channel: every padded row but the last, which stops at
        // the last valid pixel so that no tap reads past its frame.
        let m = (h_out - 1) * wp + w_out;
        let ldc = h_out * wp;
        let (xo, wo) = (lx.start_offset(), lw.start_offset());
        let dev = x.device().clone();
        let elem = 2u64;
        let a_type = match (&x.slice, &w.slice) {
            (CudaStorageSlice::BF16(_), CudaStorageSlice::BF16(_)) => {
                sys::cudaDataType::CUDA_R_16BF
            }
            (CudaStorageSlice::F16(_), CudaStorageSlice::F16(_)) => sys::cudaDataType::CUDA_R_16F,
            _ => candle_core::bail!("conv-tap-gemm needs bf16 or f16 input and kernel"),
        };
        let stream = dev.cuda_stream();
        // SAFETY: the GEMMs below write columns 0..m of every row; the other columns are cropped
        // away by `conv_valid` and never read.
        let mut out = unsafe { dev.alloc::<f32>(t_out * cout * ldc)? };
        let blas = dev.cublas_handle();
        let (x_ptr, _gx) = match &x.slice {
            CudaStorageSlice::BF16(s) => s.device_ptr(&stream),
            CudaStorageSlice::F16(s) => s.device_ptr(&stream),
            _ => unreachable!("checked above"),
        };
        let (w_ptr, _gw) = match &w.slice {
            CudaStorageSlice::BF16(s) => s.device_ptr(&stream),
            CudaStorageSlice::F16(s) => s.device_ptr(&stream),
            _ => unreachable!("checked above"),
        };
        let (out_ptr, _go) = out.device_ptr_mut(&stream);
        let alpha = 1f32;
        let as_int = |v: usize| -> Result<i32> {
            i32::try_from(v)
                .map_err(|_| candle_core::Error::Msg(format!("conv: {v} exceeds cuBLAS")))
        };
        for tap in 0..kh * kw {
            let (dy, dx) = (tap / kw, tap % kw);
            let beta = if tap == 0 { 0f32 } else { 1f32 };
            let a = x_ptr + elem * (xo + dy * wp + dx) as u64;
            let b = w_ptr + elem * (wo + tap * cout * k) as u64;
            // Column-major view: C^T [m, cout] = A [m, k] (lda = Hp*Wp) x B [k, cout] (ldb = k).
            // SAFETY: pointers and strides stay inside the input, kernel and output buffers.
            unsafe {
                cublas::gemm_strided_batched_ex(
                    *blas.handle(),
                    sys::cublasOperation_t::CUBLAS_OP_N,
                    sys::cublasOperation_t::CUBLAS_OP_N,
                    as_int(m)?,
                    as_int(cout)?,
                    as_int(k)?,
                    (&alpha) as *const f32 as *const _,
                    a as *const _,
                    a_type,
                    as_int(hp * wp)?,
                    (c * hp * wp) as i64,
                    b as *const _,
                    a_type,
                    as_int(k)?,
                    0,
                    (&beta) as *const f32 as *const _,
                    out_ptr as *mut _,
                    sys::cudaDataType::CUDA_R_32F,
                    as_int(ldc)?,
                    (cout * ldc) as i64,
                    as_int(t_out)?,
                    sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
                .w()?;
            }
        }
        drop(_go);
        Ok((
            CudaStorage {
                slice: CudaStorageSlice::F32(out),
                device: dev,
            },
            Shape::from((t_out, cout, h_out, wp)),
        ))
    }
}
