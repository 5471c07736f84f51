//! Which network a weights file holds, and its sizes, from the tensors' names and shapes alone
//! (the published files carry no config).

use super::{CompactConfig, RrdbConfig};
use crate::weights::TrackedWeights;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Compact(CompactConfig),
    Rrdb(RrdbConfig),
}

impl Architecture {
    /// The sizes of the published Real-ESRGAN files, by name (for benchmarks without them).
    pub const PUBLISHED: [(&'static str, Architecture); 4] = [
        (
            "realesr-animevideov3",
            Architecture::Compact(CompactConfig {
                num_in_ch: 3,
                num_out_ch: 3,
                num_feat: 64,
                num_conv: 16,
                upscale: 4,
            }),
        ),
        (
            "realesr-general-x4v3",
            Architecture::Compact(CompactConfig {
                num_in_ch: 3,
                num_out_ch: 3,
                num_feat: 64,
                num_conv: 32,
                upscale: 4,
            }),
        ),
        (
            "RealESRGAN_x2plus",
            Architecture::Rrdb(RrdbConfig {
                num_in_ch: 3,
                num_out_ch: 3,
                scale: 2,
                num_feat: 64,
                num_block: 23,
                num_grow_ch: 32,
            }),
        ),
        (
            "RealESRGAN_x4plus",
            Architecture::Rrdb(RrdbConfig {
                num_in_ch: 3,
                num_out_ch: 3,
                scale: 4,
                num_feat: 64,
                num_block: 23,
                num_grow_ch: 32,
            }),
        ),
    ];

    pub fn scale(&self) -> usize {
        match self {
            Architecture::Compact(c) => c.upscale,
            Architecture::Rrdb(c) => c.scale,
        }
    }

    /// What the input's sides must be multiples of (RRDBNet's pixel unshuffle).
    pub fn size_multiple(&self) -> usize {
        match self {
            Architecture::Compact(_) => 1,
            Architecture::Rrdb(c) => c.unshuffle(),
        }
    }

    /// For messages and `t2v info`: e.g. "RRDBNet x4 (23 blocks, 64 features)".
    pub fn describe(&self) -> String {
        match self {
            Architecture::Compact(c) => format!(
                "SRVGGNetCompact x{} ({} convolutions, {} features)",
                c.upscale, c.num_conv, c.num_feat
            ),
            Architecture::Rrdb(c) => format!(
                "RRDBNet x{} ({} blocks, {} features)",
                c.scale, c.num_block, c.num_feat
            ),
        }
    }
}

fn shape<'a>(w: &'a TrackedWeights, name: &str) -> Result<&'a [usize], String> {
    w.shape_of(name)
        .ok_or_else(|| format!("missing tensor `{name}`"))
}

/// A 3x3 convolution weight `[out, in, 3, 3]`: `(out, in)`.
fn conv3x3(w: &TrackedWeights, name: &str) -> Result<(usize, usize), String> {
    match shape(w, name)? {
        &[out, inp, 3, 3] if out > 0 && inp > 0 => Ok((out, inp)),
        other => Err(format!(
            "tensor `{name}` has shape {other:?}, expected a 3x3 convolution [out, in, 3, 3]"
        )),
    }
}

/// The largest `i` such that `prefix.{i}.suffix` exists, with every smaller index present.
fn count_indexed(w: &TrackedWeights, prefix: &str, suffix: &str) -> usize {
    (0..)
        .take_while(|i| w.contains(&format!("{prefix}.{i}.{suffix}")))
        .count()
}

pub fn detect(w: &TrackedWeights) -> Result<Architecture, String> {
    if w.contains("conv_first.weight") {
        detect_rrdb(w).map(Architecture::Rrdb)
    } else if w.contains("body.0.weight") {
        detect_compact(w).map(Architecture::Compact)
    } else {
        let example: Vec<_> = w.canonical_names().map(|(c, _)| c).take(3).collect();
        Err(format!(
            "not a Real-ESRGAN network: it has neither `conv_first.weight` (RRDBNet) nor \
             `body.0.weight` (SRVGGNetCompact); its tensors are named like {example:?}"
        ))
    }
}

fn detect_rrdb(w: &TrackedWeights) -> Result<RrdbConfig, String> {
    let (num_feat, in_ch) = conv3x3(w, "conv_first.weight")?;
    let (num_out_ch, _) = conv3x3(w, "conv_last.weight")?;
    let num_in_ch = num_out_ch;
    let scale = match in_ch / num_in_ch {
        1 => 4,
        4 => 2,
        16 => 1,
        _ => 0,
    };
    if scale == 0 || !in_ch.is_multiple_of(num_in_ch) {
        return Err(format!(
            "tensor `conv_first.weight` takes {in_ch} channels: an RRDBNet of {num_in_ch} \
             channels takes {num_in_ch} (x4), {} (x2) or {} (x1)",
            4 * num_in_ch,
            16 * num_in_ch
        ));
    }
    let num_block = count_indexed(w, "body", "rdb1.conv1.weight");
    if num_block == 0 {
        return Err(
            "missing tensor `body.0.rdb1.conv1.weight`: an RRDBNet has at least one block".into(),
        );
    }
    let (num_grow_ch, _) = conv3x3(w, "body.0.rdb1.conv1.weight")?;
    Ok(RrdbConfig {
        num_in_ch,
        num_out_ch,
        scale,
        num_feat,
        num_block,
        num_grow_ch,
    })
}

fn detect_compact(w: &TrackedWeights) -> Result<CompactConfig, String> {
    let (num_feat, num_in_ch) = conv3x3(w, "body.0.weight")?;
    if !w.contains("body.1.weight") {
        return Err(
            "missing tensor `body.1.weight`: only SRVGGNetCompact with PReLU activations (as \
             published) is supported"
                .into(),
        );
    }
    // body.{2i} convolutions, body.{2i+1} activations: the last convolution has no activation.
    let layers = count_indexed(w, "body", "weight");
    if layers < 3 || layers.is_multiple_of(2) {
        return Err(format!(
            "tensor `body.{layers}.weight` is missing: SRVGGNetCompact ends with a convolution \
             after its last activation"
        ));
    }
    let last = layers - 1;
    let (last_out, _) = conv3x3(w, &format!("body.{last}.weight"))?;
    let num_out_ch = num_in_ch;
    let upscale = (1..=8)
        .find(|s| s * s * num_out_ch == last_out)
        .ok_or_else(|| {
            format!(
                "tensor `body.{last}.weight` gives {last_out} channels, not {num_out_ch} times a \
             square factor (48 for x4, 12 for x2)"
            )
        })?;
    Ok(CompactConfig {
        num_in_ch,
        num_out_ch,
        num_feat,
        num_conv: (last - 2) / 2,
        upscale,
    })
}
