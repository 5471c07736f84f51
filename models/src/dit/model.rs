//! `WanTransformer3DModel`: patchify, time and text conditioning, the blocks, the modulated head
//! and unpatchify.

use super::block::{Block, CrossKv};
use super::config::DitConfig;
use super::embeddings::{timestep_sinusoid, TextEmbedder, TimeEmbedder};
use super::modulation::{per_run, TokenTimesteps};
use super::rope::Rope3d;
use super::streaming::{record_block, BlockStream};
use crate::ops::Kernels;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{linear, Linear, VarBuilder};
use std::sync::Arc;

/// The blocks on the device, or streamed through a ring of device slots.
#[derive(Debug, Clone)]
enum Blocks {
    Resident(Vec<Block>),
    Streamed(Arc<BlockStream>),
}

/// The text of one prompt, prepared for every block: step-invariant, so built once per prompt.
#[derive(Debug, Clone)]
pub struct PromptContext {
    blocks: Vec<CrossKv>,
}

#[derive(Debug, Clone)]
pub struct WanTransformer {
    cfg: DitConfig,
    /// Conv3d with kernel = stride = patch, kept as its `[D, C, pt, ph, pw]` weight and applied as
    /// a matmul over `(c, pt, ph, pw)`-ordered patches.
    patch_weight: Tensor,
    patch_bias: Tensor,
    time_embedder: TimeEmbedder,
    time_proj: Linear,
    text_embedder: TextEmbedder,
    blocks: Blocks,
    /// Token slices of every block's feed-forward (see [`Self::with_ffn_chunks`]).
    ffn_chunks: usize,
    /// `[1, 2, D]` f32: shift, scale of the head.
    scale_shift_table: Tensor,
    proj_out: Linear,
    rope: Rope3d,
    kernels: Arc<dyn Kernels>,
}

impl WanTransformer {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        Self::new_with_kernels(cfg, vb, crate::ops::fused_kernels())
    }

    /// [`Self::new`] with other [`Kernels`] than the fused inference ones.
    pub fn new_with_kernels(
        cfg: &DitConfig,
        vb: VarBuilder,
        kernels: Arc<dyn Kernels>,
    ) -> Result<Self> {
        let blocks = (0..cfg.num_layers)
            .map(|i| Self::block(cfg, vb.pp("blocks").pp(i), &kernels))
            .collect::<Result<Vec<_>>>()?;
        Self::around_blocks(cfg, vb, Blocks::Resident(blocks), kernels)
    }

    fn block(cfg: &DitConfig, vb: VarBuilder, kernels: &Arc<dyn Kernels>) -> Result<Block> {
        Block::new(
            cfg.dim(),
            cfg.ffn_dim,
            cfg.num_attention_heads,
            cfg.cross_attn_norm,
            cfg.eps,
            vb,
            kernels,
        )
    }

    /// The transformer with its blocks kept in host memory and streamed through `slots` device
    /// slots (see [`super::streaming`]); everything else is on `vb`'s device. `host` reads the
    /// same checkpoint as `vb`, and hands tensors out on the CPU.
    pub fn new_streamed(
        cfg: &DitConfig,
        vb: VarBuilder,
        host: impl SimpleBackend + Clone + 'static,
        slots: usize,
    ) -> Result<Self> {
        let kernels = crate::ops::fused_kernels();
        let (dtype, device) = (vb.dtype(), vb.device().clone());
        let relative = |i: usize, tensors: Vec<(String, Tensor)>| {
            let prefix = format!("blocks.{i}.");
            tensors
                .into_iter()
                .map(|(n, t)| (n.strip_prefix(&prefix).unwrap_or(&n).to_string(), t))
                .collect::<Vec<_>>()
        };
        let host_blocks = (0..cfg.num_layers)
            .map(|i| {
                let (_, tensors) =
                    record_block(Some(Box::new(host.clone())), dtype, &Device::Cpu, |vb| {
                        Self::block(cfg, vb.pp("blocks").pp(i), &kernels)
                    })?;
                Ok(relative(i, tensors))
            })
            .collect::<Result<Vec<_>>>()?;
        let slot_blocks = (0..slots.max(1))
            .map(|_| {
                let (block, tensors) = record_block(None, dtype, &device, |vb| {
                    Self::block(cfg, vb.pp("blocks").pp(0), &kernels)
                })?;
                Ok((block, relative(0, tensors)))
            })
            .collect::<Result<Vec<_>>>()?;
        let stream = BlockStream::new(host_blocks, slot_blocks)?;
        Self::around_blocks(cfg, vb, Blocks::Streamed(Arc::new(stream)), kernels)
    }

    /// Everything but the blocks.
    fn around_blocks(
        cfg: &DitConfig,
        vb: VarBuilder,
        blocks: Blocks,
        kernels: Arc<dyn Kernels>,
    ) -> Result<Self> {
        let dim = cfg.dim();
        let [pt, ph, pw] = cfg.patch_size;
        let ce = vb.pp("condition_embedder");
        Ok(Self {
            cfg: cfg.clone(),
            patch_weight: vb.get((dim, cfg.in_channels, pt, ph, pw), "patch_embedding.weight")?,
            patch_bias: vb.get(dim, "patch_embedding.bias")?,
            time_embedder: TimeEmbedder::new(cfg.freq_dim, dim, ce.pp("time_embedder"))?,
            time_proj: linear(dim, 6 * dim, ce.pp("time_proj"))?,
            text_embedder: TextEmbedder::new(cfg.text_dim, dim, ce.pp("text_embedder"), &kernels)?,
            blocks,
            ffn_chunks: 1,
            scale_shift_table: vb
                .to_dtype(DType::F32)
                .get((1, 2, dim), "scale_shift_table")?,
            proj_out: linear(
                dim,
                cfg.out_channels() * cfg.patch_volume(),
                vb.pp("proj_out"),
            )?,
            rope: Rope3d::new(cfg.attention_head_dim),
            kernels,
        })
    }

    pub fn config(&self) -> &DitConfig {
        &self.cfg
    }

    /// The same weights (shared, not copied) with every block's feed-forward run over
    /// `chunks` token slices: the hidden activation is `chunks` times smaller, the output the
    /// same up to float rounding.
    pub fn with_ffn_chunks(&self, chunks: usize) -> WanTransformer {
        let mut model = self.clone();
        model.ffn_chunks = chunks.max(1);
        if let Blocks::Resident(blocks) = &mut model.blocks {
            for block in blocks {
                block.set_ffn_chunks(chunks);
            }
        }
        model
    }

    /// The streamed blocks, when the transformer streams them.
    pub fn block_stream(&self) -> Option<&BlockStream> {
        match &self.blocks {
            Blocks::Streamed(s) => Some(s),
            Blocks::Resident(_) => None,
        }
    }

    /// Runs `f` on block `index`: the resident one, or the streamed one copied into its slot.
    fn with_block<R>(&self, index: usize, f: impl FnOnce(&Block) -> Result<R>) -> Result<R> {
        match &self.blocks {
            Blocks::Resident(blocks) => f(&blocks[index]),
            Blocks::Streamed(stream) => stream.with_block(index, |block| {
                if self.ffn_chunks > 1 {
                    let mut block = block.clone();
                    block.set_ffn_chunks(self.ffn_chunks);
                    f(&block)
                } else {
                    f(block)
                }
            }),
        }
    }

    pub fn device(&self) -> Device {
        self.proj_out.weight().device().clone()
    }

    pub fn dtype(&self) -> DType {
        self.proj_out.weight().dtype()
    }

    /// Token grid `(frames, height, width)` after patchifying latents of `[.., F, H, W]`.
    pub fn token_grid(
        &self,
        latent_frames: usize,
        latent_h: usize,
        latent_w: usize,
    ) -> (usize, usize, usize) {
        let [pt, ph, pw] = self.cfg.patch_size;
        (latent_frames / pt, latent_h / ph, latent_w / pw)
    }

    /// Projects the padded text embeddings `[B, 512, text_dim]` and computes every block's
    /// cross-attention keys and values.
    pub fn prepare_context(&self, text: &Tensor) -> Result<PromptContext> {
        let context = self.text_embedder.forward(&text.to_dtype(self.dtype())?)?;
        let blocks = (0..self.cfg.num_layers)
            .map(|i| self.with_block(i, |b| b.cross_kv(&context)))
            .collect::<Result<_>>()?;
        Ok(PromptContext { blocks })
    }

    fn patchify(&self, latents: &Tensor) -> Result<Tensor> {
        let (b, c, f, h, w) = latents.dims5()?;
        let [pt, ph, pw] = self.cfg.patch_size;
        let (nf, nh, nw) = (f / pt, h / ph, w / pw);
        let patches = latents
            .to_dtype(self.dtype())?
            .reshape(vec![b, c, nf, pt, nh, ph, nw, pw])?
            .permute(vec![0, 2, 4, 6, 1, 3, 5, 7])?
            .reshape((b, nf * nh * nw, c * pt * ph * pw))?;
        let dim = self.cfg.dim();
        let weight = self.patch_weight.reshape((dim, c * pt * ph * pw))?;
        patches
            .broadcast_matmul(&weight.t()?)?
            .broadcast_add(&self.patch_bias)
    }

    /// The head's output `[B, N, pt*ph*pw*C]` has the channel as its fastest index, unlike the
    /// input patches.
    fn unpatchify(&self, x: &Tensor, grid: (usize, usize, usize)) -> Result<Tensor> {
        let (b, _, _) = x.dims3()?;
        let [pt, ph, pw] = self.cfg.patch_size;
        let (nf, nh, nw) = grid;
        let c = self.cfg.out_channels();
        x.reshape(vec![b, nf, nh, nw, pt, ph, pw, c])?
            .permute(vec![0, 7, 1, 4, 2, 5, 3, 6])?
            .reshape((b, c, nf * pt, nh * ph, nw * pw))
    }

    /// Predicts the flow `[B, C, F, H, W]` (f32) for `latents` `[B, C, F, H, W]` at per-token
    /// `timesteps`, conditioned on a prepared prompt.
    pub fn forward(
        &self,
        latents: &Tensor,
        timesteps: &TokenTimesteps,
        prompt: &PromptContext,
    ) -> Result<Tensor> {
        let flow = self.forward_unless(latents, timesteps, prompt, &|| false)?;
        Ok(flow.expect("never interrupted"))
    }

    /// [`Self::forward`], asking `interrupted` before each block: `None` as soon as it answers
    /// `true`, so a caller stops within one block rather than at the end of the step.
    pub fn forward_unless(
        &self,
        latents: &Tensor,
        timesteps: &TokenTimesteps,
        prompt: &PromptContext,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Option<Tensor>> {
        let out = self.forward_pass(latents, timesteps, prompt, interrupted, BlockPass::Run)?;
        Ok(out.map(|(flow, _)| flow))
    }

    /// [`Self::forward_unless`] with a step cache's choice for the blocks (`pass`): returns the
    /// flow and, for [`BlockPass::Record`], the blocks' residual (their output tokens minus their
    /// input tokens, `[B, N, D]`).
    pub fn forward_pass(
        &self,
        latents: &Tensor,
        timesteps: &TokenTimesteps,
        prompt: &PromptContext,
        interrupted: &dyn Fn() -> bool,
        pass: BlockPass<'_>,
    ) -> Result<Option<(Tensor, Option<Tensor>)>> {
        let (_, _, f, h, w) = latents.dims5()?;
        let grid = self.token_grid(f, h, w);
        let tokens = grid.0 * grid.1 * grid.2;
        if timesteps.tokens() != tokens {
            candle_core::bail!(
                "timesteps cover {} tokens, latents have {tokens}",
                timesteps.tokens()
            );
        }
        let device = latents.device();
        let dtype = self.dtype();

        let sinusoid = timestep_sinusoid(&timesteps.values(), self.cfg.freq_dim, device)?;
        let temb = self.time_embedder.forward(&sinusoid)?.to_dtype(dtype)?; // [R, D]
        let time_proj = self
            .time_proj
            .forward(&temb.silu()?)?
            .to_dtype(DType::F32)?; // [R, 6D]
        let dim = self.cfg.dim();
        let runs = timesteps.runs().len();
        let block_mods: Vec<Tensor> = (0..runs)
            .map(|r| time_proj.get(r)?.reshape((1, 6, dim)))
            .collect::<Result<_>>()?;

        let (cos, sin) = self.rope.tables(grid, device)?;
        let tokens_in = self.patchify(latents)?;
        let mut residual = None;
        let x = match pass {
            BlockPass::Reuse(cached) => {
                if interrupted() {
                    return Ok(None);
                }
                (&tokens_in + cached)?
            }
            BlockPass::Run | BlockPass::Record => {
                let mut x = tokens_in.clone();
                for (i, cross) in prompt.blocks.iter().enumerate() {
                    if interrupted() {
                        return Ok(None);
                    }
                    x = self.with_block(i, |block| {
                        block.forward(&x, timesteps, &block_mods, (&cos, &sin), cross)
                    })?;
                }
                if matches!(pass, BlockPass::Record) {
                    residual = Some((&x - &tokens_in)?);
                }
                x
            }
        };

        let temb32 = temb.to_dtype(DType::F32)?;
        let head_mods: Vec<Vec<Tensor>> = (0..runs)
            .map(|r| {
                self.scale_shift_table
                    .broadcast_add(&temb32.get(r)?.reshape((1, 1, dim))?)?
                    .chunk(2, 1)
            })
            .collect::<Result<_>>()?;
        let x = per_run(&x, timesteps, |seg, r| {
            self.kernels
                .norm_modulate(seg, &head_mods[r][0], &head_mods[r][1], self.cfg.eps)
        })?;
        let x = self.proj_out.forward(&x)?;
        let flow = self.unpatchify(&x, grid)?.to_dtype(DType::F32)?;
        Ok(Some((flow, residual)))
    }
}

/// What the blocks do in one evaluation: a step cache (MagCache) skips them by reusing the
/// residual they added at an earlier step.
#[derive(Debug, Clone, Copy)]
pub enum BlockPass<'a> {
    /// Run them.
    Run,
    /// Run them and return their residual.
    Record,
    /// Don't run them: add this residual (from [`BlockPass::Record`]) to the input tokens.
    Reuse(&'a Tensor),
}
