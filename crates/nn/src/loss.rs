//! Loss functions: the value (mean over the batch) and its gradient with respect to the
//! prediction, side by side. `N` is the number of elements, `n` the number of rows.
//!
//! ```text
//! MSE          L = (1/N) Σ (p − t)²                         dp = 2(p − t)/N
//! L1           L = (1/N) Σ |p − t|                          dp = sign(p − t)/N
//! BCE(logits)  L = (1/N) Σ max(z,0) − z·t + ln(1 + e^−|z|)  dz = (σ(z) − t)/N
//! Softmax CE   L = (1/n) Σᵢ −ln softmax(zᵢ)[yᵢ]             dz = (softmax(zᵢ) − onehot(yᵢ))/n
//! NLL          L = (1/n) Σᵢ −lpᵢ[yᵢ]  (lp = log-probs)      dlp = −onehot(yᵢ)/n
//! ```
//! Masked classes (padded sequences, batch-major `(n, t, classes)`): the sums run over the rows
//! whose mask is set and `n` is their count; a masked-out row adds nothing and gets zero gradient.
//! Sums are taken in f64 in a fixed order (portable, and accurate for large batches).

use crate::math;
use crate::tensor::{self, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    Mse,
    L1,
    Bce,
    Softmax,
    Nll,
}

/// What a prediction is compared against.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// Same shape as the prediction (regression, binary labels in {0, 1}).
    Values(&'a Tensor),
    /// One class index per row of an `(n, classes)` prediction.
    Classes(&'a [usize]),
    /// One class index per row of an `(rows, classes)` prediction — e.g. a sequence batch
    /// `(n, t, classes)` read as `n·t` rows — and whether each row counts (false: padding).
    Masked { classes: &'a [usize], mask: &'a [bool] },
}

impl Loss {
    pub fn label(self) -> &'static str {
        match self {
            Loss::Mse => "MSE (squared)",
            Loss::L1 => "L1 (absolute)",
            Loss::Bce => "binary cross-entropy",
            Loss::Softmax => "softmax cross-entropy",
            Loss::Nll => "negative log-likelihood",
        }
    }

    /// The loss value only.
    pub fn value(self, pred: &Tensor, target: Target) -> f32 {
        self.eval(pred, target, None)
    }

    /// The loss value; writes `∂L/∂pred` into `dpred` (resized to `pred`'s shape).
    pub fn value_and_grad(self, pred: &Tensor, target: Target, dpred: &mut Tensor) -> f32 {
        tensor::resize(dpred, pred.shape());
        self.eval(pred, target, Some(tensor::slice_mut(dpred)))
    }

    fn eval(self, pred: &Tensor, target: Target, mut grad: Option<&mut [f32]>) -> f32 {
        let p = tensor::slice(pred);
        let mut sum = 0.0f64;
        match (self, target) {
            (Loss::Mse | Loss::L1 | Loss::Bce, Target::Values(t)) => {
                let t = tensor::slice(t);
                assert_eq!(p.len(), t.len(), "prediction and target sizes");
                let scale = 1.0 / p.len() as f32;
                for i in 0..p.len() {
                    let (l, d) = match self {
                        Loss::Mse => {
                            let e = p[i] - t[i];
                            (e * e, 2.0 * e)
                        }
                        Loss::L1 => {
                            let e = p[i] - t[i];
                            (e.abs(), if e > 0.0 { 1.0 } else if e < 0.0 { -1.0 } else { 0.0 })
                        }
                        _ => {
                            let z = p[i];
                            (math::softplus(z) - z * t[i], math::sigmoid(z) - t[i])
                        }
                    };
                    sum += l as f64;
                    if let Some(g) = grad.as_deref_mut() {
                        g[i] = d * scale;
                    }
                }
                (sum / p.len() as f64) as f32
            }
            (Loss::Softmax | Loss::Nll, Target::Classes(y)) => self.class_loss(p, y, None, grad),
            (Loss::Softmax | Loss::Nll, Target::Masked { classes, mask }) => self.class_loss(p, classes, Some(mask), grad),
            (loss, _) => panic!("{loss:?} got the wrong kind of target"),
        }
    }

    /// Softmax cross-entropy or NLL over the rows of `p` (one class each), counting only the
    /// rows whose mask is set (all rows without a mask).
    fn class_loss(self, p: &[f32], y: &[usize], mask: Option<&[bool]>, mut grad: Option<&mut [f32]>) -> f32 {
        let n = y.len();
        let k = p.len() / n.max(1);
        assert_eq!(n * k, p.len(), "one class per row");
        let counted = mask.map_or(n, |m| {
            assert_eq!(m.len(), n, "one mask entry per row");
            m.iter().filter(|&&v| v).count()
        });
        let scale = 1.0 / counted as f32;
        let mut sum = 0.0f64;
        for i in 0..n {
            let row = &p[i * k..(i + 1) * k];
            if mask.is_some_and(|m| !m[i]) {
                if let Some(g) = grad.as_deref_mut() {
                    g[i * k..(i + 1) * k].fill(0.0);
                }
                continue;
            }
            let c = y[i];
            if self == Loss::Nll {
                sum -= row[c] as f64;
                if let Some(g) = grad.as_deref_mut() {
                    let gr = &mut g[i * k..(i + 1) * k];
                    gr.fill(0.0);
                    gr[c] = -scale;
                }
                continue;
            }
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
            let z: f32 = row.iter().map(|&v| math::exp(v - m)).sum();
            sum += (math::ln(z) + m - row[c]) as f64;
            if let Some(g) = grad.as_deref_mut() {
                let gr = &mut g[i * k..(i + 1) * k];
                for j in 0..k {
                    let s = math::exp(row[j] - m) / z;
                    gr[j] = (s - if j == c { 1.0 } else { 0.0 }) * scale;
                }
            }
        }
        if counted == 0 {
            // Every row is padding: nothing to learn (0, not NaN); no rows at all: no loss.
            return if mask.is_some() { 0.0 } else { f32::NAN };
        }
        (sum / counted as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        tensor::from_vec(shape, v.to_vec())
    }

    #[test]
    fn hand_values() {
        let p = t(&[2, 1], &[1.0, -1.0]);
        let y = t(&[2, 1], &[0.0, 1.0]);
        let mut g = tensor::zeros(&[0]);
        assert_eq!(Loss::Mse.value_and_grad(&p, Target::Values(&y), &mut g), 2.5); // (1 + 4)/2
        assert_eq!(tensor::slice(&g), &[1.0, -2.0]);
        assert_eq!(Loss::L1.value_and_grad(&p, Target::Values(&y), &mut g), 1.5);
        assert_eq!(tensor::slice(&g), &[0.5, -0.5]);
        // BCE at z = 0: ln 2 for either label; gradient (0.5 − t)/N
        let z = t(&[2, 1], &[0.0, 0.0]);
        let l = Loss::Bce.value_and_grad(&z, Target::Values(&y), &mut g);
        assert!((l - std::f32::consts::LN_2).abs() < 1e-7);
        assert_eq!(tensor::slice(&g), &[0.25, -0.25]);
        // Softmax CE of uniform logits over 4 classes: ln 4.
        let z = t(&[1, 4], &[2.0, 2.0, 2.0, 2.0]);
        let l = Loss::Softmax.value_and_grad(&z, Target::Classes(&[1]), &mut g);
        assert!((l - 4f32.ln()).abs() < 1e-6);
        assert_eq!(tensor::slice(&g), &[0.25, -0.75, 0.25, 0.25]);
        // NLL picks the log-probability of the class.
        let lp = t(&[2, 2], &[-0.1, -2.0, -3.0, -0.5]);
        assert_eq!(Loss::Nll.value_and_grad(&lp, Target::Classes(&[0, 1]), &mut g), 0.3);
        assert_eq!(tensor::slice(&g), &[-0.5, 0.0, 0.0, -0.5]);
        // Large logits stay finite.
        let z = t(&[1, 2], &[1000.0, -1000.0]);
        assert_eq!(Loss::Softmax.value(&z, Target::Classes(&[0])), 0.0);
        assert!(Loss::Bce.value(&t(&[1], &[-200.0]), Target::Values(&t(&[1], &[1.0]))).is_finite());
    }

    #[test]
    fn gradients_match_finite_differences() {
        let eps = 1e-2f32;
        let p = crate::gradcheck::random_input(&[3, 4], 21, 0.1);
        let values = t(&[3, 4], &[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let classes = [2usize, 0, 3];
        for loss in [Loss::Mse, Loss::L1, Loss::Bce, Loss::Softmax, Loss::Nll] {
            let target = match loss {
                Loss::Softmax | Loss::Nll => Target::Classes(&classes),
                _ => Target::Values(&values),
            };
            let mut g = tensor::zeros(&[0]);
            loss.value_and_grad(&p, target, &mut g);
            for i in 0..p.len() {
                let mut q = p.clone();
                tensor::slice_mut(&mut q)[i] += eps;
                let lp = loss.value(&q, target) as f64;
                tensor::slice_mut(&mut q)[i] -= 2.0 * eps;
                let lm = loss.value(&q, target) as f64;
                let numeric = (lp - lm) / (2.0 * eps as f64);
                let a = tensor::slice(&g)[i] as f64;
                assert!((a - numeric).abs() < 1e-3 * (a.abs() + numeric.abs()).max(1e-1), "{loss:?}[{i}]: {a} vs {numeric}");
            }
        }
    }
}
