//! A change of basis of the VAE's latent channels that puts the backgrounds in the first
//! channels.
//!
//! A plain background of one colour encodes to (nearly) one latent vector per latent frame, and
//! the six backgrounds' vectors differ in every channel. The transformer then has to learn, for
//! every background, what an object looks like against it before it can learn where the object
//! goes: trained on one background it learns motion from the caption in ~1000 steps, on three
//! it barely has after 1000 (see docs/demo-model.md, "Fourth session"). Rotating the latent
//! channels (an orthogonal change of basis, exact) so that the backgrounds differ only in the
//! first few channels leaves the other channels the same on every background, where an object
//! stands out from one constant.
//!
//! The rotation `z' = Qᵀ z` is folded into the VAE itself: the mean rows of `quant_conv` (the
//! encoder's last layer) are multiplied by `Qᵀ`, and the input columns of `post_quant_conv` (the
//! decoder's first) by `Q`, so the exported checkpoint decodes the rotated latents unchanged
//! through the real pipeline.

use crate::train::{Result, TrainError};
use candle_core::{Device, Tensor};
use std::collections::BTreeMap;

/// An orthonormal basis of the latent channels, columns sorted by how much the backgrounds vary
/// along them (most first).
#[derive(Debug, Clone, PartialEq)]
pub struct LatentBasis {
    pub z: usize,
    /// `Q`, row-major `[z, z]`: column `j` is new channel `j` in old coordinates.
    pub q: Vec<f64>,
    /// The backgrounds' variance along each column.
    pub background_variance: Vec<f64>,
}

impl LatentBasis {
    /// The basis whose first channels span the variation of the background: the eigenvectors of
    /// the covariance of `backgrounds` (`[n, z]` latent vectors of plain background cells).
    /// With fewer than two samples (tiny clips that objects cover whole), the identity.
    pub fn of_backgrounds(z: usize, backgrounds: &[Vec<f64>]) -> Result<LatentBasis> {
        if backgrounds.iter().any(|v| v.len() != z) {
            return Err(TrainError::Other(format!(
                "latent basis: background samples are not {z} channels"
            )));
        }
        if backgrounds.len() < 2 {
            let mut q = vec![0.0; z * z];
            for i in 0..z {
                q[i * z + i] = 1.0;
            }
            return Ok(LatentBasis {
                z,
                q,
                background_variance: vec![0.0; z],
            });
        }
        let n = backgrounds.len() as f64;
        let mean: Vec<f64> = (0..z)
            .map(|c| backgrounds.iter().map(|v| v[c]).sum::<f64>() / n)
            .collect();
        let mut cov = vec![0.0; z * z];
        for v in backgrounds {
            for i in 0..z {
                for j in 0..z {
                    cov[i * z + j] += (v[i] - mean[i]) * (v[j] - mean[j]) / n;
                }
            }
        }
        let (values, vectors) = symmetric_eigen(&cov, z);
        let mut order: Vec<usize> = (0..z).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let mut q = vec![0.0; z * z];
        for (new, &old) in order.iter().enumerate() {
            for row in 0..z {
                q[row * z + new] = vectors[row * z + old];
            }
        }
        Ok(LatentBasis {
            z,
            q,
            background_variance: order.iter().map(|&k| values[k].max(0.0)).collect(),
        })
    }

    /// The name of `Q` in the trainer's latents file.
    pub const TENSOR_NAME: &'static str = "latent_basis";

    /// `Q` as a `[z, z]` tensor.
    pub fn to_tensor(&self) -> Result<Tensor> {
        self.matrix(false)
    }

    /// The basis saved by [`LatentBasis::to_tensor`] (the variances are not kept).
    pub fn from_tensor(q: &Tensor) -> Result<LatentBasis> {
        let (z, z2) = q.dims2()?;
        if z != z2 {
            return Err(TrainError::Other(format!(
                "latent basis: {z}x{z2} is not square"
            )));
        }
        Ok(LatentBasis {
            z,
            q: q.flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .map(f64::from)
                .collect(),
            background_variance: vec![0.0; z],
        })
    }

    fn matrix(&self, transposed: bool) -> Result<Tensor> {
        let q = Tensor::from_vec(
            self.q.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            (self.z, self.z),
            &Device::Cpu,
        )?;
        Ok(if transposed { q.t()?.contiguous()? } else { q })
    }

    /// `z' = Qᵀ z` for latents `[n, z, F', h, w]`.
    pub fn rotate_latents(&self, latents: &Tensor) -> Result<Tensor> {
        let (n, z, f, h, w) = latents.dims5()?;
        let flat = latents.reshape((n, z, f * h * w))?;
        let qt = self.matrix(true)?.unsqueeze(0)?.broadcast_as((n, z, z))?;
        Ok(qt.contiguous()?.matmul(&flat)?.reshape((n, z, f, h, w))?)
    }

    /// Folds the rotation into the VAE's weights (names as in the diffusers checkpoint): the
    /// encoder then produces `Qᵀ z`, and the decoder takes it.
    pub fn rotate_vae(&self, tensors: &mut BTreeMap<String, Tensor>) -> Result<()> {
        let z = self.z;
        let take = |tensors: &BTreeMap<String, Tensor>, name: &str| {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| TrainError::Other(format!("latent basis: the VAE has no {name}")))
        };
        // quant_conv: [2z, 2z, 1, 1, 1] and [2z]; rows 0..z are the posterior mean.
        let weight = take(tensors, "quant_conv.weight")?;
        let bias = take(tensors, "quant_conv.bias")?;
        let shape = weight.dims().to_vec();
        let rows = weight.reshape((shape[0], shape[1]))?;
        let mean_rows = self.matrix(true)?.matmul(&rows.narrow(0, 0, z)?)?;
        let rows = Tensor::cat(&[&mean_rows, &rows.narrow(0, z, shape[0] - z)?], 0)?;
        let mean_bias = self
            .matrix(true)?
            .matmul(&bias.narrow(0, 0, z)?.unsqueeze(1)?)?
            .squeeze(1)?;
        let bias = Tensor::cat(&[&mean_bias, &bias.narrow(0, z, shape[0] - z)?], 0)?;
        tensors.insert("quant_conv.weight".into(), rows.reshape(shape)?);
        tensors.insert("quant_conv.bias".into(), bias);
        // post_quant_conv: [z, z, 1, 1, 1]; its input is the latent.
        let weight = take(tensors, "post_quant_conv.weight")?;
        let shape = weight.dims().to_vec();
        let cols = weight
            .reshape((shape[0], shape[1]))?
            .matmul(&self.matrix(false)?)?;
        tensors.insert("post_quant_conv.weight".into(), cols.reshape(shape)?);
        Ok(())
    }
}

/// Eigenvalues and eigenvectors (row-major `[n, n]`, column `k` for value `k`) of the symmetric
/// matrix `a` (row-major `[n, n]`), by cyclic Jacobi rotations.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        let scale: f64 = (0..n)
            .map(|i| a[i * n + i].powi(2))
            .sum::<f64>()
            .max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..n {
            for r in p + 1..n {
                let apr = a[p * n + r];
                if apr.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[r * n + r] - a[p * n + p]) / (2.0 * apr);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akr = a[k * n + r];
                    a[k * n + p] = c * akp - s * akr;
                    a[k * n + r] = s * akp + c * akr;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let ark = a[r * n + k];
                    a[p * n + k] = c * apk - s * ark;
                    a[r * n + k] = s * apk + c * ark;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkr = v[k * n + r];
                    v[k * n + p] = c * vkp - s * vkr;
                    v[k * n + r] = s * vkp + c * vkr;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// The latent vectors `[z]` of the cells that no object touches (`coverage` 0), averaged per clip
/// and latent frame: samples of what the backgrounds encode to. `latents` `[N, z, F', h, w]`,
/// `coverage` `[N, 1, F', h, w]`.
pub fn background_cells(latents: &Tensor, coverage: &Tensor) -> Result<Vec<Vec<f64>>> {
    let (n, z, f, h, w) = latents.dims5()?;
    let cells = h * w;
    let data: Vec<f32> = latents.flatten_all()?.to_vec1()?;
    let cover: Vec<f32> = coverage.flatten_all()?.to_vec1()?;
    let mut out = Vec::with_capacity(n * f);
    for clip in 0..n {
        for frame in 0..f {
            let free: Vec<usize> = (0..cells)
                .filter(|&c| cover[(clip * f + frame) * cells + c] == 0.0)
                .collect();
            if free.is_empty() {
                continue;
            }
            out.push(
                (0..z)
                    .map(|ch| {
                        let base = ((clip * z + ch) * f + frame) * cells;
                        free.iter().map(|&c| data[base + c] as f64).sum::<f64>() / free.len() as f64
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_the_eigenvectors_of_a_symmetric_matrix() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (values, v) = symmetric_eigen(&a, 3);
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| a[i * 3 + j] * v[j * 3 + k]).sum();
                assert!((av - values[k] * v[i * 3 + k]).abs() < 1e-9, "{k} {i}");
            }
            for l in 0..3 {
                let dot: f64 = (0..3).map(|i| v[i * 3 + k] * v[i * 3 + l]).sum();
                assert!((dot - f64::from(u8::from(k == l))).abs() < 1e-9);
            }
        }
    }

    /// Backgrounds that differ along one direction end up differing in channel 0 only.
    #[test]
    fn backgrounds_vary_in_the_first_channel_only_after_the_change_of_basis() {
        let direction = [0.6, -0.48, 0.64];
        let backgrounds: Vec<Vec<f64>> = (0..6)
            .map(|k| {
                let t = k as f64 - 2.5;
                vec![
                    1.0 + t * direction[0],
                    -2.0 + t * direction[1],
                    0.5 + t * direction[2],
                ]
            })
            .collect();
        let basis = LatentBasis::of_backgrounds(3, &backgrounds).unwrap();
        assert!(basis.background_variance[0] > 1.0);
        assert!(basis.background_variance[1] < 1e-9);
        let latents = Tensor::from_vec(
            backgrounds
                .iter()
                .flatten()
                .map(|&v| v as f32)
                .collect::<Vec<_>>(),
            (6, 3, 1, 1, 1),
            &Device::Cpu,
        )
        .unwrap();
        let rotated: Vec<f32> = basis
            .rotate_latents(&latents)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for channel in 1..3 {
            let values: Vec<f32> = (0..6).map(|k| rotated[k * 3 + channel]).collect();
            assert!(
                values.iter().all(|v| (v - values[0]).abs() < 1e-5),
                "{values:?}"
            );
        }
        let firsts: Vec<f32> = (0..6).map(|k| rotated[k * 3]).collect();
        assert!((firsts[5] - firsts[0]).abs() > 4.0, "{firsts:?}");
    }

    /// Folding the rotation into the VAE is exact: the rotated VAE encodes to `Qᵀ z` and decodes
    /// `Qᵀ z` to the original's decoding of `z`.
    #[test]
    fn the_rotated_vae_encodes_and_decodes_the_rotated_latents() {
        use candle_core::DType;
        use candle_nn::{VarBuilder, VarMap};
        use t2v_models::vae::WanVae;
        let cfg = crate::configs::Preset::smoke().sizes.vae();
        let map = VarMap::new();
        let vae = WanVae::new(
            &cfg,
            VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let video = Tensor::randn(0f32, 0.5, (1, 3, 5, 32, 32), &Device::Cpu).unwrap();
        let z = vae.encode(&video).unwrap();
        let zdim = z.dim(1).unwrap();
        // A basis from random "backgrounds": any orthonormal basis will do.
        let samples: Vec<Vec<f64>> = (0..40)
            .map(|k| {
                (0..zdim)
                    .map(|c| ((k * 7 + c * 13) % 11) as f64 - (c % 3) as f64)
                    .collect()
            })
            .collect();
        let basis = LatentBasis::of_backgrounds(zdim, &samples).unwrap();
        let mut tensors: BTreeMap<String, Tensor> = map
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor().copy().unwrap()))
            .collect();
        basis.rotate_vae(&mut tensors).unwrap();
        let rotated_vae = WanVae::new(
            &cfg,
            VarBuilder::from_tensors(tensors.into_iter().collect(), DType::F32, &Device::Cpu),
        )
        .unwrap();
        let expected = basis.rotate_latents(&z).unwrap();
        let got = rotated_vae.encode(&video).unwrap();
        let diff = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        assert!(diff(&got, &expected) < 1e-4, "{}", diff(&got, &expected));
        let decoded = vae.decode(&z).unwrap();
        let rotated_decoded = rotated_vae.decode(&expected).unwrap();
        assert!(
            diff(&decoded, &rotated_decoded) < 1e-4,
            "{}",
            diff(&decoded, &rotated_decoded)
        );
    }
}
