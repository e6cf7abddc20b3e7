//! A stack of layers applied in order; itself a [`Layer`], so models nest.
//!
//! Models are read back by **named taps**, never by position: a builder names the outputs a lab
//! wants to look at ("hidden 2 pre-activation", "conv1 output"), so inserting a layer (dropout,
//! batch norm) moves positions but not names.

use crate::layer::{Layer, ParamKind};
use crate::tensor::{self, Mode, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Layer>>,
    /// `(name, index of the layer whose output it is)`, in the order they were named.
    taps: Vec<(String, usize)>,
}

/// Builds a [`Sequential`] and names the outputs worth looking at.
#[derive(Default)]
pub struct ModelBuilder {
    layers: Vec<Box<dyn Layer>>,
    taps: Vec<(String, usize)>,
}

impl ModelBuilder {
    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer + 'static) -> &mut Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Names the output of the layer pushed last.
    pub fn tap(&mut self, name: impl Into<String>) -> &mut Self {
        assert!(!self.layers.is_empty(), "a tap names the output of a layer already pushed");
        self.taps.push((name.into(), self.layers.len() - 1));
        self
    }

    pub fn build(self) -> Sequential {
        let mut model = Sequential::new(self.layers);
        model.taps = self.taps;
        model
    }
}

/// Everything a trained model holds, as plain numbers (export, restore, keep-the-weights rebuilds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    /// Every parameter tensor's values, in model order.
    pub parameters: Vec<Vec<f32>>,
    /// Every buffer (non-trainable state, e.g. running statistics), in model order.
    #[serde(default)]
    pub buffers: Vec<Vec<f32>>,
}

impl Sequential {
    pub fn new(mut layers: Vec<Box<dyn Layer>>) -> Self {
        assert!(!layers.is_empty(), "a model has at least one layer");
        // Nothing reads the gradient of the model's input: skip computing it.
        layers[0].set_needs_input_grad(false);
        Sequential { layers, taps: Vec::new() }
    }

    pub fn builder() -> ModelBuilder {
        ModelBuilder::default()
    }

    /// The named outputs, in the order the builder named them.
    pub fn taps(&self) -> impl Iterator<Item = (&str, usize)> {
        self.taps.iter().map(|(n, i)| (n.as_str(), *i))
    }

    /// The index of the layer whose output is tapped as `name`.
    pub fn tap_index(&self, name: &str) -> Option<usize> {
        self.taps.iter().find(|(n, _)| n == name).map(|(_, i)| *i)
    }

    /// The output (of the last forward) tapped as `name`.
    pub fn tap(&self, name: &str) -> Option<&Tensor> {
        self.tap_index(name).map(|i| self.layers[i].output())
    }

    /// The layer tapped as `name`, as its concrete type.
    pub fn tapped<T: 'static>(&self, name: &str) -> Option<&T> {
        self.layers[self.tap_index(name)?].as_any().downcast_ref()
    }

    /// The layer tapped as `name`, as its concrete type, mutably.
    pub fn tapped_mut<T: 'static>(&mut self, name: &str) -> Option<&mut T> {
        let i = self.tap_index(name)?;
        self.layers[i].as_any_mut().downcast_mut()
    }

    /// Every layer of concrete type `T`, in order (e.g. every convolution).
    pub fn layers_of_mut<T: 'static>(&mut self) -> impl Iterator<Item = &mut T> {
        self.layers.iter_mut().filter_map(|l| l.as_any_mut().downcast_mut::<T>())
    }

    /// Every layer of concrete type `T`, in order.
    pub fn layers_of<T: 'static>(&self) -> impl Iterator<Item = &T> {
        self.layers.iter().filter_map(|l| l.as_any().downcast_ref::<T>())
    }

    /// Visits each parameter with the index of the layer that owns it.
    pub fn visit_params_indexed(&mut self, f: &mut dyn FnMut(usize, &'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_params(&mut |name, kind, w, g| f(i, name, kind, w, g));
        }
    }

    /// Parameters and buffers, copied out.
    /// The bytes its tensors hold: parameters, gradients, buffers and each layer's last output,
    /// input gradient, caches and scratch (what a copy of the model copies).
    pub fn heap_bytes(&mut self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, _, w, g| n += w.len() + g.len());
        self.visit_buffers(&mut |_, b| n += b.len());
        n += self.layers.iter().map(|l| l.output().len() + l.input_grad().len()).sum::<usize>();
        n * std::mem::size_of::<f32>() + self.layers.iter().map(|l| l.scratch_bytes()).sum::<usize>()
    }

    pub fn state(&mut self) -> ModelState {
        let mut state = ModelState::default();
        self.visit_params(&mut |_, _, w, _| state.parameters.push(tensor::slice(w).to_vec()));
        self.visit_buffers(&mut |_, b| state.buffers.push(tensor::slice(b).to_vec()));
        state
    }

    /// Puts back a [`ModelState`] of a model with the same shapes; refuses (changing nothing)
    /// when a count or a size differs, or a value is not finite.
    pub fn restore(&mut self, state: &ModelState) -> Result<(), String> {
        let mut sizes = (Vec::new(), Vec::new());
        self.visit_params(&mut |_, _, w, _| sizes.0.push(w.len()));
        self.visit_buffers(&mut |_, b| sizes.1.push(b.len()));
        let fits = |want: &[usize], got: &[Vec<f32>]| want.len() == got.len() && want.iter().zip(got).all(|(&n, v)| n == v.len());
        if !fits(&sizes.0, &state.parameters) {
            return Err(format!("the weights do not fit this network ({} tensors expected, {} given)", sizes.0.len(), state.parameters.len()));
        }
        if !fits(&sizes.1, &state.buffers) {
            return Err(format!("the buffers do not fit this network ({} expected, {} given)", sizes.1.len(), state.buffers.len()));
        }
        if state.parameters.iter().chain(&state.buffers).flatten().any(|v| !v.is_finite()) {
            return Err("a weight or buffer is not a finite number".into());
        }
        let mut i = 0;
        self.visit_params(&mut |_, _, w, _| {
            tensor::slice_mut(w).copy_from_slice(&state.parameters[i]);
            i += 1;
        });
        let mut i = 0;
        self.visit_buffers(&mut |_, b| {
            tensor::slice_mut(b).copy_from_slice(&state.buffers[i]);
            i += 1;
        });
        Ok(())
    }
}

impl Layer for Sequential {
    fn scratch_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.scratch_bytes() + (l.output().len() + l.input_grad().len()) * std::mem::size_of::<f32>()).sum()
    }

    fn name(&self) -> String {
        self.layers.iter().map(|l| l.name()).collect::<Vec<_>>().join(" → ")
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        self.layers.iter().try_fold(input.to_vec(), |shape, l| l.output_shape(&shape))
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

    fn backward_fresh(&mut self, dy: &Tensor) -> &Tensor {
        // `backward`, each layer's gradients written fresh.
        let last = self.layers.len() - 1;
        self.layers[last].backward_fresh(dy);
        for i in (0..last).rev() {
            let (lower, upper) = self.layers.split_at_mut(i + 1);
            lower[i].backward_fresh(upper[0].input_grad());
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

    fn visit_buffers(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor)) {
        for layer in self.layers.iter_mut() {
            layer.visit_buffers(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::ops::{Activation, ActivationKind, Dense, Dropout};
    use crate::rng::Rng;

    /// A layer with a buffer: counts the examples it has seen in training mode.
    #[derive(Clone)]
    struct Counter {
        seen: Tensor,
        y: Tensor,
    }

    impl Layer for Counter {
        fn name(&self) -> String {
            "counter".into()
        }
        fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
            crate::layer::same_shape(input)
        }
        fn forward(&mut self, x: &Tensor, mode: Mode) -> &Tensor {
            if mode == Mode::Train {
                tensor::slice_mut(&mut self.seen)[0] += x.shape()[0] as f32;
            }
            tensor::copy_into(&mut self.y, x);
            &self.y
        }
        fn backward(&mut self, _dy: &Tensor) -> &Tensor {
            &self.y
        }
        fn output(&self) -> &Tensor {
            &self.y
        }
        fn input_grad(&self) -> &Tensor {
            &self.y
        }
        fn visit_buffers(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor)) {
            f("seen", &mut self.seen);
        }
    }

    fn mlp(dropout: bool, counter: bool) -> Sequential {
        let mut rng = Rng::new(3);
        let mut b = Sequential::builder();
        b.push(Dense::new(2, 4, Init::Xavier, 0.0, &mut rng)).tap("hidden 1 pre-activation");
        b.push(Activation::new(ActivationKind::Tanh, 0.0)).tap("hidden 1 activation");
        if counter {
            b.push(Counter { seen: tensor::zeros(&[1]), y: tensor::zeros(&[0]) });
        }
        if dropout {
            b.push(Dropout::new(0.5, 9));
        }
        b.push(Dense::new(4, 3, Init::Xavier, 0.0, &mut rng)).tap("output");
        b.build()
    }

    #[test]
    fn taps_name_the_same_outputs_whatever_layers_are_inserted() {
        let x = tensor::from_vec(&[2, 2], vec![0.5, -1.0, 2.0, 0.25]);
        let mut plain = mlp(false, false);
        let mut extra = mlp(true, true);
        plain.forward(&x, Mode::Eval);
        extra.forward(&x, Mode::Eval);
        assert_eq!(plain.tap_index("output"), Some(2));
        assert_eq!(extra.tap_index("output"), Some(4), "two layers were inserted before the output");
        for name in ["hidden 1 pre-activation", "hidden 1 activation", "output"] {
            assert_eq!(plain.tap(name).unwrap(), extra.tap(name).unwrap(), "{name}");
        }
        assert!(extra.tapped::<Dense>("output").is_some_and(|d| d.outputs == 3));
        assert!(extra.tapped::<Dense>("hidden 1 activation").is_none(), "that tap is an activation");
        assert_eq!(extra.layers_of::<Dense>().count(), 2);
        assert_eq!(extra.output_shape(&[5, 2]).unwrap(), vec![5, 3]);
        assert!(extra.output_shape(&[5, 3]).unwrap_err().contains("dense 2→4"));
    }

    #[test]
    fn state_round_trips_parameters_and_buffers() {
        let mut a = mlp(false, true);
        let x = tensor::from_vec(&[3, 2], vec![1.0; 6]);
        a.forward(&x, Mode::Train);
        a.forward(&x, Mode::Train);
        let state = a.state();
        assert_eq!(state.buffers, vec![vec![6.0]]);
        let mut b = mlp(false, true);
        b.restore(&state).unwrap();
        assert_eq!(b.state(), state);
        // Refused whole, nothing changed: a missing buffer, a wrong size, a non-finite value.
        let before = b.state();
        assert!(b.restore(&ModelState { buffers: vec![], ..state.clone() }).unwrap_err().contains("buffers"));
        let mut wrong = state.clone();
        wrong.parameters[0].pop();
        assert!(b.restore(&wrong).is_err());
        let mut infinite = state.clone();
        infinite.parameters[1][0] = f32::INFINITY;
        assert!(b.restore(&infinite).unwrap_err().contains("finite"));
        assert_eq!(b.state(), before);
        // A model without the buffer refuses a state with one.
        assert!(mlp(false, false).restore(&state).is_err());
    }
}
