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

    fn update_part(&mut self, index: usize, len: usize, at: usize, w: &mut [f32], g: &[f32], h: &Hyper) {
        let (b1, b2, eps, lr) = (self.beta1, self.beta2, self.eps, h.lr);
        let (c1, c2) = (1.0 - self.beta1_t, 1.0 - self.beta2_t);
        let m = &mut state(&mut self.m, index, len)[at..at + w.len()];
        let v = &mut state(&mut self.v, index, len)[at..at + w.len()];
        // On the step's serial path, where a worker's helpers wait. Zipped, with no bounds
        // checks, the loop vectorises natively (division and square root are exact in SIMD lanes:
        // the same bits); in wasm LLVM leaves it scalar, so explicit lanes do the bulk there.
        // LeNet-5's 61,706 weights natively: ~0.36 ms as two indexed loops, ~0.09 ms zipped.
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        let done = super::lanes::adam(w, g, m, v, b1, b2, c1, c2, lr, eps);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        let done = 0;
        let rest = w[done..].iter_mut().zip(&g[done..]).zip(&mut m[done..]).zip(&mut v[done..]);
        for (((w, &g), m), v) in rest {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
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
