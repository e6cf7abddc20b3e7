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
    }
}
