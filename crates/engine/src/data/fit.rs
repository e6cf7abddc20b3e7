//! 1-D function-fitting data: `y = f(x) + noise` on a target's training interval.

use super::{Dataset, Scaler, Targets};
use crate::math;
use crate::rng::Rng;
use crate::tensor;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FitTarget {
    /// sin(x) on [−π, π]
    Sin,
}

impl FitTarget {
    pub const ALL: [FitTarget; 1] = [FitTarget::Sin];

    pub fn label(self) -> &'static str {
        match self {
            FitTarget::Sin => "sin(x) on [−π, π]",
        }
    }

    /// The training interval.
    pub fn domain(self) -> (f64, f64) {
        match self {
            FitTarget::Sin => (-std::f64::consts::PI, std::f64::consts::PI),
        }
    }

    pub fn eval(self, x: f64) -> f64 {
        match self {
            FitTarget::Sin => math::sin(x),
        }
    }
}

/// Train and test sets (standardised if asked), plus the scalers to map back for display.
pub struct FitData {
    pub train: Dataset,
    pub test: Dataset,
    pub x_scaler: Scaler,
    pub y_scaler: Scaler,
    /// Raw (unscaled) training points, for drawing.
    pub train_points: Vec<(f32, f32)>,
}

impl FitData {
    /// `n` training points and `n / 2` test points drawn uniformly on the domain, with Gaussian
    /// noise of standard deviation `noise` added to the training targets only.
    pub fn generate(target: FitTarget, n: usize, noise: f32, standardise: bool, rng: &mut Rng) -> FitData {
        let (lo, hi) = target.domain();
        let draw = |count: usize, noisy: bool, rng: &mut Rng| -> Vec<(f32, f32)> {
            (0..count)
                .map(|_| {
                    let x = lo + (hi - lo) * rng.uniform64();
                    let y = target.eval(x) as f32 + if noisy { noise * rng.normal() } else { 0.0 };
                    (x as f32, y)
                })
                .collect()
        };
        let train_points = draw(n, noise > 0.0, rng);
        let test_points = draw((n / 2).max(1), false, rng);
        let (x_scaler, y_scaler) = if standardise {
            let xs: Vec<f32> = train_points.iter().map(|p| p.0).collect();
            let ys: Vec<f32> = train_points.iter().map(|p| p.1).collect();
            (Scaler::fit(&xs), Scaler::fit(&ys))
        } else {
            (Scaler::IDENTITY, Scaler::IDENTITY)
        };
        let to_set = |pts: &[(f32, f32)]| Dataset {
            x: tensor::from_vec(&[pts.len(), 1], pts.iter().map(|p| x_scaler.apply(p.0)).collect()),
            y: Targets::Values(tensor::from_vec(&[pts.len(), 1], pts.iter().map(|p| y_scaler.apply(p.1)).collect())),
        };
        FitData { train: to_set(&train_points), test: to_set(&test_points), x_scaler, y_scaler, train_points }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_training_data_has_zero_mean_unit_std() {
        let d = FitData::generate(FitTarget::Sin, 500, 0.0, true, &mut Rng::new(4));
        let xs = tensor::slice(&d.train.x);
        let s = Scaler::fit(xs);
        assert!(s.mean.abs() < 1e-5 && (s.std - 1.0).abs() < 1e-4);
        assert_eq!(d.test.len(), 250);
        let (x, y) = d.train_points[0];
        assert!((y - (x as f64).sin() as f32).abs() < 1e-6);
        assert!((-3.15..3.15).contains(&x));
    }
}
