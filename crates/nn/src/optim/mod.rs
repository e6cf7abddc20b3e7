//! Optimizers, L2 weight decay and gradient clipping.
//!
//! One struct per optimizer, each keeping its own per-parameter state, indexed by the order in
//! which the model visits its parameters. Hyper-parameters live in [`Hyper`] and are read at
//! every step, so they can change between two steps without a reset.

mod adagrad;
mod adam;
pub mod formulas;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes;
mod rule;
mod schedule;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use rule::Rule;
pub use schedule::Schedule;
pub use sgd::Sgd;

use crate::layer::{Layer, ParamKind};
use crate::tensor::{self, Tensor};
use serde::{Deserialize, Serialize};

/// Hyper-parameters that may change mid-run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    pub lr: f32,
    pub momentum: f32,
    /// L2 weight decay λ: `g ← g + λ·w` for weights (not biases).
    pub l2: f32,
    /// L1 penalty λ: `g ← g + λ·sign(w)` for weights (not biases); pushes weights to exactly 0.
    pub l1: f32,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    pub clip: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Momentum,
    Nesterov,
    Adagrad,
    Adam,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 5] = [OptimizerKind::Sgd, OptimizerKind::Momentum, OptimizerKind::Nesterov, OptimizerKind::Adagrad, OptimizerKind::Adam];

    pub fn label(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Momentum => "SGD + momentum",
            OptimizerKind::Nesterov => "SGD + Nesterov",
            OptimizerKind::Adagrad => "Adagrad",
            OptimizerKind::Adam => "Adam",
        }
    }

    pub fn uses_momentum(self) -> bool {
        matches!(self, OptimizerKind::Momentum | OptimizerKind::Nesterov)
    }

    pub fn build(self) -> Box<dyn Optimizer> {
        match self {
            OptimizerKind::Sgd => Box::new(Sgd::plain()),
            OptimizerKind::Momentum => Box::new(Sgd::momentum(false)),
            OptimizerKind::Nesterov => Box::new(Sgd::momentum(true)),
            OptimizerKind::Adagrad => Box::new(Adagrad::default()),
            OptimizerKind::Adam => Box::new(Adam::default()),
        }
    }
}

/// (`Sync`: a replicated step hands its state to helper threads, see `parallel::ShardJob`.)
pub trait Optimizer: Send + Sync + dyn_clone::DynClone {
    /// Called once per step, before the parameter updates (Adam counts steps here).
    fn begin_step(&mut self) {}
    /// Updates parameter number `index` in place from its gradient.
    fn update(&mut self, index: usize, w: &mut [f32], g: &[f32], h: &Hyper) {
        self.update_part(index, w.len(), 0, w, g, h);
    }
    /// [`Optimizer::update`] of elements `at..at + w.len()` of parameter `index` (`len` elements
    /// in all), the rest left as they are: every element's update depends on that element alone,
    /// so updating a parameter part by part gives the bits of updating it whole.
    fn update_part(&mut self, index: usize, len: usize, at: usize, w: &mut [f32], g: &[f32], h: &Hyper) {
        let (rule, [s0, s1]) = self.split(index, len);
        let end = at + w.len();
        let (s0, s1) = (if s0.is_empty() { s0 } else { &mut s0[at..end] }, if s1.is_empty() { s1 } else { &mut s1[at..end] });
        rule.apply(w, g, s0, s1, h);
    }
    /// This step's update of parameter `index` (`len` elements) as a [`Rule`] and its state
    /// vectors (`rule.states()` of them, `len` long, created as zeros when new; the others
    /// empty): threads may update disjoint runs of the parameter with it at once, each with the
    /// bits of [`Optimizer::update_part`] (which updates through it). After [`Optimizer::begin_step`].
    fn split(&mut self, index: usize, len: usize) -> (Rule, [&mut [f32]; 2]);
    /// `‖Δw‖` of the last update of parameter `index`, rebuilt from the optimiser's state and
    /// that update's gradient `g` (computed when a snapshot asks, not in every step).
    fn update_norm(&self, index: usize, g: &[f32], h: &Hyper) -> f32;
}

dyn_clone::clone_trait_object!(Optimizer);

/// Grows a per-parameter state vector on first use (state is created lazily so optimizers need
/// not know the model up front).
pub(crate) fn state<'a>(states: &'a mut Vec<Vec<f32>>, index: usize, len: usize) -> &'a mut [f32] {
    while states.len() <= index {
        states.push(Vec::new());
    }
    if states[index].len() != len {
        states[index] = vec![0.0; len];
    }
    &mut states[index]
}

/// The global L2 norm of all gradients: `sqrt(Σ g²)`.
pub fn grad_norm(model: &mut dyn Layer) -> f32 {
    let mut s = 0.0f64;
    model.visit_params(&mut |_, _, _, g| {
        s += tensor::slice(g).iter().map(|&v| v as f64 * v as f64).sum::<f64>();
    });
    s.sqrt() as f32
}

/// One optimiser step over every parameter of `model`: L1/L2 penalties, clipping by global
/// norm, then the update. Returns the gradient norm before clipping when clipping is on
/// (computing it otherwise would cost a pass every step).
pub fn apply(model: &mut dyn Layer, opt: &mut dyn Optimizer, h: &Hyper) -> Option<f32> {
    if h.l2 > 0.0 || h.l1 > 0.0 {
        model.visit_params(&mut |_, kind, w, g| {
            if kind == ParamKind::Weight {
                penalise(tensor::slice(w), tensor::slice_mut(g), h);
            }
        });
    }
    let mut norm = None;
    if h.clip > 0.0 {
        let n = grad_norm(model);
        if n > h.clip {
            let scale = h.clip / n;
            model.visit_params(&mut |_, _, _, g| tensor::slice_mut(g).iter_mut().for_each(|g| *g *= scale));
        }
        norm = Some(n);
    }
    opt.begin_step();
    let mut index = 0;
    model.visit_params(&mut |_, _, w: &mut Tensor, g: &mut Tensor| {
        opt.update(index, tensor::slice_mut(w), tensor::slice(g), h);
        index += 1;
    });
    norm
}

/// [`apply`] part by part: each parameter's elements in runs of `part` (from its start), each run
/// penalised and updated, then handed to `updated(index, at, w)` (parameter `index` in model
/// order, `w` its elements from `at`), so that a caller can pass the new weights on while the
/// rest are updated (the browser's lead hands them to its helpers that way). The same bits as
/// [`apply`]: every element's penalty and update depend on that element alone. Not with
/// clipping, which needs every gradient first: false then, nothing changed.
pub fn apply_in_parts(model: &mut dyn Layer, opt: &mut dyn Optimizer, h: &Hyper, part: usize, updated: &mut dyn FnMut(usize, usize, &[f32])) -> bool {
    if h.clip > 0.0 || part == 0 {
        return false;
    }
    opt.begin_step();
    let mut index = 0;
    model.visit_params(&mut |_, kind, w: &mut Tensor, g: &mut Tensor| {
        let len = w.len();
        let (w, g) = (tensor::slice_mut(w), tensor::slice_mut(g));
        for (k, (w, g)) in w.chunks_mut(part).zip(g.chunks_mut(part)).enumerate() {
            if kind == ParamKind::Weight && (h.l2 > 0.0 || h.l1 > 0.0) {
                penalise(w, g, h);
            }
            opt.update_part(index, len, k * part, w, g, h);
            updated(index, k * part, w);
        }
        index += 1;
    });
    true
}

/// The gradient `a + b` (two flat vectors, the parameters laid end to end in model order) written
/// into `model`'s gradients and applied in the same pass, in runs of `part` elements: each run's
/// sum is still in the nearest cache when it is penalised and applied, where [`apply`] after a
/// whole addition reads the gradients back from memory. The same bits as adding then [`apply`]
/// (every element's sum, penalty and update depend on that element alone). Not with clipping,
/// which needs every gradient first, nor with `a` or `b` shorter than the parameters: false
/// then, nothing changed.
pub fn apply_sum(model: &mut dyn Layer, opt: &mut dyn Optimizer, h: &Hyper, a: &[f32], b: &[f32], part: usize) -> bool {
    let mut total = 0;
    model.visit_params(&mut |_, _, w, _| total += w.len());
    if h.clip > 0.0 || part == 0 || a.len() < total || b.len() < total {
        return false;
    }
    opt.begin_step();
    let (mut index, mut at) = (0, 0);
    model.visit_params(&mut |_, kind, w: &mut Tensor, g: &mut Tensor| {
        let len = w.len();
        let (w, g) = (tensor::slice_mut(w), tensor::slice_mut(g));
        let (a, b) = (&a[at..at + len], &b[at..at + len]);
        for (k, ((w, g), (a, b))) in w.chunks_mut(part).zip(g.chunks_mut(part)).zip(a.chunks(part).zip(b.chunks(part))).enumerate() {
            crate::lanes::add_to(g, a, b);
            if kind == ParamKind::Weight && (h.l2 > 0.0 || h.l1 > 0.0) {
                penalise(w, g, h);
            }
            opt.update_part(index, len, k * part, w, g, h);
        }
        index += 1;
        at += len;
    });
    true
}

/// `g ← g + λ₂·w + λ₁·sign(w)`, element by element (weights only; see [`apply`]).
pub(crate) fn penalise(w: &[f32], g: &mut [f32], h: &Hyper) {
    g.iter_mut().zip(w).for_each(|(g, &w)| {
        let sign = if w > 0.0 {
            1.0
        } else if w < 0.0 {
            -1.0
        } else {
            0.0
        };
        *g += h.l2 * w + h.l1 * sign
    });
}

/// `‖Δw‖` of the last step, per parameter tensor, in model order.
pub fn update_norms(model: &mut dyn Layer, opt: &dyn Optimizer, h: &Hyper) -> Vec<f32> {
    let mut out = Vec::new();
    model.visit_params(&mut |_, _, _, g| {
        let i = out.len();
        out.push(opt.update_norm(i, tensor::slice(g), h));
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::ops::Dense;
    use crate::rng::Rng;

    fn hyper(lr: f32) -> Hyper {
        Hyper { lr, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 0.0 }
    }

    #[test]
    fn clipping_scales_to_the_global_norm_and_l2_skips_biases() {
        let mut d = Dense::new(1, 2, Init::Zeros, 0.0, &mut Rng::new(0));
        d.w = tensor::from_vec(&[1, 2], vec![1.0, 1.0]);
        d.dw = tensor::from_vec(&[1, 2], vec![3.0, 0.0]);
        d.db = tensor::from_vec(&[2], vec![0.0, 4.0]);
        let mut sgd = Sgd::plain();
        let h = Hyper { lr: 1.0, momentum: 0.0, l2: 0.0, l1: 0.0, clip: 1.0 };
        let norm = apply(&mut d, &mut sgd, &h);
        assert_eq!(norm, Some(5.0));
        let ratios = update_norms(&mut d, &sgd, &h);
        // grads scaled by 1/5: W ← [1 − 0.6, 1], b ← [0, −0.8]
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(tensor::slice(&d.w), &[0.4, 1.0]), "{:?}", d.w);
        assert!(close(tensor::slice(&d.b), &[0.0, -0.8]), "{:?}", d.b);
        assert_eq!(ratios.len(), 2);
        assert!((ratios[0] - 0.6).abs() < 1e-6, "‖ΔW‖");

        d.zero_grad();
        let h = Hyper { lr: 1.0, momentum: 0.0, l2: 0.5, l1: 0.0, clip: 0.0 };
        apply(&mut d, &mut sgd, &h);
        assert!(close(tensor::slice(&d.w), &[0.2, 0.5])); // w ← w − 0.5 w
        assert!(close(tensor::slice(&d.b), &[0.0, -0.8])); // biases untouched

        d.zero_grad();
        let h = Hyper { lr: 1.0, momentum: 0.0, l2: 0.0, l1: 0.1, clip: 0.0 };
        apply(&mut d, &mut sgd, &h);
        assert!(close(tensor::slice(&d.w), &[0.1, 0.4])); // w ← w − 0.1·sign(w)
    }

    #[test]
    fn sgd_momentum_nesterov_adagrad_hand_values() {
        let g = [1.0f32];
        // momentum: v1 = 1, w = −0.1; v2 = 1.9, w = −0.29
        let mut w = [0.0f32];
        let mut o = Sgd::momentum(false);
        o.update(0, &mut w, &g, &hyper(0.1));
        o.update(0, &mut w, &g, &hyper(0.1));
        assert!((w[0] + 0.29).abs() < 1e-6);
        // nesterov: step uses g + μv: 1 + 0.9 = 1.9 then 1 + 0.9·1.9 = 2.71 → −0.461
        let mut w = [0.0f32];
        let mut o = Sgd::momentum(true);
        o.update(0, &mut w, &g, &hyper(0.1));
        o.update(0, &mut w, &g, &hyper(0.1));
        assert!((w[0] + 0.461).abs() < 1e-6);
        // adagrad: G = 4 → w = −0.1·2/2 = −0.1; G = 8 → w −= 0.1·2/√8
        let mut w = [0.0f32];
        let mut o = Adagrad::default();
        o.update(0, &mut w, &[2.0], &hyper(0.1));
        o.update(0, &mut w, &[2.0], &hyper(0.1));
        assert!((w[0] + 0.1 + 0.2 / 8f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn update_norm_equals_the_change_each_optimizer_made() {
        let h = Hyper { lr: 0.05, momentum: 0.8, l2: 0.0, l1: 0.0, clip: 0.0 };
        for kind in OptimizerKind::ALL {
            let mut o = kind.build();
            let mut w = vec![0.3f32, -0.2, 1.0];
            for step in 0..3 {
                let g = [0.5 - step as f32, 0.25, -1.0 + 0.1 * step as f32];
                let before = w.clone();
                o.begin_step();
                o.update(0, &mut w, &g, &h);
                let moved = before.iter().zip(&w).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt();
                let claimed = o.update_norm(0, &g, &h);
                assert!((moved - claimed).abs() < 1e-6 * (1.0 + moved), "{kind:?}: {moved} vs {claimed}");
            }
        }
    }

    #[test]
    fn adam_matches_hand_computed_numbers() {
        // β1 = 0.9, β2 = 0.999, ε = 1e-8, lr = 0.1, w0 = 1.
        // t=1, g=0.5: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 → w = 1 − 0.1·0.5/0.5 = 0.9
        // t=2, g=0.25: m = 0.07, v = 0.00031225, m̂ = 0.07/0.19 = 0.368421,
        //   v̂ = 0.00031225/0.001999 = 0.156203, √v̂ = 0.395226 → w = 0.9 − 0.093218 = 0.806782
        let mut o = Adam::default();
        let mut w = [1.0f32];
        o.begin_step();
        o.update(0, &mut w, &[0.5], &hyper(0.1));
        assert!((w[0] - 0.9).abs() < 1e-6, "{}", w[0]);
        o.begin_step();
        o.update(0, &mut w, &[0.25], &hyper(0.1));
        assert!((w[0] - 0.806_782).abs() < 2e-6, "{}", w[0]);
    }

    #[test]
    fn updating_in_parts_gives_the_bits_of_one_update_and_hands_on_every_part() {
        use crate::sequential::Sequential;
        let build = || {
            let mut rng = Rng::new(7);
            Sequential::new(vec![Box::new(Dense::new(5, 7, Init::He, 0.0, &mut rng)), Box::new(Dense::new(7, 3, Init::He, 0.0, &mut rng))])
        };
        let grads = |m: &mut Sequential, step: usize| {
            let mut i = 0;
            m.visit_params(&mut |_, _, _, g| {
                for v in tensor::slice_mut(g) {
                    // Zeros and signs of both kinds among them.
                    *v = [0.0, -0.0, 0.3, -1.7, 2.5e-3][(i * 7 + step) % 5] * (1.0 + i as f32 / 10.0);
                    i += 1;
                }
            });
        };
        let bits = |m: &mut Sequential| {
            let mut out = Vec::new();
            m.visit_params(&mut |_, _, w, g| out.extend(tensor::slice(w).iter().chain(tensor::slice(g)).map(|v| v.to_bits())));
            out
        };
        for kind in OptimizerKind::ALL {
            for (l1, l2) in [(0.0, 0.0), (0.01, 0.0), (0.0, 0.05), (0.02, 0.03)] {
                for part in [1, 3, 8, 1000] {
                    let h = Hyper { lr: 0.05, momentum: 0.9, l2, l1, clip: 0.0 };
                    let (mut whole, mut parts) = (build(), build());
                    let (mut a, mut b) = (kind.build(), kind.build());
                    for step in 0..3 {
                        grads(&mut whole, step);
                        grads(&mut parts, step);
                        apply(&mut whole, a.as_mut(), &h);
                        let mut seen: Vec<(usize, usize, Vec<f32>)> = Vec::new();
                        assert!(apply_in_parts(&mut parts, b.as_mut(), &h, part, &mut |i, at, w| seen.push((i, at, w.to_vec()))));
                        assert_eq!(bits(&mut whole), bits(&mut parts), "{kind:?}, l1 {l1}, l2 {l2}, parts of {part}, step {step}");
                        // Every part handed on once, in order, as it now is.
                        let mut i = 0;
                        let mut k = 0;
                        parts.visit_params(&mut |_, _, w, _| {
                            let w = tensor::slice(w);
                            for (j, chunk) in w.chunks(part).enumerate() {
                                assert_eq!(seen[k], (i, j * part, chunk.to_vec()));
                                k += 1;
                            }
                            i += 1;
                        });
                        assert_eq!(k, seen.len());
                    }
                }
            }
            // Clipping needs the whole gradient: refused, nothing changed.
            let mut m = build();
            grads(&mut m, 0);
            let before = bits(&mut m);
            let h = Hyper { lr: 0.05, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 1.0 };
            assert!(!apply_in_parts(&mut m, kind.build().as_mut(), &h, 4, &mut |_, _, _| panic!("no part")));
            assert_eq!(before, bits(&mut m));
        }
    }

    #[test]
    fn adding_and_updating_in_one_pass_gives_the_bits_of_adding_then_updating() {
        use crate::sequential::Sequential;
        let build = || {
            let mut rng = Rng::new(11);
            Sequential::new(vec![Box::new(Dense::new(5, 7, Init::He, 0.0, &mut rng)), Box::new(Dense::new(7, 3, Init::He, 0.0, &mut rng))])
        };
        let total = 5 * 7 + 7 + 7 * 3 + 3;
        // Two halves of a gradient: zeros of both signs, values that cancel, subnormal sums. (No
        // NaN: which sign a NaN gets may differ between a loop's vector body and its scalar tail,
        // for [`apply_in_parts`] as here; a run whose gradient is NaN has stopped learning.)
        let halves = |step: usize| {
            let pick = |i: usize, k: usize| [0.0, -0.0, 0.3, -0.3, 1e-39, -1e-39, -1.7, 2.5e-3, 7.0][(i * k + step) % 9];
            ((0..total).map(|i| pick(i, 7)).collect::<Vec<f32>>(), (0..total).map(|i| pick(i, 5)).collect::<Vec<f32>>())
        };
        let bits = |m: &mut Sequential| {
            let mut out = Vec::new();
            m.visit_params(&mut |_, _, w, g| out.extend(tensor::slice(w).iter().chain(tensor::slice(g)).map(|v| v.to_bits())));
            out
        };
        for kind in OptimizerKind::ALL {
            for (l1, l2) in [(0.0, 0.0), (0.01, 0.0), (0.0, 0.05), (0.02, 0.03)] {
                for part in [1, 3, 8, 1000] {
                    let h = Hyper { lr: 0.05, momentum: 0.9, l2, l1, clip: 0.0 };
                    let (mut apart, mut fused) = (build(), build());
                    let (mut a, mut b) = (kind.build(), kind.build());
                    for step in 0..3 {
                        let (x, y) = halves(step);
                        let mut at = 0;
                        apart.visit_params(&mut |_, _, _, g| {
                            let n = g.len();
                            crate::lanes::add_to(tensor::slice_mut(g), &x[at..at + n], &y[at..at + n]);
                            at += n;
                        });
                        apply(&mut apart, a.as_mut(), &h);
                        assert!(apply_sum(&mut fused, b.as_mut(), &h, &x, &y, part));
                        // The weights, and the gradients as the records read them (penalised).
                        assert_eq!(bits(&mut apart), bits(&mut fused), "{kind:?}, l1 {l1}, l2 {l2}, parts of {part}, step {step}");
                    }
                }
            }
            // Clipping needs the whole gradient, and halves too short are not the gradient:
            // refused, nothing changed.
            let (x, y) = halves(0);
            let mut m = build();
            let before = bits(&mut m);
            let clipped = Hyper { lr: 0.05, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 1.0 };
            assert!(!apply_sum(&mut m, kind.build().as_mut(), &clipped, &x, &y, 4));
            let h = Hyper { clip: 0.0, ..clipped };
            assert!(!apply_sum(&mut m, kind.build().as_mut(), &h, &x[1..], &y, 4));
            assert!(!apply_sum(&mut m, kind.build().as_mut(), &h, &x, &y[..total - 1], 4));
            assert!(!apply_sum(&mut m, kind.build().as_mut(), &h, &x, &y, 0));
            assert_eq!(before, bits(&mut m));
        }
    }

    #[test]
    fn optimizers_equal_their_formulas_bit_for_bit() {
        assert_eq!(formulas::mismatches(), Vec::<String>::new());
    }
}
