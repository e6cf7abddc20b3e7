//! Adagrad: per-weight learning rates that shrink with the accumulated squared gradient.
//!
//! ```text
//! G ← G + g²;  w ← w − lr·g / (√G + ε)
//! ```

use super::{state, Hyper, Optimizer, Rule};

#[derive(Clone)]
pub struct Adagrad {
    pub eps: f32,
    sum: Vec<Vec<f32>>,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad { eps: 1e-8, sum: Vec::new() }
    }
}

impl Optimizer for Adagrad {
    fn split(&mut self, index: usize, len: usize) -> (Rule, [&mut [f32]; 2]) {
        (Rule::Adagrad { eps: self.eps }, [state(&mut self.sum, index, len), &mut []])
    }

    fn update_norm(&self, index: usize, g: &[f32], h: &Hyper) -> f32 {
        let Some(s) = self.sum.get(index).filter(|s| s.len() == g.len()) else { return 0.0 };
        crate::stats::lane_sum_by(g.len(), |i| (h.lr * g[i] / (s[i].sqrt() + self.eps)).powi(2) as f64).sqrt() as f32
    }
}
