//! Element-wise activations. Each backward uses only the cached output `y`:
//!
//! ```text
//! ReLU       y = max(x, 0)          dx = dy · [y > 0]
//! LeakyReLU  y = x if x>0 else αx   dx = dy · (1 if y > 0 else α)     (α > 0 keeps the sign)
//! Tanh       y = tanh x             dx = dy · (1 − y²)
//! Sigmoid    y = 1 / (1 + e⁻ˣ)      dx = dy · y(1 − y)
//! Identity   y = x                  dx = dy
//! ```

use crate::layer::Layer;
use crate::math;
use crate::tensor::{self, Mode, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationKind {
    Relu,
    Leaky,
    Tanh,
    Sigmoid,
    Identity,
}

impl ActivationKind {
    pub const ALL: [ActivationKind; 5] = [ActivationKind::Relu, ActivationKind::Leaky, ActivationKind::Tanh, ActivationKind::Sigmoid, ActivationKind::Identity];

    pub fn label(self) -> &'static str {
        match self {
            ActivationKind::Relu => "ReLU",
            ActivationKind::Leaky => "Leaky ReLU",
            ActivationKind::Tanh => "tanh",
            ActivationKind::Sigmoid => "sigmoid",
            ActivationKind::Identity => "identity (linear)",
        }
    }
}

#[derive(Clone)]
pub struct Activation {
    pub kind: ActivationKind,
    /// Slope for negative inputs (LeakyReLU only).
    pub alpha: f32,
    y: Tensor,
    dx: Tensor,
}

impl Activation {
    pub fn new(kind: ActivationKind, alpha: f32) -> Self {
        Activation { kind, alpha, y: tensor::zeros(&[0]), dx: tensor::zeros(&[0]) }
    }
}

impl Layer for Activation {
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        crate::layer::same_shape(input)
    }

    fn name(&self) -> String {
        match self.kind {
            ActivationKind::Leaky => format!("leaky ReLU α={}", self.alpha),
            k => k.label().to_string(),
        }
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        tensor::resize(&mut self.y, x.shape());
        let (xs, y) = (tensor::slice(x), tensor::slice_mut(&mut self.y));
        let alpha = self.alpha;
        match self.kind {
            ActivationKind::Relu => y.iter_mut().zip(xs).for_each(|(y, &x)| *y = math::relu(x)),
            ActivationKind::Leaky => y.iter_mut().zip(xs).for_each(|(y, &x)| *y = if x > 0.0 { x } else { alpha * x }),
            ActivationKind::Tanh => y.iter_mut().zip(xs).for_each(|(y, &x)| *y = math::tanh(x)),
            ActivationKind::Sigmoid => y.iter_mut().zip(xs).for_each(|(y, &x)| *y = math::sigmoid(x)),
            ActivationKind::Identity => y.copy_from_slice(xs),
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        tensor::resize(&mut self.dx, dy.shape());
        let (dys, ys, dx) = (tensor::slice(dy), tensor::slice(&self.y), tensor::slice_mut(&mut self.dx));
        let alpha = self.alpha;
        let pairs = dx.iter_mut().zip(dys.iter().zip(ys));
        match self.kind {
            ActivationKind::Relu => pairs.for_each(|(d, (&g, &y))| *d = if y > 0.0 { g } else { 0.0 }),
            ActivationKind::Leaky => pairs.for_each(|(d, (&g, &y))| *d = if y > 0.0 { g } else { alpha * g }),
            ActivationKind::Tanh => pairs.for_each(|(d, (&g, &y))| *d = g * (1.0 - y * y)),
            ActivationKind::Sigmoid => pairs.for_each(|(d, (&g, &y))| *d = g * y * (1.0 - y)),
            ActivationKind::Identity => dx.copy_from_slice(dys),
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

    fn run(kind: ActivationKind, xs: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut a = Activation::new(kind, 0.1);
        let x = tensor::from_vec(&[xs.len()], xs.to_vec());
        let y = a.forward(&x, Mode::Train).clone();
        let dx = a.backward(&tensor::from_vec(&[xs.len()], vec![1.0; xs.len()])).clone();
        (y.into_vec(), dx.into_vec())
    }

    #[test]
    fn hand_values() {
        let xs = [-2.0, 0.0, 3.0];
        assert_eq!(run(ActivationKind::Relu, &xs), (vec![0.0, 0.0, 3.0], vec![0.0, 0.0, 1.0]));
        assert_eq!(run(ActivationKind::Leaky, &xs), (vec![-0.2, 0.0, 3.0], vec![0.1, 0.1, 1.0]));
        assert_eq!(run(ActivationKind::Identity, &xs), (xs.to_vec(), vec![1.0; 3]));
        let (y, dx) = run(ActivationKind::Tanh, &[0.0, 1.0]);
        assert_eq!(y[0], 0.0);
        assert!((y[1] - 0.761_594_2).abs() < 1e-6 && (dx[1] - 0.419_974_3).abs() < 1e-6);
        let (y, dx) = run(ActivationKind::Sigmoid, &[0.0, 2.0]);
        assert_eq!((y[0], dx[0]), (0.5, 0.25));
        assert!((y[1] - 0.880_797_1).abs() < 1e-6 && (dx[1] - 0.104_993_6).abs() < 1e-6);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let x = gradcheck::random_input(&[4, 5], 11, 0.05);
        for kind in ActivationKind::ALL {
            let mut a = Activation::new(kind, 0.1);
            gradcheck::check_layer(&mut a, &x, 1e-2, 2e-3).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        }
    }
}
