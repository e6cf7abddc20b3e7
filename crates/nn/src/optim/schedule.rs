//! Learning-rate schedules, as a function of the step:
//!
//! ```text
//! constant  lr(t) = lr
//! step      lr(t) = lr · 0.5^⌊t / T⌋                    (halve every T steps)
//! cosine    lr(t) = lr · (1 + cos(π · (t mod T) / T)) / 2 (anneal to 0 over T steps, then restart)
//! ```

use crate::math;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    #[default]
    Constant,
    Step,
    Cosine,
}

impl Schedule {
    pub const ALL: [Schedule; 3] = [Schedule::Constant, Schedule::Step, Schedule::Cosine];

    pub fn label(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Step => "step (halve every T)",
            Schedule::Cosine => "cosine (anneal over T, restart)",
        }
    }

    /// The learning rate at step `t` (0-based) for base rate `lr` and period `period`.
    pub fn lr(self, lr: f32, t: u64, period: u64) -> f32 {
        let period = period.max(1);
        match self {
            Schedule::Constant => lr,
            Schedule::Step => lr * math::powf(0.5, (t / period).min(200) as f32),
            Schedule::Cosine => {
                let phase = (t % period) as f64 / period as f64;
                (lr as f64 * (1.0 + math::cos(std::f64::consts::PI * phase)) / 2.0) as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values() {
        assert_eq!(Schedule::Constant.lr(0.1, 999, 10), 0.1);
        assert_eq!(Schedule::Step.lr(0.8, 9, 10), 0.8);
        assert_eq!(Schedule::Step.lr(0.8, 10, 10), 0.4);
        assert_eq!(Schedule::Step.lr(0.8, 25, 10), 0.2);
        assert_eq!(Schedule::Cosine.lr(1.0, 0, 100), 1.0);
        assert!((Schedule::Cosine.lr(1.0, 50, 100) - 0.5).abs() < 1e-6);
        assert!(Schedule::Cosine.lr(1.0, 99, 100) < 0.001);
        assert_eq!(Schedule::Cosine.lr(1.0, 100, 100), 1.0, "restarts");
    }
}
