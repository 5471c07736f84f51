//! What the project's own CUDA kernels share: the contiguous view of an input, a grid for
//! element-wise kernels, and the wrapping of a result as candle storage.

use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr, LaunchConfig};
use candle_core::cuda_backend::CudaStorageSlice;
use candle_core::{CudaDevice, CudaStorage, Layout, Result, Shape};

/// The elements of `layout` in `slice`; `align` elements of alignment for the start (1: any).
pub fn contiguous_view<'a, T: DeviceRepr>(
    slice: &'a CudaSlice<T>,
    layout: &Layout,
    align: usize,
) -> Result<CudaView<'a, T>> {
    match layout.contiguous_offsets() {
        Some((start, end)) if start % align.max(1) == 0 => Ok(slice.slice(start..end)),
        Some(_) => candle_core::bail!("kernel input not aligned to {align} elements"),
        None => candle_core::bail!("kernel input not contiguous"),
    }
}

/// 256-thread blocks covering `n` items with grid-stride loops (at most 32 blocks per SM of a
/// large GPU).
pub fn elementwise_config(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (n.div_ceil(256).clamp(1, 132 * 32) as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

pub fn storage(
    slice: CudaStorageSlice,
    device: &CudaDevice,
    shape: &Shape,
) -> (CudaStorage, Shape) {
    (
        CudaStorage {
            slice,
            device: device.clone(),
        },
        shape.clone(),
    )
}
