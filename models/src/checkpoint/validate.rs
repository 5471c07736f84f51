//! Checks a component's tensors against the architecture from the header alone: the layers are
//! built over a backend that hands out broadcast zeros (nothing of real size is allocated and no
//! weight is read), records every tensor the architecture asks for that the file lacks or holds
//! in another shape, and keeps going, so that one pass names every problem. What the layers never
//! asked for is left over.

use super::configs;
use super::files::ComponentFiles;
use super::layout::Component;
use crate::dit::{DitConfig, WanTransformer};
use crate::text::{Umt5Config, Umt5Encoder};
use crate::vae::{VaeConfig, WanVae};
use crate::weights::TrackedWeights;
use crate::Result;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::fmt;
use std::sync::{Arc, Mutex};
use t2v_support::lock;

/// A tensor held in another shape than the architecture needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misshaped {
    /// The name in the file.
    pub stored: String,
    pub found: Vec<usize>,
    pub expected: Vec<usize>,
}

/// What a component file holds against what its architecture needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayoutCheck {
    /// Tensors the architecture asked for.
    pub required: usize,
    /// Needed but absent, by canonical name.
    pub missing: Vec<String>,
    pub misshaped: Vec<Misshaped>,
    /// In the file but not part of the architecture, by stored name.
    pub unexpected: Vec<String>,
}

impl LayoutCheck {
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.misshaped.is_empty() && self.unexpected.is_empty()
    }

    pub fn problem_count(&self) -> usize {
        self.missing.len() + self.misshaped.len() + self.unexpected.len()
    }
}

impl fmt::Display for LayoutCheck {
    /// One line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for name in &self.missing {
            writeln!(f, "missing tensor `{name}`")?;
        }
        for m in &self.misshaped {
            writeln!(
                f,
                "tensor `{}` has shape {:?}, expected {:?}",
                m.stored, m.found, m.expected
            )?;
        }
        for name in &self.unexpected {
            writeln!(
                f,
                "unexpected tensor `{name}` (not part of the architecture)"
            )?;
        }
        Ok(())
    }
}

/// Past this many missing tensors the check stops: the file is not this architecture.
const MAX_MISSING: usize = 1000;

#[derive(Default)]
struct Findings {
    required: usize,
    missing: Vec<String>,
    misshaped: Vec<Misshaped>,
}

/// The shape-checking backend over a component's tracked weights.
#[derive(Clone)]
struct ShapeCheck {
    weights: TrackedWeights,
    findings: Arc<Mutex<Findings>>,
    /// Elements of the file's largest tensor.
    largest_tensor: usize,
}

impl SimpleBackend for ShapeCheck {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut findings = lock(&self.findings);
        if findings.missing.len() >= MAX_MISSING {
            // A config claiming 2^60 layers must not make the check run (and record) forever.
            candle_core::bail!(
                "more than {MAX_MISSING} tensors of the architecture are missing: the config does not describe this file"
            );
        }
        findings.required += 1;
        let fits_the_file = shape
            .dims()
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .is_some_and(|n| n <= self.largest_tensor.max(1 << 20));
        if self.weights.shape_of(name) != Some(shape.dims()) && !fits_the_file {
            // The layers may convert what they get: a config asking for a tensor bigger than
            // any in the file would make them allocate it.
            candle_core::bail!(
                "tensor `{name}` would have shape {:?}, larger than any tensor in the file: the config does not describe this file",
                shape.dims()
            );
        }
        match self.weights.shape_of(name) {
            None => findings.missing.push(name.to_string()),
            Some(found) if found != shape.dims() => findings.misshaped.push(Misshaped {
                stored: self.weights.stored_name(name).unwrap_or(name).to_string(),
                found: found.to_vec(),
                expected: shape.dims().to_vec(),
            }),
            Some(_) => {}
        }
        // A mis-shaped tensor counts as seen: it is reported once, as mis-shaped.
        self.weights.mark_used(name);
        Tensor::zeros((), dtype, dev)?.broadcast_as(shape)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let shape = self
            .weights
            .shape_of(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor `{name}`")))?
            .to_vec();
        self.weights.mark_used(name);
        Tensor::zeros((), dtype, dev)?.broadcast_as(shape)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.weights.contains(name)
    }
}

/// Builds a component over the checking backend and collects what it found.
fn check_with(
    weights: &TrackedWeights,
    dtype: DType,
    ignorable: impl Fn(&str) -> bool,
    build: impl FnOnce(VarBuilder<'static>) -> candle_core::Result<()>,
) -> Result<LayoutCheck> {
    let largest_tensor = weights
        .source()
        .infos()
        .values()
        .map(|i| i.shape.iter().fold(1usize, |n, &d| n.saturating_mul(d)))
        .max()
        .unwrap_or(0);
    let backend = ShapeCheck {
        weights: weights.fresh(),
        findings: Arc::default(),
        largest_tensor,
    };
    let vb = VarBuilder::from_backend(Box::new(backend.clone()), dtype, Device::Cpu);
    build(vb).map_err(|e| crate::Error::checkpoint(weights.source().origin(), e.to_string()))?;
    let findings = std::mem::take(&mut *lock(&backend.findings));
    Ok(LayoutCheck {
        required: findings.required,
        missing: findings.missing,
        misshaped: findings.misshaped,
        unexpected: backend.weights.unused(ignorable),
    })
}

pub fn check_transformer(weights: &TrackedWeights, cfg: &DitConfig) -> Result<LayoutCheck> {
    check_with(
        weights,
        DType::BF16,
        |_| false,
        |vb| WanTransformer::new(cfg, vb).map(|_| ()),
    )
}

/// The whole VAE, or its decoder only when the file holds no encoder.
pub fn check_vae(weights: &TrackedWeights, cfg: &VaeConfig) -> Result<LayoutCheck> {
    cfg.validate()
        .map_err(|e| crate::Error::checkpoint(weights.source().origin(), e.to_string()))?;
    let has_encoder = weights.contains("encoder.conv_in.weight");
    check_with(
        weights,
        DType::F32,
        |_| false,
        |vb| {
            if has_encoder {
                WanVae::new(cfg, vb).map(|_| ())
            } else {
                WanVae::new_decoder_only(cfg, vb).map(|_| ())
            }
        },
    )
}

pub fn check_text_encoder(weights: &TrackedWeights, cfg: &Umt5Config) -> Result<LayoutCheck> {
    check_with(weights, DType::BF16, super::tied_embedding, |vb| {
        Umt5Encoder::new(cfg, vb).map(|_| ())
    })
}

/// Reads a component's header and config and checks its tensors against the architecture.
pub fn check_component(files: &ComponentFiles) -> Result<LayoutCheck> {
    let weights = super::open_component(files)?;
    let config = files.config.as_deref();
    match files.layout.component {
        Component::Transformer => {
            check_transformer(&weights, &configs::transformer_config(&weights, config)?)
        }
        Component::Vae => check_vae(&weights, &configs::vae_config(&weights, config)?),
        Component::TextEncoder => {
            check_text_encoder(&weights, &configs::text_encoder_config(&weights, config)?)
        }
    }
}
