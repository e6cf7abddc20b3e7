//! The contract every op implements.

use crate::tensor::{Mode, Tensor};
use std::any::Any;

/// What kind of parameter a tensor is: weight decay (L2) applies to weights, not to biases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    Bias,
}

/// Reaching a layer's concrete type (e.g. to switch a convolution's implementation) without
/// putting every op's own methods on [`Layer`]. Implemented for every layer automatically.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Layer + 'static> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A layer: `forward` caches what `backward` needs; `backward(dy)` returns `dx` and **adds** into
/// every parameter's gradient (a vector–Jacobian product). Outputs live in buffers owned by the
/// layer and are reused between steps, so a training step allocates nothing once shapes settle.
pub trait Layer: Send + AsAny + dyn_clone::DynClone {
    /// A short human name, e.g. `dense 1→16` or `tanh`.
    fn name(&self) -> String;
    /// The output shape for an input of shape `input`, or why that input can't be taken
    /// (models compute their shapes from their layers with this, before any data flows).
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String>;
    /// Computes and returns the output for input `x`.
    fn forward(&mut self, x: &Tensor, mode: Mode) -> &Tensor;
    /// Given `dy = ∂L/∂y` for the last forward, returns `dx = ∂L/∂x` and accumulates parameter grads.
    fn backward(&mut self, dy: &Tensor) -> &Tensor;
    /// [`Layer::zero_grad`] then [`Layer::backward`]. A layer that can write its parameter
    /// gradients instead of adding them to zeros overrides it: the same bits (a sum started from
    /// +0 is the sum), without first writing zeros over every gradient (W2's 400 KB per shard).
    fn backward_fresh(&mut self, dy: &Tensor) -> &Tensor {
        self.zero_grad();
        self.backward(dy)
    }
    /// The output of the last forward.
    fn output(&self) -> &Tensor;
    /// `dx` from the last backward.
    fn input_grad(&self) -> &Tensor;
    /// Visits `(name, kind, value, grad)` for each parameter, always in the same order.
    fn visit_params(&mut self, _f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {}
    /// Visits `(name, value)` for each buffer — state that is not trained by gradients but is part
    /// of the model (e.g. batch norm's running mean and variance) — always in the same order.
    /// Export, restore and rebuilds that keep the weights carry buffers along with parameters.
    fn visit_buffers(&mut self, _f: &mut dyn FnMut(&'static str, &mut Tensor)) {}
    /// Bytes of the caches and scratch buffers kept between calls (inputs, im2col columns,
    /// transposes, masks) beyond `output` and `input_grad`: a copy of the layer copies them too.
    fn scratch_bytes(&self) -> usize {
        0
    }
    /// Whether `backward` must compute `dx` (the first layer of a model need not: nothing reads it).
    fn set_needs_input_grad(&mut self, _needed: bool) {}
    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params(&mut |_, _, _, g| crate::lanes::zero(crate::tensor::slice_mut(g)));
    }
}

dyn_clone::clone_trait_object!(Layer);

/// `(n, rest…)` unchanged: the output shape of element-wise layers.
pub fn same_shape(input: &[usize]) -> Result<Vec<usize>, String> {
    Ok(input.to_vec())
}
