//! The tiny video decoder TAEHV (madebyollin/taehv, `taehv.py`: the `decoder` of class `TAEHV`),
//! as published for Wan2.2's latent space in `taew2_2`: a fast stand-in for the full VAE decoder,
//! for drafts and previews.
//!
//! It decodes the transformer's (normalised) latents, with no scale or shift, to RGB in [0, 1].
//! Its layers, with the weight names of the published files (`decoder.<index>.*`):
//!
//! ```text
//! 0 clamp (3 tanh(x/3))   1 conv 3x3   2 relu
//! 3-5 memory blocks   6 upsample x2   7 temporal grow   8 conv 3x3 (no bias)
//! 9-11 memory blocks  12 upsample x2  13 temporal grow  14 conv 3x3 (no bias)
//! 15-17 memory blocks 18 upsample x2  19 temporal grow  20 conv 3x3 (no bias)
//! 21 relu   22 conv 3x3 -> 3 * patch^2, then pixel shuffle and clamp to [0, 1]
//! ```
//!
//! A memory block sees its input frame and the previous frame's input (zeros before the first);
//! a temporal grow turns each frame into `stride` frames with a 1x1 convolution. The decoder
//! runs one latent frame at a time, carrying each memory block's last input, which gives exactly
//! what the reference computes over the whole clip at once; the first `t_upscale - 1` frames are
//! dropped, as the reference does, so latent frame 0 gives one frame and each further one four.

use crate::weights::TrackedWeights;
use crate::{Error, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// The folder of a model folder that holds its tiny decoder (one `.safetensors` or `.pth`
/// file), where the fast decode and previews look for it. Not the VAE's folder: every weight
/// file there is read as part of the VAE.
pub const TINY_DECODER_FOLDER: &str = "tiny_decoder";

/// TAEHV's decoder hyper-parameters. The published files fix everything but the latent
/// channels and the patch size (Wan2.2: 48 and 2); the widths are smaller in test fixtures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaehvConfig {
    pub latent_channels: usize,
    pub patch_size: usize,
    /// Channels of the three stages and of the output convolution's input.
    pub widths: [usize; 4],
    /// Whether each stage doubles the frame count (`taew2_2`: the last two).
    pub time_upscale: [bool; 3],
    /// Whether each stage doubles the size.
    pub space_upscale: [bool; 3],
}

impl TaehvConfig {
    /// `taew2_2`, for Wan2.2 TI2V-5B's latent space.
    pub fn taew2_2() -> Self {
        TaehvConfig {
            latent_channels: 48,
            patch_size: 2,
            widths: [256, 128, 64, 64],
            time_upscale: [false, true, true],
            space_upscale: [true, true, true],
        }
    }

    /// The configuration a weight file holds: channels and patch size from the shapes of its
    /// first and last convolutions, the widths from its stage convolutions; the Wan2.2 temporal
    /// and spatial factors (4x and 8x times the patch size).
    pub fn from_weights(weights: &TrackedWeights) -> Result<Self> {
        let origin = weights.source().origin().to_path_buf();
        let shape = |name: &str| -> Result<Vec<usize>> {
            weights.shape_of(name).map(|s| s.to_vec()).ok_or_else(|| {
                Error::checkpoint(
                    &origin,
                    format!("not a TAEHV decoder: no tensor `{name}` (expected a taew2_2 file)"),
                )
            })
        };
        let first = shape("decoder.1.weight")?;
        let last = shape("decoder.22.weight")?;
        let stage = |i: usize| -> Result<usize> { Ok(shape(&format!("decoder.{i}.weight"))?[0]) };
        if first.len() != 4 || last.len() != 4 || last[0] % 3 != 0 {
            return Err(Error::checkpoint(
                &origin,
                format!(
                    "not a TAEHV decoder: decoder.1.weight {first:?}, decoder.22.weight {last:?}"
                ),
            ));
        }
        let patch_area = last[0] / 3;
        let patch_size = (1..=8).find(|p| p * p == patch_area).ok_or_else(|| {
            Error::checkpoint(
                &origin,
                format!(
                    "decoder.22.weight has {} outputs: not 3 x a square patch",
                    last[0]
                ),
            )
        })?;
        Ok(TaehvConfig {
            latent_channels: first[1],
            patch_size,
            widths: [first[0], stage(8)?, stage(14)?, stage(20)?],
            ..TaehvConfig::taew2_2()
        })
    }

    /// Frames per latent frame.
    pub fn time_factor(&self) -> usize {
        1 << self.time_upscale.iter().filter(|&&t| t).count()
    }

    /// Pixels per latent cell along each side.
    pub fn space_factor(&self) -> usize {
        self.patch_size << self.space_upscale.iter().filter(|&&s| s).count()
    }
}

fn conv3x3(cin: usize, cout: usize, bias: bool, vb: VarBuilder) -> candle_core::Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    if bias {
        candle_nn::conv2d(cin, cout, 3, cfg, vb)
    } else {
        candle_nn::conv2d_no_bias(cin, cout, 3, cfg, vb)
    }
}

/// `relu(conv(cat[x, past]) + skip(x))`, `conv` being conv-relu-conv-relu-conv.
#[derive(Debug, Clone)]
struct MemBlock {
    convs: [Conv2d; 3],
    /// A 1x1 convolution when the widths differ (never in the decoder).
    skip: Option<Conv2d>,
}

impl MemBlock {
    fn new(cin: usize, cout: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let c = vb.pp("conv");
        let skip = (cin != cout)
            .then(|| candle_nn::conv2d_no_bias(cin, cout, 1, Default::default(), vb.pp("skip")))
            .transpose()?;
        Ok(MemBlock {
            convs: [
                conv3x3(cin * 2, cout, true, c.pp(0))?,
                conv3x3(cout, cout, true, c.pp(2))?,
                conv3x3(cout, cout, true, c.pp(4))?,
            ],
            skip,
        })
    }

    /// `x` `[n, C, H, W]`: n consecutive frames; `past` the frame before them.
    fn forward(&self, x: &Tensor, past: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let pasts = if n == 1 {
            past.clone()
        } else {
            Tensor::cat(&[past, &x.narrow(0, 0, n - 1)?], 0)?
        };
        let h = Tensor::cat(&[x, &pasts], 1)?;
        let h = self.convs[0].forward(&h)?.relu()?;
        let h = self.convs[1].forward(&h)?.relu()?;
        let h = self.convs[2].forward(&h)?;
        let skip = match &self.skip {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        (h + skip)?.relu()
    }
}

#[derive(Debug, Clone)]
enum Layer {
    Clamp,
    Conv(Conv2d),
    Relu,
    Mem(MemBlock),
    Upsample(usize),
    /// A 1x1 convolution to `stride * C` channels, split into `stride` frames.
    TGrow {
        conv: Conv2d,
        stride: usize,
    },
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct TaehvDecoder {
    layers: Vec<Layer>,
    config: TaehvConfig,
    dtype: DType,
    device: Device,
}

/// The memory of a streaming decode: each memory block's last input frame.
type Memory = Vec<Option<Tensor>>;

impl TaehvDecoder {
    /// Builds from `decoder.*` weights (the published files hold `encoder.*` too, unread).
    pub fn new(
        cfg: &TaehvConfig,
        weights: &TrackedWeights,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let vb = weights.var_builder(dtype, device).pp("decoder");
        // As the reference loads them: a file trained with a larger temporal stride keeps the
        // last frame's output channels.
        let stored_rows = |index: usize| {
            weights
                .shape_of(&format!("decoder.{index}.conv.weight"))
                .map(|s| s[0])
        };
        let decoder = Self::build(cfg, vb, &stored_rows)
            .map_err(|e| Error::checkpoint(weights.source().origin(), e.to_string()))?;
        weights.ensure_all_used("fast decoder", |name| name.starts_with("encoder."))?;
        Ok(decoder)
    }

    /// Builds from a `VarBuilder` rooted at the decoder (`decoder.` stripped): for training.
    pub fn from_var_builder(cfg: &TaehvConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Self::build(cfg, vb, &|_| None)
    }

    fn build(
        cfg: &TaehvConfig,
        vb: VarBuilder,
        stored_rows: &dyn Fn(usize) -> Option<usize>,
    ) -> candle_core::Result<Self> {
        let [w0, w1, w2, w3] = cfg.widths;
        let mut layers = vec![
            Layer::Clamp,
            Layer::Conv(conv3x3(cfg.latent_channels, w0, true, vb.pp(1))?),
            Layer::Relu,
        ];
        let stages = [(w0, w1), (w1, w2), (w2, w3)];
        for (s, &(width, next)) in stages.iter().enumerate() {
            let base = 3 + s * 6;
            for j in 0..3 {
                layers.push(Layer::Mem(MemBlock::new(width, width, vb.pp(base + j))?));
            }
            layers.push(Layer::Upsample(if cfg.space_upscale[s] { 2 } else { 1 }));
            let stride = if cfg.time_upscale[s] { 2 } else { 1 };
            let rows = width * stride;
            let stored = stored_rows(base + 4).unwrap_or(rows);
            if stored < rows {
                candle_core::bail!(
                    "decoder.{}.conv.weight has {stored} outputs, fewer than {rows}",
                    base + 4
                )
            }
            let weight = vb
                .pp(base + 4)
                .pp("conv")
                .get((stored, width, 1, 1), "weight")?
                .narrow(0, stored - rows, rows)?;
            layers.push(Layer::TGrow {
                conv: Conv2d::new(weight, None, Default::default()),
                stride,
            });
            layers.push(Layer::Conv(conv3x3(width, next, false, vb.pp(base + 5))?));
        }
        layers.push(Layer::Relu);
        layers.push(Layer::Conv(conv3x3(
            w3,
            3 * cfg.patch_size * cfg.patch_size,
            true,
            vb.pp(22),
        )?));
        Ok(TaehvDecoder {
            layers,
            config: cfg.clone(),
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &TaehvConfig {
        &self.config
    }

    /// One latent frame `[1, C, h, w]` through every layer, carrying the memory blocks' state;
    /// returns its frames `[n, 3, H, W]` in [0, 1].
    fn step(&self, z: &Tensor, memory: &mut Memory, clamp: bool) -> candle_core::Result<Tensor> {
        let mut x = z.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = match layer {
                Layer::Clamp => ((&x / 3.0)?.tanh()? * 3.0)?,
                Layer::Conv(conv) => conv.forward(&x)?,
                Layer::Relu => x.relu()?,
                Layer::Mem(block) => {
                    let past = match memory[i].take() {
                        Some(past) => past,
                        None => x.narrow(0, 0, 1)?.zeros_like()?,
                    };
                    let n = x.dim(0)?;
                    memory[i] = Some(x.narrow(0, n - 1, 1)?);
                    block.forward(&x, &past)?
                }
                Layer::Upsample(1) => x,
                Layer::Upsample(f) => {
                    let (_, _, h, w) = x.dims4()?;
                    x.upsample_nearest2d(h * f, w * f)?
                }
                Layer::TGrow { conv, stride } => {
                    let (n, c, h, w) = x.dims4()?;
                    conv.forward(&x)?.reshape((n * stride, c, h, w))?
                }
            };
        }
        let p = self.config.patch_size;
        let (n, c, h, w) = x.dims4()?;
        let c = c / (p * p);
        let x = x
            .reshape((n, c, p, p, h, w))?
            .permute((0, 1, 4, 2, 5, 3))?
            .reshape((n, c, h * p, w * p))?;
        if clamp {
            x.clamp(0f32, 1f32)
        } else {
            Ok(x)
        }
    }

    /// Decodes normalised latents `[1, C, T, h, w]` one latent frame at a time, handing each
    /// chunk of frames `[n, H, W, 3]` (f32 in [0, 1] on the CPU) to `on_chunk` with the index
    /// of its first frame. An error from `on_chunk` stops decoding and is returned.
    pub fn decode_streaming(
        &self,
        latents: &Tensor,
        on_chunk: &mut dyn FnMut(usize, Tensor) -> Result<()>,
    ) -> Result<()> {
        self.run(latents, true, on_chunk)
    }

    /// [`Self::decode`] without the final clamp to [0, 1], for training (the clamp passes no
    /// gradient outside it).
    pub fn decode_unclamped(&self, latents: &Tensor) -> Result<Tensor> {
        let mut chunks = Vec::new();
        self.run(latents, false, &mut |_, chunk| {
            chunks.push(chunk);
            Ok(())
        })?;
        Ok(Tensor::cat(&chunks, 0)?)
    }

    fn run(
        &self,
        latents: &Tensor,
        clamp: bool,
        on_chunk: &mut dyn FnMut(usize, Tensor) -> Result<()>,
    ) -> Result<()> {
        let (b, c, t, _, _) = latents.dims5()?;
        if b != 1 || c != self.config.latent_channels {
            return Err(Error::InvalidRequest(format!(
                "fast decoder: latents of shape {:?}, expected [1, {}, T, h, w]: this tiny decoder is for another latent space",
                latents.dims(),
                self.config.latent_channels
            )));
        }
        let latents = latents.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mut memory: Memory = vec![None; self.layers.len()];
        let mut to_trim = self.config.time_factor() - 1;
        let mut next = 0;
        for i in 0..t {
            let z = latents.narrow(2, i, 1)?.squeeze(2)?;
            let mut frames = self.step(&z, &mut memory, clamp)?;
            let drop = to_trim.min(frames.dim(0)?);
            to_trim -= drop;
            let n = frames.dim(0)? - drop;
            if n == 0 {
                continue;
            }
            frames = frames.narrow(0, drop, n)?;
            let frames = frames
                .to_dtype(DType::F32)?
                .permute((0, 2, 3, 1))?
                .to_device(&Device::Cpu)?
                .contiguous()?;
            on_chunk(next, frames)?;
            next += n;
        }
        Ok(())
    }

    /// [`Self::decode_streaming`] collected into frames `[F, H, W, 3]`.
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor> {
        let mut chunks = Vec::new();
        self.decode_streaming(latents, &mut |_, chunk| {
            chunks.push(chunk);
            Ok(())
        })?;
        Ok(Tensor::cat(&chunks, 0)?)
    }
}

/// Loads a TAEHV decoder from a `.safetensors` or torch `.pth` file (the latter through the
/// guarded pickle reader), in `dtype` on `device`.
pub fn load_taehv(path: &std::path::Path, dtype: DType, device: &Device) -> Result<TaehvDecoder> {
    let source = crate::weights::open_file(path)?;
    let weights = TrackedWeights::new(std::sync::Arc::from(source), |name| Some(name.to_string()));
    let cfg = TaehvConfig::from_weights(&weights)?;
    TaehvDecoder::new(&cfg, &weights, dtype, device)
}
