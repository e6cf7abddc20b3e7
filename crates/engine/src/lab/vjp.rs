//! Backprop as a chain of vector–Jacobian products: the last mini-batch traced forward through
//! each layer and its gradient back, per layer — the shapes, the VJP the layer applies, the norms
//! of what flows (`x`, `y`, `dy`, `dx`, `dW`…) and one example's numbers.
//!
//! ```text
//! forward   x → [layer] → y                 backward   dx ← [layer] ← dy = ∂L/∂y
//! dense     y = x·W + b                     dx = dy·Wᵀ    dW = xᵀ·dy    db = Σ_rows dy
//! f         y = f(z)                        dx = dy ⊙ f′(z)
//! dropout   y = x ⊙ m/(1−p)                 dx = dy ⊙ m/(1−p)
//! loss      L(ŷ, t)                         dŷ = ∂L/∂ŷ  (the first dy)
//! ```
//! The trace runs on a copy of the model, so training is untouched (the same bits with the view
//! open or closed): the gradients are those the next step would compute on that batch with the
//! current weights. `dW` is the data term; L2 adds `λ·W` at the update.

use super::trainer::Trainer;
use crate::layer::Layer;
use crate::loss::{Loss, Target};
use crate::ops::{Activation, Dense, Dropout, Polynomial};
use crate::tensor::{self, Mode, Tensor};
use serde::{Deserialize, Serialize};

/// A trace copies the model: refused above this many parameters (a copy per trace).
pub const MAX_PARAMS: usize = 4_000_000;
/// Values shown per vector of the example (wider layers show their first ones).
pub const SHOWN: usize = 32;

/// One layer's forward and backward for the traced batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VjpLayer {
    /// The layer's own name ("dense 1→16", "ReLU").
    pub name: String,
    /// Its forward rule and the VJPs its backward applies.
    pub forward: String,
    pub rules: Vec<String>,
    /// Shapes of its input and output, the batch first; of its parameters ("W 1×16").
    pub input: Vec<usize>,
    pub output: Vec<usize>,
    pub params: Vec<String>,
    /// Frobenius norms over the batch.
    pub x_norm: f32,
    pub y_norm: f32,
    pub dy_norm: f32,
    pub dx_norm: f32,
    /// `("dW", ‖dW‖)`, `("db", ‖db‖)`… for each parameter.
    pub grad_norms: Vec<(String, f32)>,
    /// The traced example's row of each (its first [`SHOWN`] values).
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub dy: Vec<f32>,
    pub dx: Vec<f32>,
    /// That example's share of the first parameter's gradient, `‖xᵢᵀ·dyᵢ‖` for a dense layer.
    pub example_grad_norm: Option<f32>,
}

/// The trace of one mini-batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VjpView {
    pub step: u64,
    pub batch: usize,
    /// The example (row of the batch) whose numbers each layer shows.
    pub example: usize,
    pub loss: f32,
    /// The loss and the gradient that starts the chain.
    pub loss_rule: String,
    /// The example's target: its value(s), or its class.
    pub target: Vec<f32>,
    pub layers: Vec<VjpLayer>,
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|&a| a as f64 * a as f64).sum::<f64>().sqrt() as f32
}

fn row(t: &Tensor, i: usize) -> Vec<f32> {
    let rows = t.shape().first().copied().unwrap_or(0).max(1);
    let width = t.len() / rows;
    let s = tensor::slice(t);
    s.get(i * width..(i + 1) * width).map_or_else(Vec::new, |r| r.iter().take(SHOWN).copied().collect())
}

fn loss_rule(loss: Loss) -> &'static str {
    match loss {
        Loss::Mse => "L = (1/N) Σ (ŷ − t)²   ⇒   dŷ = 2(ŷ − t)/N",
        Loss::L1 => "L = (1/N) Σ |ŷ − t|   ⇒   dŷ = sign(ŷ − t)/N",
        Loss::Bce => "L = (1/N) Σ BCE(σ(z), t)   ⇒   dz = (σ(z) − t)/N",
        Loss::Softmax => "L = (1/n) Σ −ln softmax(z)[t]   ⇒   dz = (softmax(z) − onehot(t))/n",
        Loss::Nll => "L = (1/n) Σ −lp[t]   ⇒   dlp = −onehot(t)/n",
    }
}

/// The forward rule and VJPs of `layer` (by its concrete type).
fn rules(layer: &dyn Layer) -> (String, Vec<String>) {
    let any = layer.as_any();
    if any.downcast_ref::<Dense>().is_some() {
        ("y = x·W + b".into(), vec!["dx = dy·Wᵀ".into(), "dW = xᵀ·dy".into(), "db = Σ_rows dy".into()])
    } else if let Some(a) = any.downcast_ref::<Activation>() {
        (format!("y = {}(z)", a.kind.label()), vec![format!("dx = dy ⊙ {}′(z)", a.kind.label())])
    } else if let Some(d) = any.downcast_ref::<Dropout>() {
        (format!("y = x ⊙ m/(1−{})", d.p), vec![format!("dx = dy ⊙ m/(1−{})", d.p)])
    } else if any.downcast_ref::<Polynomial>().is_some() {
        ("y = Σₖ cₖ·xᵏ".into(), vec!["dx = dy · Σₖ k·cₖ·xᵏ⁻¹".into(), "dcₖ = Σ_rows dy·xᵏ".into()])
    } else {
        ("y = f(x)".into(), vec!["dx = dy·∂y/∂x".into()])
    }
}

/// Traces the trainer's last mini-batch, showing row `example` of it; refuses (with a sentence
/// for the learner) before the first step, on an example outside the batch or a model too large.
pub fn trace(trainer: &Trainer, example: usize) -> Result<VjpView, String> {
    // The labs that trace gather every row of their batches here (their data is not shared
    // with helpers, see `Source::shared_rows`).
    let Some(x) = trainer.gathered_batch_x() else {
        return Err("this mini-batch was gathered by other workers: train a step on one worker to trace it".into());
    };
    let batch = x.shape().first().copied().unwrap_or(0);
    if batch == 0 || trainer.step == 0 {
        return Err("no mini-batch yet: train a step first (Step or Play)".into());
    }
    if example >= batch {
        return Err(format!("example {example} is not in the batch (0 to {})", batch - 1));
    }
    let mut model = trainer.model.clone();
    let mut params = 0;
    model.visit_params(&mut |_, _, w, _| params += w.len());
    if params > MAX_PARAMS {
        return Err(format!("this network has {params} weights: too many to trace (at most {MAX_PARAMS})"));
    }
    // The copy also computes the gradient of the input (training skips it: nothing reads it).
    model.layers[0].set_needs_input_grad(true);
    model.zero_grad();
    let out = model.forward(x, Mode::Train).clone();
    let target = if trainer.batch_classes().is_empty() { Target::Values(trainer.batch_y()) } else { Target::Classes(trainer.batch_classes()) };
    let target_row = match target {
        Target::Classes(c) => vec![c[example] as f32],
        _ => row(trainer.batch_y(), example),
    };
    let mut dout = tensor::zeros(&[0]);
    let loss = trainer.loss.value_and_grad(&out, target, &mut dout);
    model.backward(&dout);
    let last = model.layers.len() - 1;
    let mut layers = Vec::with_capacity(model.layers.len());
    for i in 0..model.layers.len() {
        let input = if i == 0 { x } else { model.layers[i - 1].output() };
        let dy = if i == last { &dout } else { model.layers[i + 1].input_grad() };
        let (forward, rules) = rules(model.layers[i].as_ref());
        let mut layer = VjpLayer {
            name: model.layers[i].name(),
            forward,
            rules,
            input: input.shape().to_vec(),
            output: model.layers[i].output().shape().to_vec(),
            x_norm: norm(tensor::slice(input)),
            y_norm: norm(tensor::slice(model.layers[i].output())),
            dy_norm: norm(tensor::slice(dy)),
            dx_norm: norm(tensor::slice(model.layers[i].input_grad())),
            x: row(input, example),
            y: row(model.layers[i].output(), example),
            dy: row(dy, example),
            dx: row(model.layers[i].input_grad(), example),
            ..Default::default()
        };
        if let Some(d) = model.layers[i].as_any().downcast_ref::<Dense>() {
            // xᵢᵀ·dyᵢ is an outer product: its norm is ‖xᵢ‖·‖dyᵢ‖ (whole rows, not the shown ones).
            let w = input.len() / batch;
            let (xs, ds) = (tensor::slice(input), tensor::slice(dy));
            let (xr, dr) = (&xs[example * w..(example + 1) * w], &ds[example * d.outputs..(example + 1) * d.outputs]);
            layer.example_grad_norm = Some(norm(xr) * norm(dr));
        }
        let (mut shapes, mut grads) = (Vec::new(), Vec::new());
        model.layers[i].visit_params(&mut |name, _, w, g| {
            shapes.push(format!("{name} {}", w.shape().iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×")));
            grads.push((format!("d{name}"), norm(tensor::slice(g))));
        });
        layer.params = shapes;
        layer.grad_norms = grads;
        layers.push(layer);
    }
    Ok(VjpView { step: trainer.step, batch, example, loss, loss_rule: loss_rule(trainer.loss).into(), target: target_row, layers })
}
