//! What each component's weights take on the device, read from checkpoint headers alone.
//!
//! A [`ComponentWeights`] lists a component's tensors by canonical name with their element
//! count, their stored bytes and the transformer (or text-encoder) block they belong to. Any
//! storage format can feed it: safetensors and torch files through [`ComponentWeights::from_tracked`],
//! others (GGUF) by pushing [`WeightEntry::packed`] entries.

use crate::checkpoint::{configs, open_component, Component, ComponentFiles};
use crate::dit::DitConfig;
use crate::text::Umt5Config;
use crate::vae::VaeConfig;
use crate::weights::{TensorInfo, TrackedWeights};
use crate::Result;
use candle_core::DType;

/// One tensor of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightEntry {
    /// The canonical name the layers use.
    pub name: String,
    pub elements: u64,
    /// Bytes in the file.
    pub stored_bytes: u64,
    /// Kept on the device as stored (fp8, GGUF blocks) and dequantised one layer at a time,
    /// rather than converted to the compute dtype when loaded.
    pub packed: bool,
    /// The transformer or text-encoder block the tensor belongs to.
    pub block: Option<usize>,
}

/// Bits per element of a stored dtype (candle reports sub-byte floats as 0 bytes).
fn dtype_bits(dtype: DType) -> u64 {
    match dtype {
        DType::F4 => 4,
        DType::F6E2M3 | DType::F6E3M2 => 6,
        other => other.size_in_bytes() as u64 * 8,
    }
}

impl WeightEntry {
    /// A tensor as a safetensors or torch header describes it: 16- and 32-bit floats are
    /// converted to the compute dtype when loaded; 8-bit (and narrower) storage stays as stored.
    pub fn from_info(name: &str, info: &TensorInfo, block: Option<usize>) -> Self {
        let elements = info.shape.iter().map(|&d| d as u64).product::<u64>();
        let bits = dtype_bits(info.dtype);
        WeightEntry {
            name: name.to_string(),
            elements,
            stored_bytes: (elements * bits).div_ceil(8),
            packed: bits < 16,
            block,
        }
    }

    /// A tensor kept on the device in its stored form (`stored_bytes`, e.g. a GGUF block-quantised
    /// weight), dequantised to the compute dtype just before use.
    pub fn packed(name: &str, elements: u64, stored_bytes: u64, block: Option<usize>) -> Self {
        WeightEntry {
            name: name.to_string(),
            elements,
            stored_bytes,
            packed: true,
            block,
        }
    }

    /// Bytes on the device when the component runs at `compute`.
    pub fn device_bytes(&self, compute: DType) -> u64 {
        if self.packed {
            self.stored_bytes
        } else {
            self.elements * compute.size_in_bytes() as u64
        }
    }
}

/// The block a canonical name belongs to: `blocks.N.` (transformer), `encoder.block.N.` (umT5).
pub fn block_index(component: Component, canonical: &str) -> Option<usize> {
    let rest = match component {
        Component::Transformer => canonical.strip_prefix("blocks.")?,
        Component::TextEncoder => canonical.strip_prefix("encoder.block.")?,
        Component::Vae => return None,
    };
    rest.split('.').next()?.parse().ok()
}

/// A component's tensors, as the layers will load them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentWeights {
    pub component: Component,
    pub entries: Vec<WeightEntry>,
}

impl ComponentWeights {
    pub fn new(component: Component) -> Self {
        ComponentWeights {
            component,
            entries: Vec::new(),
        }
    }

    /// Every tensor the layers read, from the headers behind `weights`. umT5's token embedding,
    /// saved twice by transformers (tied), is read once.
    pub fn from_tracked(component: Component, weights: &TrackedWeights) -> Self {
        let infos = weights.source().infos();
        let tied_duplicate = |canonical: &str| {
            component == Component::TextEncoder
                && canonical == "shared.weight"
                && weights.contains("encoder.embed_tokens.weight")
        };
        let mut entries: Vec<WeightEntry> = weights
            .canonical_names()
            .filter(|(canonical, _)| !tied_duplicate(canonical))
            .filter_map(|(canonical, stored)| {
                let info = infos.get(stored)?;
                let block = block_index(component, canonical);
                let entry = WeightEntry::from_info(canonical, info, block);
                // A GGUF tensor's header gives its decoded dtype; its blocks take fewer bytes.
                Some(match weights.source().stored_bytes(stored) {
                    Some(bytes) if bytes < entry.stored_bytes => {
                        WeightEntry::packed(canonical, entry.elements, bytes, block)
                    }
                    _ => entry,
                })
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        ComponentWeights { component, entries }
    }

    pub fn device_bytes(&self, compute: DType) -> u64 {
        self.entries.iter().map(|e| e.device_bytes(compute)).sum()
    }

    pub fn stored_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.stored_bytes).sum()
    }

    /// Blocks `0..n` (the highest block index plus one).
    pub fn block_count(&self) -> usize {
        self.entries
            .iter()
            .filter_map(|e| e.block)
            .max()
            .map_or(0, |b| b + 1)
    }

    pub fn block_bytes(&self, block: usize, compute: DType) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.block == Some(block))
            .map(|e| e.device_bytes(compute))
            .sum()
    }

    /// The largest block: the size of one streaming slot. Streamed blocks are copied densely in
    /// the compute dtype, whatever their file stores.
    pub fn largest_block_bytes(&self, compute: DType) -> u64 {
        (0..self.block_count())
            .map(|b| {
                self.entries
                    .iter()
                    .filter(|e| e.block == Some(b))
                    .map(|e| e.elements * compute.size_in_bytes() as u64)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0)
    }

    /// Everything outside the blocks (embeddings, head), resident even when blocks stream.
    pub fn outside_blocks_bytes(&self, compute: DType) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.block.is_none())
            .map(|e| e.device_bytes(compute))
            .sum()
    }

    /// The one layer dequantised at a time from packed storage: the largest packed tensor in
    /// the compute dtype (0 when nothing is packed). umT5's token embedding is never decoded
    /// whole (only the prompt's rows are gathered: `text::token_embedding`).
    pub fn dequantize_scratch_bytes(&self, compute: DType) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.packed)
            .filter(|e| {
                !(self.component == Component::TextEncoder
                    && crate::checkpoint::tied_embedding(&e.name))
            })
            .map(|e| e.elements * compute.size_in_bytes() as u64)
            .max()
            .unwrap_or(0)
    }
}

/// A model's three components and the hyper-parameters the activation estimates need: all a
/// residency plan reads.
#[derive(Debug, Clone)]
pub struct ModelInventory {
    pub transformer: ComponentWeights,
    pub text_encoder: ComponentWeights,
    pub vae: ComponentWeights,
    pub dit: DitConfig,
    pub text: Umt5Config,
    pub vae_config: VaeConfig,
}

impl ModelInventory {
    /// From the headers and configs of the component files (no tensor data is read).
    pub fn open(
        transformer: &ComponentFiles,
        vae: &ComponentFiles,
        text_encoder: &ComponentFiles,
    ) -> Result<Self> {
        let dit_weights = open_component(transformer)?;
        let dit = configs::transformer_config(&dit_weights, transformer.config.as_deref())?;
        let text_weights = open_component(text_encoder)?;
        let text = configs::text_encoder_config(&text_weights, text_encoder.config.as_deref())?;
        let vae_weights = open_component(vae)?;
        let vae_config = configs::vae_config(&vae_weights, vae.config.as_deref())?;
        crate::checkpoint::check_compatible(&dit, &vae_config, &text)?;
        Ok(Self::from_tracked(
            (&dit_weights, dit),
            (&text_weights, text),
            (&vae_weights, vae_config),
        ))
    }

    /// The tensors the layers of these configurations ask for, in `dtype` (benchmarks with
    /// random weights): the components are built over broadcast zeros, so nothing of real size
    /// is allocated.
    pub fn from_configs(
        dit: &DitConfig,
        text: &Umt5Config,
        vae_config: &VaeConfig,
        dtype: DType,
    ) -> Result<Self> {
        use crate::dit::WanTransformer;
        use crate::text::Umt5Encoder;
        use crate::vae::WanVae;
        let device = candle_core::Device::Cpu;
        let record = |component: Component,
                      build: &dyn Fn(candle_nn::VarBuilder) -> candle_core::Result<()>|
         -> Result<ComponentWeights> {
            let recorder = ShapeRecorder::default();
            let taken = recorder.taken.clone();
            build(candle_nn::VarBuilder::from_backend(
                Box::new(recorder),
                dtype,
                device.clone(),
            ))?;
            let mut entries: Vec<WeightEntry> = t2v_support::lock(&taken)
                .iter()
                .map(|(name, shape)| {
                    let info = TensorInfo {
                        shape: shape.clone(),
                        dtype,
                    };
                    WeightEntry::from_info(name, &info, block_index(component, name))
                })
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(ComponentWeights { component, entries })
        };
        Ok(ModelInventory {
            transformer: record(Component::Transformer, &|vb| {
                WanTransformer::new(dit, vb).map(drop)
            })?,
            text_encoder: record(Component::TextEncoder, &|vb| {
                Umt5Encoder::new(text, vb).map(drop)
            })?,
            vae: record(Component::Vae, &|vb| WanVae::new(vae_config, vb).map(drop))?,
            dit: dit.clone(),
            text: text.clone(),
            vae_config: vae_config.clone(),
        })
    }

    /// From weights already opened (the real-size manifests in tests).
    pub fn from_tracked(
        transformer: (&TrackedWeights, DitConfig),
        text_encoder: (&TrackedWeights, Umt5Config),
        vae: (&TrackedWeights, VaeConfig),
    ) -> Self {
        ModelInventory {
            transformer: ComponentWeights::from_tracked(Component::Transformer, transformer.0),
            text_encoder: ComponentWeights::from_tracked(Component::TextEncoder, text_encoder.0),
            vae: ComponentWeights::from_tracked(Component::Vae, vae.0),
            dit: transformer.1,
            text: text_encoder.1,
            vae_config: vae.1,
        }
    }
}

/// Names and shapes, in the order the layers asked for them.
type Taken = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<usize>)>>>;

/// Hands out broadcast zeros of any shape asked for, recording each name and shape.
#[derive(Default)]
struct ShapeRecorder {
    taken: Taken,
}

impl candle_nn::var_builder::SimpleBackend for ShapeRecorder {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        t2v_support::lock(&self.taken).push((name.to_string(), shape.dims().to_vec()));
        candle_core::Tensor::zeros((), dtype, dev)?.broadcast_as(shape)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _: DType,
        _: &candle_core::Device,
    ) -> candle_core::Result<candle_core::Tensor> {
        candle_core::bail!("no shape for `{name}`")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        // umT5 reads its embedding from `encoder.embed_tokens` when present, else `shared`.
        name != "encoder.embed_tokens.weight"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(shape: &[usize], dtype: DType) -> TensorInfo {
        TensorInfo {
            shape: shape.to_vec(),
            dtype,
        }
    }

    #[test]
    fn stored_dtype_decides_what_the_device_holds() {
        let bf16 = WeightEntry::from_info("w", &info(&[4, 8], DType::BF16), None);
        let f32 = WeightEntry::from_info("w", &info(&[4, 8], DType::F32), None);
        let fp8 = WeightEntry::from_info("w", &info(&[4, 8], DType::F8E4M3), Some(3));
        assert_eq!(
            (bf16.stored_bytes, f32.stored_bytes, fp8.stored_bytes),
            (64, 128, 32)
        );
        // 16/32-bit floats are converted to the compute dtype; fp8 stays 1 byte an element.
        assert_eq!(f32.device_bytes(DType::BF16), 64);
        assert_eq!(bf16.device_bytes(DType::F32), 128);
        assert_eq!(fp8.device_bytes(DType::BF16), 32);
        assert!(fp8.packed && !bf16.packed);
        let q4 = WeightEntry::packed("w", 256, 144, Some(0));
        assert_eq!(q4.device_bytes(DType::BF16), 144);
    }

    #[test]
    fn block_indices_come_from_canonical_names() {
        use Component::*;
        assert_eq!(
            block_index(Transformer, "blocks.17.attn1.to_q.weight"),
            Some(17)
        );
        assert_eq!(block_index(Transformer, "proj_out.weight"), None);
        assert_eq!(
            block_index(
                TextEncoder,
                "encoder.block.3.layer.0.SelfAttention.q.weight"
            ),
            Some(3)
        );
        assert_eq!(block_index(TextEncoder, "shared.weight"), None);
        assert_eq!(
            block_index(Vae, "decoder.up_blocks.1.resnets.0.conv1.weight"),
            None
        );
    }

    #[test]
    fn blocks_and_scratch_are_summed_per_block() {
        let mut c = ComponentWeights::new(Component::Transformer);
        c.entries
            .push(WeightEntry::packed("blocks.0.a", 100, 50, Some(0)));
        c.entries
            .push(WeightEntry::packed("blocks.1.a", 300, 150, Some(1)));
        c.entries.push(WeightEntry::from_info(
            "proj_out.weight",
            &info(&[10], DType::F32),
            None,
        ));
        assert_eq!(c.block_count(), 2);
        // A streamed block is copied densely, whatever its file stores.
        assert_eq!(c.largest_block_bytes(DType::BF16), 600);
        assert_eq!(c.outside_blocks_bytes(DType::BF16), 20);
        assert_eq!(c.device_bytes(DType::BF16), 220);
        assert_eq!(c.dequantize_scratch_bytes(DType::BF16), 600);
    }
}
