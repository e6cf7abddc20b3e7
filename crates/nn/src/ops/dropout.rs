//! Inverted dropout: in training each value is kept with probability `1 − p` and scaled by
//! `1 / (1 − p)`, so evaluation needs no rescaling and is the identity.
//!
//! ```text
//! train  mᵢ ~ Bernoulli(1 − p);  y = x ⊙ m / (1 − p);   dx = dy ⊙ m / (1 − p)
//! eval   y = x;                                          dx = dy
//! ```
//! The mask comes from the layer's own seeded stream, so a run replays exactly.

use crate::layer::Layer;
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};

#[derive(Clone)]
pub struct Dropout {
    pub p: f32,
    seed: u64,
    rng: Rng,
    /// Draw the same mask at every forward (for gradient checks).
    pub repeat_mask: bool,
    scale: Tensor,
    y: Tensor,
    dx: Tensor,
}

impl Dropout {
    /// The seed of the mask stream (a GPU replica draws the same masks from it).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn new(p: f32, seed: u64) -> Self {
        Dropout { p, seed, rng: Rng::new(seed), repeat_mask: false, scale: tensor::zeros(&[0]), y: tensor::zeros(&[0]), dx: tensor::zeros(&[0]) }
    }
}

impl Layer for Dropout {
    fn scratch_bytes(&self) -> usize {
        (self.scale.len()) * std::mem::size_of::<f32>()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        crate::layer::same_shape(input)
    }

    fn name(&self) -> String {
        format!("dropout p={}", self.p)
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> &Tensor {
        tensor::resize(&mut self.y, x.shape());
        tensor::resize(&mut self.scale, x.shape());
        let keep = 1.0 - self.p;
        let active = mode == Mode::Train && self.p > 0.0;
        if self.repeat_mask {
            self.rng = Rng::new(self.seed);
        }
        let scale = tensor::slice_mut(&mut self.scale);
        for s in scale.iter_mut() {
            *s = if !active {
                1.0
            } else if self.rng.uniform() < keep {
                1.0 / keep
            } else {
                0.0
            };
        }
        for ((y, &x), &s) in tensor::slice_mut(&mut self.y).iter_mut().zip(tensor::slice(x)).zip(scale.iter()) {
            *y = x * s;
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        tensor::resize(&mut self.dx, dy.shape());
        for ((d, &g), &s) in tensor::slice_mut(&mut self.dx).iter_mut().zip(tensor::slice(dy)).zip(tensor::slice(&self.scale)) {
            *d = g * s;
        }
        &self.dx
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    #[test]
    fn hand_values_and_modes() {
        let x = tensor::from_vec(&[1, 4], vec![1.0, 2.0, 3.0, 4.0]);
        let mut d = Dropout::new(0.5, 1);
        assert_eq!(tensor::slice(d.forward(&x, Mode::Eval)), &[1.0, 2.0, 3.0, 4.0], "eval is the identity");
        let y = d.forward(&x, Mode::Train).clone();
        for (&y, &x) in tensor::slice(&y).iter().zip(tensor::slice(&x)) {
            assert!(y == 0.0 || y == 2.0 * x, "kept values are scaled by 1/(1−p)");
        }
        let dx = d.backward(&tensor::from_vec(&[1, 4], vec![1.0; 4])).clone();
        for (&g, &y) in tensor::slice(&dx).iter().zip(tensor::slice(&y)) {
            assert_eq!(g, if y == 0.0 { 0.0 } else { 2.0 });
        }
        // About 1 − p of many values survive, and the mean is preserved.
        let big = tensor::from_vec(&[1, 10_000], vec![1.0; 10_000]);
        let mut d = Dropout::new(0.3, 2);
        let y = d.forward(&big, Mode::Train);
        let kept = tensor::slice(y).iter().filter(|&&v| v > 0.0).count();
        assert!((kept as f32 / 10_000.0 - 0.7).abs() < 0.02);
        assert!((tensor::slice(y).iter().sum::<f32>() / 10_000.0 - 1.0).abs() < 0.03);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut d = Dropout::new(0.4, 3);
        d.repeat_mask = true;
        let x = gradcheck::random_input(&[4, 5], 5, 0.0);
        gradcheck::check_layer(&mut d, &x, 1e-2, 1e-3).unwrap();
    }
}
