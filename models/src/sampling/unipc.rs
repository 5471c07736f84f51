//! UniPC multistep in its Wan configuration: flow prediction with flow sigmas, data (x0)
//! prediction, the bh2 variant, order 2 with lower order on the first and final steps, and
//! final sigma zero (diffusers `UniPCMultistepScheduler`).

use super::{shift_sigma, Sampler, NUM_TRAIN_TIMESTEPS};
use candle_core::{Result, Tensor};

const SOLVER_ORDER: usize = 2;

pub struct UniPc {
    timesteps: Vec<f64>,
    sigmas: Vec<f32>,
    step_index: usize,
    /// Data predictions of the latest steps, oldest first.
    x0_history: Vec<Tensor>,
    last_sample: Option<Tensor>,
    lower_order_nums: usize,
    this_order: usize,
}

/// `(alpha, sigma)` of the flow parameterisation and `lambda = ln(alpha) - ln(sigma)`.
fn lambda(sigma: f64) -> (f64, f64, f64) {
    let alpha = 1.0 - sigma;
    (alpha, sigma, alpha.ln() - sigma.ln())
}

/// Coefficients `(h_phi_1, B_h, b)` of the bh2 update for `order` terms, with `hh = -h`.
fn bh2_coefficients(h: f64, order: usize) -> (f64, f64, Vec<f64>) {
    let hh = -h;
    let h_phi_1 = hh.exp_m1();
    let b_h = hh.exp_m1();
    let mut h_phi_k = h_phi_1 / hh - 1.0;
    let mut factorial = 1.0;
    let mut b = Vec::with_capacity(order);
    for i in 1..=order {
        b.push(h_phi_k * factorial / b_h);
        factorial *= (i + 1) as f64;
        h_phi_k = h_phi_k / hh - 1.0 / factorial;
    }
    (h_phi_1, b_h, b)
}

impl UniPc {
    pub fn new(steps: usize, shift: f64) -> Self {
        let n = NUM_TRAIN_TIMESTEPS as f64;
        // linspace(1, 1/1000, steps + 1)[:-1], shifted, in f64 as numpy does.
        let mut s: Vec<f64> = (0..steps)
            .map(|i| {
                let frac = if steps == 0 {
                    0.0
                } else {
                    i as f64 / steps as f64
                };
                1.0 + frac * (1.0 / n - 1.0)
            })
            .map(|s| shift_sigma(s, shift))
            .collect();
        if let Some(first) = s.first_mut() {
            if (*first - 1.0).abs() < 1e-6 {
                *first -= 1e-6;
            }
        }
        // Integer timesteps by truncation, e.g. 999.999 -> 999.
        let timesteps = s.iter().map(|s| (s * n).trunc()).collect();
        let mut sigmas: Vec<f32> = s.iter().map(|&s| s as f32).collect();
        sigmas.push(0.0);
        Self {
            timesteps,
            sigmas,
            step_index: 0,
            x0_history: Vec::new(),
            last_sample: None,
            lower_order_nums: 0,
            this_order: 1,
        }
    }

    fn sigma(&self, i: usize) -> f64 {
        self.sigmas[i] as f64
    }

    /// The terms shared by UniP and UniC for a move from sigma `target - 1` to sigma `target`,
    /// using the latest data prediction `m0` and `order - 1` older ones.
    fn update_terms(&self, target: usize, order: usize) -> Result<UpdateTerms> {
        let source = target - 1;
        let m0 = self
            .x0_history
            .last()
            .expect("a data prediction exists")
            .clone();
        let (alpha_t, sigma_t, lambda_t) = lambda(self.sigma(target));
        let (_, sigma_s0, lambda_s0) = lambda(self.sigma(source));
        let h = lambda_t - lambda_s0;
        let mut rks = Vec::with_capacity(order);
        let mut d1s = Vec::with_capacity(order);
        for k in 1..order {
            let (_, _, lambda_sk) = lambda(self.sigma(source - k));
            let rk = (lambda_sk - lambda_s0) / h;
            let mk = &self.x0_history[self.x0_history.len() - (k + 1)];
            d1s.push(((mk - &m0)? / rk)?);
            rks.push(rk);
        }
        rks.push(1.0);
        let (h_phi_1, b_h, b) = bh2_coefficients(h, order);
        Ok(UpdateTerms {
            m0,
            alpha_t,
            sigma_ratio: sigma_t / sigma_s0,
            h_phi_1,
            b_h,
            b,
            rks,
            d1s,
        })
    }

    /// UniC: corrects the sample the previous predictor step produced, using the new data
    /// prediction `x0_now`.
    fn corrector(&self, x0_now: &Tensor, last_sample: &Tensor, order: usize) -> Result<Tensor> {
        let u = self.update_terms(self.step_index, order)?;
        let rhos_c = if order == 1 {
            vec![0.5]
        } else {
            solve(&vandermonde(&u.rks, order), &u.b)
        };
        let mut corr = ((x0_now - &u.m0)? * rhos_c[order - 1])?;
        for (d1, rho) in u.d1s.iter().zip(&rhos_c) {
            corr = (corr + (d1 * *rho)?)?;
        }
        u.base(last_sample)? - (corr * (u.alpha_t * u.b_h))?
    }

    /// UniP: predicts the sample at the next sigma.
    fn predictor(&self, sample: &Tensor, order: usize) -> Result<Tensor> {
        let u = self.update_terms(self.step_index + 1, order)?;
        let base = u.base(sample)?;
        if u.d1s.is_empty() {
            return Ok(base);
        }
        let rhos_p = if order == 2 {
            vec![0.5]
        } else {
            solve(
                &vandermonde(&u.rks[..order - 1], order - 1),
                &u.b[..order - 1],
            )
        };
        let mut pred = (&u.d1s[0] * rhos_p[0])?;
        for (d1, rho) in u.d1s.iter().zip(&rhos_p).skip(1) {
            pred = (pred + (d1 * *rho)?)?;
        }
        base - (pred * (u.alpha_t * u.b_h))?
    }
}

struct UpdateTerms {
    m0: Tensor,
    alpha_t: f64,
    sigma_ratio: f64,
    h_phi_1: f64,
    b_h: f64,
    b: Vec<f64>,
    rks: Vec<f64>,
    /// `(m_k - m0) / r_k` for the older data predictions.
    d1s: Vec<Tensor>,
}

impl UpdateTerms {
    /// The first-order part of the update: `sigma_t/sigma_s0 * x - alpha_t * h_phi_1 * m0`.
    fn base(&self, x: &Tensor) -> Result<Tensor> {
        (x * self.sigma_ratio)? - (&self.m0 * (self.alpha_t * self.h_phi_1))?
    }
}

/// Rows `r^0, r^1, ...` for the first `order` powers.
fn vandermonde(rks: &[f64], order: usize) -> Vec<Vec<f64>> {
    (0..order)
        .map(|p| rks.iter().take(order).map(|r| r.powi(p as i32)).collect())
        .collect()
}

/// Solves the small dense system `a x = b` by Gaussian elimination with partial pivoting.
fn solve(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let mut m: Vec<Vec<f64>> = a
        .iter()
        .zip(b)
        .map(|(row, &bi)| row.iter().copied().chain([bi]).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))
            .unwrap_or(col);
        m.swap(col, pivot);
        let pivot_row = m[col].clone();
        for row in m.iter_mut().skip(col + 1) {
            let f = row[col] / pivot_row[col];
            for (value, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                *value -= f * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| m[row][k] * x[k]).sum();
        x[row] = (m[row][n] - s) / m[row][row];
    }
    x
}

impl Sampler for UniPc {
    fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    fn step(&mut self, model_output: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let steps = self.timesteps.len();
        if self.step_index >= steps {
            candle_core::bail!("UniPC: all {steps} steps already taken");
        }
        let sigma = self.sigma(self.step_index);
        let x0 = (sample - (model_output * sigma)?)?;
        let sample = match (&self.last_sample, self.step_index > 0) {
            (Some(last), true) => self.corrector(&x0, last, self.this_order)?,
            _ => sample.clone(),
        };
        self.x0_history.push(x0);
        if self.x0_history.len() > SOLVER_ORDER {
            self.x0_history.remove(0);
        }
        let order = SOLVER_ORDER
            .min(steps - self.step_index)
            .min(self.lower_order_nums + 1);
        self.this_order = order;
        let prev = self.predictor(&sample, order)?;
        self.last_sample = Some(sample);
        if self.lower_order_nums < SOLVER_ORDER {
            self.lower_order_nums += 1;
        }
        self.step_index += 1;
        Ok(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_reference_truncation() {
        // Reference (diffusers, steps=2, shift=5): timesteps [999, 833].
        let s = UniPc::new(2, 5.0);
        assert_eq!(s.timesteps, vec![999.0, 833.0]);
        assert_eq!(s.sigmas.len(), 3);
        assert_eq!(*s.sigmas.last().unwrap(), 0.0);
    }

    #[test]
    fn solve_small_system() {
        let x = solve(&[vec![1.0, 1.0], vec![0.5, 1.0]], &[3.0, 2.0]);
        assert!(
            (x[0] - 2.0).abs() < 1e-12 && (x[1] - 1.0).abs() < 1e-12,
            "{x:?}"
        );
    }
}
