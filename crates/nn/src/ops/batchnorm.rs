//! Batch normalisation (Ioffe & Szegedy, 2015), with PyTorch's conventions so numbers compare:
//! `BatchNorm1d` over the features of `(n, f)`, `BatchNorm2d` over the channels of `(n, c, h, w)`.
//! Each feature (channel) `j` is normalised over its `m` values in the batch (`m = n` for 1d,
//! `n·h·w` for 2d):
//!
//! ```text
//! training:   μ = (1/m) Σ x        σ² = (1/m) Σ (x − μ)²   (biased)
//!             x̂ = (x − μ) / √(σ² + ε)        y = γ x̂ + β
//!             running_mean ← (1 − p) running_mean + p μ
//!             running_var  ← (1 − p) running_var  + p σ² m/(m − 1)   (unbiased; p = momentum 0.1)
//! evaluation: x̂ = (x − running_mean) / √(running_var + ε)            (ε = 1e-5)
//!
//! backward, compact (training):  dγ = Σ dy x̂     dβ = Σ dy
//!             dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂ · mean(dy x̂))
//! backward, step by step through the graph  x → centred c = x − μ → σ² → istd → x̂ → y:
//!             dx̂ = γ dy          distd = Σ dx̂ c        dσ² = −½ istd³ distd
//!             dc = dx̂ istd + (2/m) c dσ²               dx = dc − mean(dc)
//! backward (evaluation): the statistics are constants: dx = γ dy / √(running_var + ε)
//! ```
//! γ starts at 1 and β at 0; the running statistics are buffers (exported, restored, reset with
//! the model). Training needs m ≥ 2: with one value per feature the variance is 0 and the
//! unbiased running variance undefined — the running variance is then left unchanged, and the
//! labs refuse a batch size of 1 with a message before it gets here.

use crate::layer::{Layer, ParamKind};
use crate::tensor::{self, Mode, Tensor};

pub const EPS: f32 = 1e-5;
pub const MOMENTUM: f32 = 0.1;

/// Which backward pass runs (both give the same gradients; the graph one is the lesson).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnBackward {
    /// Step by step through mean → centred → variance → normalised → scaled.
    Graph,
    /// The closed form.
    Compact,
}

/// Where example `i`'s `inner` values of channel `j` start (row-major `(n, c, inner)`).
#[inline]
fn offset(channels: usize, i: usize, j: usize, inner: usize) -> usize {
    (i * channels + j) * inner
}

#[derive(Clone)]
pub struct BatchNorm {
    /// Features (1d) or channels (2d).
    pub channels: usize,
    pub gamma: Tensor,
    pub beta: Tensor,
    pub dgamma: Tensor,
    pub dbeta: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    /// When false, γ and β stay fixed at their values (BN as pure standardisation).
    pub affine_trainable: bool,
    pub backward_impl: BnBackward,
    /// When false, training mode normalises with the batch's statistics but leaves the running
    /// ones alone (evaluating "in training mode" without changing the model).
    pub update_running: bool,
    /// While calibrating: the batches averaged so far (each batch counts equally, PyTorch's
    /// `momentum=None`); `None` for the usual exponential average.
    calibrated: Option<u32>,
    /// The last training-mode batch's mean and biased variance per channel (for display).
    pub batch_mean: Vec<f32>,
    pub batch_var: Vec<f32>,
    /// Cached by forward: x̂, each channel's 1/√(σ² + ε), and the mode it ran in.
    x_hat: Tensor,
    istd: Vec<f32>,
    mode: Mode,
    y: Tensor,
    dx: Tensor,
    needs_input_grad: bool,
}

impl BatchNorm {
    pub fn new(channels: usize) -> Self {
        let filled = |v: f32| tensor::from_vec(&[channels], vec![v; channels]);
        BatchNorm {
            channels,
            gamma: filled(1.0),
            beta: filled(0.0),
            dgamma: filled(0.0),
            dbeta: filled(0.0),
            running_mean: filled(0.0),
            running_var: filled(1.0),
            affine_trainable: true,
            backward_impl: BnBackward::Compact,
            update_running: true,
            calibrated: None,
            batch_mean: Vec::new(),
            batch_var: Vec::new(),
            x_hat: tensor::zeros(&[0]),
            istd: Vec::new(),
            mode: Mode::Train,
            y: tensor::zeros(&[0]),
            dx: tensor::zeros(&[0]),
            needs_input_grad: true,
        }
    }

    /// Starts recomputing the running statistics: they restart from zero, and every following
    /// training-mode batch counts equally (a cumulative average) until [`BatchNorm::end_calibration`].
    pub fn begin_calibration(&mut self) {
        tensor::slice_mut(&mut self.running_mean).fill(0.0);
        tensor::slice_mut(&mut self.running_var).fill(0.0);
        self.calibrated = Some(0);
    }

    /// Back to the exponential running average; with no batch seen, the statistics reset (0, 1).
    pub fn end_calibration(&mut self) {
        if self.calibrated == Some(0) {
            tensor::slice_mut(&mut self.running_var).fill(1.0);
        }
        self.calibrated = None;
    }

    /// `(n, inner)`: the batch and the positions per channel (1 for `(n, f)`, h·w for images).
    fn layout(&self, shape: &[usize]) -> (usize, usize) {
        let inner = if shape.len() == 4 { shape[2] * shape[3] } else { 1 };
        (shape[0], inner)
    }

    fn backward_compact(&mut self, dy: &[f32], n: usize, inner: usize) {
        let m = (n * inner) as f32;
        let x_hat = tensor::slice(&self.x_hat);
        let dx = tensor::slice_mut(&mut self.dx);
        for j in 0..self.channels {
            let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
            for i in 0..n {
                let o = offset(self.channels, i, j, inner);
                for p in o..o + inner {
                    sum_dy += dy[p] as f64;
                    sum_dy_xhat += (dy[p] * x_hat[p]) as f64;
                }
            }
            let (mean_dy, mean_dy_xhat) = ((sum_dy / m as f64) as f32, (sum_dy_xhat / m as f64) as f32);
            let scale = tensor::slice(&self.gamma)[j] * self.istd[j];
            for i in 0..n {
                let o = offset(self.channels, i, j, inner);
                for p in o..o + inner {
                    dx[p] = scale * (dy[p] - mean_dy - x_hat[p] * mean_dy_xhat);
                }
            }
        }
    }

    fn backward_graph(&mut self, dy: &[f32], n: usize, inner: usize) {
        let m = (n * inner) as f32;
        let x_hat = tensor::slice(&self.x_hat);
        let dx = tensor::slice_mut(&mut self.dx);
        for j in 0..self.channels {
            let (gamma, istd) = (tensor::slice(&self.gamma)[j], self.istd[j]);
            // The centred values, recovered from the cache: c = x̂ / istd.
            let centred = |p: usize| x_hat[p] / istd;
            // dx̂ = γ dy; istd depends on c through σ²: distd = Σ dx̂ c, dσ² = −½ istd³ distd.
            let mut distd = 0.0f64;
            for i in 0..n {
                let o = offset(self.channels, i, j, inner);
                for p in o..o + inner {
                    distd += (gamma * dy[p] * centred(p)) as f64;
                }
            }
            let dvar = -0.5 * istd * istd * istd * distd as f32;
            // dc = dx̂ istd + (2/m) c dσ², then through c = x − μ: dx = dc − mean(dc).
            let mut sum_dc = 0.0f64;
            for i in 0..n {
                let o = offset(self.channels, i, j, inner);
                for p in o..o + inner {
                    let dc = gamma * dy[p] * istd + 2.0 / m * centred(p) * dvar;
                    dx[p] = dc;
                    sum_dc += dc as f64;
                }
            }
            let mean_dc = (sum_dc / m as f64) as f32;
            for i in 0..n {
                let o = offset(self.channels, i, j, inner);
                for p in o..o + inner {
                    dx[p] -= mean_dc;
                }
            }
        }
    }
}

impl Layer for BatchNorm {
    fn scratch_bytes(&self) -> usize {
        (self.x_hat.len() + self.istd.len() + self.batch_mean.len() + self.batch_var.len()) * std::mem::size_of::<f32>()
    }

    fn name(&self) -> String {
        format!("batch norm ({})", self.channels)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [_, c] | [_, c, _, _] if *c == self.channels => Ok(input.to_vec()),
            _ => Err(format!("{} takes (n, {0}) or (n, {0}, h, w), not {input:?}", self.channels)),
        }
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> &Tensor {
        let shape = x.shape().to_vec();
        assert!(shape.len() == 2 || shape.len() == 4, "batch norm input is (n, f) or (n, c, h, w)");
        assert_eq!(shape[1], self.channels, "batch norm channels");
        let (n, inner) = self.layout(&shape);
        let m = n * inner;
        tensor::resize(&mut self.x_hat, &shape);
        tensor::resize(&mut self.y, &shape);
        self.istd.resize(self.channels, 0.0);
        self.mode = mode;
        let xs = tensor::slice(x);
        for j in 0..self.channels {
            let (mean, var) = if mode == Mode::Train && m > 0 {
                let mut sum = 0.0f64;
                for i in 0..n {
                    let o = offset(self.channels, i, j, inner);
                    sum += xs[o..o + inner].iter().map(|&v| v as f64).sum::<f64>();
                }
                let mean = sum / m as f64;
                let mut sq = 0.0f64;
                for i in 0..n {
                    let o = offset(self.channels, i, j, inner);
                    sq += xs[o..o + inner].iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>();
                }
                let var = sq / m as f64;
                // Momentum p, or 1/(k+1) for the (k+1)-th batch of a calibration.
                let p = self.calibrated.map_or(MOMENTUM, |k| 1.0 / (k as f32 + 1.0));
                if self.update_running {
                    let rm = &mut tensor::slice_mut(&mut self.running_mean)[j];
                    *rm = (1.0 - p) * *rm + p * mean as f32;
                    if m > 1 {
                        let rv = &mut tensor::slice_mut(&mut self.running_var)[j];
                        *rv = (1.0 - p) * *rv + p * (var * m as f64 / (m - 1) as f64) as f32;
                    }
                }
                self.batch_mean.resize(self.channels, 0.0);
                self.batch_var.resize(self.channels, 0.0);
                (self.batch_mean[j], self.batch_var[j]) = (mean as f32, var as f32);
                (mean as f32, var as f32)
            } else {
                (tensor::slice(&self.running_mean)[j], tensor::slice(&self.running_var)[j])
            };
            let istd = 1.0 / (var + EPS).sqrt();
            self.istd[j] = istd;
            let (gamma, beta) = (tensor::slice(&self.gamma)[j], tensor::slice(&self.beta)[j]);
            let (x_hat, y) = (tensor::slice_mut(&mut self.x_hat), tensor::slice_mut(&mut self.y));
            for i in 0..n {
                let o = offset(self.channels, i, j, inner);
                for p in o..o + inner {
                    x_hat[p] = (xs[p] - mean) * istd;
                    y[p] = gamma * x_hat[p] + beta;
                }
            }
        }
        if mode == Mode::Train && m > 1 && self.update_running {
            self.calibrated = self.calibrated.map(|k| k + 1);
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        let shape = self.x_hat.shape().to_vec();
        let (n, inner) = self.layout(&shape);
        let dy = tensor::slice(dy);
        if self.affine_trainable {
            let x_hat = tensor::slice(&self.x_hat);
            for j in 0..self.channels {
                let (mut dg, mut db) = (0.0f64, 0.0f64);
                for i in 0..n {
                    let o = offset(self.channels, i, j, inner);
                    for p in o..o + inner {
                        dg += (dy[p] * x_hat[p]) as f64;
                        db += dy[p] as f64;
                    }
                }
                tensor::slice_mut(&mut self.dgamma)[j] += dg as f32;
                tensor::slice_mut(&mut self.dbeta)[j] += db as f32;
            }
        }
        if !self.needs_input_grad {
            return &self.dx;
        }
        tensor::resize(&mut self.dx, &shape);
        match (self.mode, self.backward_impl) {
            (Mode::Eval, _) => {
                let dx = tensor::slice_mut(&mut self.dx);
                for j in 0..self.channels {
                    let scale = tensor::slice(&self.gamma)[j] * self.istd[j];
                    for i in 0..n {
                        let o = offset(self.channels, i, j, inner);
                        for p in o..o + inner {
                            dx[p] = scale * dy[p];
                        }
                    }
                }
            }
            (Mode::Train, BnBackward::Compact) => self.backward_compact(dy, n, inner),
            (Mode::Train, BnBackward::Graph) => self.backward_graph(dy, n, inner),
        }
        &self.dx
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        if self.affine_trainable {
            // γ is a scale, not a weight to decay towards 0: no L2 on either (PyTorch's default too).
            f("gamma", ParamKind::Bias, &mut self.gamma, &mut self.dgamma);
            f("beta", ParamKind::Bias, &mut self.beta, &mut self.dbeta);
        }
    }

    fn visit_buffers(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor)) {
        f("running_mean", &mut self.running_mean);
        f("running_var", &mut self.running_var);
    }

    fn set_needs_input_grad(&mut self, needed: bool) {
        self.needs_input_grad = needed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    /// A 4×3 batch: feature 0 = [1, 2, 3, 4], feature 1 = [−1, −1, 1, 1], feature 2 = [0, 0, 0, 8].
    fn batch() -> Tensor {
        tensor::from_vec(&[4, 3], vec![1.0, -1.0, 0.0, 2.0, -1.0, 0.0, 3.0, 1.0, 0.0, 4.0, 1.0, 8.0])
    }

    #[test]
    fn hand_values_in_training_and_evaluation() {
        let mut bn = BatchNorm::new(3);
        let y = bn.forward(&batch(), Mode::Train).clone();
        // Feature 0: μ = 2.5, σ² = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25, x̂ = (x − 2.5)/√1.25000001.
        let s = (1.25f32 + EPS).sqrt();
        let col = |t: &Tensor, j: usize| (0..4).map(|i| tensor::slice(t)[i * 3 + j]).collect::<Vec<f32>>();
        for (got, want) in col(&y, 0).iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        // Feature 1: μ = 0, σ² = 1: x̂ = x/√(1 + ε). Feature 2: μ = 2, σ² = 12: x̂ = (x − 2)/√12.
        for (got, want) in col(&y, 1).iter().zip([-1.0, -1.0, 1.0, 1.0]) {
            assert!((got - want / (1.0f32 + EPS).sqrt()).abs() < 1e-6);
        }
        assert!((col(&y, 2)[3] - 6.0 / (12.0f32 + EPS).sqrt()).abs() < 1e-6);
        // Running statistics after one step: 0.9·0 + 0.1·μ, and 0.9·1 + 0.1·σ²·4/3 (unbiased).
        assert_eq!(tensor::slice(&bn.running_mean), &[0.25, 0.0, 0.2]);
        let rv = bn.running_var.data().to_vec();
        for (got, want) in rv.iter().zip([0.9 + 0.1 * 1.25 * 4.0 / 3.0, 0.9 + 0.1 * 4.0 / 3.0, 0.9 + 0.1 * 12.0 * 4.0 / 3.0]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        // Evaluation uses the running statistics: feature 0 of x = 1 → (1 − 0.25)/√(rv0 + ε).
        let e = bn.forward(&batch(), Mode::Eval).clone();
        assert!((tensor::slice(&e)[0] - 0.75 / (rv[0] + EPS).sqrt()).abs() < 1e-6);
        // γ and β scale and shift: y = 2x̂ + 1.
        let mut scaled = BatchNorm::new(3);
        scaled.gamma = tensor::from_vec(&[3], vec![2.0; 3]);
        scaled.beta = tensor::from_vec(&[3], vec![1.0; 3]);
        let z = scaled.forward(&batch(), Mode::Train).clone();
        assert!((tensor::slice(&z)[0] - (2.0 * -1.5 / s + 1.0)).abs() < 1e-6);
    }

    #[test]
    fn training_gradients_match_finite_differences_1d_and_2d() {
        for shape in [&[6, 4][..], &[3, 2, 3, 3]] {
            for imp in [BnBackward::Compact, BnBackward::Graph] {
                let mut bn = BatchNorm::new(shape[1]);
                bn.backward_impl = imp;
                bn.gamma = gradcheck::random_input(&[shape[1]], 3, 0.5);
                bn.beta = gradcheck::random_input(&[shape[1]], 4, 0.0);
                let x = gradcheck::random_input(shape, 5, 0.0);
                gradcheck::check_layer(&mut bn, &x, 1e-2, 2e-2).unwrap_or_else(|e| panic!("{shape:?} {imp:?}: {e}"));
            }
        }
    }

    #[test]
    fn evaluation_gradient_of_the_input_matches_finite_differences() {
        let mut bn = BatchNorm::new(3);
        bn.running_mean = tensor::from_vec(&[3], vec![0.5, -1.0, 2.0]);
        bn.running_var = tensor::from_vec(&[3], vec![2.0, 0.5, 4.0]);
        bn.gamma = tensor::from_vec(&[3], vec![1.5, -0.5, 2.0]);
        let x = gradcheck::random_input(&[4, 3], 8, 0.0);
        let r = gradcheck::random_input(&[4, 3], 9, 0.0);
        bn.forward(&x, Mode::Eval);
        let dx = bn.backward(&r).clone();
        let loss = |bn: &mut BatchNorm, x: &Tensor| -> f64 {
            tensor::slice(bn.forward(x, Mode::Eval)).iter().zip(tensor::slice(&r)).map(|(&a, &b)| a as f64 * b as f64).sum()
        };
        for i in 0..x.len() {
            let mut xp = x.clone();
            tensor::slice_mut(&mut xp)[i] += 1e-2;
            let up = loss(&mut bn, &xp);
            tensor::slice_mut(&mut xp)[i] -= 2e-2;
            let down = loss(&mut bn, &xp);
            let numeric = (up - down) / 2e-2;
            assert!((numeric - tensor::slice(&dx)[i] as f64).abs() < 1e-3, "dx[{i}]: {numeric} vs {}", tensor::slice(&dx)[i]);
        }
        // Evaluation never moves the running statistics.
        assert_eq!(tensor::slice(&bn.running_mean), &[0.5, -1.0, 2.0]);
    }

    #[test]
    fn the_two_backward_passes_agree() {
        let mut worst = 0.0f32;
        for (seed, shape) in [(1u64, vec![8usize, 5]), (2, vec![64, 17]), (3, vec![4, 3, 5, 5]), (4, vec![2, 6, 7, 3]), (5, vec![129, 3])] {
            let x = gradcheck::random_input(&shape, seed, 0.0);
            let dy = gradcheck::random_input(&shape, seed + 100, 0.0);
            let run = |imp| {
                let mut bn = BatchNorm::new(shape[1]);
                bn.backward_impl = imp;
                bn.gamma = gradcheck::random_input(&[shape[1]], seed + 7, 0.3);
                bn.forward(&x, Mode::Train);
                (bn.backward(&dy).clone(), bn.dgamma.clone(), bn.dbeta.clone())
            };
            let (a, b) = (run(BnBackward::Compact), run(BnBackward::Graph));
            assert_eq!((a.1.data(), a.2.data()), (b.1.data(), b.2.data()), "dγ and dβ are shared code");
            worst = tensor::slice(&a.0).iter().zip(tensor::slice(&b.0)).fold(worst, |w, (p, q)| w.max((p - q).abs()));
        }
        assert!(worst <= 1e-5, "largest |difference| {worst}");
    }

    #[test]
    fn running_statistics_are_buffers_and_frozen_affine_has_no_parameters() {
        let mut bn = BatchNorm::new(2);
        bn.forward(&tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 6.0]), Mode::Train);
        let mut buffers = Vec::new();
        bn.visit_buffers(&mut |name, b| buffers.push((name, b.data().to_vec())));
        assert_eq!(buffers[0], ("running_mean", vec![0.2, 0.4]));
        assert_eq!(buffers[1].0, "running_var");
        bn.affine_trainable = false;
        let mut params = 0;
        bn.visit_params(&mut |_, _, _, _| params += 1);
        assert_eq!(params, 0);
        // A batch of one: no NaN, the running variance left as it was.
        let before = bn.running_var.clone();
        let y = bn.forward(&tensor::from_vec(&[1, 2], vec![5.0, -5.0]), Mode::Train).clone();
        assert!(y.data().iter().all(|v| v.is_finite()));
        assert_eq!(bn.running_var, before);
        assert!(bn.output_shape(&[7, 2]).is_ok() && bn.output_shape(&[7, 3]).is_err());
    }

    #[test]
    fn training_mode_without_updates_and_calibration() {
        let mut bn = BatchNorm::new(3);
        bn.update_running = false;
        let y = bn.forward(&batch(), Mode::Train).clone();
        // Normalised with the batch's statistics, the running ones untouched.
        assert!((y.data()[0] + 1.3416).abs() < 1e-3, "{}", y.data()[0]);
        assert_eq!((bn.running_mean.data(), bn.running_var.data()), (&[0.0; 3][..], &[1.0; 3][..]));
        assert_eq!((bn.batch_mean.clone(), bn.batch_var.clone()), (vec![2.5, 0.0, 2.0], vec![1.25, 1.0, 12.0]));
        // Calibration: each batch counts equally. Batch 1 has means (2.5, 0, 2), unbiased
        // variances (5/3, 4/3, 16); batch 2 = batch 1 + 1 has means (3.5, 1, 3), the same variances.
        bn.update_running = true;
        bn.begin_calibration();
        bn.forward(&batch(), Mode::Train);
        let shifted = tensor::from_vec(&[4, 3], batch().data().iter().map(|v| v + 1.0).collect());
        bn.forward(&shifted, Mode::Train);
        bn.end_calibration();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(bn.running_mean.data(), &[3.0, 0.5, 2.5]), "{:?}", bn.running_mean.data());
        assert!(close(bn.running_var.data(), &[5.0 / 3.0, 4.0 / 3.0, 16.0]), "{:?}", bn.running_var.data());
        // Then the exponential average again: 0.9 · 3 + 0.1 · 2.5.
        bn.forward(&batch(), Mode::Train);
        assert!((bn.running_mean.data()[0] - 2.95).abs() < 1e-5);
        // A calibration that saw nothing resets to (0, 1).
        bn.begin_calibration();
        bn.end_calibration();
        assert_eq!((bn.running_mean.data(), bn.running_var.data()), (&[0.0; 3][..], &[1.0; 3][..]));
    }
}
