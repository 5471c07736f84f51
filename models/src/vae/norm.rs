use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

/// diffusers' `WanRMS_norm`: L2-normalises over channels and rescales by `sqrt(C) * gamma`
/// (not a mean-square RMS norm, and not a GroupNorm). Statistics in f32.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    gamma: Tensor,
    dim: usize,
}

const EPS: f64 = 1e-12;

impl RmsNorm {
    /// `images` selects the checkpoint's gamma shape: `[C, 1, 1]` (attention) or `[C, 1, 1, 1]`.
    pub fn new(dim: usize, images: bool, vb: VarBuilder) -> Result<Self> {
        let gamma = if images {
            vb.get((dim, 1, 1), "gamma")?
        } else {
            vb.get((dim, 1, 1, 1), "gamma")?
        };
        Ok(Self { gamma, dim })
    }

    /// `x`: `[B, T, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, false)
    }

    /// `silu(forward(x))`; on CUDA one kernel.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, true)
    }

    fn forward_act(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if cuda::eligible(x, &self.gamma) {
            return cuda::channel_norm(x, &self.gamma, self.dim, silu);
        }
        let y = self.composed(x)?;
        if silu {
            y.silu()
        } else {
            Ok(y)
        }
    }

    fn composed(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let norm = x.sqr()?.sum_keepdim(2)?.sqrt()?.maximum(EPS)?;
        let gain = (self.gamma.to_dtype(DType::F32)?.reshape((self.dim, 1, 1))?
            * (self.dim as f64).sqrt())?;
        x.broadcast_div(&norm)?
            .broadcast_mul(&gain)?
            .to_dtype(dtype)
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::EPS;
    use crate::ops::cuda_kernels::{contiguous_view, elementwise_config, storage};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};
    use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
    use candle_core::{
        CpuStorage, CudaDevice, CudaStorage, CustomOp2, DType, Layout, Result, Shape, Tensor,
    };

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/channel_norm.ptx"));

    pub fn eligible(x: &Tensor, gamma: &Tensor) -> bool {
        x.device().is_cuda()
            && matches!(x.dtype(), DType::BF16 | DType::F16)
            && gamma.dtype() == x.dtype()
            && x.rank() >= 3
    }

    struct ChannelNorm {
        silu: bool,
    }

    impl CustomOp2 for ChannelNorm {
        fn name(&self) -> &'static str {
            "vae-channel-norm"
        }
        fn cpu_fwd(
            &self,
            _: &CpuStorage,
            _: &Layout,
            _: &CpuStorage,
            _: &Layout,
        ) -> Result<(CpuStorage, Shape)> {
            candle_core::bail!("vae-channel-norm runs on CUDA only")
        }
        fn cuda_fwd(
            &self,
            x: &CudaStorage,
            lx: &Layout,
            g: &CudaStorage,
            lg: &Layout,
        ) -> Result<(CudaStorage, Shape)> {
            let dev = x.device();
            let dims = lx.dims();
            let outer: usize = dims[..2].iter().product();
            let channels = dims[2];
            let inner: usize = dims[3..].iter().product();
            if lg.shape().elem_count() != channels {
                candle_core::bail!(
                    "vae-channel-norm: gamma {:?} for {channels} channels",
                    lg.dims()
                )
            }
            #[allow(clippy::too_many_arguments)]
            fn go<T: DeviceRepr>(
                dev: &CudaDevice,
                name: &str,
                x: &CudaSlice<T>,
                lx: &Layout,
                g: &CudaSlice<T>,
                lg: &Layout,
                (outer, channels, inner): (usize, usize, usize),
                silu: bool,
            ) -> Result<CudaSlice<T>> {
                let (xv, gv) = (contiguous_view(x, lx, 1)?, contiguous_view(g, lg, 1)?);
                let func = dev.get_or_load_custom_func(name, "t2v_channel_norm", PTX)?;
                let n = outer * channels * inner;
                // SAFETY: the kernel writes all n elements.
                let out = unsafe { dev.alloc::<T>(n)? };
                let (o64, c32, i64_) = (outer as u64, channels as u32, inner as u64);
                let (scale, eps, act) = ((channels as f32).sqrt(), EPS as f32, silu as i32);
                let mut b = func.builder();
                b.arg(&xv);
                b.arg(&gv);
                b.arg(&out);
                b.arg(&o64);
                b.arg(&c32);
                b.arg(&i64_);
                b.arg(&scale);
                b.arg(&eps);
                b.arg(&act);
                let cfg = elementwise_config(outer * inner);
                // SAFETY: arguments match the kernel's signature.
                unsafe { b.launch(cfg) }.w()?;
                Ok(out)
            }
            let shape = (outer, channels, inner);
            let slice = match (&x.slice, &g.slice) {
                (CudaStorageSlice::BF16(x), CudaStorageSlice::BF16(g)) => CudaStorageSlice::BF16(
                    go(dev, "channel_norm_bf16", x, lx, g, lg, shape, self.silu)?,
                ),
                (CudaStorageSlice::F16(x), CudaStorageSlice::F16(g)) => CudaStorageSlice::F16(go(
                    dev,
                    "channel_norm_f16",
                    x,
                    lx,
                    g,
                    lg,
                    shape,
                    self.silu,
                )?),
                _ => candle_core::bail!("vae-channel-norm: bf16 or f16 only"),
            };
            Ok(storage(slice, dev, lx.shape()))
        }
    }

    pub fn channel_norm(x: &Tensor, gamma: &Tensor, dim: usize, silu: bool) -> Result<Tensor> {
        if x.dim(2)? != dim {
            candle_core::bail!("vae norm: {:?} has no {dim} channels at dim 2", x.dims())
        }
        x.contiguous()?
            .apply_op2_no_bwd(&gamma.flatten_all()?.contiguous()?, &ChannelNorm { silu })
    }
}
