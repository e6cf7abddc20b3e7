//! The optimisers against their header formulas, element by element, bit for bit. The passes
//! run vectorised (natively by LLVM, in wasm by explicit lanes); the share links replay through
//! them, so the lanes must round exactly as the scalar formula does. A function rather than a
//! test so that the wasm tests (`src/wasm_tests.rs`) run the same check in wasm32.

use super::{Adagrad, Adam, Hyper, Optimizer, Sgd};
use crate::rng::Rng;

/// Names of the optimisers whose pass differs from the formula in any bit, for weights of each
/// of several lengths (including lengths that are no multiple of a lane count) over 5 steps
/// with gradients from 0 up to 50. Empty when all agree.
pub fn mismatches() -> Vec<String> {
    let mut wrong = Vec::new();
    for n in [0, 1, 3, 4, 7, 8, 9, 1003] {
        for name in check(n) {
            wrong.push(format!("{name} (n = {n})"));
        }
    }
    wrong
}

fn check(n: usize) -> Vec<&'static str> {
    let mut rng = Rng::new(7 + n as u64);
    let mut values = |scale: f32| (0..n).map(|_| (rng.uniform() - 0.5) * scale).collect::<Vec<f32>>();
    let w0 = values(2.0);
    let grads: Vec<Vec<f32>> = [1.0, 1e-6, 50.0, 0.0, 3.0].iter().map(|&s| values(s)).collect();
    let h = Hyper { lr: 0.01, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 0.0 };
    let (mut adam, mut adagrad, mut heavy, mut nesterov) = (Adam::default(), Adagrad::default(), Sgd::momentum(false), Sgd::momentum(true));
    let (mut w_adam, mut w_adagrad, mut w_heavy, mut w_nesterov) = (w0.clone(), w0.clone(), w0.clone(), w0.clone());
    let (mut ref_adam, mut ref_adagrad, mut ref_heavy, mut ref_nesterov) = (w0.clone(), w0.clone(), w0.clone(), w0.clone());
    let (mut m, mut v, mut sum) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
    let (mut vh, mut vn) = (vec![0.0f32; n], vec![0.0f32; n]);
    let (mut plain, mut w_plain, mut ref_plain) = (Sgd::plain(), w0.clone(), w0.clone());
    let (mut b1t, mut b2t) = (1.0f32, 1.0f32);
    let mut wrong = Vec::new();
    for g in &grads {
        adam.begin_step();
        adam.update(0, &mut w_adam, g, &h);
        adagrad.begin_step();
        adagrad.update(0, &mut w_adagrad, g, &h);
        heavy.update(0, &mut w_heavy, g, &h);
        nesterov.update(0, &mut w_nesterov, g, &h);
        plain.update(0, &mut w_plain, g, &h);
        b1t *= 0.9;
        b2t *= 0.999;
        for i in 0..n {
            m[i] = 0.9 * m[i] + (1.0 - 0.9) * g[i];
            v[i] = 0.999 * v[i] + (1.0 - 0.999) * g[i] * g[i];
            ref_adam[i] -= 0.01 * (m[i] / (1.0 - b1t)) / ((v[i] / (1.0 - b2t)).sqrt() + 1e-8);
            sum[i] += g[i] * g[i];
            ref_adagrad[i] -= 0.01 * g[i] / (sum[i].sqrt() + 1e-8);
            vh[i] = 0.9 * vh[i] + g[i];
            ref_heavy[i] -= 0.01 * vh[i];
            vn[i] = 0.9 * vn[i] + g[i];
            ref_nesterov[i] -= 0.01 * (g[i] + 0.9 * vn[i]);
            ref_plain[i] -= 0.01 * g[i];
        }
        let bits = |a: &[f32]| a.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        for (name, got, want) in [
            ("Adam", &w_adam, &ref_adam),
            ("Adagrad", &w_adagrad, &ref_adagrad),
            ("momentum", &w_heavy, &ref_heavy),
            ("Nesterov", &w_nesterov, &ref_nesterov),
            ("SGD", &w_plain, &ref_plain),
        ] {
            if bits(got) != bits(want) && !wrong.contains(&name) {
                wrong.push(name);
            }
        }
    }
    wrong
}
