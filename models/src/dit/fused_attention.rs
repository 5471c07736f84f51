//! The fused attention kernel on CUDA (`fused_attention.cu`): scores stay in registers, so no
//! score block reaches device memory at all.

use crate::ops::cuda_kernels::{contiguous_view, storage};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{
    CudaDevice, CudaStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor,
};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/fused_attention.ptx"));
const MODULE: &str = "t2v_fused_attention";
/// Query rows per thread block (16 per warp, 4 warps): must match the kernel.
const ROWS_PER_BLOCK: usize = 64;
const THREADS: u32 = 128;

/// Whether the fused kernel handles these inputs: CUDA, bf16/f16, head dim 64 or 128, a GPU of
/// compute capability 8.0 or newer (tensor-core bf16 `mma.sync`).
pub fn supported(q: &Tensor) -> bool {
    let Device::Cuda(dev) = q.device() else {
        return false;
    };
    matches!(q.dtype(), DType::BF16 | DType::F16)
        && matches!(q.dims().last(), Some(64 | 128))
        && dev
            .cuda_stream()
            .context()
            .compute_capability()
            .is_ok_and(|(major, _)| major >= 8)
}

/// `softmax(q k^T * scale) v` for q `[B,H,N,d]`, k and v `[B,H,M,d]`; see [`supported`].
pub fn sdpa(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, h, _n, d) = q.dims4()?;
    let (bk, hk, _m, dk) = k.dims4()?;
    if (bk, hk, dk) != (b, h, d) || k.dims() != v.dims() {
        candle_core::bail!(
            "fused attention: q {:?}, k {:?}, v {:?} do not match",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    q.contiguous()?.apply_op3_no_bwd(
        &k.contiguous()?,
        &v.contiguous()?,
        &FusedAttention {
            scale_log2: (scale * std::f64::consts::LOG2_E) as f32,
        },
    )
}

struct FusedAttention {
    scale_log2: f32,
}

impl FusedAttention {
    #[allow(clippy::too_many_arguments)]
    fn launch<T: DeviceRepr>(
        &self,
        kernel: &str,
        dev: &CudaDevice,
        q: &CudaSlice<T>,
        lq: &Layout,
        k: &CudaSlice<T>,
        lk: &Layout,
        v: &CudaSlice<T>,
        lv: &Layout,
    ) -> Result<CudaSlice<T>> {
        let (b, h, n, _d) = lq.shape().dims4()?;
        let m = lk.shape().dims4()?.2;
        // 16-byte vector loads: every input starts at a multiple of 8 elements.
        let (q, k, v) = (
            contiguous_view(q, lq, 8)?,
            contiguous_view(k, lk, 8)?,
            contiguous_view(v, lv, 8)?,
        );
        let func = dev.get_or_load_custom_func(kernel, MODULE, PTX)?;
        // SAFETY: every element is written by the kernel (rows < n of every (b, h)).
        let out = unsafe { dev.alloc::<T>(lq.shape().elem_count())? };
        let (n32, m32) = (n as i32, m as i32);
        let mut builder = func.builder();
        builder.arg(&q);
        builder.arg(&k);
        builder.arg(&v);
        builder.arg(&out);
        builder.arg(&n32);
        builder.arg(&m32);
        builder.arg(&self.scale_log2);
        let cfg = LaunchConfig {
            grid_dim: (n.div_ceil(ROWS_PER_BLOCK) as u32, (b * h) as u32, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the argument list matches the kernel's signature; shapes were checked.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(out)
    }
}

impl CustomOp3 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        _: &candle_core::CpuStorage,
        _: &Layout,
        _: &candle_core::CpuStorage,
        _: &Layout,
        _: &candle_core::CpuStorage,
        _: &Layout,
    ) -> Result<(candle_core::CpuStorage, Shape)> {
        candle_core::bail!("fused attention runs on CUDA only")
    }

    fn cuda_fwd(
        &self,
        q: &CudaStorage,
        lq: &Layout,
        k: &CudaStorage,
        lk: &Layout,
        v: &CudaStorage,
        lv: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let dev = q.device();
        let d = lq.shape().dims4()?.3;
        if d != 64 && d != 128 {
            candle_core::bail!("fused attention: head dim {d} (64 or 128 only)");
        }
        let slice = match (&q.slice, &k.slice, &v.slice) {
            (CudaStorageSlice::BF16(q), CudaStorageSlice::BF16(k), CudaStorageSlice::BF16(v)) => {
                let kernel = format!("fused_attention_bf16_d{d}");
                CudaStorageSlice::BF16(self.launch(&kernel, dev, q, lq, k, lk, v, lv)?)
            }
            (CudaStorageSlice::F16(q), CudaStorageSlice::F16(k), CudaStorageSlice::F16(v)) => {
                let kernel = format!("fused_attention_f16_d{d}");
                CudaStorageSlice::F16(self.launch(&kernel, dev, q, lq, k, lk, v, lv)?)
            }
            _ => candle_core::bail!("fused attention needs bf16 or f16 q, k and v"),
        };
        Ok(storage(slice, dev, lq.shape()))
    }
}
