//! Row-broadcast element-wise ops of the transformer for inference ([`super::Fused`]): a linear
//! layer's bias add, the modulation `x * (1 + scale) + shift`, the gated residual `x + y * gate`
//! and the layer norm before a modulation. On CUDA (bf16/f16) each is one kernel of
//! `rowwise.cu`; elsewhere they are compositions with the same rounding, the row vector
//! broadcast over the rows.

use candle_core::{DType, Result, Tensor};

/// `x + v` with `v` broadcast over `x`'s rows.
fn add_rows(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    x.add(&v.broadcast_as(x.shape())?)
}

/// `x * v` with `v` broadcast over `x`'s rows.
fn mul_rows(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    x.mul(&v.broadcast_as(x.shape())?)
}

/// `x + bias` with `bias` `[D]` broadcast over the rows of `x` `[.., D]`, in `x`'s dtype.
pub fn bias_add(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if cuda::eligible(x) && bias.dtype() == x.dtype() {
        return cuda::bias_add(x, bias);
    }
    add_rows(x, bias)
}

/// `x * (1 + scale) + shift` computed in f32 (`x` f32, `scale`/`shift` f32 broadcast rows),
/// rounded once to `dtype`.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor, dtype: DType) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if cuda::eligible_f32_to(x, dtype) {
        return cuda::modulate(x, scale, shift, dtype);
    }
    add_rows(&mul_rows(x, &(scale + 1.0)?)?, shift)?.to_dtype(dtype)
}

/// `x + y * gate` computed in f32 (`gate` f32 broadcast rows), rounded once to `x`'s dtype.
pub fn gated_residual(x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if cuda::eligible(x) && y.dtype() == x.dtype() && y.dims() == x.dims() {
        return cuda::gated_residual(x, y, gate);
    }
    let dtype = x.dtype();
    (x.to_dtype(DType::F32)? + mul_rows(&y.to_dtype(DType::F32)?, gate)?)?.to_dtype(dtype)
}

/// `layer_norm(x) * (1 + scale) + shift` (no affine norm parameters, statistics and modulation
/// in f32), cast to `x`'s dtype; on CUDA one kernel.
pub fn norm_modulate(x: &Tensor, shift: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if cuda::eligible(x) {
        return cuda::layer_norm_modulate(x, scale, shift, eps);
    }
    let normed = super::fused::layer_norm_no_affine(&x.to_dtype(DType::F32)?, eps as f32)?;
    modulate(&normed, shift, scale, x.dtype())
}

#[cfg(feature = "cuda")]
mod cuda {
    use crate::ops::cuda_kernels::{contiguous_view, elementwise_config, storage};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{
        CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg,
    };
    use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
    use candle_core::{
        CpuStorage, CudaDevice, CudaStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape,
        Tensor,
    };

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/rowwise.ptx"));
    const MODULE: &str = "t2v_rowwise";

    pub fn eligible(x: &Tensor) -> bool {
        x.device().is_cuda() && matches!(x.dtype(), DType::BF16 | DType::F16)
    }

    pub fn eligible_f32_to(x: &Tensor, dtype: DType) -> bool {
        x.device().is_cuda() && x.dtype() == DType::F32 && matches!(dtype, DType::BF16 | DType::F16)
    }

    /// The row vector `[D]` (any leading 1-sized dims) of `v`, contiguous.
    fn row(v: &Tensor, cols: usize) -> Result<Tensor> {
        if v.elem_count() != cols {
            candle_core::bail!("row op: {:?} is not one row of {cols}", v.dims())
        }
        v.flatten_all()?.contiguous()
    }

    fn suffix(dtype: DType) -> Result<&'static str> {
        match dtype {
            DType::BF16 => Ok("bf16"),
            DType::F16 => Ok("f16"),
            d => candle_core::bail!("row op: {d:?}"),
        }
    }

    struct BiasAdd;

    impl CustomOp2 for BiasAdd {
        fn name(&self) -> &'static str {
            "bias-add"
        }
        fn cpu_fwd(
            &self,
            _: &CpuStorage,
            _: &Layout,
            _: &CpuStorage,
            _: &Layout,
        ) -> Result<(CpuStorage, Shape)> {
            candle_core::bail!("bias-add runs on CUDA only")
        }
        fn cuda_fwd(
            &self,
            x: &CudaStorage,
            lx: &Layout,
            b: &CudaStorage,
            lb: &Layout,
        ) -> Result<(CudaStorage, Shape)> {
            let dev = x.device();
            let n = lx.shape().elem_count();
            let cols = lb.shape().elem_count() as u32;
            #[allow(clippy::too_many_arguments)]
            fn go<T: DeviceRepr>(
                dev: &CudaDevice,
                name: &str,
                x: &CudaSlice<T>,
                lx: &Layout,
                b: &CudaSlice<T>,
                lb: &Layout,
                n: usize,
                cols: u32,
            ) -> Result<CudaSlice<T>> {
                let (x, b) = (contiguous_view(x, lx, 1)?, contiguous_view(b, lb, 1)?);
                let func = dev.get_or_load_custom_func(name, MODULE, PTX)?;
                // SAFETY: the kernel writes all n elements.
                let out = unsafe { dev.alloc::<T>(n)? };
                let n64 = n as u64;
                let mut builder = func.builder();
                builder.arg(&x);
                builder.arg(&b);
                builder.arg(&out);
                builder.arg(&n64);
                builder.arg(&cols);
                // SAFETY: arguments match the kernel's signature.
                unsafe { builder.launch(elementwise_config(n)) }.w()?;
                Ok(out)
            }
            let name = format!("bias_add_{}", suffix(x.dtype())?);
            let slice = match (&x.slice, &b.slice) {
                (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(b)) => {
                    CudaStorageSlice::BF16(go(dev, &name, x, lx, b, lb, n, cols)?)
                }
                (CudaStorageSlice::F16(x), CudaStorageSlice::F16(b)) => {
                    CudaStorageSlice::F16(go(dev, &name, x, lx, b, lb, n, cols)?)
                }
                _ => candle_core::bail!("bias-add: mismatched dtypes"),
            };
            Ok(storage(slice, dev, lx.shape()))
        }
    }

    pub fn bias_add(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let cols = x.dims().last().copied().unwrap_or(1);
        x.contiguous()?
            .apply_op2_no_bwd(&row(bias, cols)?, &BiasAdd)
    }

    /// `modulate` (x f32, a = scale, b = shift), `gated_residual` (x, a = y, b = gate) or,
    /// with `eps`, `layer_norm_modulate` (x, a = scale, b = shift; one block per row).
    struct Rowwise3 {
        kernel: &'static str,
        out_dtype: DType,
        eps: Option<f32>,
    }

    impl CustomOp3 for Rowwise3 {
        fn name(&self) -> &'static str {
            self.kernel
        }
        fn cpu_fwd(
            &self,
            _: &CpuStorage,
            _: &Layout,
            _: &CpuStorage,
            _: &Layout,
            _: &CpuStorage,
            _: &Layout,
        ) -> Result<(CpuStorage, Shape)> {
            candle_core::bail!("{} runs on CUDA only", self.kernel)
        }
        fn cuda_fwd(
            &self,
            x: &CudaStorage,
            lx: &Layout,
            a: &CudaStorage,
            la: &Layout,
            b: &CudaStorage,
            lb: &Layout,
        ) -> Result<(CudaStorage, Shape)> {
            let dev = x.device();
            let n = lx.shape().elem_count();
            let cols = lb.shape().elem_count() as u32;
            let name = format!("{}_{}", self.kernel, suffix(self.out_dtype)?);
            let func = dev.get_or_load_custom_func(&name, MODULE, PTX)?;
            let n64 = n as u64;
            macro_rules! launch {
                ($variant:ident, $t:ty, $x:expr, $a:expr, $b:expr) => {{
                    let (xv, av, bv) = (
                        contiguous_view($x, lx, 1)?,
                        contiguous_view($a, la, 1)?,
                        contiguous_view($b, lb, 1)?,
                    );
                    // SAFETY: the kernel writes all n elements.
                    let out = unsafe { dev.alloc::<$t>(n)? };
                    let mut builder = func.builder();
                    builder.arg(&xv);
                    builder.arg(&av);
                    builder.arg(&bv);
                    builder.arg(&out);
                    builder.arg(&n64);
                    builder.arg(&cols);
                    let cfg = match &self.eps {
                        Some(eps) => {
                            builder.arg(eps);
                            LaunchConfig {
                                grid_dim: ((n / cols.max(1) as usize) as u32, 1, 1),
                                block_dim: (256, 1, 1),
                                shared_mem_bytes: 0,
                            }
                        }
                        None => elementwise_config(n),
                    };
                    // SAFETY: arguments match the kernel's signature.
                    unsafe { builder.launch(cfg) }.w()?;
                    CudaStorageSlice::$variant(out)
                }};
            }
            use CudaStorageSlice as S;
            let slice = match (self.kernel, &x.slice, &a.slice, &b.slice, self.out_dtype) {
                ("modulate", S::F32(x), S::F32(a), S::F32(b), DType::BF16) => {
                    launch!(BF16, half::bf16, x, a, b)
                }
                ("modulate", S::F32(x), S::F32(a), S::F32(b), DType::F16) => {
                    launch!(F16, half::f16, x, a, b)
                }
                ("gated_residual", S::BF16(x), S::BF16(a), S::F32(b), _) => {
                    launch!(BF16, half::bf16, x, a, b)
                }
                ("gated_residual", S::F16(x), S::F16(a), S::F32(b), _) => {
                    launch!(F16, half::f16, x, a, b)
                }
                ("layer_norm_modulate", S::BF16(x), S::F32(a), S::F32(b), _) => {
                    launch!(BF16, half::bf16, x, a, b)
                }
                ("layer_norm_modulate", S::F16(x), S::F32(a), S::F32(b), _) => {
                    launch!(F16, half::f16, x, a, b)
                }
                _ => candle_core::bail!("{}: unsupported dtypes", self.kernel),
            };
            Ok(storage(slice, dev, lx.shape()))
        }
    }

    pub fn modulate(x: &Tensor, scale: &Tensor, shift: &Tensor, dtype: DType) -> Result<Tensor> {
        let cols = x.dims().last().copied().unwrap_or(1);
        let op = Rowwise3 {
            kernel: "modulate",
            out_dtype: dtype,
            eps: None,
        };
        x.contiguous()?
            .apply_op3_no_bwd(&row(scale, cols)?, &row(shift, cols)?, &op)
    }

    pub fn gated_residual(x: &Tensor, y: &Tensor, gate: &Tensor) -> Result<Tensor> {
        let cols = x.dims().last().copied().unwrap_or(1);
        let op = Rowwise3 {
            kernel: "gated_residual",
            out_dtype: x.dtype(),
            eps: None,
        };
        x.contiguous()?
            .apply_op3_no_bwd(&y.contiguous()?, &row(gate, cols)?, &op)
    }

    pub fn layer_norm_modulate(
        x: &Tensor,
        scale: &Tensor,
        shift: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        let cols = x.dims().last().copied().unwrap_or(1);
        let op = Rowwise3 {
            kernel: "layer_norm_modulate",
            out_dtype: x.dtype(),
            eps: Some(eps as f32),
        };
        x.contiguous()?
            .apply_op3_no_bwd(&row(scale, cols)?, &row(shift, cols)?, &op)
    }
}
