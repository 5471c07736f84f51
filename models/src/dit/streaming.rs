//! Block streaming: the transformer's blocks kept in host memory and copied, just before each
//! one runs, into a ring of a few device slots, so that only the slots' blocks are on the device.
//!
//! A slot is a [`Block`] built once over preallocated device tensors; a copy overwrites those
//! tensors in place, so the device memory of the blocks stays the slots' and nothing is
//! allocated per block. On the CPU the "device" is the same memory, but the copies still happen.
//! On CUDA the host copies live in page-locked memory and a copy stream fills the next slot while
//! the compute stream runs the current one; events order them (a slot is refilled only after the
//! block that used it has run, and a block runs only after its copy has landed).

use super::block::Block;
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::sync::{Arc, Mutex};

/// Records every tensor a layer constructor takes from a [`VarBuilder`], in order.
struct Recording {
    inner: Option<Box<dyn SimpleBackend>>,
    taken: Arc<Mutex<Vec<(String, Tensor)>>>,
}

impl SimpleBackend for Recording {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let t = match &self.inner {
            Some(inner) => inner.get(shape, name, init, dtype, dev)?,
            // A slot: zeros of the shape and dtype asked for, overwritten by every copy.
            None => Tensor::zeros(shape, dtype, dev)?,
        };
        let t = t.contiguous()?;
        t2v_support::lock(&self.taken).push((name.to_string(), t.clone()));
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        match &self.inner {
            Some(inner) => inner.get_unchecked(name, dtype, dev),
            None => candle_core::bail!("streamed block: `{name}` has no known shape"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.as_ref().is_none_or(|i| i.contains_tensor(name))
    }
}

/// Builds a block with `build` over a recording backend; returns it with its tensors in the
/// order it took them.
pub(crate) fn record_block(
    source: Option<Box<dyn SimpleBackend>>,
    dtype: DType,
    device: &Device,
    build: impl FnOnce(VarBuilder) -> Result<Block>,
) -> Result<(Block, Vec<(String, Tensor)>)> {
    let taken = Arc::new(Mutex::new(Vec::new()));
    let backend = Recording {
        inner: source,
        taken: taken.clone(),
    };
    let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
    let block = build(vb)?;
    let tensors = std::mem::take(&mut *t2v_support::lock(&taken));
    Ok((block, tensors))
}

/// One device slot: a block over tensors that copies overwrite.
struct Slot {
    block: Block,
    tensors: Vec<Tensor>,
    /// The block index whose weights the slot holds now.
    holds: Option<usize>,
}

struct Ring {
    slots: Vec<Slot>,
    copies: u64,
    #[cfg(feature = "cuda")]
    cuda: Option<cuda::Copier>,
}

/// The blocks of a streamed transformer: see the module documentation.
pub struct BlockStream {
    names: Vec<String>,
    blocks: usize,
    /// Per block, its tensors in the order the block constructor takes them, in host memory
    /// (emptied on CUDA, where the page-locked copies replace them).
    host: Vec<Vec<Tensor>>,
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for BlockStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStream")
            .field("blocks", &self.blocks)
            .field("slots", &t2v_support::lock(&self.ring).slots.len())
            .finish()
    }
}

impl BlockStream {
    /// `host`: every block's tensors as [`record_block`] took them from the checkpoint (on the
    /// CPU); `slots`: blocks recorded over zero tensors on the device, as many as the ring has.
    pub(crate) fn new(
        host: Vec<Vec<(String, Tensor)>>,
        slots: Vec<(Block, Vec<(String, Tensor)>)>,
    ) -> Result<Self> {
        let Some((_, first)) = slots.first() else {
            candle_core::bail!("block streaming needs at least one device slot")
        };
        let names: Vec<String> = first.iter().map(|(n, _)| n.clone()).collect();
        for (i, tensors) in host.iter().enumerate() {
            let these: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
            if these != names.iter().map(String::as_str).collect::<Vec<_>>() {
                candle_core::bail!("streamed block {i} does not have the slots' tensors")
            }
            for ((name, t), (_, s)) in tensors.iter().zip(first) {
                if t.dims() != s.dims() || t.dtype() != s.dtype() {
                    candle_core::bail!(
                        "streamed block {i}: `{name}` is {:?} {:?}, the slot's {:?} {:?}",
                        t.dims(),
                        t.dtype(),
                        s.dims(),
                        s.dtype()
                    )
                }
            }
        }
        #[cfg(feature = "cuda")]
        let device = first[0].1.device().clone();
        let slots: Vec<Slot> = slots
            .into_iter()
            .map(|(block, tensors)| Slot {
                block,
                tensors: tensors.into_iter().map(|(_, t)| t).collect(),
                holds: None,
            })
            .collect();
        let blocks = host.len();
        #[allow(unused_mut)]
        let mut host: Vec<Vec<Tensor>> = host
            .into_iter()
            .map(|b| b.into_iter().map(|(_, t)| t).collect())
            .collect();
        #[cfg(feature = "cuda")]
        let cuda = cuda::Copier::new(&device, &host, slots.len())?;
        #[cfg(feature = "cuda")]
        if cuda.is_some() {
            host.iter_mut().for_each(Vec::clear);
        }
        Ok(BlockStream {
            names,
            blocks,
            host,
            ring: Mutex::new(Ring {
                slots,
                copies: 0,
                #[cfg(feature = "cuda")]
                cuda,
            }),
        })
    }

    pub fn len(&self) -> usize {
        self.blocks
    }

    pub fn is_empty(&self) -> bool {
        self.blocks == 0
    }

    pub fn slot_count(&self) -> usize {
        t2v_support::lock(&self.ring).slots.len()
    }

    /// How many block copies into a slot were made so far.
    pub fn copies(&self) -> u64 {
        t2v_support::lock(&self.ring).copies
    }

    /// The tensor names of one block, in copy order.
    pub fn tensor_names(&self) -> &[String] {
        &self.names
    }

    /// Runs `f` on block `index`, copied into its slot first (and, on CUDA, the next block's
    /// copy started behind it).
    pub fn with_block<R>(&self, index: usize, f: impl FnOnce(&Block) -> Result<R>) -> Result<R> {
        let mut ring = t2v_support::lock(&self.ring);
        let ring = &mut *ring;
        let n = ring.slots.len();
        let slot = index % n;
        if ring.slots[slot].holds != Some(index) {
            self.fill(ring, slot, index)?;
        }
        #[cfg(feature = "cuda")]
        if let Some(copier) = &mut ring.cuda {
            copier.before_compute(slot)?;
        }
        // Prefetch: with a copy stream, the next block's copy runs while this one computes.
        #[cfg(feature = "cuda")]
        if ring.cuda.is_some() && n > 1 && index + 1 < self.blocks {
            let next = (index + 1) % n;
            if ring.slots[next].holds != Some(index + 1) {
                self.fill(ring, next, index + 1)?;
            }
        }
        let out = f(&ring.slots[slot].block)?;
        #[cfg(feature = "cuda")]
        if let Some(copier) = &mut ring.cuda {
            copier.after_compute(slot)?;
        }
        Ok(out)
    }

    /// Copies block `index`'s host tensors into `slot`'s device tensors, in place.
    fn fill(&self, ring: &mut Ring, slot: usize, index: usize) -> Result<()> {
        if index >= self.blocks {
            candle_core::bail!("no streamed block {index}")
        }
        #[cfg(feature = "cuda")]
        if let Some(copier) = &mut ring.cuda {
            copier.copy(slot, index, &ring.slots[slot].tensors)?;
            ring.slots[slot].holds = Some(index);
            ring.copies += 1;
            return Ok(());
        }
        let target = &ring.slots[slot];
        for (dst, src) in target.tensors.iter().zip(&self.host[index]) {
            dst.slice_set(&src.to_device(dst.device())?, 0, 0)?;
        }
        ring.slots[slot].holds = Some(index);
        ring.copies += 1;
        Ok(())
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    //! The CUDA side: page-locked host copies, a copy stream, and events between the streams.

    use candle_core::cuda_backend::cudarc::driver::{
        CudaEvent, CudaSlice, CudaStream, DeviceRepr, PinnedHostSlice, ValidAsZeroBits,
    };
    use candle_core::cuda_backend::CudaDType;
    use candle_core::{CudaStorage, DType, Device, InplaceOp1, Layout, Result, Tensor};
    use half::{bf16, f16};
    use std::sync::Arc;

    fn err(e: impl std::fmt::Debug) -> candle_core::Error {
        candle_core::Error::Msg(format!("block streaming: {e:?}"))
    }

    /// One host tensor in page-locked memory.
    enum Pinned {
        Bf16(PinnedHostSlice<bf16>),
        F16(PinnedHostSlice<f16>),
        F32(PinnedHostSlice<f32>),
    }

    fn pin<T: DeviceRepr + ValidAsZeroBits + candle_core::WithDType>(
        stream: &Arc<CudaStream>,
        t: &Tensor,
    ) -> Result<PinnedHostSlice<T>> {
        let values = t.flatten_all()?.to_vec1::<T>()?;
        // SAFETY: the slice is written whole below before any copy reads it.
        let mut pinned =
            unsafe { stream.context().alloc_pinned::<T>(values.len()) }.map_err(err)?;
        pinned.as_mut_slice().map_err(err)?.copy_from_slice(&values);
        Ok(pinned)
    }

    /// Copies one pinned host tensor into a slot tensor's device memory on the copy stream.
    struct CopyIn<'a> {
        src: &'a Pinned,
        stream: &'a Arc<CudaStream>,
    }

    fn copy_typed<T: CudaDType + DeviceRepr>(
        stream: &Arc<CudaStream>,
        src: &PinnedHostSlice<T>,
        storage: &mut CudaStorage,
    ) -> Result<()> {
        let dst: &mut CudaSlice<T> = storage.as_cuda_slice_mut::<T>()?;
        stream.memcpy_htod(src, dst).map_err(err)
    }

    impl InplaceOp1 for CopyIn<'_> {
        fn name(&self) -> &'static str {
            "streamed-block-copy"
        }
        fn cpu_fwd(&self, _: &mut candle_core::CpuStorage, _: &Layout) -> Result<()> {
            candle_core::bail!("block streaming: a CUDA copy was asked of a CPU tensor")
        }
        fn cuda_fwd(&self, storage: &mut CudaStorage, layout: &Layout) -> Result<()> {
            if !layout.is_contiguous() || layout.start_offset() != 0 {
                candle_core::bail!("block streaming: a slot tensor must be contiguous")
            }
            match self.src {
                Pinned::Bf16(s) => copy_typed(self.stream, s, storage),
                Pinned::F16(s) => copy_typed(self.stream, s, storage),
                Pinned::F32(s) => copy_typed(self.stream, s, storage),
            }
        }
    }

    pub(super) struct Copier {
        copy_stream: Arc<CudaStream>,
        compute_stream: Arc<CudaStream>,
        /// Per block, its tensors in page-locked host memory.
        pinned: Vec<Vec<Pinned>>,
        /// Per slot: its copy has landed / the block that used it has run.
        ready: Vec<Option<CudaEvent>>,
        free: Vec<Option<CudaEvent>>,
    }

    impl Copier {
        /// `None` off CUDA.
        pub(super) fn new(
            device: &Device,
            host: &[Vec<Tensor>],
            slots: usize,
        ) -> Result<Option<Copier>> {
            let Device::Cuda(dev) = device else {
                return Ok(None);
            };
            let compute_stream = dev.cuda_stream();
            let copy_stream = compute_stream.fork().map_err(err)?;
            let pinned = host
                .iter()
                .map(|block| {
                    block
                        .iter()
                        .map(|t| {
                            Ok(match t.dtype() {
                                DType::BF16 => Pinned::Bf16(pin(&copy_stream, t)?),
                                DType::F16 => Pinned::F16(pin(&copy_stream, t)?),
                                DType::F32 => Pinned::F32(pin(&copy_stream, t)?),
                                other => candle_core::bail!(
                                    "block streaming: {other:?} weights are not streamed"
                                ),
                            })
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Copier {
                copy_stream,
                compute_stream,
                pinned,
                ready: (0..slots).map(|_| None).collect(),
                free: (0..slots).map(|_| None).collect(),
            }))
        }

        /// Queues block `index`'s copy into `slot` on the copy stream, after the block that
        /// last used the slot has run.
        pub(super) fn copy(&mut self, slot: usize, index: usize, dst: &[Tensor]) -> Result<()> {
            if let Some(free) = &self.free[slot] {
                self.copy_stream.wait(free).map_err(err)?;
            }
            for (t, src) in dst.iter().zip(&self.pinned[index]) {
                t.inplace_op1(&CopyIn {
                    src,
                    stream: &self.copy_stream,
                })?;
            }
            self.ready[slot] = Some(self.copy_stream.record_event(None).map_err(err)?);
            Ok(())
        }

        /// The compute stream waits for `slot`'s copy.
        pub(super) fn before_compute(&mut self, slot: usize) -> Result<()> {
            if let Some(ready) = &self.ready[slot] {
                self.compute_stream.wait(ready).map_err(err)?;
            }
            Ok(())
        }

        /// Marks `slot` free once the work queued on the compute stream so far has run.
        pub(super) fn after_compute(&mut self, slot: usize) -> Result<()> {
            self.free[slot] = Some(self.compute_stream.record_event(None).map_err(err)?);
            Ok(())
        }
    }
}
