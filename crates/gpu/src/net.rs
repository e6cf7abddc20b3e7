//! A network trained on the GPU: the engine's `Sequential` of dense, convolution, pooling,
//! flatten, batch-norm, dropout and activation layers with softmax cross-entropy, SGD (plain,
//! momentum, Nesterov) or Adam, and L2 on the weights. Built from an engine model (same weights),
//! it trains on the GPU and writes its weights back on request (a backend switch keeps them).
//!
//! One step, recorded once and submitted without waiting: every layer's forward kernel, softmax
//! cross-entropy and the batch loss, every layer's backward kernels in reverse, then one update
//! per parameter. Buffers live in an arena; a flatten is an alias (no copy).

use crate::context::{Buf, Gpu};
use crate::kernels::{AdamParams, ConvShape, Dispatch, PoolShape, SgdParams};
use engine::layer::Layer;
use engine::ops::{Activation, ActivationKind, BatchNorm, Conv2d, Dense, Dropout, Flatten, Pool2d, PoolKind};
use engine::optim::{Hyper, OptimizerKind};
use engine::sequential::Sequential;
use engine::tensor::{self, Mode};

/// A trained tensor: value, gradient, two optimiser states, and whether L2 applies.
struct Param {
    w: usize,
    g: usize,
    state: [usize; 2],
    len: usize,
    weight: bool,
}

enum Op {
    Dense {
        inputs: usize,
        outputs: usize,
        w: usize,
        b: usize,
        z: usize,
    },
    Act {
        kind: ActivationKind,
        alpha: f32,
    },
    Conv {
        shape: ConvShape,
        w: usize,
        b: usize,
    },
    Pool {
        shape: PoolShape,
        switches: usize,
    },
    Flatten,
    /// γ and β as (value, gradient) buffers.
    Bn {
        c: usize,
        inner: usize,
        gamma: (usize, usize),
        beta: (usize, usize),
        xhat: usize,
        stats: usize,
    },
    Dropout {
        scale: usize,
        mask: Dropout,
    },
}

struct Node {
    op: Op,
    input: usize,
    output: usize,
    /// ∂L/∂output and ∂L/∂input (None for the first layer: no one needs it).
    grad_out: usize,
    grad_in: Option<usize>,
    in_len: usize,
    out_len: usize,
}

pub struct GpuNet {
    gpu: Gpu,
    bufs: Vec<Buf>,
    nodes: Vec<Node>,
    params: Vec<Param>,
    batch: usize,
    x: usize,
    labels: Buf,
    losses: Buf,
    loss: Buf,
    /// Every step's mean loss, at `(step − 1) mod LOSS_RING`: read back with the weights.
    ring: Buf,
    classes: usize,
    opt: OptimizerKind,
    hyper: Hyper,
    beta_t: (f32, f32),
    forward_backward: Vec<Dispatch>,
    /// The recording for a smaller last batch of an epoch (its row count), made when first needed.
    tail: Option<(usize, Vec<Dispatch>)>,
    updates: Vec<Dispatch>,
    pub step: u64,
}

/// Steps whose losses the GPU keeps between two readbacks.
pub const LOSS_RING: usize = 4096;

impl GpuNet {
    /// The model's weights on `gpu`, for mini-batches of `batch` inputs of `input` (without the
    /// batch axis: `[784]`, `[1, 28, 28]`).
    pub fn new(gpu: &Gpu, model: &Sequential, input: &[usize], batch: usize, opt: OptimizerKind, hyper: Hyper) -> Result<GpuNet, String> {
        if opt == OptimizerKind::Adagrad {
            return Err("Adagrad does not run on the GPU yet (SGD, momentum, Nesterov and Adam do)".into());
        }
        check_hyper(&hyper)?;
        if batch == 0 || batch > 4096 {
            return Err(format!("a batch of 1 to 4096 rows, not {batch}"));
        }
        let mut net = GpuNet {
            gpu: gpu.clone(),
            bufs: Vec::new(),
            nodes: Vec::new(),
            params: Vec::new(),
            batch,
            x: 0,
            labels: gpu.upload_u32(&vec![0; batch]),
            losses: gpu.zeros(batch),
            loss: gpu.zeros(1),
            ring: gpu.zeros(LOSS_RING),
            classes: 0,
            opt,
            hyper,
            beta_t: (1.0, 1.0),
            forward_backward: Vec::new(),
            tail: None,
            updates: Vec::new(),
            step: 0,
        };
        let mut shape: Vec<usize> = std::iter::once(batch).chain(input.iter().copied()).collect();
        net.x = net.alloc(shape.iter().product());
        let mut current = net.x;
        for layer in &model.layers {
            let next = layer.output_shape(&shape).map_err(|e| format!("{}: {e}", layer.name()))?;
            let (in_len, out_len) = (shape.iter().product::<usize>(), next.iter().product::<usize>());
            let any = layer.as_any();
            let op = if let Some(d) = any.downcast_ref::<Dense>() {
                let (w, b) = (net.param(tensor::slice(&d.w), true), net.param(tensor::slice(&d.b), false));
                Op::Dense { inputs: d.inputs, outputs: d.outputs, w, b, z: net.alloc(out_len) }
            } else if let Some(a) = any.downcast_ref::<Activation>() {
                Op::Act { kind: a.kind, alpha: a.alpha }
            } else if let Some(c) = any.downcast_ref::<Conv2d>() {
                let s = ConvShape { n: batch, c: c.c_in, h: shape[2], w: shape[3], o: c.c_out, k: c.k, s: c.stride, p: c.pad };
                let (w, b) = (net.param(tensor::slice(&c.w), true), net.param(tensor::slice(&c.b), false));
                Op::Conv { shape: s, w, b }
            } else if let Some(p) = any.downcast_ref::<Pool2d>() {
                let s = PoolShape { planes: shape[0] * shape[1], h: shape[2], w: shape[3], k: p.k, s: p.stride, max: p.kind == PoolKind::Max };
                let switches = net.bufs.len();
                net.bufs.push(gpu.upload_u32(&vec![0; out_len]));
                Op::Pool { shape: s, switches }
            } else if any.downcast_ref::<Flatten>().is_some() {
                Op::Flatten
            } else if let Some(bn) = any.downcast_ref::<BatchNorm>() {
                let (c, inner) = (shape[1], shape[2..].iter().product::<usize>());
                let (gamma, beta) = (net.param(tensor::slice(&bn.gamma), false), net.param(tensor::slice(&bn.beta), false));
                let (gamma, beta) = (net.params_buf(gamma), net.params_buf(beta));
                if !bn.affine_trainable {
                    // Frozen γ, β: kept on the GPU, never updated (the engine does not visit them).
                    net.params.truncate(net.params.len() - 2);
                }
                let mut stats = tensor::slice(&bn.running_mean).to_vec();
                stats.extend_from_slice(tensor::slice(&bn.running_var));
                stats.extend(vec![0.0; c]);
                let stats = net.upload(&stats);
                Op::Bn { c, inner, gamma, beta, xhat: net.alloc(in_len), stats }
            } else if let Some(d) = any.downcast_ref::<Dropout>() {
                Op::Dropout { scale: net.alloc(out_len), mask: Dropout::new(d.p, d.seed()) }
            } else {
                return Err(format!("{} does not run on the GPU yet", layer.name()));
            };
            let output = if matches!(op, Op::Flatten) { current } else { net.alloc(out_len) };
            net.nodes.push(Node { op, input: current, output, grad_out: 0, grad_in: None, in_len, out_len });
            current = output;
            shape = next;
        }
        if shape.len() != 2 || net.nodes.is_empty() {
            return Err(format!("the model ends in {shape:?}: softmax cross-entropy needs (batch, classes)"));
        }
        // Gradient buffers, from the loss back: a flatten passes its gradient through.
        let mut grad = net.alloc(batch * shape[1]);
        for i in (0..net.nodes.len()).rev() {
            net.nodes[i].grad_out = grad;
            if matches!(net.nodes[i].op, Op::Flatten) {
                net.nodes[i].grad_in = Some(grad);
            } else if i > 0 || matches!(net.nodes[i].op, Op::Bn { .. }) {
                // (Batch norm computes dγ and dβ with its dx, so even a first one gets a buffer.)
                let len = net.nodes[i].in_len;
                grad = net.alloc(len);
                net.nodes[i].grad_in = Some(grad);
            }
        }
        net.classes = shape[1];
        net.forward_backward = net.record(batch);
        net.record_updates();
        Ok(net)
    }

    fn alloc(&mut self, len: usize) -> usize {
        self.bufs.push(self.gpu.zeros(len));
        self.bufs.len() - 1
    }

    fn upload(&mut self, data: &[f32]) -> usize {
        self.bufs.push(self.gpu.upload(data));
        self.bufs.len() - 1
    }

    /// A trained tensor (value, gradient, optimiser states); returns its index in `params`.
    fn param(&mut self, value: &[f32], weight: bool) -> usize {
        let len = value.len();
        let w = self.upload(value);
        let (g, s0, s1) = (self.alloc(len), self.alloc(len), self.alloc(len));
        self.params.push(Param { w, g, state: [s0, s1], len, weight });
        self.params.len() - 1
    }

    fn params_buf(&self, param: usize) -> (usize, usize) {
        (self.params[param].w, self.params[param].g)
    }

    /// Forward, loss and backward for mini-batches of `n ≤ batch` rows (the buffers are sized for
    /// `batch`; rows past `n` are never read by a reduction over the batch).
    fn record(&self, n: usize) -> Vec<Dispatch> {
        let (g, b, classes) = (&self.gpu, &self.bufs, self.classes);
        let rows = |len: usize| len / self.batch * n;
        let mut d = Vec::new();
        let zero = g.zeros(1);
        for node in &self.nodes {
            let (x, y) = (&b[node.input], &b[node.output]);
            match &node.op {
                Op::Dense { inputs, outputs, w, b: bias, z } => {
                    let (w, bias) = (&b[self.params[*w].w], &b[self.params[*bias].w]);
                    d.push(g.matmul(x, w, &b[*z], (n, *outputs, *inputs), false, false, false));
                    d.push(g.bias_act(&b[*z], bias, y, (n, *outputs), ActivationKind::Identity, 0.0));
                }
                Op::Act { kind, alpha } => d.push(g.bias_act(x, &zero, y, (rows(node.out_len), 1), *kind, *alpha)),
                Op::Conv { shape, w, b: bias } => d.push(g.conv2d_forward(x, &b[self.params[*w].w], &b[self.params[*bias].w], y, ConvShape { n, ..*shape })),
                Op::Pool { shape, switches } => d.push(g.pool_forward(x, y, &b[*switches], PoolShape { planes: rows(shape.planes), ..*shape })),
                Op::Flatten => {}
                Op::Bn { c, inner, gamma, beta, xhat, stats, .. } => {
                    d.push(g.batchnorm_forward(x, &b[gamma.0], &b[beta.0], y, &b[*xhat], &b[*stats], (n, *c, *inner), true))
                }
                Op::Dropout { scale, .. } => d.push(g.dropout(x, &b[*scale], y, rows(node.out_len))),
            }
        }
        let last = self.nodes.last().expect("a layer");
        d.push(g.softmax_cross_entropy(&b[last.output], &self.labels, &b[last.grad_out], &self.losses, (n, classes)));
        d.push(g.sum(&self.losses, &self.loss, n, 1.0 / n as f32));
        for node in self.nodes.iter().rev() {
            let (x, y, dy) = (&b[node.input], &b[node.output], &b[node.grad_out]);
            match &node.op {
                Op::Dense { inputs, outputs, w, b: bias, .. } => {
                    d.push(g.matmul(x, dy, &b[self.params[*w].g], (*inputs, *outputs, n), true, false, false));
                    d.push(g.column_sum(dy, &b[self.params[*bias].g], (n, *outputs)));
                    if let Some(dx) = node.grad_in {
                        d.push(g.matmul(dy, &b[self.params[*w].w], &b[dx], (n, *inputs, *outputs), false, true, false));
                    }
                }
                Op::Act { kind, alpha } => {
                    if let Some(dx) = node.grad_in {
                        d.push(g.act_backward(dy, y, &b[dx], rows(node.out_len), *kind, *alpha));
                    }
                }
                Op::Conv { shape, w, b: bias } => {
                    let shape = &ConvShape { n, ..*shape };
                    d.extend(g.conv2d_backward_weight(dy, x, &b[self.params[*w].g], &b[self.params[*bias].g], *shape));
                    if let Some(dx) = node.grad_in {
                        d.push(g.conv2d_backward_input(dy, &b[self.params[*w].w], &b[dx], *shape));
                    }
                }
                Op::Pool { shape, switches } => {
                    if let Some(dx) = node.grad_in {
                        d.push(g.pool_backward(dy, &b[*switches], &b[dx], PoolShape { planes: rows(shape.planes), ..*shape }));
                    }
                }
                Op::Flatten => {}
                Op::Bn { c, inner, gamma, beta, xhat, stats, .. } => {
                    let dx = &b[node.grad_in.expect("batch norm has an input gradient buffer")];
                    d.push(g.batchnorm_backward(dy, &b[*xhat], &b[gamma.0], &b[*stats], dx, &b[gamma.1], &b[beta.1], (n, *c, *inner)));
                }
                Op::Dropout { scale, .. } => {
                    if let Some(dx) = node.grad_in {
                        d.push(g.dropout(dy, &b[*scale], &b[dx], rows(node.out_len)));
                    }
                }
            }
        }
        d
    }

    fn record_updates(&mut self) {
        let (g, b) = (&self.gpu, &self.bufs);
        self.updates = self
            .params
            .iter()
            .map(|p| {
                let (w, gr, s0, s1) = (&b[p.w], &b[p.g], &b[p.state[0]], &b[p.state[1]]);
                match self.opt {
                    OptimizerKind::Adam => g.adam_update(w, gr, s0, s1, self.adam_params(p)),
                    _ => g.sgd_update(w, gr, s0, self.sgd_params(p)),
                }
            })
            .collect();
    }

    fn sgd_params(&self, p: &Param) -> SgdParams {
        let mode = match self.opt {
            OptimizerKind::Momentum => 1,
            OptimizerKind::Nesterov => 2,
            _ => 0,
        };
        let l2 = if p.weight { self.hyper.l2 } else { 0.0 };
        SgdParams { len: p.len as u32, mode, pad0: [0; 2], lr: self.hyper.lr, mu: self.hyper.momentum, l2, pad1: 0.0 }
    }

    fn adam_params(&self, p: &Param) -> AdamParams {
        let l2 = if p.weight { self.hyper.l2 } else { 0.0 };
        let (c1, c2) = (1.0 - self.beta_t.0, 1.0 - self.beta_t.1);
        AdamParams { len: p.len as u32, pad0: [0; 3], lr: self.hyper.lr, b1: 0.9, b2: 0.999, eps: 1e-8, c1, c2, l2, pad1: 0.0 }
    }

    fn rewrite_update_params(&self) {
        for (d, p) in self.updates.iter().zip(&self.params) {
            match self.opt {
                OptimizerKind::Adam => self.gpu.set_params(d, &self.adam_params(p)),
                _ => self.gpu.set_params(d, &self.sgd_params(p)),
            }
        }
    }

    /// A new learning rate, momentum or L2 for the next steps.
    pub fn set_hyper(&mut self, hyper: Hyper) -> Result<(), String> {
        check_hyper(&hyper)?;
        self.hyper = hyper;
        self.rewrite_update_params();
        Ok(())
    }

    /// One training step on a mini-batch of up to `batch` rows (inputs flat, one class per row),
    /// submitted without waiting for the GPU.
    pub fn step(&mut self, x: &[f32], labels: &[usize]) -> Result<(), String> {
        let inputs = self.bufs[self.x].len / self.batch;
        let n = labels.len();
        if n == 0 || n > self.batch || x.len() != n * inputs {
            return Err(format!("a batch of {} × {inputs} with {n} labels (1 to {} rows)", x.len() / inputs.max(1), self.batch));
        }
        if let Some(bad) = labels.iter().find(|&&c| c >= self.classes) {
            return Err(format!("class {bad} of {}", self.classes));
        }
        if n < self.batch && self.tail.as_ref().is_none_or(|(rows, _)| *rows != n) {
            self.tail = Some((n, self.record(n)));
        }
        self.gpu.write(&self.bufs[self.x], x);
        let labels: Vec<u32> = labels.iter().map(|&c| c as u32).collect();
        self.gpu.write_u32(&self.labels, &labels);
        // Dropout masks from the layers' own streams, as the engine draws them (for `n` rows).
        for node in &mut self.nodes {
            if let Op::Dropout { scale, mask, .. } = &mut node.op {
                let len = node.out_len / self.batch * n;
                let ones = tensor::from_vec(&[len], vec![1.0; len]);
                self.gpu.write(&self.bufs[*scale], tensor::slice(mask.forward(&ones, Mode::Train)));
            }
        }
        if self.opt == OptimizerKind::Adam {
            self.beta_t = (self.beta_t.0 * 0.9, self.beta_t.1 * 0.999);
            self.rewrite_update_params();
        }
        let forward_backward = match &self.tail {
            Some((rows, d)) if *rows == n && n < self.batch => d,
            _ => &self.forward_backward,
        };
        let slot = (self.step as usize % LOSS_RING) * 4;
        self.gpu.submit(&[forward_backward, &self.updates], Some((&self.loss, &self.ring, slot as u64)));
        self.step += 1;
        Ok(())
    }

    /// The batch size the buffers were made for (smaller batches run too).
    pub fn batch(&self) -> usize {
        self.batch
    }

    pub fn optimizer(&self) -> OptimizerKind {
        self.opt
    }

    pub fn hyper(&self) -> Hyper {
        self.hyper
    }

    /// What a readback copies, in order: the loss ring, every parameter's value, every
    /// parameter's gradient, every batch norm's running statistics (mean, variance, scratch).
    pub fn readback_sources(&self) -> Vec<&Buf> {
        let mut out = vec![&self.ring];
        out.extend(self.params.iter().map(|p| &self.bufs[p.w]));
        out.extend(self.params.iter().map(|p| &self.bufs[p.g]));
        out.extend(self.nodes.iter().filter_map(|n| match n.op {
            Op::Bn { stats, .. } => Some(&self.bufs[stats]),
            _ => None,
        }));
        out
    }

    /// Writes what [`GpuNet::readback_sources`] copied (`data`, in that order, without the ring)
    /// into the engine model: values, gradients and running statistics.
    pub fn write_into(&self, data: &[f32], model: &mut Sequential) -> Result<(), String> {
        let total: usize = self.params.iter().map(|p| p.len).sum();
        if data.len() < 2 * total {
            return Err("a short readback".into());
        }
        let (values, rest) = data.split_at(total);
        let (grads, mut stats) = rest.split_at(total);
        let (mut at, mut fail) = (0usize, None);
        model.visit_params(&mut |_, _, w, g| {
            let len = w.len();
            if at + len > total || g.len() != len {
                fail = Some("the model's parameters changed shape");
                return;
            }
            tensor::slice_mut(w).copy_from_slice(&values[at..at + len]);
            tensor::slice_mut(g).copy_from_slice(&grads[at..at + len]);
            at += len;
        });
        for layer in model.layers.iter_mut() {
            if let Some(bn) = layer.as_any_mut().downcast_mut::<BatchNorm>() {
                let c = bn.running_mean.len();
                if stats.len() < 3 * c {
                    return Err("the model has more batch-norm layers than the GPU's".into());
                }
                tensor::slice_mut(&mut bn.running_mean).copy_from_slice(&stats[..c]);
                tensor::slice_mut(&mut bn.running_var).copy_from_slice(&stats[c..2 * c]);
                stats = &stats[3 * c..];
            }
        }
        fail.map_or(Ok(()), |e| Err(e.into()))
    }

    /// The last step's mean loss (waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn loss(&self) -> f32 {
        self.gpu.read(&self.loss)[0]
    }

    /// The last step's mean loss, when the GPU has computed it.
    pub async fn loss_async(&self) -> Result<f32, String> {
        Ok(self.gpu.read_async(&self.loss).await?[0])
    }

    /// Every trained tensor's value and gradient, in the engine's `visit_params` order (waits).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn params(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.params.iter().map(|p| (self.gpu.read(&self.bufs[p.w]), self.gpu.read(&self.bufs[p.g]))).collect()
    }

    /// The weights (and batch-norm running statistics) back into the engine model they came
    /// from: the CPU continues from them.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_back(&self, model: &mut Sequential) -> Result<(), String> {
        let mut values = self.params.iter().map(|p| self.gpu.read(&self.bufs[p.w]));
        let mut stats = self.nodes.iter().filter_map(|n| match n.op {
            Op::Bn { stats, c, .. } => Some((self.gpu.read(&self.bufs[stats]), c)),
            _ => None,
        });
        let mut fail = None;
        model.visit_params(&mut |_, _, w, _| match values.next() {
            Some(v) if v.len() == w.len() => tensor::slice_mut(w).copy_from_slice(&v),
            _ => fail = Some("the model's parameters changed shape"),
        });
        for layer in model.layers.iter_mut() {
            if let Some(bn) = layer.as_any_mut().downcast_mut::<BatchNorm>() {
                let (s, c) = stats.next().ok_or("the model has more batch-norm layers than the GPU's")?;
                tensor::slice_mut(&mut bn.running_mean).copy_from_slice(&s[..c]);
                tensor::slice_mut(&mut bn.running_var).copy_from_slice(&s[c..2 * c]);
            }
        }
        fail.map_or(Ok(()), |e| Err(e.into()))
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn adapter(&self) -> &str {
        &self.gpu.adapter
    }
}

fn check_hyper(h: &Hyper) -> Result<(), String> {
    if h.clip > 0.0 || h.l1 > 0.0 {
        return Err("gradient clipping and L1 do not run on the GPU yet".into());
    }
    if !(h.lr.is_finite() && h.momentum.is_finite() && h.l2.is_finite()) {
        return Err("a learning rate, momentum and L2 that are numbers".into());
    }
    Ok(())
}
