//! A stack of layers applied in order; itself a [`Layer`], so models nest.

use crate::layer::{Layer, ParamKind};
use crate::tensor::{Mode, Tensor};

pub struct Sequential {
    pub layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    pub fn new(mut layers: Vec<Box<dyn Layer>>) -> Self {
        assert!(!layers.is_empty(), "a model has at least one layer");
        // Nothing reads the gradient of the model's input: skip computing it.
        layers[0].set_needs_input_grad(false);
        Sequential { layers }
    }

    /// Visits each parameter with the index of the layer that owns it.
    pub fn visit_params_indexed(
        &mut self,
        f: &mut dyn FnMut(usize, &'static str, ParamKind, &mut Tensor, &mut Tensor),
    ) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_params(&mut |name, kind, w, g| f(i, name, kind, w, g));
        }
    }
}

impl Layer for Sequential {
    fn name(&self) -> String {
        self.layers.iter().map(|l| l.name()).collect::<Vec<_>>().join(" → ")
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> &Tensor {
        self.layers[0].forward(x, mode);
        for i in 1..self.layers.len() {
            let (done, rest) = self.layers.split_at_mut(i);
            rest[0].forward(done[i - 1].output(), mode);
        }
        self.output()
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        let last = self.layers.len() - 1;
        self.layers[last].backward(dy);
        for i in (0..last).rev() {
            // Each layer's `backward` returns a reference into its own buffer; the next layer
            // down reads it, so split the vector to borrow both at once.
            let (lower, upper) = self.layers.split_at_mut(i + 1);
            let dx = upper[0].input_grad();
            lower[i].backward(dx);
        }
        self.layers[0].input_grad()
    }

    fn output(&self) -> &Tensor {
        self.layers[self.layers.len() - 1].output()
    }

    fn input_grad(&self) -> &Tensor {
        self.layers[0].input_grad()
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        for layer in self.layers.iter_mut() {
            layer.visit_params(f);
        }
    }
}
