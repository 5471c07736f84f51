//! The text context of a training step at a fraction of the padded context's cost.
//!
//! The pipeline pads each prompt's text embeddings with zeros to 512 rows. In training, each
//! prompt is padded only to the group's longest prompt plus one zero row, and the zero rows stand
//! for all its padding rows: they are identical, so attending them with each one's score raised
//! by ln(padding rows / zero rows) is the same attention as over the fully padded text, at ~40%
//! fewer FLOPs per transformer step. The raised scores are the cross-attention's key bias of the
//! [`Training`] kernels the group's transformer is built with.

use crate::kernels::Training;
use candle_core::{Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use t2v_models::dit::{DitConfig, WanTransformer};
use t2v_models::text::pad_to_length;

/// A group's prompts, collapsed: `text` `[B, L, text_dim]` holds prompt `b`'s embeddings
/// followed by zero rows (at least one), `key_bias` `[B, 1, 1, L]` the score raise of each row.
#[derive(Debug, Clone)]
pub struct CollapsedText {
    pub text: Tensor,
    pub key_bias: Tensor,
}

impl CollapsedText {
    /// `encoded`: each prompt's embeddings `[1, n_b, text_dim]`, which the pipeline would pad to
    /// `padded_length` rows.
    pub fn new(encoded: &[Tensor], padded_length: usize) -> Result<CollapsedText> {
        let lengths: Vec<usize> = encoded.iter().map(|t| t.dim(1)).collect::<Result<_>>()?;
        let rows = lengths.iter().max().copied().unwrap_or(0) + 1;
        if rows > padded_length {
            candle_core::bail!(
                "collapsed text: prompts of {lengths:?} rows leave no padding in {padded_length}"
            );
        }
        let padded = encoded
            .iter()
            .map(|t| pad_to_length(t, rows))
            .collect::<Result<Vec<_>>>()?;
        let mut bias = vec![0f32; encoded.len() * rows];
        for (p, &n) in lengths.iter().enumerate() {
            let per_row = ((padded_length - n) as f32 / (rows - n) as f32).ln();
            bias[p * rows + n..(p + 1) * rows].fill(per_row);
        }
        Ok(CollapsedText {
            text: Tensor::cat(&padded, 0)?,
            key_bias: Tensor::from_vec(bias, (encoded.len(), 1, 1, rows), padded[0].device())?,
        })
    }

    /// A transformer over the variables in `vars` whose cross-attention attends this text as
    /// the padded one.
    pub fn transformer(&self, cfg: &DitConfig, vars: &VarMap) -> Result<WanTransformer> {
        let vb = VarBuilder::from_varmap(vars, self.text.dtype(), self.text.device());
        let kernels = Training::with_cross_key_bias(self.key_bias.clone());
        WanTransformer::new_with_kernels(cfg, vb, std::sync::Arc::new(kernels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{tests::max_diff, training_kernels};
    use candle_core::{DType, Device};
    use t2v_models::dit::TokenTimesteps;

    /// The collapsed text predicts what the fully padded one does.
    #[test]
    fn collapsed_padding_attends_like_the_full_padding() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = DitConfig {
            num_attention_heads: 2,
            attention_head_dim: 12,
            in_channels: 4,
            out_channels: Some(4),
            text_dim: 8,
            ffn_dim: 16,
            num_layers: 2,
            ..DitConfig::wan22_ti2v_5b()
        };
        let vars = VarMap::new();
        let model = WanTransformer::new_with_kernels(
            &cfg,
            VarBuilder::from_varmap(&vars, DType::F32, &dev),
            training_kernels(),
        )?;
        for var in vars.all_vars() {
            var.set(&(Tensor::randn(0f32, 0.5, var.shape(), &dev)?))?;
        }
        let prompts = [
            Tensor::randn(0f32, 1., (1, 3, 8), &dev)?,
            Tensor::randn(0f32, 1., (1, 6, 8), &dev)?,
        ];
        let full = Tensor::cat(
            &[
                pad_to_length(&prompts[0], 512)?,
                pad_to_length(&prompts[1], 512)?,
            ],
            0,
        )?;
        let collapsed = CollapsedText::new(&prompts, 512)?;
        assert_eq!(collapsed.text.dims(), &[2, 7, 8]);
        let latents = Tensor::randn(0f32, 1., (2, 4, 2, 4, 4), &dev)?;
        let timesteps = TokenTimesteps::uniform(2 * 2 * 2, 700.0);
        let a = model.forward(&latents, &timesteps, &model.prepare_context(&full)?)?;
        let collapsed_model = collapsed.transformer(&cfg, &vars)?;
        let b = collapsed_model.forward(
            &latents,
            &timesteps,
            &collapsed_model.prepare_context(&collapsed.text)?,
        )?;
        let diff = max_diff(&a, &b);
        let size = a.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(diff < 1e-4 * size.max(1.0), "max diff {diff} of {size}");
        // Without the bias the zero rows would weigh once each: a different prediction.
        let plain = model.forward(
            &latents,
            &timesteps,
            &model.prepare_context(&collapsed.text)?,
        )?;
        let off = max_diff(&a, &plain);
        assert!(off > 100.0 * diff.max(1e-6), "{off} vs {diff}");
        // Every prompt needs a zero row to stand for its padding.
        assert!(CollapsedText::new(&prompts, 6).is_err());
        Ok(())
    }
}
