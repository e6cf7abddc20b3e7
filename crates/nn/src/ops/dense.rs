//! Dense (fully connected) layer.
//!
//! ```text
//! y = x·W + b          x: (n, in)   W: (in, out)   b: (out)   y: (n, out)
//! dx = dy·Wᵀ           dW += xᵀ·dy   db += Σₙ dy
//! ```
//! Small layers (the function-fitting labs') run as plain loops: there a GEMM's call overhead
//! dominates — except a forward pass over many rows (the playground's heatmaps), which is blocked.
//! Large ones (MNIST's 784→128) call the blocked GEMM for `x·W` and `xᵀ·dy`, which
//! sums every output over k in the same order as the loops — the same bits either way (tested
//! below), natively and in wasm.

use crate::init::Init;
use crate::layer::{Layer, ParamKind};
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};

/// From this many outputs on, `dx` sums in SIMD lanes (a different but equally fixed order);
/// narrower layers keep the plain sequential sum.
const WIDE: usize = 64;
/// From this many weights on (in × out), `x·W` and `xᵀ·dy` go through the blocked GEMM. 1,024
/// takes W2's 128→10 layer (micro-shards of 16 rows): W2 +13 % on one native thread, +11 % in
/// Chromium, the RNN lab's W4 +12 % (2026-12-05, alternating rounds; the same bits).
const LARGE: usize = 1024;
/// From this many multiply-adds (n × in × out) on, `x·W` does too, whatever the layer's size.
const MANY: usize = 16_384;

#[derive(Clone)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub w: Tensor,
    pub b: Tensor,
    pub dw: Tensor,
    pub db: Tensor,
    x: Tensor,
    y: Tensor,
    dx: Tensor,
    needs_input_grad: bool,
    /// Wᵀ, reused between steps (for dx of narrow layers).
    w_t: Vec<f32>,
    /// xᵀ, reused between steps (for dW of large layers).
    x_t: Vec<f32>,
    /// Run the loops whatever the size (the equivalence test compares both).
    loops_only: bool,
}

impl Dense {
    /// `backward`; `fresh`: the parameter gradients are written, not added to those held (the
    /// bits of `zero_grad` then `backward`).
    fn backward_into(&mut self, dy: &Tensor, fresh: bool) -> &Tensor {
        let (k_in, k_out) = (self.inputs, self.outputs);
        let n = dy.len() / k_out.max(1);
        let nd = self.x.shape().len();
        let mut x_shape = [0usize; 3];
        x_shape[..nd].copy_from_slice(self.x.shape());
        tensor::resize(&mut self.dx, &x_shape[..nd]);
        let (dys, xs, w) = (tensor::slice(dy), tensor::slice(&self.x), tensor::slice(&self.w));
        // dx = dy·Wᵀ: dx[i,k] = Σⱼ dy[i,j]·W[k,j]
        if self.needs_input_grad && k_out >= WIDE {
            // Wide layers (the CNN's): lane-wise dot products, which vectorise.
            super::gemm::gemm_nt(n, k_out, k_in, dys, w, tensor::slice_mut(&mut self.dx), false);
        } else if self.needs_input_grad {
            // dx[i,k] = ((0 + dy[i,0]·W[k,0]) + dy[i,1]·W[k,1]) + …, the plain order, but with
            // Wᵀ the k's of a row advance together (vectorised) instead of one long add chain each.
            self.w_t.resize(k_in * k_out, 0.0);
            super::gemm::transpose(k_in, k_out, w, &mut self.w_t);
            let large = self.large(n);
            let dx = tensor::slice_mut(&mut self.dx);
            if large {
                // The same sums as register blocks: dx = 0 + dy·Wᵀ, each over j in order.
                super::gemm::gemm(n, k_out, k_in, dys, &self.w_t, dx, false);
            }
            for i in (0..n).filter(|_| !large) {
                let row = &mut dx[i * k_in..(i + 1) * k_in];
                row.fill(0.0);
                for j in 0..k_out {
                    let g = dys[i * k_out + j];
                    let wj = &self.w_t[j * k_in..(j + 1) * k_in];
                    for k in 0..k_in {
                        row[k] += g * wj[k];
                    }
                }
            }
        }
        // dW += xᵀ·dy, db += Σₙ dy (fresh: from +0, not from the gradients held)
        let large = self.large(n);
        let dw = tensor::slice_mut(&mut self.dw);
        let db = tensor::slice_mut(&mut self.db);
        if fresh {
            db.fill(0.0);
            if !large {
                dw.fill(0.0);
            }
        }
        if large {
            // dW += xᵀ·dy, each dW[k,j] summed over the batch in order: the loops' bits (fresh:
            // the sums start from +0 in registers, as from zeroed gradients). A few rows (a
            // micro-shard's) are read as stored, the kernel indexing them transposed; more are
            // transposed first, since a block of dW reads one cache line of x per row.
            if n <= super::gemm::TN_MAX_K {
                super::gemm::gemm_tn(k_in, n, k_out, xs, dys, dw, !fresh);
            } else {
                self.x_t.resize(n * k_in, 0.0);
                super::gemm::transpose(n, k_in, xs, &mut self.x_t);
                super::gemm::gemm(k_in, n, k_out, &self.x_t, dys, dw, !fresh);
            }
        }
        for i in (0..n).filter(|_| !large) {
            let dyi = &dys[i * k_out..(i + 1) * k_out];
            for k in 0..k_in {
                let a = xs[i * k_in + k];
                let dwk = &mut dw[k * k_out..(k + 1) * k_out];
                for j in 0..k_out {
                    dwk[j] += a * dyi[j];
                }
            }
        }
        for i in 0..n {
            for j in 0..k_out {
                db[j] += dys[i * k_out + j];
            }
        }
        &self.dx
    }

    /// A layer with weights drawn by `init` and zero biases.
    pub fn new(inputs: usize, outputs: usize, init: Init, sigma: f32, rng: &mut Rng) -> Self {
        let mut w = tensor::zeros(&[inputs, outputs]);
        init.fill(tensor::slice_mut(&mut w), inputs, outputs, sigma, rng);
        Dense {
            inputs,
            outputs,
            w,
            b: tensor::zeros(&[outputs]),
            dw: tensor::zeros(&[inputs, outputs]),
            db: tensor::zeros(&[outputs]),
            x: tensor::zeros(&[0, inputs]),
            y: tensor::zeros(&[0, outputs]),
            dx: tensor::zeros(&[0, inputs]),
            needs_input_grad: true,
            w_t: Vec::new(),
            x_t: Vec::new(),
            loops_only: false,
        }
    }

    /// What the last forward keeps, its input `(rows, in)` and output `(rows, out)`, resized to
    /// be filled as a forward over those rows would have filled them (a step that computed the
    /// output elsewhere: the first layer split by columns, `crate::columns`).
    pub fn kept_mut(&mut self, rows: usize) -> (&mut [f32], &mut [f32]) {
        tensor::resize(&mut self.x, &[rows, self.inputs]);
        tensor::resize(&mut self.y, &[rows, self.outputs]);
        (tensor::slice_mut(&mut self.x), tensor::slice_mut(&mut self.y))
    }

    fn large(&self, n: usize) -> bool {
        !self.loops_only && n >= 4 && self.inputs * self.outputs >= LARGE
    }

    /// Whether `x·W` over `n` rows goes through the blocked GEMM: a large layer, or a small one
    /// over many rows (the playground's heatmaps: 2,500 grid points through a few units).
    fn forward_blocked(&self, n: usize) -> bool {
        self.large(n) || (!self.loops_only && n >= 64 && n * self.inputs * self.outputs >= MANY)
    }
}

impl Layer for Dense {
    fn scratch_bytes(&self) -> usize {
        (self.x.len() + self.w_t.len() + self.x_t.len()) * std::mem::size_of::<f32>()
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [n, k] if *k == self.inputs => Ok(vec![*n, self.outputs]),
            [n, t, k] if *k == self.inputs => Ok(vec![*n, *t, self.outputs]),
            _ => Err(format!("{} takes (n, {}) or (n, t, {1}), not {input:?}", self.name(), self.inputs)),
        }
    }

    fn name(&self) -> String {
        format!("dense {}→{}", self.inputs, self.outputs)
    }

    /// `(n, in)`, or `(n, t, in)` — every time step through the same layer (rows = n·t).
    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        let (k_in, k_out) = (self.inputs, self.outputs);
        // Shapes on the stack: a step allocates nothing (tests/no_alloc.rs).
        let nd = x.shape().len();
        assert!((2..=3).contains(&nd) && x.shape()[nd - 1] == k_in, "dense input width");
        let mut out_shape = [0usize; 3];
        out_shape[..nd].copy_from_slice(x.shape());
        out_shape[nd - 1] = k_out;
        let n = x.len() / k_in.max(1);
        tensor::copy_into(&mut self.x, x);
        tensor::resize(&mut self.y, &out_shape[..nd]);
        let large = self.forward_blocked(n);
        let (xs, w, b) = (tensor::slice(x), tensor::slice(&self.w), tensor::slice(&self.b));
        let y = tensor::slice_mut(&mut self.y);
        if large {
            // y = b, then y += x·W summed over k in order: the loops' bits.
            y.chunks_exact_mut(k_out).for_each(|row| row.copy_from_slice(b));
            super::gemm::gemm(n, k_in, k_out, xs, w, y, true);
            return &self.y;
        }
        for i in 0..n {
            let row = &mut y[i * k_out..(i + 1) * k_out];
            row.copy_from_slice(b);
            for k in 0..k_in {
                let a = xs[i * k_in + k];
                let wk = &w[k * k_out..(k + 1) * k_out];
                for j in 0..k_out {
                    row[j] += a * wk[j];
                }
            }
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        self.backward_into(dy, false)
    }

    fn backward_fresh(&mut self, dy: &Tensor) -> &Tensor {
        self.backward_into(dy, true)
    }

    fn set_needs_input_grad(&mut self, needed: bool) {
        self.needs_input_grad = needed;
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        f("W", ParamKind::Weight, &mut self.w, &mut self.dw);
        f("b", ParamKind::Bias, &mut self.b, &mut self.db);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    fn layer() -> Dense {
        let mut d = Dense::new(2, 3, Init::Zeros, 0.0, &mut Rng::new(0));
        d.w = tensor::from_vec(&[2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]);
        d.b = tensor::from_vec(&[3], vec![0.1, 0.2, 0.3]);
        d
    }

    #[test]
    fn hand_values() {
        let mut d = layer();
        let x = tensor::from_vec(&[2, 2], vec![1.0, 2.0, -1.0, 0.0]);
        // row 0: [1·1 + 2·(−1), 1·2 + 2·0.5, 1·3 + 0] + b = [−0.9, 3.2, 3.3]
        // row 1: [−1, −2, −3] + b = [−0.9, −1.8, −2.7]
        let y = d.forward(&x, Mode::Train).clone();
        assert_eq!(tensor::slice(&y), &[-0.9, 3.2, 3.3, -0.9, -1.8, -2.7]);
        let dy = tensor::from_vec(&[2, 3], vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        let dx = d.backward(&dy).clone();
        // dx = dy·Wᵀ: row 0: [1+3, −1+0] = [4, −1]; row 1: [2, 0.5]
        assert_eq!(tensor::slice(&dx), &[4.0, -1.0, 2.0, 0.5]);
        // dW = xᵀ·dy: [[1, −1, 1], [2, 0, 2]]
        assert_eq!(tensor::slice(&d.dw), &[1.0, -1.0, 1.0, 2.0, 0.0, 2.0]);
        assert_eq!(tensor::slice(&d.db), &[1.0, 1.0, 1.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut d = Dense::new(4, 3, Init::Xavier, 0.0, &mut Rng::new(5));
        d.b = gradcheck::random_input(&[3], 6, 0.0);
        let x = gradcheck::random_input(&[5, 4], 7, 0.0);
        gradcheck::check_layer(&mut d, &x, 1e-2, 1e-3).unwrap();
    }

    #[test]
    fn the_gemm_path_gives_the_loops_bits() {
        for (n, k_in, k_out, seed) in [(64, 784, 128, 1), (5, 100, 41, 2), (7, 64, 64, 3), (60, 100, 100, 4), (9, 4096, 1, 5)] {
            let run = |loops_only: bool| {
                let mut d = Dense::new(k_in, k_out, Init::He, 0.0, &mut Rng::new(seed));
                d.b = gradcheck::random_input(&[k_out], seed + 10, 0.0);
                d.loops_only = loops_only;
                let x = gradcheck::random_input(&[n, k_in], seed + 20, 0.0);
                let dy = gradcheck::random_input(&[n, k_out], seed + 30, 0.0);
                let y = d.forward(&x, Mode::Train).clone();
                d.dw = gradcheck::random_input(&[k_in, k_out], seed + 40, 0.0);
                let dx = d.backward(&dy).clone();
                let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
                (bits(&y), bits(&dx), bits(&d.dw), bits(&d.db))
            };
            assert!(Dense::new(k_in, k_out, Init::Zeros, 0.0, &mut Rng::new(0)).large(n), "{n}×{k_in}×{k_out} takes the GEMM path");
            assert_eq!(run(false), run(true), "{n}×{k_in}×{k_out}");
        }
        // Small layers over many rows: only the forward pass is blocked.
        for (n, k_in, k_out, seed) in [(2500, 2, 8), (2500, 8, 8), (1000, 6, 3), (64, 16, 16)].into_iter().zip(6..).map(|((n, i, o), s)| (n, i, o, s)) {
            let d = Dense::new(k_in, k_out, Init::Zeros, 0.0, &mut Rng::new(0));
            assert!(d.forward_blocked(n) && !d.large(n), "{n}×{k_in}×{k_out} blocks its forward pass only");
            let run = |loops_only: bool| {
                let mut d = Dense::new(k_in, k_out, Init::He, 0.0, &mut Rng::new(seed));
                d.b = gradcheck::random_input(&[k_out], seed + 10, 0.0);
                d.loops_only = loops_only;
                let x = gradcheck::random_input(&[n, k_in], seed + 20, 0.0);
                d.forward(&x, Mode::Eval).data().iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            assert_eq!(run(false), run(true), "{n}×{k_in}×{k_out}");
        }
    }

    #[test]
    fn every_time_step_goes_through_the_same_layer() {
        // (n, t, in) is the same as (n·t, in), row for row.
        let mut d3 = Dense::new(4, 3, Init::Xavier, 0.0, &mut Rng::new(2));
        let mut d2 = Dense::new(4, 3, Init::Xavier, 0.0, &mut Rng::new(2));
        let x = gradcheck::random_input(&[2, 5, 4], 3, 0.0);
        let flat = tensor::from_vec(&[10, 4], x.data().to_vec());
        let y3 = d3.forward(&x, Mode::Train).clone();
        assert_eq!(y3.shape(), &[2, 5, 3]);
        assert_eq!(y3.data(), d2.forward(&flat, Mode::Train).data());
        let dy = gradcheck::random_input(&[2, 5, 3], 4, 0.0);
        let dx3 = d3.backward(&dy).clone();
        let dx2 = d2.backward(&tensor::from_vec(&[10, 3], dy.data().to_vec())).clone();
        assert_eq!((dx3.shape(), dx3.data()), (&[2, 5, 4][..], dx2.data()));
        assert_eq!(d3.dw.data(), d2.dw.data());
    }

    #[test]
    fn a_fresh_backward_gives_the_bits_of_zeroing_then_accumulating() {
        // Small (the loops) and large (the blocked GEMM) layers, wide enough for `dx`'s lanes too,
        // over gradients left by an earlier step; columns of zero inputs (a dead ReLU's) sum
        // products of ±0, which a sum started from the first product instead of +0 would keep.
        for (inputs, outputs, n) in [(3, 2, 5), (96, 70, 16), (784, 10, 7)] {
            let mut rng = Rng::new(inputs as u64);
            let mut a = Dense::new(inputs, outputs, Init::He, 0.0, &mut rng);
            let x = tensor::from_vec(&[n, inputs], (0..n * inputs).map(|i| if i % 3 == 0 { 0.0 } else { rng.normal() }).collect());
            let dy = tensor::from_vec(&[n, outputs], (0..n * outputs).map(|_| rng.normal()).collect());
            let stale = tensor::from_vec(&[n, outputs], (0..n * outputs).map(|_| rng.normal()).collect());
            a.forward(&x, Mode::Train);
            a.backward(&stale);
            let mut b = a.clone();
            a.zero_grad();
            let dx_a = a.backward(&dy).clone();
            let dx_b = b.backward_fresh(&dy).clone();
            let bits = |t: &Tensor| tensor::slice(t).iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(&dx_b), bits(&dx_a), "dx, {inputs}×{outputs}, {n} rows");
            assert_eq!(bits(&b.dw), bits(&a.dw), "dW, {inputs}×{outputs}, {n} rows");
            assert_eq!(bits(&b.db), bits(&a.db), "db, {inputs}×{outputs}, {n} rows");
        }
    }

    #[test]
    fn backward_accumulates_into_grads() {
        let mut d = layer();
        let x = tensor::from_vec(&[1, 2], vec![1.0, 1.0]);
        let dy = tensor::from_vec(&[1, 3], vec![1.0, 1.0, 1.0]);
        d.forward(&x, Mode::Train);
        d.backward(&dy);
        d.backward(&dy);
        assert_eq!(tensor::slice(&d.db), &[2.0, 2.0, 2.0]);
        d.zero_grad();
        assert!(tensor::slice(&d.dw).iter().all(|&v| v == 0.0));
    }
}
