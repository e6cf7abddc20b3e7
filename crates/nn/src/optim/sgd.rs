//! Stochastic gradient descent, optionally with momentum (heavy ball) or Nesterov momentum.
//!
//! ```text
//! plain     w ← w − lr·g
//! momentum  v ← μv + g;  w ← w − lr·v
//! Nesterov  v ← μv + g;  w ← w − lr·(g + μv)
//! ```

use super::{state, Hyper, Optimizer, Rule};

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
    fn split(&mut self, index: usize, len: usize) -> (Rule, [&mut [f32]; 2]) {
        if !self.use_momentum {
            return (Rule::Sgd, [&mut [], &mut []]);
        }
        (Rule::Momentum { nesterov: self.nesterov }, [state(&mut self.velocity, index, len), &mut []])
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
