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
    /// x³ on [−2π, 2π] (large unnormalised values: the classic way to get stuck)
    Cube,
    /// |x| on [−π, π]
    Abs,
    /// a unit step at 0 on [−π, π]
    Step,
    /// sin(x) on [−π, π] with noise σ ≥ 0.2 on the training targets
    Noisy,
}

impl FitTarget {
    pub const ALL: [FitTarget; 5] = [FitTarget::Sin, FitTarget::Cube, FitTarget::Abs, FitTarget::Step, FitTarget::Noisy];

    pub fn label(self) -> &'static str {
        match self {
            FitTarget::Sin => "sin(x) on [−π, π]",
            FitTarget::Cube => "x³ on [−2π, 2π]",
            FitTarget::Abs => "|x| on [−π, π]",
            FitTarget::Step => "step at 0 on [−π, π]",
            FitTarget::Noisy => "noisy sin(x) on [−π, π]",
        }
    }

    /// The formula, for chart legends.
    pub fn formula(self) -> &'static str {
        match self {
            FitTarget::Sin | FitTarget::Noisy => "sin(x)",
            FitTarget::Cube => "x³",
            FitTarget::Abs => "|x|",
            FitTarget::Step => "step(x)",
        }
    }

    /// The training interval.
    pub fn domain(self) -> (f64, f64) {
        let pi = std::f64::consts::PI;
        match self {
            FitTarget::Cube => (-2.0 * pi, 2.0 * pi),
            _ => (-pi, pi),
        }
    }

    /// The training interval widened by half its width on each side: where a fit that only
    /// learned the samples shows it has no idea what the function is.
    pub fn extended_domain(self) -> (f64, f64) {
        let (lo, hi) = self.domain();
        let w = hi - lo;
        (lo - w / 2.0, hi + w / 2.0)
    }

    pub fn eval(self, x: f64) -> f64 {
        match self {
            FitTarget::Sin | FitTarget::Noisy => math::sin(x),
            FitTarget::Cube => x * x * x,
            FitTarget::Abs => x.abs(),
            FitTarget::Step => {
                if x >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// The noise σ actually used for a requested σ.
    pub fn noise(self, requested: f32) -> f32 {
        match self {
            FitTarget::Noisy => requested.max(0.2),
            _ => requested,
        }
    }
}

/// Train and test sets (standardised if asked), plus the scalers to map back for display.
#[derive(Clone)]
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
        let noise = target.noise(noise);
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

    #[test]
    fn targets_hand_values_and_domains() {
        assert_eq!(FitTarget::Cube.eval(2.0), 8.0);
        assert_eq!(FitTarget::Abs.eval(-1.5), 1.5);
        assert_eq!((FitTarget::Step.eval(-0.1), FitTarget::Step.eval(0.0)), (0.0, 1.0));
        let (lo, hi) = FitTarget::Sin.extended_domain();
        assert!((lo + 2.0 * std::f64::consts::PI).abs() < 1e-12 && (hi - 2.0 * std::f64::consts::PI).abs() < 1e-12);
        assert_eq!(FitTarget::Noisy.noise(0.0), 0.2);
        let d = FitData::generate(FitTarget::Noisy, 400, 0.0, false, &mut Rng::new(1));
        let resid: f32 = d.train_points.iter().map(|&(x, y)| (y - (x as f64).sin() as f32).powi(2)).sum::<f32>() / 400.0;
        assert!((resid.sqrt() - 0.2).abs() < 0.03, "noise σ {}", resid.sqrt());
    }
}
