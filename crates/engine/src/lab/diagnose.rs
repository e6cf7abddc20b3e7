//! Automatic diagnosis while training: dead ReLUs, saturated tanh/sigmoid units, update sizes far
//! from healthy, and NaN/∞ — each with a plain explanation and, where there is one, a fix.

use crate::ops::ActivationKind;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisKind {
    NonFinite,
    DeadUnits,
    Saturated,
    UpdateTooSmall,
    UpdateTooLarge,
    /// The loss sits at what guessing gives (the network has learned nothing).
    ChanceLevel,
    /// Test accuracy stopped improving.
    Plateau,
}

/// A one-click remedy: set `key` to `value` (and reset the run when `reset`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub label: String,
    pub key: String,
    pub value: String,
    pub reset: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub kind: DiagnosisKind,
    /// 0-based hidden layer, where the problem is one layer's.
    pub layer: Option<usize>,
    pub message: String,
    pub fix: Option<Fix>,
}

/// The healthy band of `‖Δw‖/‖w‖`: two decades either side of 1e-3.
pub const RATIO_LOW: f32 = 1e-5;
pub const RATIO_HIGH: f32 = 1e-1;

/// Fractions of a layer's units that are dead (ReLU: never positive on any training point) and
/// saturated (tanh |y| > 0.99, sigmoid y < 0.01 or > 0.99, on at least 90 % of the points).
/// `y` is the layer's output `(n, units)` in row-major order.
pub fn unit_health(kind: ActivationKind, y: &[f32], units: usize) -> (f32, f32) {
    if units == 0 || y.is_empty() {
        return (0.0, 0.0);
    }
    let n = y.len() / units;
    let (mut dead, mut saturated) = (0usize, 0usize);
    for j in 0..units {
        let column = (0..n).map(|i| y[i * units + j]);
        match kind {
            ActivationKind::Relu => dead += column.clone().all(|v| v <= 0.0) as usize,
            ActivationKind::Tanh => saturated += (column.filter(|v| v.abs() > 0.99).count() * 10 >= n * 9) as usize,
            ActivationKind::Sigmoid => saturated += (column.filter(|&v| !(0.01..=0.99).contains(&v)).count() * 10 >= n * 9) as usize,
            _ => {}
        }
    }
    (dead as f32 / units as f32, saturated as f32 / units as f32)
}

/// Fractions of channels of a conv activation `(n, c, h·w)` that are dead (ReLU: never positive
/// at any position of any image) — a dead filter learns nothing.
pub fn dead_channels(y: &[f32], n: usize, c: usize) -> f32 {
    if n == 0 || c == 0 || y.is_empty() {
        return 0.0;
    }
    let hw = y.len() / (n * c);
    let dead = (0..c).filter(|&ch| (0..n).all(|i| y[(i * c + ch) * hw..(i * c + ch + 1) * hw].iter().all(|&v| v <= 0.0))).count();
    dead as f32 / c as f32
}

/// "Dead ReLUs" in hidden layer `layer` (0-based), when more than half its units are dead.
pub fn dead_units(layer: usize, dead: f32, lr: f32) -> Option<Diagnosis> {
    (dead > 0.5).then(|| Diagnosis {
        kind: DiagnosisKind::DeadUnits,
        layer: Some(layer),
        message: format!(
            "Layer {}: {:.0} % of its ReLUs are dead — never positive on any input, so no gradient reaches them and \
             they never recover. Usually a step that was too large; a leaky ReLU keeps a small gradient alive.",
            layer + 1,
            dead * 100.0
        ),
        fix: Some(Fix { label: "Reset with leaky ReLU".into(), key: "act".into(), value: "leaky".into(), reset: true }).filter(|_| lr > 0.0),
    })
}

/// The loss of guessing: `ln k` for cross-entropy over `k` classes (`ln 2` for two). After
/// `steps` ≥ 300 steps a mini-batch loss within 3 % of it means nothing has been learned.
pub fn chance_level(loss: f32, classes: usize, steps: u64, lr: f32) -> Option<Diagnosis> {
    let chance = (classes.max(2) as f32).ln();
    (steps >= 300 && loss.is_finite() && (loss - chance).abs() < 0.03 * chance).then(|| Diagnosis {
        kind: DiagnosisKind::ChanceLevel,
        layer: None,
        message: format!(
            "After {steps} steps the loss is {loss:.3}, what guessing among {classes} classes gives (ln {classes} = {chance:.3}): \
             the network has learned nothing. The learning rate may be far too small — or so large that the units died."
        ),
        fix: Some(Fix { label: "Learning rate × 10".into(), key: "lr".into(), value: scaled_lr(lr, 10.0), reset: false }),
    })
}

/// Test accuracy flat: the last four evaluations lie within half a point, below 99 %.
pub fn plateau(test_accuracies: &[f32], lr: f32) -> Option<Diagnosis> {
    let last = test_accuracies.get(test_accuracies.len().checked_sub(4)?..)?;
    let (lo, hi) = last.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    (hi - lo < 0.005 && hi < 0.99).then(|| Diagnosis {
        kind: DiagnosisKind::Plateau,
        layer: None,
        message: format!(
            "Test accuracy has stayed at {:.1}–{:.1} % for the last four evaluations. Smaller steps often find the rest \
             (a decaying schedule does this); if the training accuracy is much higher, the model is memorising instead.",
            lo * 100.0,
            hi * 100.0
        ),
        fix: Some(Fix { label: "Learning rate ÷ 3".into(), key: "lr".into(), value: scaled_lr(lr, 1.0 / 3.0), reset: false }),
    })
}

/// Scales a learning rate for a fix, as link text.
pub fn scaled_lr(lr: f32, factor: f32) -> String {
    format!("{}", (lr * factor).clamp(1e-7, 10.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_and_saturated_fractions() {
        // 3 points × 2 units: unit 0 never positive (dead), unit 1 alive.
        let relu = [0.0, 1.0, 0.0, 0.0, 0.0, 2.0];
        assert_eq!(unit_health(ActivationKind::Relu, &relu, 2), (0.5, 0.0));
        let tanh = [0.999, 0.1, -0.995, 0.2, 0.9999, -0.3];
        assert_eq!(unit_health(ActivationKind::Tanh, &tanh, 2), (0.0, 0.5));
        let sig = [0.001, 0.5, 0.999, 0.5, 0.0001, 0.5];
        assert_eq!(unit_health(ActivationKind::Sigmoid, &sig, 2), (0.0, 0.5));
        assert_eq!(scaled_lr(0.5, 0.1), "0.05");
        // Two images × two channels × two positions: channel 1 never fires.
        let conv = [1.0, 0.0, -1.0, 0.0, 0.0, 2.0, 0.0, -3.0];
        assert_eq!(dead_channels(&conv, 2, 2), 0.5);
        assert!(dead_units(0, 0.6, 0.1).is_some() && dead_units(0, 0.4, 0.1).is_none());
        assert!(chance_level(2.3026, 10, 500, 0.001).is_some_and(|d| (d.fix.unwrap().value.parse::<f32>().unwrap() - 0.01).abs() < 1e-6));
        assert!(chance_level(2.3026, 10, 100, 0.001).is_none(), "too early to tell");
        assert!(chance_level(0.5, 10, 500, 0.001).is_none());
        assert!(plateau(&[0.5, 0.91, 0.912, 0.911, 0.913], 0.01).is_some());
        assert!(plateau(&[0.5, 0.6, 0.7, 0.8], 0.01).is_none());
        assert!(plateau(&[0.991, 0.992, 0.991, 0.992], 0.01).is_none(), "near perfect is not a plateau");
    }
}
