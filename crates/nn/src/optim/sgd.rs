//! Stochastic gradient descent, optionally with momentum (heavy ball) or Nesterov momentum.
//!
//! ```text
//! plain     w ← w − lr·g
//! momentum  v ← μv + g;  w ← w − lr·v
//! Nesterov  v ← μv + g;  w ← w − lr·(g + μv)
//! ```

use super::{state, Hyper, Optimizer};

#[derive(Clone)]
pub struct Sgd {
    use_momentum: bool,
    nesterov: bool,
    velocity: Vec<Vec<f32>>,
}

impl Sgd {
    pub fn plain() -> Self {
        Sgd { use_momentum: false, nesterov: false, velocity: Vec::new() }
    }

    pub fn momentum(nesterov: bool) -> Self {
        Sgd { use_momentum: true, nesterov, velocity: Vec::new() }
    }
}

impl Optimizer for Sgd {
    fn update_part(&mut self, index: usize, len: usize, at: usize, w: &mut [f32], g: &[f32], h: &Hyper) {
        if !self.use_momentum {
            // Explicit lanes in wasm: left to LLVM, this loop's speed came and went with
            // unrelated changes elsewhere in the crate (W2 in Chromium: 7 % from one build to the next).
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            let done = super::lanes::sgd(w, g, h.lr);
            #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
            let done = 0;
            for (w, &g) in w[done..].iter_mut().zip(&g[done..]) {
                *w -= h.lr * g;
            }
            return;
        }
        let v = &mut state(&mut self.velocity, index, len)[at..at + w.len()];
        let (mu, lr) = (h.momentum, h.lr);
        // Zipped, one loop per kind, so that each vectorises natively (the same bits per
        // element); explicit lanes in wasm, where LLVM leaves these scalar.
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        let done = super::lanes::momentum(w, g, v, mu, lr, self.nesterov);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        let done = 0;
        let each = w[done..].iter_mut().zip(&g[done..]).zip(&mut v[done..]);
        if self.nesterov {
            for ((w, &g), v) in each {
                *v = mu * *v + g;
                *w -= lr * (g + mu * *v);
            }
        } else {
            for ((w, &g), v) in each {
                *v = mu * *v + g;
                *w -= lr * *v;
            }
        }
    }

    fn update_norm(&self, index: usize, g: &[f32], h: &Hyper) -> f32 {
        let v = self.velocity.get(index).filter(|v| v.len() == g.len());
        let d = |i: usize| match (self.use_momentum, v) {
            (true, Some(v)) if self.nesterov => h.lr * (g[i] + h.momentum * v[i]),
            (true, Some(v)) => h.lr * v[i],
            _ => h.lr * g[i],
        };
        crate::stats::lane_sum_by(g.len(), |i| (d(i) * d(i)) as f64).sqrt() as f32
    }
}
