//! A vanilla recurrent layer (Elman RNN) over a batch of padded sequences, with backpropagation
//! through time.
//!
//! ```text
//! x: (n, T, v)   batch-major; a step whose input row is all zero is padding (SeqBatch's rule)
//! h₀ = h0 (a fixed start state, zero by default)
//! real step:  z_t = x_t·W_xh + h_{t−1}·W_hh + b      h_t = tanh(z_t)
//! padding:    h_t = h_{t−1}                           (the state is carried past the end)
//! output:     h_T (n, hidden) — the last real state of each sequence (many:1) —
//!             or every h_t (n, T, hidden) when `all_steps` (many:many; padding rows are 0)
//!
//! backward (BPTT), from t = T down to 1, with dh = ∂L/∂h_t (what flows back, plus ∂L/∂y_t):
//! real step:  dz = dh ⊙ (1 − h_t²)
//!             dW_xh += x_tᵀ·dz    dW_hh += h_{t−1}ᵀ·dz    db += Σ dz
//!             dx_t = dz·W_xhᵀ     dh ← dz·W_hhᵀ           (∂L/∂h_{t−1})
//! padding:    dh passes through unchanged
//! ∂L/∂h₀ = the dh left at the end.
//! truncated BPTT(k): after every k real steps (counted back from a sequence's end) the dh
//! carried to earlier steps is cut to 0 — for many:1, only the last k characters learn.
//! ```
//! Two implementations of the same maths: `Batched` runs each time step for the sequences still
//! going as one matrix product (time-major buffers, the blocked GEMM), and sums dW_hh over all
//! steps as a single product at the end; `Loop` runs one sequence at a time with vector–matrix
//! products, the way one first writes it. Forward they give the same bits; backward they sum in
//! different orders (equal to ≤ 1e-5, tested).

use super::gemm;
use crate::init::Init;
use crate::layer::{Layer, ParamKind};
use crate::math;
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RnnImpl {
    /// Each time step for the whole mini-batch at once (matrix products).
    Batched,
    /// One sequence at a time, one step at a time.
    Loop,
}

#[derive(Clone)]
pub struct Rnn {
    pub inputs: usize,
    pub hidden: usize,
    pub w_xh: Tensor,
    pub w_hh: Tensor,
    pub b: Tensor,
    pub dw_xh: Tensor,
    pub dw_hh: Tensor,
    pub db: Tensor,
    /// The start state `(hidden)` (zero by default; not trained).
    pub h0: Tensor,
    /// Output every step `(n, T, hidden)` instead of the last state `(n, hidden)`.
    pub all_steps: bool,
    /// Truncated BPTT: cut the carried gradient every `truncate` real steps (0: full BPTT).
    pub truncate: usize,
    /// False: no recurrence — each step sees only its own input (`z_t = x_t·W_xh + b`), a 1:1
    /// network (W_hh is unused and gets no gradient).
    pub recurrent: bool,
    pub implementation: RnnImpl,
    /// ‖∂L/∂h_t‖ over the batch for t = 1..T, from the last backward pass.
    pub step_grad_norms: Vec<f32>,
    /// ∂L/∂h₀ per sequence `(n, hidden)`, from the last backward pass.
    pub dh0: Vec<f32>,
    /// The last input, its mask `(n·T)` and the states, time-major: `hs[(t·n + i)·h ..]`, t = 0..=T.
    x: Tensor,
    mask: Vec<bool>,
    hs: Vec<f32>,
    y: Tensor,
    dx: Tensor,
    needs_input_grad: bool,
    /// Scratch (reused): a step's pre-activations or gradients, gathered states, and the real
    /// rows of a step.
    z: Vec<f32>,
    dh: Vec<f32>,
    dz: Vec<f32>,
    h_t: Vec<f32>,
    rows: Vec<usize>,
    w_hh_t: Vec<f32>,
}

impl Rnn {
    /// Weights: `W_xh` Xavier over (inputs, hidden), `W_hh` from `init` (scaled by `gain`), b = 0.
    pub fn new(inputs: usize, hidden: usize, init: Init, gain: f32, rng: &mut Rng) -> Self {
        let mut w_xh = tensor::zeros(&[inputs, hidden]);
        Init::Xavier.fill(tensor::slice_mut(&mut w_xh), inputs, hidden, 0.0, rng);
        let mut w_hh = tensor::zeros(&[hidden, hidden]);
        init.fill(tensor::slice_mut(&mut w_hh), hidden, hidden, 1.0 / (hidden as f32).sqrt(), rng);
        tensor::slice_mut(&mut w_hh).iter_mut().for_each(|w| *w *= gain);
        Rnn {
            inputs,
            hidden,
            w_xh,
            w_hh,
            b: tensor::zeros(&[hidden]),
            dw_xh: tensor::zeros(&[inputs, hidden]),
            dw_hh: tensor::zeros(&[hidden, hidden]),
            db: tensor::zeros(&[hidden]),
            h0: tensor::zeros(&[hidden]),
            all_steps: false,
            truncate: 0,
            recurrent: true,
            implementation: RnnImpl::Batched,
            step_grad_norms: Vec::new(),
            dh0: Vec::new(),
            x: tensor::zeros(&[0, 0, inputs]),
            mask: Vec::new(),
            hs: Vec::new(),
            y: tensor::zeros(&[0, hidden]),
            dx: tensor::zeros(&[0, 0, inputs]),
            needs_input_grad: true,
            z: Vec::new(),
            dh: Vec::new(),
            dz: Vec::new(),
            h_t: Vec::new(),
            rows: Vec::new(),
            w_hh_t: Vec::new(),
        }
    }

    fn dims(&self) -> (usize, usize) {
        let s = self.x.shape();
        (s[0], s[1])
    }

    /// The state after step `t` (0 = h₀) of sequence `i`.
    pub fn state(&self, t: usize, i: usize) -> &[f32] {
        let (n, h) = (self.dims().0, self.hidden);
        &self.hs[(t * n + i) * h..(t * n + i + 1) * h]
    }

    /// Whether step `t` of sequence `i` of the last input was real.
    pub fn is_real(&self, i: usize, t: usize) -> bool {
        self.mask.get(i * self.dims().1 + t).copied().unwrap_or(false)
    }

    /// `z += x·W_xh` for one input row (its non-zero entries, in order).
    fn add_input(w_xh: &[f32], hidden: usize, x_row: &[f32], z: &mut [f32]) {
        for (k, &v) in x_row.iter().enumerate() {
            if v != 0.0 {
                let w = &w_xh[k * hidden..(k + 1) * hidden];
                z.iter_mut().zip(w).for_each(|(z, &w)| *z += v * w);
            }
        }
    }

    fn forward_batched(&mut self, n: usize, t_len: usize) {
        let (v, h) = (self.inputs, self.hidden);
        let (xs, w_xh, w_hh, b) = (tensor::slice(&self.x), tensor::slice(&self.w_xh), tensor::slice(&self.w_hh), tensor::slice(&self.b));
        let mut rows = std::mem::take(&mut self.rows);
        for t in 0..t_len {
            // Only the names still going take part (a batch of names ends raggedly): their
            // previous states gathered into a contiguous block, one matrix product, scattered back.
            active_rows(&self.mask, n, t_len, t, &mut rows);
            let m = rows.len();
            self.z.resize(m * h, 0.0);
            self.h_t.resize(m * h, 0.0);
            let (before, after) = self.hs.split_at_mut((t + 1) * n * h);
            let prev = &before[t * n * h..];
            for (r, &i) in rows.iter().enumerate() {
                let z = &mut self.z[r * h..(r + 1) * h];
                z.copy_from_slice(b);
                Self::add_input(w_xh, h, &xs[(i * t_len + t) * v..(i * t_len + t + 1) * v], z);
                self.h_t[r * h..(r + 1) * h].copy_from_slice(&prev[i * h..(i + 1) * h]);
            }
            if self.recurrent {
                gemm::gemm(m, h, h, &self.h_t, w_hh, &mut self.z, true);
            }
            let cur = &mut after[..n * h];
            cur.copy_from_slice(prev);
            for (r, &i) in rows.iter().enumerate() {
                cur[i * h..(i + 1) * h].iter_mut().zip(&self.z[r * h..(r + 1) * h]).for_each(|(c, &z)| *c = math::tanh(z));
            }
        }
        self.rows = rows;
    }

    fn forward_loop(&mut self, n: usize, t_len: usize) {
        let (v, h) = (self.inputs, self.hidden);
        let (xs, w_xh, w_hh, b) = (tensor::slice(&self.x), tensor::slice(&self.w_xh), tensor::slice(&self.w_hh), tensor::slice(&self.b));
        self.z.resize(h, 0.0);
        for i in 0..n {
            for t in 0..t_len {
                let (p0, c0) = ((t * n + i) * h, ((t + 1) * n + i) * h);
                if !self.mask[i * t_len + t] {
                    self.hs.copy_within(p0..p0 + h, c0);
                    continue;
                }
                let z = &mut self.z[..h];
                z.copy_from_slice(b);
                Self::add_input(w_xh, h, &xs[(i * t_len + t) * v..(i * t_len + t + 1) * v], z);
                // z += h_{t−1}·W_hh, summed over k in order (as the GEMM does).
                for k in (0..h).filter(|_| self.recurrent) {
                    let a = self.hs[p0 + k];
                    let w = &w_hh[k * h..(k + 1) * h];
                    z.iter_mut().zip(w).for_each(|(z, &w)| *z += a * w);
                }
                for j in 0..h {
                    self.hs[c0 + j] = math::tanh(z[j]);
                }
            }
        }
    }

    fn backward_batched(&mut self, dy: &[f32], n: usize, t_len: usize) {
        let (v, h) = (self.inputs, self.hidden);
        let (xs, w_xh, w_hh) = (tensor::slice(&self.x), tensor::slice(&self.w_xh), tensor::slice(&self.w_hh));
        let (dw_xh, dw_hh, db) = (tensor::slice_mut(&mut self.dw_xh), tensor::slice_mut(&mut self.dw_hh), tensor::slice_mut(&mut self.db));
        let dx = tensor::slice_mut(&mut self.dx);
        self.dh.clear();
        self.dh.resize(n * h, 0.0);
        if !self.all_steps {
            self.dh.copy_from_slice(&dy[..n * h]);
        }
        // W_hhᵀ once, so each step's dh is a blocked matrix product rather than dot products.
        self.w_hh_t.resize(h * h, 0.0);
        gemm::transpose(h, h, w_hh, &mut self.w_hh_t);
        let mut counted = vec![0usize; n];
        let mut rows = std::mem::take(&mut self.rows);
        // Every real step's h_{t−1} and dz, stacked: dW_hh is one product of them at the end.
        self.z.clear();
        self.dz.clear();
        self.step_grad_norms.clear();
        self.step_grad_norms.resize(t_len, 0.0);
        for t in (0..t_len).rev() {
            if self.all_steps {
                for i in (0..n).filter(|&i| self.mask[i * t_len + t]) {
                    let d = &dy[(i * t_len + t) * h..(i * t_len + t + 1) * h];
                    self.dh[i * h..(i + 1) * h].iter_mut().zip(d).for_each(|(a, &b)| *a += b);
                }
            }
            self.step_grad_norms[t] = self.dh.iter().map(|&g| g as f64 * g as f64).sum::<f64>().sqrt() as f32;
            // The real rows only (padding passes dh through unchanged).
            active_rows(&self.mask, n, t_len, t, &mut rows);
            let m = rows.len();
            let cur = &self.hs[(t + 1) * n * h..(t + 2) * n * h];
            let prev = &self.hs[t * n * h..(t + 1) * n * h];
            let base = self.dz.len();
            self.dz.resize(base + m * h, 0.0);
            self.z.resize(base + m * h, 0.0);
            for (r, &i) in rows.iter().enumerate() {
                let at = base + r * h;
                let (dz, dh, c) = (&mut self.dz[at..at + h], &self.dh[i * h..(i + 1) * h], &cur[i * h..(i + 1) * h]);
                dz.iter_mut().zip(dh).zip(c).for_each(|((z, &g), &y)| *z = g * (1.0 - y * y));
                self.z[at..at + h].copy_from_slice(&prev[i * h..(i + 1) * h]);
                // dW_xh += x_tᵀ·dz over the non-zero inputs; db += Σ dz.
                for (k, &x) in xs[(i * t_len + t) * v..(i * t_len + t + 1) * v].iter().enumerate() {
                    if x != 0.0 {
                        dw_xh[k * h..(k + 1) * h].iter_mut().zip(&*dz).for_each(|(w, &g)| *w += x * g);
                    }
                }
                db.iter_mut().zip(&*dz).for_each(|(b, &g)| *b += g);
            }
            let dz = &self.dz[base..base + m * h];
            if self.needs_input_grad {
                // dx_t = dz·W_xhᵀ, row by row into the batch-major dx.
                for (r, &i) in rows.iter().enumerate() {
                    let row = &mut dx[(i * t_len + t) * v..(i * t_len + t + 1) * v];
                    gemm::gemm_nt(1, h, v, &dz[r * h..(r + 1) * h], w_xh, row, false);
                }
            }
            // dh ← dz·W_hhᵀ on the real rows (cut every `truncate` real steps).
            self.h_t.resize(m * h, 0.0);
            gemm::gemm(m, h, h, dz, &self.w_hh_t, &mut self.h_t, false);
            for (r, &i) in rows.iter().enumerate() {
                counted[i] += 1;
                let dh = &mut self.dh[i * h..(i + 1) * h];
                if !self.recurrent || (self.truncate > 0 && counted[i] % self.truncate == 0) {
                    dh.fill(0.0);
                } else {
                    dh.copy_from_slice(&self.h_t[r * h..(r + 1) * h]);
                }
            }
        }
        // dW_hh += Σ_t h_{t−1}ᵀ·dz_t, as one product over every real step.
        let total = self.dz.len() / h.max(1);
        self.h_t.resize(total * h, 0.0);
        gemm::transpose(total, h, &self.z, &mut self.h_t);
        if self.recurrent {
            gemm::gemm(h, total, h, &self.h_t, &self.dz, dw_hh, true);
        }
        self.rows = rows;
        self.dh0.clear();
        self.dh0.extend_from_slice(&self.dh);
    }

    fn backward_loop(&mut self, dy: &[f32], n: usize, t_len: usize) {
        let (v, h) = (self.inputs, self.hidden);
        let (xs, w_xh, w_hh) = (tensor::slice(&self.x), tensor::slice(&self.w_xh), tensor::slice(&self.w_hh));
        let (dw_xh, dw_hh, db) = (tensor::slice_mut(&mut self.dw_xh), tensor::slice_mut(&mut self.dw_hh), tensor::slice_mut(&mut self.db));
        let dx = tensor::slice_mut(&mut self.dx);
        let mut norms = vec![0.0f64; t_len];
        self.dh0.clear();
        let mut dh = vec![0.0f32; h];
        let mut dz = vec![0.0f32; h];
        for i in 0..n {
            dh.fill(0.0);
            if !self.all_steps {
                dh.copy_from_slice(&dy[i * h..(i + 1) * h]);
            }
            let mut counted = 0;
            for t in (0..t_len).rev() {
                if !self.mask[i * t_len + t] {
                    norms[t] += dh.iter().map(|&g| g as f64 * g as f64).sum::<f64>();
                    continue;
                }
                if self.all_steps {
                    dh.iter_mut().zip(&dy[(i * t_len + t) * h..(i * t_len + t + 1) * h]).for_each(|(a, &b)| *a += b);
                }
                norms[t] += dh.iter().map(|&g| g as f64 * g as f64).sum::<f64>();
                let (p0, c0) = ((t * n + i) * h, ((t + 1) * n + i) * h);
                for j in 0..h {
                    let y = self.hs[c0 + j];
                    dz[j] = dh[j] * (1.0 - y * y);
                }
                for (k, &x) in xs[(i * t_len + t) * v..(i * t_len + t + 1) * v].iter().enumerate() {
                    if x != 0.0 {
                        dw_xh[k * h..(k + 1) * h].iter_mut().zip(&dz).for_each(|(w, &g)| *w += x * g);
                    }
                }
                db.iter_mut().zip(&dz).for_each(|(b, &g)| *b += g);
                for k in (0..h).filter(|_| self.recurrent) {
                    let a = self.hs[p0 + k];
                    dw_hh[k * h..(k + 1) * h].iter_mut().zip(&dz).for_each(|(w, &g)| *w += a * g);
                }
                if self.needs_input_grad {
                    for k in 0..v {
                        dx[(i * t_len + t) * v + k] = gemm::dot(&dz, &w_xh[k * h..(k + 1) * h]);
                    }
                }
                counted += 1;
                if !self.recurrent || (self.truncate > 0 && counted % self.truncate == 0) {
                    dh.fill(0.0);
                } else {
                    for k in 0..h {
                        dh[k] = gemm::dot(&dz, &w_hh[k * h..(k + 1) * h]);
                    }
                }
            }
            self.dh0.extend_from_slice(&dh);
        }
        self.step_grad_norms = norms.iter().map(|&s| s.sqrt() as f32).collect();
    }
}

/// The rows of step `t` that are real (sequences still going), in order.
fn active_rows(mask: &[bool], n: usize, t_len: usize, t: usize, rows: &mut Vec<usize>) {
    rows.clear();
    rows.extend((0..n).filter(|&i| mask[i * t_len + t]));
}

impl Layer for Rnn {
    fn scratch_bytes(&self) -> usize {
        (self.x.len()
            + self.hs.len()
            + self.z.len()
            + self.dh.len()
            + self.dz.len()
            + self.h_t.len()
            + self.w_hh_t.len()
            + self.rows.len() * 2
            + self.mask.len() / 4
            + self.step_grad_norms.len()
            + self.dh0.len())
            * std::mem::size_of::<f32>()
    }

    fn name(&self) -> String {
        format!("rnn {}→{}", self.inputs, self.hidden)
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [n, t, v] if *v == self.inputs => Ok(if self.all_steps { vec![*n, *t, self.hidden] } else { vec![*n, self.hidden] }),
            _ => Err(format!("{} takes (n, t, {}), not {input:?}", self.name(), self.inputs)),
        }
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> &Tensor {
        assert!(x.shape().len() == 3 && x.shape()[2] == self.inputs, "rnn input is (n, t, inputs)");
        tensor::copy_into(&mut self.x, x);
        let (n, t_len) = self.dims();
        let (v, h) = (self.inputs, self.hidden);
        let xs = tensor::slice(&self.x);
        self.mask.clear();
        self.mask.extend(xs.chunks(v.max(1)).map(|row| row.iter().any(|&a| a != 0.0)));
        self.hs.resize((t_len + 1) * n * h, 0.0);
        let h0 = tensor::slice(&self.h0);
        self.hs[..n * h].chunks_mut(h).for_each(|row| row.copy_from_slice(h0));
        match self.implementation {
            RnnImpl::Batched => self.forward_batched(n, t_len),
            RnnImpl::Loop => self.forward_loop(n, t_len),
        }
        if self.all_steps {
            tensor::resize(&mut self.y, &[n, t_len, h]);
            let y = tensor::slice_mut(&mut self.y);
            for i in 0..n {
                for t in 0..t_len {
                    let out = &mut y[(i * t_len + t) * h..(i * t_len + t + 1) * h];
                    if self.mask[i * t_len + t] {
                        out.copy_from_slice(&self.hs[((t + 1) * n + i) * h..((t + 1) * n + i + 1) * h]);
                    } else {
                        out.fill(0.0);
                    }
                }
            }
        } else {
            tensor::resize(&mut self.y, &[n, h]);
            let last = &self.hs[t_len * n * h..(t_len + 1) * n * h];
            tensor::slice_mut(&mut self.y).copy_from_slice(last);
        }
        &self.y
    }

    fn backward(&mut self, dy: &Tensor) -> &Tensor {
        let (n, t_len) = self.dims();
        tensor::resize(&mut self.dx, &[n, t_len, self.inputs]);
        tensor::slice_mut(&mut self.dx).fill(0.0);
        let dy = tensor::slice(dy).to_vec();
        match self.implementation {
            RnnImpl::Batched => self.backward_batched(&dy, n, t_len),
            RnnImpl::Loop => self.backward_loop(&dy, n, t_len),
        }
        &self.dx
    }

    fn output(&self) -> &Tensor {
        &self.y
    }

    fn input_grad(&self) -> &Tensor {
        &self.dx
    }

    fn visit_params(&mut self, f: &mut dyn FnMut(&'static str, ParamKind, &mut Tensor, &mut Tensor)) {
        f("W_xh", ParamKind::Weight, &mut self.w_xh, &mut self.dw_xh);
        f("W_hh", ParamKind::Weight, &mut self.w_hh, &mut self.dw_hh);
        f("b", ParamKind::Bias, &mut self.b, &mut self.db);
    }

    fn set_needs_input_grad(&mut self, needed: bool) {
        self.needs_input_grad = needed;
    }
}

/// The spectral radius of a square matrix `(k × k)`, by Gelfand's formula ρ = lim ‖Aᵐ‖^(1/m),
/// with m = 2⁶ by repeated squaring (each square renormalised, the scales kept as logarithms).
pub fn spectral_radius(a: &[f32], k: usize) -> f32 {
    if k == 0 || a.len() < k * k {
        return 0.0;
    }
    let norm = |m: &[f32]| m.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
    let mut m: Vec<f32> = a[..k * k].to_vec();
    let mut log_scale = 0.0f64;
    let mut next = vec![0.0f32; k * k];
    const SQUARINGS: u32 = 6;
    for _ in 0..SQUARINGS {
        let s = norm(&m);
        if !(s > 0.0 && s.is_finite()) {
            return if s == 0.0 { 0.0 } else { f32::NAN };
        }
        m.iter_mut().for_each(|v| *v = (*v as f64 / s) as f32);
        log_scale = 2.0 * (log_scale + s.ln());
        gemm::gemm(k, k, k, &m, &m, &mut next, false);
        std::mem::swap(&mut m, &mut next);
    }
    let total = log_scale + norm(&m).ln();
    (total / 2f64.powi(SQUARINGS as i32)).exp() as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    /// A one-hot batch of symbol sequences (padding rows zero).
    fn one_hot(seqs: &[&[usize]], v: usize) -> Tensor {
        let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut x = tensor::zeros(&[seqs.len(), t, v]);
        for (i, s) in seqs.iter().enumerate() {
            for (step, &c) in s.iter().enumerate() {
                tensor::slice_mut(&mut x)[(i * t + step) * v + c] = 1.0;
            }
        }
        x
    }

    #[test]
    fn hand_values_of_two_steps() {
        // 1 input, 1 unit: W_xh = 0.5, W_hh = 2, b = 0.1, h₀ = 0, x = [1, 1].
        let mut r = Rnn::new(1, 1, Init::Zeros, 1.0, &mut Rng::new(0));
        r.w_xh = tensor::from_vec(&[1, 1], vec![0.5]);
        r.w_hh = tensor::from_vec(&[1, 1], vec![2.0]);
        r.b = tensor::from_vec(&[1], vec![0.1]);
        let x = tensor::from_vec(&[1, 2, 1], vec![1.0, 1.0]);
        let y = r.forward(&x, Mode::Train).clone();
        let h1 = (0.6f32).tanh();
        let h2 = (0.6 + 2.0 * h1).tanh();
        assert!((y.data()[0] - h2).abs() < 1e-5, "{} vs {h2}", y.data()[0]);
        // dL/dh2 = 1: dz2 = 1 − h2², dW_hh = h1·dz2 + h0·dz1, dz1 = dz2·W_hh·(1 − h1²).
        r.backward(&tensor::from_vec(&[1, 1], vec![1.0]));
        let dz2 = 1.0 - h2 * h2;
        let dz1 = dz2 * 2.0 * (1.0 - h1 * h1);
        assert!((r.dw_hh.data()[0] - h1 * dz2).abs() < 1e-5);
        assert!((r.dw_xh.data()[0] - (dz1 + dz2)).abs() < 1e-5);
        assert!((r.db.data()[0] - (dz1 + dz2)).abs() < 1e-5);
        assert!((r.dh0[0] - dz1 * 2.0).abs() < 1e-5);
        assert_eq!(r.step_grad_norms.len(), 2);
        assert!((r.step_grad_norms[1] - 1.0).abs() < 1e-6 && (r.step_grad_norms[0] - dz2 * 2.0).abs() < 1e-5);
    }

    #[test]
    fn gradients_through_time_match_finite_differences() {
        // T = 6 steps of dense inputs (every step real): inputs, W_xh, W_hh and b, for the last
        // state and for every state.
        for all_steps in [false, true] {
            let mut r = Rnn::new(3, 4, Init::Xavier, 1.0, &mut Rng::new(3));
            r.b = gradcheck::random_input(&[4], 4, 0.0);
            r.all_steps = all_steps;
            let x = gradcheck::random_input(&[2, 6, 3], 5, 0.1);
            gradcheck::check_layer(&mut r, &x, 1e-2, 2e-3).unwrap_or_else(|e| panic!("all_steps {all_steps}: {e}"));
        }
    }

    #[test]
    fn the_gradient_of_the_start_state_matches_finite_differences() {
        let mut r = Rnn::new(3, 4, Init::Xavier, 1.0, &mut Rng::new(8));
        let x = gradcheck::random_input(&[1, 5, 3], 9, 0.1);
        let w = [0.3f32, -1.0, 0.7, 0.2];
        let loss = |r: &mut Rnn| tensor::slice(r.forward(&x, Mode::Train)).iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
        r.h0 = tensor::from_vec(&[4], vec![0.1, -0.2, 0.3, 0.05]);
        loss(&mut r);
        r.backward(&tensor::from_vec(&[1, 4], w.to_vec()));
        let analytic = r.dh0.clone();
        for k in 0..4 {
            let eps = 1e-2f32;
            tensor::slice_mut(&mut r.h0)[k] += eps;
            let up = loss(&mut r);
            tensor::slice_mut(&mut r.h0)[k] -= 2.0 * eps;
            let down = loss(&mut r);
            tensor::slice_mut(&mut r.h0)[k] += eps;
            let numeric = (up - down) / (2.0 * eps as f64);
            assert!((analytic[k] as f64 - numeric).abs() < 2e-3 * numeric.abs().max(0.1), "h0[{k}]: {} vs {numeric}", analytic[k]);
        }
    }

    #[test]
    fn padding_carries_the_state_and_batched_equals_one_at_a_time() {
        let seqs: [&[usize]; 4] = [&[1, 2, 3, 4, 0], &[2], &[4, 4, 1], &[0, 1, 2, 3, 4, 1, 2]];
        let x = one_hot(&seqs, 5);
        let mut batched = Rnn::new(5, 6, Init::Xavier, 1.0, &mut Rng::new(2));
        let mut looped = Rnn::new(5, 6, Init::Xavier, 1.0, &mut Rng::new(2));
        looped.implementation = RnnImpl::Loop;
        let y = batched.forward(&x, Mode::Train).clone();
        assert_eq!(y.data(), looped.forward(&x, Mode::Train).data(), "forward: the same bits");
        // Each sequence alone (no padding) ends in the same state as in the padded batch.
        for (i, s) in seqs.iter().enumerate() {
            let mut alone = Rnn::new(5, 6, Init::Xavier, 1.0, &mut Rng::new(2));
            let out = alone.forward(&one_hot(&[s], 5), Mode::Train).clone();
            assert_eq!(out.data(), &y.data()[i * 6..(i + 1) * 6], "sequence {i}");
        }
        let dy = gradcheck::random_input(&[4, 6], 7, 0.0);
        batched.backward(&dy);
        looped.backward(&dy);
        let worst = |a: &Tensor, b: &Tensor| a.data().iter().zip(b.data()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        for (a, b) in [(&batched.dw_xh, &looped.dw_xh), (&batched.dw_hh, &looped.dw_hh), (&batched.db, &looped.db), (&batched.dx, &looped.dx)] {
            assert!(worst(a, b) <= 1e-5, "{}", worst(a, b));
        }
        assert!(batched.step_grad_norms.iter().zip(&looped.step_grad_norms).all(|(a, b)| (a - b).abs() <= 1e-5 * a.abs().max(1.0)));
        // Padding gets no input gradient.
        let dx = batched.dx.data();
        assert!(dx[(1 * 7 + 1) * 5..(2 * 7) * 5].iter().all(|&g| g == 0.0));
    }

    #[test]
    fn truncated_bptt_only_reaches_the_last_k_steps() {
        let x = one_hot(&[&[1, 2, 3, 4, 0, 1]], 5);
        let mut r = Rnn::new(5, 4, Init::Xavier, 1.0, &mut Rng::new(4));
        r.truncate = 2;
        r.forward(&x, Mode::Train);
        r.backward(&tensor::from_vec(&[1, 4], vec![1.0, -1.0, 0.5, 0.2]));
        let dx = r.dx.data().to_vec();
        let step = |t: usize| dx[t * 5..(t + 1) * 5].iter().any(|&g| g != 0.0);
        assert_eq!((0..6).map(step).collect::<Vec<_>>(), [false, false, false, false, true, true]);
        assert!(r.dh0.iter().all(|&g| g == 0.0));
        let mut looped = Rnn::new(5, 4, Init::Xavier, 1.0, &mut Rng::new(4));
        (looped.truncate, looped.implementation) = (2, RnnImpl::Loop);
        looped.forward(&x, Mode::Train);
        looped.backward(&tensor::from_vec(&[1, 4], vec![1.0, -1.0, 0.5, 0.2]));
        assert!(looped.dx.data().iter().zip(&dx).all(|(a, b)| (a - b).abs() <= 1e-6));
    }

    #[test]
    fn without_recurrence_each_step_sees_only_its_input() {
        let x = one_hot(&[&[1, 2, 3], &[3]], 5);
        for imp in [RnnImpl::Batched, RnnImpl::Loop] {
            let mut r = Rnn::new(5, 4, Init::Xavier, 1.0, &mut Rng::new(4));
            (r.recurrent, r.all_steps, r.implementation) = (false, true, imp);
            let y = r.forward(&x, Mode::Train).clone();
            // The last step of sequence 0 (input 3) equals sequence 1's only step (input 3).
            assert_eq!(&y.data()[2 * 4..3 * 4], &y.data()[3 * 4..4 * 4], "{imp:?}");
            r.backward(&gradcheck::random_input(&[2, 3, 4], 5, 0.0));
            assert!(r.dw_hh.data().iter().all(|&g| g == 0.0) && r.dh0.iter().all(|&g| g == 0.0));
        }
    }

    #[test]
    fn spectral_radius_of_known_matrices() {
        // diag(0.5, −2): ρ = 2; a rotation by 90° scaled by 0.9: complex eigenvalues ±0.9i, ρ = 0.9.
        assert!((spectral_radius(&[0.5, 0.0, 0.0, -2.0], 2) - 2.0).abs() < 0.05);
        assert!((spectral_radius(&[0.0, -0.9, 0.9, 0.0], 2) - 0.9).abs() < 0.02);
        assert_eq!(spectral_radius(&[0.0; 4], 2), 0.0);
    }
}
