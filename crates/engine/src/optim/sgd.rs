//! Stochastic gradient descent, optionally with momentum (heavy ball) or Nesterov momentum.
//!
//! ```text
//! plain     w ← w − lr·g
//! momentum  v ← μv + g;  w ← w − lr·v
//! Nesterov  v ← μv + g;  w ← w − lr·(g + μv)
//! ```

use super::{state, Hyper, Optimizer};

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
    fn update(&mut self, index: usize, w: &mut [f32], g: &[f32], h: &Hyper) -> f32 {
        let mut d2 = 0.0f32;
        if !self.use_momentum {
            for (w, &g) in w.iter_mut().zip(g) {
                let d = h.lr * g;
                *w -= d;
                d2 += d * d;
            }
            return d2;
        }
        let v = state(&mut self.velocity, index, w.len());
        let mu = h.momentum;
        for i in 0..w.len() {
            v[i] = mu * v[i] + g[i];
            let d = if self.nesterov { h.lr * (g[i] + mu * v[i]) } else { h.lr * v[i] };
            w[i] -= d;
            d2 += d * d;
        }
        d2
    }
}
