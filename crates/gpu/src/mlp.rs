//! A multi-layer perceptron trained on the GPU: the engine's `Dense → activation → … → Dense`
//! with softmax cross-entropy, SGD (plain, momentum, Nesterov) or Adam, and L2 on the weights.
//! Built from an engine model (same weights), it trains on the GPU and can write its weights
//! back (changing the backend mid-run keeps them).
//!
//! One step, all on the GPU, recorded once and submitted without waiting:
//! ```text
//! forward   Zₗ = Xₗ·Wₗ;  Yₗ = act(Zₗ + bₗ)                       (matmul, bias_act_forward)
//! loss      dZ_L = (softmax(Y_L) − onehot)/n;  L = Σ Lᵢ / n      (softmax_cross_entropy, sum)
//! backward  dZₗ = dYₗ ⊙ f′(Yₗ);  dWₗ = Xₗᵀ·dZₗ;  dbₗ = Σₙ dZₗ;  dXₗ = dZₗ·Wₗᵀ
//! update    w ← w − lr·… per element                              (sgd_update, adam_update)
//! ```

use crate::context::{Buf, Gpu};
use crate::kernels::{AdamParams, Dispatch, SgdParams};
use engine::ops::{Activation, ActivationKind, Dense};
use engine::optim::{Hyper, OptimizerKind};
use engine::sequential::Sequential;
use engine::tensor;

struct Layer {
    inputs: usize,
    outputs: usize,
    act: ActivationKind,
    alpha: f32,
    w: Buf,
    b: Buf,
    dw: Buf,
    db: Buf,
    /// Optimiser state: velocity (SGD) or first and second moments (Adam), for w and b.
    state: [Buf; 4],
    z: Buf,
    y: Buf,
    dz: Buf,
    /// ∂L/∂(this layer's input) — the previous layer's dY (unused for the first layer).
    dx: Buf,
}

pub struct GpuMlp {
    gpu: Gpu,
    layers: Vec<Layer>,
    batch: usize,
    x: Buf,
    labels: Buf,
    losses: Buf,
    loss: Buf,
    opt: OptimizerKind,
    hyper: Hyper,
    /// β₁ᵗ and β₂ᵗ as running products (the engine's Adam keeps them the same way).
    beta_t: (f32, f32),
    forward_backward: Vec<Dispatch>,
    updates: Vec<Dispatch>,
    pub step: u64,
}

/// The (Dense, activation) pairs of an engine MLP, or what stops it running on the GPU.
fn dense_layers(model: &Sequential) -> Result<Vec<(&Dense, ActivationKind, f32)>, String> {
    let mut out: Vec<(&Dense, ActivationKind, f32)> = Vec::new();
    for layer in &model.layers {
        if let Some(d) = layer.as_any().downcast_ref::<Dense>() {
            out.push((d, ActivationKind::Identity, 0.0));
        } else if let Some(a) = layer.as_any().downcast_ref::<Activation>() {
            match out.last_mut() {
                Some(last) if last.1 == ActivationKind::Identity => (last.1, last.2) = (a.kind, a.alpha),
                _ => return Err(format!("{}: an activation must follow a dense layer on the GPU", layer.name())),
            }
        } else {
            return Err(format!("{} does not run on the GPU yet (dense layers and activations do)", layer.name()));
        }
    }
    if out.is_empty() {
        return Err("a model without dense layers".into());
    }
    Ok(out)
}

impl GpuMlp {
    /// The model's weights on `gpu`, for mini-batches of `batch` rows.
    pub fn new(gpu: &Gpu, model: &Sequential, batch: usize, opt: OptimizerKind, hyper: Hyper) -> Result<GpuMlp, String> {
        if opt == OptimizerKind::Adagrad {
            return Err("Adagrad does not run on the GPU yet (SGD, momentum, Nesterov and Adam do)".into());
        }
        if hyper.clip > 0.0 || hyper.l1 > 0.0 {
            return Err("gradient clipping and L1 do not run on the GPU yet".into());
        }
        if batch == 0 {
            return Err("a batch of 0 rows".into());
        }
        let dense = dense_layers(model)?;
        let layers: Vec<Layer> = dense
            .iter()
            .map(|&(d, act, alpha)| {
                let (i, o) = (d.inputs, d.outputs);
                Layer {
                    inputs: i,
                    outputs: o,
                    act,
                    alpha,
                    w: gpu.upload(tensor::slice(&d.w)),
                    b: gpu.upload(tensor::slice(&d.b)),
                    dw: gpu.zeros(i * o),
                    db: gpu.zeros(o),
                    state: [gpu.zeros(i * o), gpu.zeros(o), gpu.zeros(i * o), gpu.zeros(o)],
                    z: gpu.zeros(batch * o),
                    y: gpu.zeros(batch * o),
                    dz: gpu.zeros(batch * o),
                    dx: gpu.zeros(batch * i),
                }
            })
            .collect();
        let classes = layers.last().map_or(0, |l| l.outputs);
        let mut mlp = GpuMlp {
            x: gpu.zeros(batch * layers[0].inputs),
            labels: gpu.upload_u32(&vec![0; batch]),
            losses: gpu.zeros(batch),
            loss: gpu.zeros(1),
            gpu: gpu.clone(),
            layers,
            batch,
            opt,
            hyper,
            beta_t: (1.0, 1.0),
            forward_backward: Vec::new(),
            updates: Vec::new(),
            step: 0,
        };
        mlp.record(classes);
        Ok(mlp)
    }

    fn record(&mut self, classes: usize) {
        let (g, n) = (&self.gpu, self.batch);
        let mut d = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let x = if l == 0 { &self.x } else { &self.layers[l - 1].y };
            d.push(g.matmul(x, &layer.w, &layer.z, (n, layer.outputs, layer.inputs), false, false, false));
            d.push(g.bias_act(&layer.z, &layer.b, &layer.y, (n, layer.outputs), layer.act, layer.alpha));
        }
        let last = self.layers.last().expect("a layer");
        // The logits are the last layer's output; its activation is the identity (checked by softmax).
        d.push(g.softmax_cross_entropy(&last.y, &self.labels, &last.dz, &self.losses, (n, classes)));
        d.push(g.sum(&self.losses, &self.loss, n, 1.0 / n as f32));
        for (l, layer) in self.layers.iter().enumerate().rev() {
            if l + 1 < self.layers.len() {
                // dY of this layer is the next layer's dX.
                let dy = &self.layers[l + 1].dx;
                d.push(g.act_backward(dy, &layer.y, &layer.dz, n * layer.outputs, layer.act, layer.alpha));
            }
            let x = if l == 0 { &self.x } else { &self.layers[l - 1].y };
            d.push(g.matmul(x, &layer.dz, &layer.dw, (layer.inputs, layer.outputs, n), true, false, false));
            d.push(g.column_sum(&layer.dz, &layer.db, (n, layer.outputs)));
            if l > 0 {
                d.push(g.matmul(&layer.dz, &layer.w, &layer.dx, (n, layer.inputs, layer.outputs), false, true, false));
            }
        }
        self.forward_backward = d;
        self.updates = self
            .layers
            .iter()
            .flat_map(|layer| {
                let [s0, s1, s2, s3] = &layer.state;
                let weight = (&layer.w, &layer.dw, s0, s2, layer.inputs * layer.outputs, true);
                let bias = (&layer.b, &layer.db, s1, s3, layer.outputs, false);
                [weight, bias]
            })
            .map(|(w, gr, m, v, len, is_weight)| match self.opt {
                OptimizerKind::Adam => g.adam_update(w, gr, m, v, self.adam_params(len, is_weight)),
                _ => g.sgd_update(w, gr, m, self.sgd_params(len, is_weight)),
            })
            .collect();
    }

    fn sgd_params(&self, len: usize, is_weight: bool) -> SgdParams {
        let mode = match self.opt {
            OptimizerKind::Momentum => 1,
            OptimizerKind::Nesterov => 2,
            _ => 0,
        };
        let l2 = if is_weight { self.hyper.l2 } else { 0.0 };
        SgdParams { len: len as u32, mode, pad0: [0; 2], lr: self.hyper.lr, mu: self.hyper.momentum, l2, pad1: 0.0 }
    }

    fn adam_params(&self, len: usize, is_weight: bool) -> AdamParams {
        let l2 = if is_weight { self.hyper.l2 } else { 0.0 };
        let (b1, b2) = (0.9f32, 0.999f32);
        let (c1, c2) = (1.0 - self.beta_t.0, 1.0 - self.beta_t.1);
        AdamParams { len: len as u32, pad0: [0; 3], lr: self.hyper.lr, b1, b2, eps: 1e-8, c1, c2, l2, pad1: 0.0 }
    }

    /// A new learning rate, momentum or L2 for the next steps.
    pub fn set_hyper(&mut self, hyper: Hyper) -> Result<(), String> {
        if hyper.clip > 0.0 || hyper.l1 > 0.0 {
            return Err("gradient clipping and L1 do not run on the GPU yet".into());
        }
        self.hyper = hyper;
        self.rewrite_update_params();
        Ok(())
    }

    fn rewrite_update_params(&self) {
        let lens: Vec<(usize, bool)> = self.layers.iter().flat_map(|l| [(l.inputs * l.outputs, true), (l.outputs, false)]).collect();
        for (d, &(len, is_weight)) in self.updates.iter().zip(&lens) {
            match self.opt {
                OptimizerKind::Adam => self.gpu.set_params(d, &self.adam_params(len, is_weight)),
                _ => self.gpu.set_params(d, &self.sgd_params(len, is_weight)),
            }
        }
    }

    /// One training step on a mini-batch (`batch × inputs` values, `batch` classes), submitted
    /// without waiting for the GPU.
    pub fn step(&mut self, x: &[f32], labels: &[usize]) -> Result<(), String> {
        let inputs = self.layers[0].inputs;
        if x.len() != self.batch * inputs || labels.len() != self.batch {
            return Err(format!("a batch of {} × {inputs} with {} labels (expected {} rows)", x.len() / inputs.max(1), labels.len(), self.batch));
        }
        let classes = self.layers.last().map_or(0, |l| l.outputs);
        if let Some(bad) = labels.iter().find(|&&c| c >= classes) {
            return Err(format!("class {bad} of {classes}"));
        }
        self.gpu.write(&self.x, x);
        let labels: Vec<u32> = labels.iter().map(|&c| c as u32).collect();
        self.gpu.write_u32(&self.labels, &labels);
        if self.opt == OptimizerKind::Adam {
            self.beta_t = (self.beta_t.0 * 0.9, self.beta_t.1 * 0.999);
            self.rewrite_update_params();
        }
        self.gpu.run(&self.forward_backward);
        self.gpu.run(&self.updates);
        self.step += 1;
        Ok(())
    }

    /// The last step's mean loss (waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn loss(&self) -> f32 {
        self.gpu.read(&self.loss)[0]
    }

    /// Every layer's (W, b), read back (waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn weights(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.layers.iter().map(|l| (self.gpu.read(&l.w), self.gpu.read(&l.b))).collect()
    }

    /// Every layer's (dW, db) of the last step (waits for the GPU).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn gradients(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.layers.iter().map(|l| (self.gpu.read(&l.dw), self.gpu.read(&l.db))).collect()
    }

    /// The weights back into the engine model they came from (the CPU continues from them).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write_back(&self, model: &mut Sequential) -> Result<(), String> {
        let weights = self.weights();
        let mut it = weights.into_iter();
        for layer in model.layers.iter_mut() {
            if let Some(d) = layer.as_any_mut().downcast_mut::<Dense>() {
                let (w, b) = it.next().ok_or("the model has more dense layers than the GPU's")?;
                if w.len() != d.w.len() || b.len() != d.b.len() {
                    return Err("the model's shapes changed".into());
                }
                tensor::slice_mut(&mut d.w).copy_from_slice(&w);
                tensor::slice_mut(&mut d.b).copy_from_slice(&b);
            }
        }
        Ok(())
    }

    pub fn adapter(&self) -> &str {
        &self.gpu.adapter
    }
}
