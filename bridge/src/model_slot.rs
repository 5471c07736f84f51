//! The loaded model: each component is loaded the first time a job needs it and kept for the
//! next one, until the model (or its dtype) changes, the service is idle long enough, or the
//! service is asked to unload. In low-memory mode the text encoder is freed after each prompt is encoded,
//! so it is never resident together with the transformer. A new set of LoRAs reloads the
//! transformer and the text encoder (with the LoRAs merged in) and keeps the VAE.

use crate::error::Result;
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use t2v_models::checkpoint::{self, configs, ModelFiles};
use t2v_models::dit::WanTransformer;
use t2v_models::lora::{LoraSpec, Loras};
use t2v_models::preview::LatentRgb;
use t2v_models::taehv::{load_taehv, TaehvDecoder};
use t2v_models::text::{PromptTokenizer, Umt5Encoder};
use t2v_models::vae::WanVae;

#[derive(Default)]
pub(crate) struct LoadCounters {
    /// Times a model went from nothing loaded to something loaded.
    pub model_loads: AtomicU64,
    /// Component weight loads (text encoder, transformer, VAE).
    pub component_loads: AtomicU64,
    pub unloads: AtomicU64,
    /// Which components are loaded now: [`ResidentComponents`] as bits.
    pub resident: AtomicU8,
}

/// Which components the service holds loaded (on the device, or the text encoder on the CPU
/// when the plan encodes there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResidentComponents {
    pub text_encoder: bool,
    pub transformer: bool,
    pub vae: bool,
}

impl ResidentComponents {
    fn bits(self) -> u8 {
        self.text_encoder as u8 | (self.transformer as u8) << 1 | (self.vae as u8) << 2
    }
    pub(crate) fn from_bits(bits: u8) -> Self {
        ResidentComponents {
            text_encoder: bits & 1 != 0,
            transformer: bits & 2 != 0,
            vae: bits & 4 != 0,
        }
    }
}

#[derive(PartialEq)]
struct Identity {
    fingerprint: String,
    dtype: DType,
}

#[derive(Default)]
pub(crate) struct ModelSlot {
    identity: Option<Identity>,
    files: Option<ModelFiles>,
    checked: bool,
    tokenizer: Option<Arc<PromptTokenizer>>,
    text_encoder: Option<Arc<Umt5Encoder>>,
    transformer: Option<Arc<WanTransformer>>,
    vae: Option<Arc<WanVae>>,
    /// The previews' latent-to-RGB projection, once looked for (`Some(None)`: the model has
    /// none).
    latent_rgb: Option<Option<Arc<LatentRgb>>>,
    /// The tiny decoder last asked for, with its file.
    tiny_decoder: Option<(PathBuf, Arc<TaehvDecoder>)>,
    /// A component of the selected model was loaded since it was selected or unloaded: later
    /// component loads (the text encoder again, in low-memory mode) are not new model loads.
    in_use: bool,
    /// The selected LoRAs, their identity ([`crate::model_identity::with_loras`]) and, once a
    /// component needed them, the files opened.
    loras: Vec<LoraSpec>,
    lora_identity: Option<String>,
    opened_loras: Option<Arc<Loras>>,
}

impl ModelSlot {
    /// Makes `files` at `dtype` the current model, dropping whatever else was loaded.
    pub fn select(
        &mut self,
        files: &ModelFiles,
        fingerprint: &str,
        dtype: DType,
        counters: &LoadCounters,
    ) {
        let identity = Identity {
            fingerprint: fingerprint.to_string(),
            dtype,
        };
        if self.identity.as_ref() != Some(&identity) {
            self.unload(counters);
            self.identity = Some(identity);
            self.files = Some(files.clone());
            self.checked = false;
        }
    }

    /// Makes `loras` (whose identity is `identity`) the LoRAs of the selected model: when they
    /// differ from the last ones, the components they change are dropped, to be reloaded with
    /// them; the VAE stays.
    pub fn select_loras(&mut self, loras: &[LoraSpec], identity: &str) {
        if self.lora_identity.as_deref() != Some(identity) {
            self.text_encoder = None;
            self.transformer = None;
            self.lora_identity = Some(identity.to_string());
            self.loras = loras.to_vec();
            self.opened_loras = None;
        }
    }

    fn opened_loras(&mut self) -> Result<Arc<Loras>> {
        if self.opened_loras.is_none() {
            self.opened_loras = Some(Arc::new(Loras::open(&self.loras)?));
        }
        Ok(self.opened_loras.clone().expect("opened"))
    }

    pub fn is_loaded(&self) -> bool {
        self.text_encoder.is_some() || self.transformer.is_some() || self.vae.is_some()
    }

    /// Drops every component; returns whether anything was loaded.
    pub fn unload(&mut self, counters: &LoadCounters) -> bool {
        let was = self.is_loaded();
        self.tokenizer = None;
        self.text_encoder = None;
        self.transformer = None;
        self.vae = None;
        self.latent_rgb = None;
        self.tiny_decoder = None;
        self.in_use = false;
        if was {
            counters.unloads.fetch_add(1, Ordering::Relaxed);
        }
        self.publish(counters);
        was
    }

    /// Records which components are loaded, for [`crate::ServiceStats::resident`].
    fn publish(&self, counters: &LoadCounters) {
        let now = ResidentComponents {
            text_encoder: self.text_encoder.is_some(),
            transformer: self.transformer.is_some(),
            vae: self.vae.is_some(),
        };
        counters.resident.store(now.bits(), Ordering::SeqCst);
    }

    pub fn free_text_encoder(&mut self, counters: &LoadCounters) {
        self.text_encoder = None;
        self.publish(counters);
    }

    /// Frees the transformer and the VAE, so that the text encoder can load alone.
    pub fn free_for_text_encoder(&mut self, counters: &LoadCounters) {
        self.transformer = None;
        self.vae = None;
        self.publish(counters);
    }

    fn files(&self) -> &ModelFiles {
        self.files.as_ref().expect("select() before loading")
    }

    fn dtype(&self) -> DType {
        self.identity
            .as_ref()
            .expect("select() before loading")
            .dtype
    }

    /// Checks once per model, from headers and configs alone, that the components fit together.
    fn check(&mut self) -> Result<()> {
        if !self.checked {
            let files = self.files();
            let text = checkpoint::open_component(&files.text_encoder)?;
            let text_cfg =
                configs::text_encoder_config(&text, files.text_encoder.config.as_deref())?;
            let dit = checkpoint::open_component(&files.transformer)?;
            let dit_cfg = configs::transformer_config(&dit, files.transformer.config.as_deref())?;
            let vae = checkpoint::open_component(&files.vae)?;
            let vae_cfg = configs::vae_config(&vae, files.vae.config.as_deref())?;
            checkpoint::check_compatible(&dit_cfg, &vae_cfg, &text_cfg)?;
            self.checked = true;
        }
        Ok(())
    }

    fn counting(&mut self, counters: &LoadCounters) {
        if !self.in_use {
            counters.model_loads.fetch_add(1, Ordering::Relaxed);
            self.in_use = true;
        }
        counters.component_loads.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `transformer(device, streamed)` would read weights.
    pub fn needs_load_transformer_as(&self, streamed: Option<usize>) -> bool {
        self.transformer
            .as_ref()
            .is_none_or(|t| t.block_stream().map(|s| s.slot_count()) != streamed)
    }

    /// Whether `text_encoder(device)` would read weights.
    pub fn needs_load_text_encoder(&self, device: &Device) -> bool {
        self.text_encoder
            .as_ref()
            .is_none_or(|e| !e.device().same_device(device))
    }
    pub fn needs_load_vae(&self) -> bool {
        self.vae.is_none()
    }

    pub fn text_encoder(
        &mut self,
        device: &Device,
        counters: &LoadCounters,
    ) -> Result<(Arc<PromptTokenizer>, Arc<Umt5Encoder>)> {
        self.check()?;
        if self.tokenizer.is_none() {
            self.tokenizer = Some(Arc::new(checkpoint::load_tokenizer(
                &self.files().tokenizer,
            )?));
        }
        if self.needs_load_text_encoder(device) {
            // Loaded elsewhere (the plan moved it between the CPU and the device): drop it first.
            self.free_text_encoder(counters);
            let loras = self.opened_loras()?;
            let encoder = checkpoint::load_text_encoder_with_loras(
                &self.files().text_encoder,
                &loras,
                self.dtype(),
                device,
            )?;
            self.counting(counters);
            self.text_encoder = Some(Arc::new(encoder));
            self.publish(counters);
        }
        Ok((
            self.tokenizer.clone().expect("loaded"),
            self.text_encoder.clone().expect("loaded"),
        ))
    }

    /// The transformer, resident or (`streamed: Some(slots)`) with its blocks streamed through
    /// that many device slots; loaded again when it is held the other way.
    pub fn transformer(
        &mut self,
        device: &Device,
        streamed: Option<usize>,
        counters: &LoadCounters,
    ) -> Result<Arc<WanTransformer>> {
        self.check()?;
        if self.needs_load_transformer_as(streamed) {
            self.transformer = None;
            let loras = self.opened_loras()?;
            let files = &self.files().transformer;
            let transformer = match streamed {
                None => {
                    checkpoint::load_transformer_with_loras(files, &loras, self.dtype(), device)?
                }
                Some(slots) => checkpoint::load_transformer_streamed(
                    files,
                    &loras,
                    self.dtype(),
                    device,
                    slots,
                )?,
            };
            self.counting(counters);
            self.transformer = Some(Arc::new(transformer));
            self.publish(counters);
        }
        Ok(self.transformer.clone().expect("loaded"))
    }

    /// The projection previews use for a VAE of `z_dim` latent channels (see
    /// [`checkpoint::load_latent_rgb`]); `None` when the model has none.
    pub fn latent_rgb(&mut self, z_dim: usize) -> Result<Option<Arc<LatentRgb>>> {
        if self.latent_rgb.is_none() {
            let rgb = checkpoint::load_latent_rgb(&self.files().vae, z_dim)?;
            self.latent_rgb = Some(rgb.map(Arc::new));
        }
        Ok(self.latent_rgb.clone().expect("looked for above"))
    }

    /// The tiny decoder in `path`, loaded once (in the VAE's dtype).
    pub fn tiny_decoder(&mut self, path: &Path, device: &Device) -> Result<Arc<TaehvDecoder>> {
        match &self.tiny_decoder {
            Some((loaded, decoder)) if loaded == path => Ok(decoder.clone()),
            _ => {
                let dtype = checkpoint::vae_dtype(self.dtype(), device);
                let decoder = Arc::new(load_taehv(path, dtype, device)?);
                self.tiny_decoder = Some((path.to_path_buf(), decoder.clone()));
                Ok(decoder)
            }
        }
    }

    pub fn vae(&mut self, device: &Device, counters: &LoadCounters) -> Result<Arc<WanVae>> {
        self.check()?;
        if self.vae.is_none() {
            let dtype = checkpoint::vae_dtype(self.dtype(), device);
            let vae = checkpoint::load_vae(&self.files().vae, false, dtype, device)?;
            self.counting(counters);
            self.vae = Some(Arc::new(vae));
            self.publish(counters);
        }
        Ok(self.vae.clone().expect("loaded"))
    }
}
