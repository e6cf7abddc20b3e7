//! Adagrad: per-weight learning rates that shrink with the accumulated squared gradient.
//!
//! ```text
//! G ← G + g²;  w ← w − lr·g / (√G + ε)
//! ```

use super::{state, Hyper, Optimizer};

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
    fn update(&mut self, index: usize, w: &mut [f32], g: &[f32], h: &Hyper) -> f32 {
        let s = state(&mut self.sum, index, w.len());
        let mut d2 = 0.0f32;
        for i in 0..w.len() {
            s[i] += g[i] * g[i];
            let d = h.lr * g[i] / (s[i].sqrt() + self.eps);
            w[i] -= d;
            d2 += d * d;
        }
        d2
    }
}
