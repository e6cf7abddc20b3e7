//! An optimiser's update of a run of elements as plain data: this step's constants and which
//! formula, applied to a run with that run's state. Every optimiser updates through its rule
//! ([`super::Optimizer::update_part`]), so threads that update disjoint runs of one parameter at
//! once with it (the first layer split by columns, `crate::columns`) make the same bits.
//!
//! ```text
//! Sgd       w ← w − lr·g
//! Momentum  v ← μv + g;  w ← w − lr·v              (Nesterov: w ← w − lr·(g + μv))
//! Adagrad   G ← G + g²;  w ← w − lr·g / (√G + ε)
//! Adam      m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  w ← w − lr·(m/c₁) / (√(v/c₂) + ε)
//! ```

use super::Hyper;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    Sgd,
    Momentum {
        nesterov: bool,
    },
    Adagrad {
        eps: f32,
    },
    /// `c1 = 1 − β₁ᵗ`, `c2 = 1 − β₂ᵗ` for this step.
    Adam {
        b1: f32,
        b2: f32,
        c1: f32,
        c2: f32,
        eps: f32,
    },
}

impl Rule {
    /// How many state vectors the rule reads and writes (the first `states()` of [`Rule::apply`]'s).
    pub fn states(self) -> usize {
        match self {
            Rule::Sgd => 0,
            Rule::Momentum { .. } | Rule::Adagrad { .. } => 1,
            Rule::Adam { .. } => 2,
        }
    }

    /// The rule as words (its kind, then its constants' bits), for a worker that shares no
    /// memory with this one ([`Rule::from_words`] reads them back exactly).
    pub fn to_words(self) -> [u32; 6] {
        let b = f32::to_bits;
        match self {
            Rule::Sgd => [0; 6],
            Rule::Momentum { nesterov } => [1, nesterov as u32, 0, 0, 0, 0],
            Rule::Adagrad { eps } => [2, b(eps), 0, 0, 0, 0],
            Rule::Adam { b1, b2, c1, c2, eps } => [3, b(b1), b(b2), b(c1), b(c2), b(eps)],
        }
    }

    /// [`Rule::to_words`] read back; None for words no rule writes.
    pub fn from_words(w: [u32; 6]) -> Option<Rule> {
        let f = |i: usize| f32::from_bits(w[i]);
        match w[0] {
            0 => Some(Rule::Sgd),
            1 => Some(Rule::Momentum { nesterov: w[1] != 0 }),
            2 => Some(Rule::Adagrad { eps: f(1) }),
            3 => Some(Rule::Adam { b1: f(1), b2: f(2), c1: f(3), c2: f(4), eps: f(5) }),
            _ => None,
        }
    }

    /// Updates the run `w` from its gradient `g` and its state runs `s0`, `s1` (as long as `w`
    /// where the rule has them; others may be empty).
    pub fn apply(self, w: &mut [f32], g: &[f32], s0: &mut [f32], s1: &mut [f32], h: &Hyper) {
        let lr = h.lr;
        match self {
            Rule::Sgd => {
                // Explicit lanes in wasm: left to LLVM, this loop's speed came and went with
                // unrelated changes elsewhere in the crate (W2 in Chromium: 7 % from one build to the next).
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                let done = super::lanes::sgd(w, g, lr);
                #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
                let done = 0;
                for (w, &g) in w[done..].iter_mut().zip(&g[done..]) {
                    *w -= lr * g;
                }
            }
            Rule::Momentum { nesterov } => {
                let (v, mu) = (s0, h.momentum);
                // Zipped, one loop per kind, so that each vectorises natively (the same bits per
                // element); explicit lanes in wasm, where LLVM leaves these scalar.
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                let done = super::lanes::momentum(w, g, v, mu, lr, nesterov);
                #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
                let done = 0;
                let each = w[done..].iter_mut().zip(&g[done..]).zip(&mut v[done..]);
                if nesterov {
                    for ((w, &g), v) in each {
                        *v = mu * *v + g;
                        *w -= lr * (g + mu * *v);
                    }
                } else {
                    for ((w, &g), v) in each {
                        *v = mu * *v + g;
                        *w -= lr * *v;
                    }
                }
            }
            Rule::Adagrad { eps } => {
                let s = s0;
                // Zipped, so that it vectorises natively; explicit lanes in wasm (the same bits: see Adam).
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                let done = super::lanes::adagrad(w, g, s, lr, eps);
                #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
                let done = 0;
                for ((w, &g), s) in w[done..].iter_mut().zip(&g[done..]).zip(&mut s[done..]) {
                    *s += g * g;
                    *w -= lr * g / (s.sqrt() + eps);
                }
            }
            Rule::Adam { b1, b2, c1, c2, eps } => {
                let (m, v) = (s0, s1);
                // On the step's serial path, where a worker's helpers wait. Zipped, with no bounds
                // checks, the loop vectorises natively (division and square root are exact in SIMD
                // lanes: the same bits); in wasm LLVM leaves it scalar, so explicit lanes do the
                // bulk there. LeNet-5's 61,706 weights natively: ~0.36 ms as two indexed loops,
                // ~0.09 ms zipped.
                #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                let done = super::lanes::adam(w, g, m, v, b1, b2, c1, c2, lr, eps);
                #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
                let done = 0;
                let rest = w[done..].iter_mut().zip(&g[done..]).zip(&mut m[done..]).zip(&mut v[done..]);
                for (((w, &g), m), v) in rest {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Hyper, OptimizerKind};
    use crate::rng::Rng;

    #[test]
    fn a_rule_read_back_from_its_words_is_the_same_rule() {
        let rules = [
            super::Rule::Sgd,
            super::Rule::Momentum { nesterov: true },
            super::Rule::Momentum { nesterov: false },
            super::Rule::Adagrad { eps: 1e-8 },
            super::Rule::Adam { b1: 0.9, b2: 0.999, c1: 0.1, c2: 0.001999, eps: 1e-8 },
        ];
        for r in rules {
            assert_eq!(super::Rule::from_words(r.to_words()), Some(r));
        }
        assert_eq!(super::Rule::from_words([7, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn runs_updated_through_the_split_rule_have_the_bits_of_a_whole_update() {
        let mut rng = Rng::new(9);
        let h = Hyper { lr: 0.05, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 0.0 };
        let len = 96;
        for kind in OptimizerKind::ALL {
            let (mut whole, mut split) = (kind.build(), kind.build());
            let w0: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
            let (mut a, mut b) = (w0.clone(), w0);
            for _ in 0..3 {
                let g: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
                whole.begin_step();
                whole.update(0, &mut a, &g, &h);
                split.begin_step();
                let (rule, [s0, s1]) = split.split(0, len);
                assert_eq!([s0.len(), s1.len()].iter().filter(|&&n| n == len).count(), rule.states(), "{kind:?}");
                // Columns of a 12 × 8 matrix, 3 to one owner and 5 to the other, row by row.
                for (lo, hi) in [(0, 3), (3, 8)] {
                    for row in 0..12 {
                        let r = row * 8 + lo..row * 8 + hi;
                        let pick = |s: &mut [f32]| if s.is_empty() { Vec::new() } else { s[r.clone()].to_vec() };
                        let (mut t0, mut t1) = (pick(s0), pick(s1));
                        rule.apply(&mut b[r.clone()], &g[r.clone()], &mut t0, &mut t1, &h);
                        if !t0.is_empty() {
                            s0[r.clone()].copy_from_slice(&t0);
                        }
                        if !t1.is_empty() {
                            s1[r.clone()].copy_from_slice(&t1);
                        }
                    }
                }
            }
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{kind:?}");
        }
    }
}
