//! Adagrad: per-weight learning rates that shrink with the accumulated squared gradient.
//!
//! ```text
//! G ← G + g²;  w ← w − lr·g / (√G + ε)
//! ```

use super::{state, Hyper, Optimizer};

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
    fn update_part(&mut self, index: usize, len: usize, at: usize, w: &mut [f32], g: &[f32], h: &Hyper) {
        let (lr, eps) = (h.lr, self.eps);
        let s = &mut state(&mut self.sum, index, len)[at..at + w.len()];
        // Zipped, so that it vectorises natively; explicit lanes in wasm (the same bits: see Adam).
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        let done = super::lanes::adagrad(w, g, s, lr, eps);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        let done = 0;
        for ((w, &g), s) in w[done..].iter_mut().zip(&g[done..]).zip(&mut s[done..]) {
            *s += g * g;
            *w -= lr * g / (s.sqrt() + eps);
        }
    }

    fn update_norm(&self, index: usize, g: &[f32], h: &Hyper) -> f32 {
        let Some(s) = self.sum.get(index).filter(|s| s.len() == g.len()) else { return 0.0 };
        crate::stats::lane_sum_by(g.len(), |i| (h.lr * g[i] / (s[i].sqrt() + self.eps)).powi(2) as f64).sqrt() as f32
    }
}
