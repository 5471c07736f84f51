use super::causal_conv::{CausalCache, CausalConv3d};
use super::patchify::{patchify, unpatchify};
use super::shortcut::{AvgDown3d, DupUp3d};
use crate::ops::fused_kernels;
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;

fn random(shape: &[usize], seed: u64) -> Result<Tensor> {
    // A small LCG keeps the tests independent of the RNG crates' versions.
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    assert_eq!(a.dims(), b.dims());
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar()
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1()
}

struct ConvCase {
    in_dim: usize,
    out_dim: usize,
    kernel: [usize; 3],
    padding: [usize; 3],
    time_stride: usize,
}

impl ConvCase {
    fn build(&self) -> Result<(CausalConv3d, Tensor, Tensor)> {
        let k = self.kernel;
        let weight = random(&[self.out_dim, self.in_dim, k[0], k[1], k[2]], 1)?;
        let bias = random(&[self.out_dim], 2)?;
        let tensors = HashMap::from([
            ("weight".to_string(), weight.clone()),
            ("bias".to_string(), bias.clone()),
        ]);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let conv = CausalConv3d::new(
            self.in_dim,
            self.out_dim,
            k,
            self.padding,
            self.time_stride,
            vb,
            &fused_kernels(),
        )?;
        Ok((conv, weight, bias))
    }

    /// Conv3d by its definition on `[B, T, C, H, W]`, `2 * padding[0]` zero frames in front.
    fn naive(&self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, t, c, h, w) = x.dims5()?;
        let [kt, kh, kw] = self.kernel;
        let (o, st) = (self.out_dim, self.time_stride);
        let (pt, ps) = (2 * self.padding[0] as isize, self.padding[1] as isize);
        let (xv, wv, bv) = (flat(x)?, flat(weight)?, flat(bias)?);
        let t_out = (t + pt as usize - kt) / st + 1;
        let h_out = h + 2 * ps as usize - kh + 1;
        let w_out = w + 2 * ps as usize - kw + 1;
        let mut out = Vec::with_capacity(b * t_out * o * h_out * w_out);
        for bi in 0..b {
            for to in 0..t_out {
                for oi in 0..o {
                    for yo in 0..h_out {
                        for xo in 0..w_out {
                            let mut acc = bv[oi];
                            for ci in 0..c {
                                for dt in 0..kt {
                                    let ti = (to * st + dt) as isize - pt;
                                    for dy in 0..kh {
                                        let yi = (yo + dy) as isize - ps;
                                        for dx in 0..kw {
                                            let xi = (xo + dx) as isize - ps;
                                            let inside = ti >= 0 && yi >= 0 && xi >= 0;
                                            if !inside || yi >= h as isize || xi >= w as isize {
                                                continue;
                                            }
                                            let (ti, yi, xi) =
                                                (ti as usize, yi as usize, xi as usize);
                                            let xval =
                                                xv[(((bi * t + ti) * c + ci) * h + yi) * w + xi];
                                            let wval =
                                                wv[(((oi * c + ci) * kt + dt) * kh + dy) * kw + dx];
                                            acc += xval * wval;
                                        }
                                    }
                                }
                            }
                            out.push(acc);
                        }
                    }
                }
            }
        }
        Tensor::from_vec(out, (b, t_out, o, h_out, w_out), &Device::Cpu)
    }
}

const CASES: [ConvCase; 3] = [
    ConvCase {
        in_dim: 3,
        out_dim: 4,
        kernel: [3, 3, 3],
        padding: [1, 1, 1],
        time_stride: 1,
    },
    ConvCase {
        in_dim: 4,
        out_dim: 4,
        kernel: [3, 1, 1],
        padding: [0, 0, 0],
        time_stride: 2,
    },
    ConvCase {
        in_dim: 3,
        out_dim: 5,
        kernel: [1, 1, 1],
        padding: [0, 0, 0],
        time_stride: 1,
    },
];

#[test]
fn causal_conv_matches_a_direct_conv3d() -> Result<()> {
    for case in &CASES {
        let (conv, weight, bias) = case.build()?;
        let x = random(&[2, 5, case.in_dim, 5, 6], 3)?;
        let diff = max_abs_diff(&conv.forward(&x)?, &case.naive(&x, &weight, &bias)?)?;
        assert!(diff < 1e-5, "kernel {:?}: diff {diff}", case.kernel);
    }
    Ok(())
}

#[test]
fn causal_conv_gives_the_same_result_a_few_frames_at_a_time() -> Result<()> {
    let case = &CASES[0];
    let (conv, _, _) = case.build()?;
    let x = random(&[2, 4, case.in_dim, 5, 6], 8)?;
    // 5*6 pixels * 3 channels * 9 taps * 4 bytes = 3240 bytes of im2col per frame: 3 frames a call.
    let grouped = conv.clone().with_im2col_budget(3 * 3240).forward(&x)?;
    assert_eq!(max_abs_diff(&grouped, &conv.forward(&x)?)?, 0.0);
    Ok(())
}

#[test]
fn streamed_causal_conv_equals_the_whole_clip() -> Result<()> {
    let case = &CASES[0];
    let (conv, _, _) = case.build()?;
    let x = random(&[1, 7, case.in_dim, 4, 5], 4)?;
    let whole = conv.forward(&x)?;
    let mut cache = CausalCache::new();
    let mut chunks = Vec::new();
    for (start, len) in [(0, 1), (1, 1), (2, 4), (6, 1)] {
        cache.start_chunk();
        chunks.push(conv.forward_cached(&x.narrow(1, start, len)?, &mut cache)?);
    }
    assert!(max_abs_diff(&Tensor::cat(&chunks, 1)?, &whole)? < 1e-5);
    Ok(())
}

#[test]
fn patchify_puts_the_width_offset_before_the_height_offset() -> Result<()> {
    let (b, c, f, h, w) = (2, 3, 2, 4, 6);
    let video = random(&[b, c, f, h, w], 5)?;
    let patches = patchify(&video, 2)?;
    assert_eq!(patches.dims(), &[b, f, c * 4, h / 2, w / 2]);
    let (v, p) = (flat(&video)?, flat(&patches)?);
    for bi in 0..b {
        for ci in 0..c {
            for fi in 0..f {
                for y in 0..h {
                    for x in 0..w {
                        let channel = ci * 4 + (x % 2) * 2 + y % 2;
                        let pi =
                            (((bi * f + fi) * c * 4 + channel) * (h / 2) + y / 2) * (w / 2) + x / 2;
                        assert_eq!(p[pi], v[(((bi * c + ci) * f + fi) * h + y) * w + x]);
                    }
                }
            }
        }
    }
    assert_eq!(max_abs_diff(&unpatchify(&patches, 2)?, &video)?, 0.0);
    Ok(())
}

#[test]
fn avg_down_averages_the_folded_neighbourhood() -> Result<()> {
    // 2 channels -> 4, factor_t 2, factor_s 2: group size 4; output channel o averages input
    // channel o/2 at time offset o%2 over the 2x2 pixels.
    let x = random(&[1, 3, 2, 4, 4], 6)?;
    let y = AvgDown3d::new(2, 4, 2, 2)?.forward(&x)?;
    assert_eq!(y.dims(), &[1, 2, 4, 2, 2]);
    let padded = x.pad_with_zeros(1, 1, 0)?;
    let (xv, yv) = (flat(&padded)?, flat(&y)?);
    for t in 0..2 {
        for o in 0..4 {
            for i in 0..2 {
                for j in 0..2 {
                    let (c, dt) = (o / 2, o % 2);
                    let mut sum = 0.0;
                    for dy in 0..2 {
                        for dx in 0..2 {
                            sum += xv[(((2 * t + dt) * 2 + c) * 4 + 2 * i + dy) * 4 + 2 * j + dx];
                        }
                    }
                    let got = yv[((t * 4 + o) * 2 + i) * 2 + j];
                    assert!((got - sum / 4.0).abs() < 1e-6);
                }
            }
        }
    }
    Ok(())
}

#[test]
fn dup_up_spreads_repeated_channels_over_time_and_space() -> Result<()> {
    // 4 channels -> 2, factor_t 2, factor_s 2: 4 repeats, output channel o at offsets (dt, dy, dx)
    // reads input channel (o*8 + dt*4 + dy*2 + dx) / 4.
    let x = random(&[1, 2, 4, 3, 3], 7)?;
    let up = DupUp3d::new(4, 2, 2, 2)?;
    let y = up.forward(&x, false)?;
    assert_eq!(y.dims(), &[1, 4, 2, 6, 6]);
    let (xv, yv) = (flat(&x)?, flat(&y)?);
    for t in 0..4 {
        for o in 0..2 {
            for yy in 0..6 {
                for xx in 0..6 {
                    let k = o * 8 + (t % 2) * 4 + (yy % 2) * 2 + xx % 2;
                    let expected = xv[(((t / 2) * 4 + k / 4) * 3 + yy / 2) * 3 + xx / 2];
                    assert_eq!(yv[((t * 2 + o) * 6 + yy) * 6 + xx], expected);
                }
            }
        }
    }
    let first = up.forward(&x.narrow(1, 0, 1)?, true)?;
    assert_eq!(max_abs_diff(&first, &y.narrow(1, 1, 1)?)?, 0.0);
    Ok(())
}
