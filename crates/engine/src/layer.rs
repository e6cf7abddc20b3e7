//! The contract every op implements.

use crate::tensor::{Mode, Tensor};

/// What kind of parameter a tensor is: weight decay (L2) applies to weights, not to biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    Bias,
}

/// A layer: `forward` caches what `backward` needs; `backward(dy)` returns `dx` and **adds** into
/// every parameter's gradient (a vector–Jacobian product). Outputs live in buffers owned by the
/// layer and are reused between steps, so a training step allocates nothing once shapes settle.
pub trait Layer: Send {
    /// A short human name, e.g. `dense 1→16` or `tanh`.
    fn name(&self) -> String;
    /// Computes and returns the output for input `x`.
    fn forward(&mut self, x: &Tensor, mode: Mode) -> &Tensor;
    /// Given `dy = ∂L/∂y` for the last forward, returns `dx = ∂L/∂x` and accumulates parameter grads.
    fn backward(&mut self, dy: &Tensor) -> &Tensor;
    /// The output of the last forward.
    fn output(&self) -> &Tensor;
    /// `dx` from the last backward.
    fn input_grad(&self) -> &Tensor;
    /// Visits `(name, kind, value, grad)` for each parameter, always in the same order.
    fn visit_params(&mut self, _f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {}
    /// Whether `backward` must compute `dx` (the first layer of a model need not: nothing reads it).
    fn set_needs_input_grad(&mut self, _needed: bool) {}
    /// Convolutions: switches between the loop and the im2col implementation (false: not a conv).
    fn set_conv_impl(&mut self, _implementation: crate::ops::ConvImpl) -> bool {
        false
    }
    /// Convolutions: the weights `(o, c, k, k)` with `o`, `c` and `k`, to draw the filters.
    fn conv_filters(&self) -> Option<(&Tensor, usize, usize, usize)> {
        None
    }
    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params(&mut |_, _, _, g| crate::tensor::slice_mut(g).fill(0.0));
    }
}
