//! Adam (Kingma & Ba): momentum on the gradient and on its square, with bias correction.
//!
//! ```text
//! m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//! m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);  w ← w − lr·m̂/(√v̂ + ε)
//! ```
//! `β₁ᵗ` and `β₂ᵗ` are kept as running products (plain multiplications: portable bits).

use super::{state, Hyper, Optimizer};

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

    fn update(&mut self, index: usize, w: &mut [f32], g: &[f32], h: &Hyper) {
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - self.beta1_t, 1.0 - self.beta2_t);
        let m = state(&mut self.m, index, w.len());
        {
            let v = state(&mut self.v, index, w.len());
            for i in 0..w.len() {
                m[i] = b1 * m[i] + (1.0 - b1) * g[i];
                v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
            }
        }
        let m = &self.m[index];
        let v = &self.v[index];
        for i in 0..w.len() {
            w[i] -= h.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + self.eps);
        }
    }

    fn update_norm(&self, index: usize, g: &[f32], h: &Hyper) -> f32 {
        let (Some(m), Some(v)) = (self.m.get(index), self.v.get(index)) else { return 0.0 };
        if m.len() != g.len() {
            return 0.0;
        }
        let (c1, c2) = (1.0 - self.beta1_t, 1.0 - self.beta2_t);
        (0..g.len()).map(|i| (h.lr * (m[i] / c1) / ((v[i] / c2).sqrt() + self.eps)).powi(2)).sum::<f32>().sqrt()
    }
}
