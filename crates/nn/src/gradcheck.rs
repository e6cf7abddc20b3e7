//! Finite-difference gradient checks, used by every op's tests.
//!
//! For a layer `y = f(x; θ)` we take the scalar `L = Σ y ⊙ r` with a fixed random `r`, so that
//! `∂L/∂y = r`. The analytic gradients come from `backward(r)`; the numeric ones from central
//! differences `(L(v + ε) − L(v − ε)) / 2ε`, computed in f64 from the f32 outputs.

use crate::layer::Layer;
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};

fn projected(layer: &mut dyn Layer, x: &Tensor, r: &Tensor) -> f64 {
    let y = layer.forward(x, Mode::Train);
    tensor::slice(y).iter().zip(tensor::slice(r)).map(|(&a, &b)| a as f64 * b as f64).sum()
}

fn close(analytic: f32, numeric: f64, tol: f64) -> bool {
    let a = analytic as f64;
    (a - numeric).abs() <= tol * (a.abs() + numeric.abs()).max(1e-2)
}

/// Perturbs element `elem` of the `index`-th parameter by `delta`.
fn nudge(layer: &mut dyn Layer, index: usize, elem: usize, delta: f32) {
    let mut i = 0;
    layer.visit_params(&mut |_, _, w, _| {
        if i == index {
            tensor::slice_mut(w)[elem] += delta;
        }
        i += 1;
    });
}

/// Checks `dx` and every parameter gradient of `layer` at input `x`. Returns a description of the
/// first mismatch. `eps` is the finite-difference step, `tol` the relative tolerance.
pub fn check_layer(layer: &mut dyn Layer, x: &Tensor, eps: f32, tol: f64) -> Result<(), String> {
    let mut rng = Rng::new(99);
    let out_shape = layer.forward(x, Mode::Train).shape().to_vec();
    let r = tensor::from_vec(&out_shape, (0..out_shape.iter().product()).map(|_| rng.normal()).collect());
    layer.zero_grad();
    layer.forward(x, Mode::Train);
    let dx = layer.backward(&r).clone();
    let mut grads: Vec<(&'static str, Tensor)> = Vec::new();
    layer.visit_params(&mut |name, _, _, g| grads.push((name, g.clone())));

    let mut xp = x.clone();
    for i in 0..x.len() {
        let v = tensor::slice(x)[i];
        tensor::slice_mut(&mut xp)[i] = v + eps;
        let lp = projected(layer, &xp, &r);
        tensor::slice_mut(&mut xp)[i] = v - eps;
        let lm = projected(layer, &xp, &r);
        tensor::slice_mut(&mut xp)[i] = v;
        let numeric = (lp - lm) / (2.0 * eps as f64);
        let analytic = tensor::slice(&dx)[i];
        if !close(analytic, numeric, tol) {
            return Err(format!("dx[{i}]: analytic {analytic} vs numeric {numeric}"));
        }
    }
    for (p, (name, g)) in grads.iter().enumerate() {
        for e in 0..g.len() {
            nudge(layer, p, e, eps);
            let lp = projected(layer, x, &r);
            nudge(layer, p, e, -2.0 * eps);
            let lm = projected(layer, x, &r);
            nudge(layer, p, e, eps);
            let numeric = (lp - lm) / (2.0 * eps as f64);
            let analytic = tensor::slice(g)[e];
            if !close(analytic, numeric, tol) {
                return Err(format!("d{name}[{e}]: analytic {analytic} vs numeric {numeric}"));
            }
        }
    }
    Ok(())
}

/// A tensor of normal draws, shifted away from zero by at least `gap` (to avoid ReLU's kink).
pub fn random_input(shape: &[usize], seed: u64, gap: f32) -> Tensor {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            let v = rng.normal();
            if v.abs() < gap {
                if v < 0.0 { v - gap } else { v + gap }
            } else {
                v
            }
        })
        .collect();
    tensor::from_vec(shape, data)
}
