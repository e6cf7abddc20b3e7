//! Adam (Kingma & Ba): momentum on the gradient and on its square, with bias correction.
//!
//! ```text
//! m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//! m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);  w ← w − lr·m̂/(√v̂ + ε)
//! ```
//! `β₁ᵗ` and `β₂ᵗ` are kept as running products (plain multiplications: portable bits).

use super::{state, Hyper, Optimizer, Rule};

#[derive(Clone)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    beta1_t: f32,
    beta2_t: f32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, beta1_t: 1.0, beta2_t: 1.0, m: Vec::new(), v: Vec::new() }
    }
}

impl Optimizer for Adam {
    fn begin_step(&mut self) {
        self.beta1_t *= self.beta1;
        self.beta2_t *= self.beta2;
    }

    fn split(&mut self, index: usize, len: usize) -> (Rule, [&mut [f32]; 2]) {
        let rule = Rule::Adam { b1: self.beta1, b2: self.beta2, c1: 1.0 - self.beta1_t, c2: 1.0 - self.beta2_t, eps: self.eps };
        (rule, [state(&mut self.m, index, len), state(&mut self.v, index, len)])
    }

    fn update_norm(&self, index: usize, g: &[f32], h: &Hyper) -> f32 {
        let (Some(m), Some(v)) = (self.m.get(index), self.v.get(index)) else { return 0.0 };
        if m.len() != g.len() {
            return 0.0;
        }
        let (c1, c2) = (1.0 - self.beta1_t, 1.0 - self.beta2_t);
        crate::stats::lane_sum_by(g.len(), |i| (h.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + self.eps)).powi(2) as f64).sqrt() as f32
    }
}
