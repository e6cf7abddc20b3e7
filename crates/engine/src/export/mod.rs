//! Export a run as a self-contained PyTorch script: the same layers with the run's weights, the
//! same data preparation and hyper-parameters, and a training loop that runs as is
//! (`python run.py`, CPU or GPU) or data-parallel (`torchrun --nproc_per_node=N run.py`:
//! DistributedDataParallel with a DistributedSampler).
//!
//! The architecture and hyper-parameters are written as data (`LAYERS`, `HYPER`) that the script
//! builds from, so a test can read them back and compare them with the config. Weights travel as
//! base64 of little-endian f32 (the engine's `(in, out)` dense weights transposed to PyTorch's
//! `(out, in)`). Every lab: the MNIST labs read the published files; the fit and playground labs
//! embed their points; the RNN lab embeds its sequences as symbol indices.

use crate::data::{Dataset, Targets};
use crate::lab::batchnorm::BnConfig;
use crate::lab::cnn::CnnConfig;
use crate::lab::fit::FitConfig;
use crate::lab::playground::PlaygroundConfig;
use crate::lab::rnn::{RnnConfig, Task};
use crate::lab::LabConfig;
use crate::loss::Loss;
use crate::ops::{Activation, ActivationKind, BatchNorm, Conv2d, Dense, Dropout, Flatten, Polynomial, Pool2d, PoolKind, Rnn};
use crate::optim::OptimizerKind;
use crate::optim::Schedule;
use crate::sequential::Sequential;
use crate::tensor;
use base64::Engine;
use serde_json::{json, Value};

fn b64(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn activation(kind: ActivationKind, alpha: f32) -> Value {
    match kind {
        ActivationKind::Relu => json!({ "type": "ReLU" }),
        ActivationKind::Leaky => json!({ "type": "LeakyReLU", "negative_slope": decimal(alpha) }),
        ActivationKind::Tanh => json!({ "type": "Tanh" }),
        ActivationKind::Sigmoid => json!({ "type": "Sigmoid" }),
        ActivationKind::Identity => json!({ "type": "Identity" }),
    }
}

/// The model's layers as PyTorch modules with their weights (`input`: one example's shape).
fn layers(model: &Sequential, input: &[usize]) -> Result<Vec<Value>, String> {
    let mut shape: Vec<usize> = std::iter::once(1).chain(input.iter().copied()).collect();
    let mut out = Vec::new();
    for layer in &model.layers {
        let any = layer.as_any();
        let spec = if let Some(d) = any.downcast_ref::<Dense>() {
            // Engine W is (in, out); nn.Linear keeps (out, in).
            let mut wt = vec![0.0; d.inputs * d.outputs];
            crate::ops::gemm::transpose(d.inputs, d.outputs, tensor::slice(&d.w), &mut wt);
            json!({ "type": "Linear", "in": d.inputs, "out": d.outputs, "weight": b64(&wt), "bias": b64(tensor::slice(&d.b)) })
        } else if let Some(c) = any.downcast_ref::<Conv2d>() {
            json!({ "type": "Conv2d", "in": c.c_in, "out": c.c_out, "kernel": c.k, "stride": c.stride, "padding": c.pad,
                    "weight": b64(tensor::slice(&c.w)), "bias": b64(tensor::slice(&c.b)) })
        } else if let Some(a) = any.downcast_ref::<Activation>() {
            activation(a.kind, a.alpha)
        } else if let Some(p) = any.downcast_ref::<Pool2d>() {
            json!({ "type": if p.kind == PoolKind::Max { "MaxPool2d" } else { "AvgPool2d" }, "kernel": p.k, "stride": p.stride })
        } else if any.downcast_ref::<Flatten>().is_some() {
            json!({ "type": "Flatten" })
        } else if let Some(bn) = any.downcast_ref::<BatchNorm>() {
            // The engine's conventions are PyTorch's: momentum 0.1, ε 1e-5, biased batch variance.
            json!({ "type": if shape.len() == 2 { "BatchNorm1d" } else { "BatchNorm2d" }, "features": bn.channels,
                    "affine_trainable": bn.affine_trainable,
                    "weight": b64(tensor::slice(&bn.gamma)), "bias": b64(tensor::slice(&bn.beta)),
                    "running_mean": b64(tensor::slice(&bn.running_mean)), "running_var": b64(tensor::slice(&bn.running_var)) })
        } else if let Some(p) = any.downcast_ref::<Polynomial>() {
            json!({ "type": "Polynomial", "degree": p.degree, "weight": b64(tensor::slice(&p.c)) })
        } else if let Some(d) = any.downcast_ref::<Dropout>() {
            json!({ "type": "Dropout", "p": decimal(d.p) })
        } else if let Some(r) = any.downcast_ref::<Rnn>() {
            // The engine's W_xh is (inputs, hidden) and W_hh (hidden, hidden), used as x·W: kept
            // in that layout (the script's module multiplies the same way).
            json!({ "type": "RNN", "in": r.inputs, "hidden": r.hidden, "all_steps": r.all_steps, "recurrent": r.recurrent,
                    "truncate": r.truncate, "w_xh": b64(tensor::slice(&r.w_xh)), "w_hh": b64(tensor::slice(&r.w_hh)),
                    "bias": b64(tensor::slice(&r.b)), "h0": b64(tensor::slice(&r.h0)) })
        } else {
            return Err(format!("{} has no PyTorch export yet", layer.name()));
        };
        shape = layer.output_shape(&shape).map_err(|e| format!("{}: {e}", layer.name()))?;
        out.push(spec);
    }
    Ok(out)
}

/// An f32 as the decimal it was typed as (0.02, not 0.019999999552965164).
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

fn optimizer(opt: OptimizerKind) -> &'static str {
    match opt {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Momentum => "momentum",
        OptimizerKind::Nesterov => "nesterov",
        OptimizerKind::Adagrad => "adagrad",
        OptimizerKind::Adam => "adam",
    }
}

/// Whether `config`'s lab can be exported (before its data is loaded and a model built).
pub fn supported(config: &LabConfig) -> Result<(), String> {
    if config.get::<CnnConfig>().is_some()
        || config.get::<BnConfig>().is_some()
        || config.get::<FitConfig>().is_some()
        || config.get::<PlaygroundConfig>().is_some()
        || config.get::<RnnConfig>().is_some()
    {
        Ok(())
    } else {
        Err(format!("the {} lab has no PyTorch export yet", config.lab()))
    }
}

fn loss_name(loss: Loss) -> Result<&'static str, String> {
    match loss {
        Loss::Mse => Ok("mse"),
        Loss::L1 => Ok("l1"),
        Loss::Bce => Ok("bce_logits"),
        Loss::Softmax => Ok("cross_entropy"),
        Loss::Nll => Err("an NLL loss has no PyTorch export yet".into()),
    }
}

fn schedule(s: Schedule) -> &'static str {
    match s {
        Schedule::Constant => "constant",
        Schedule::Step => "step",
        Schedule::Cosine => "cosine",
    }
}

/// A dataset as the engine prepared it (features computed, standardised): inputs as base64 f32,
/// targets as base64 f32 `(n, k)` values or a list of classes.
fn inline(d: &Dataset) -> Value {
    let shape: Vec<usize> = d.x.shape().to_vec();
    let y = match &d.y {
        Targets::Values(t) => json!({ "values": b64(tensor::slice(t)), "shape": t.shape() }),
        Targets::Classes(c) => json!({ "classes": c }),
    };
    json!({ "x": b64(tensor::slice(&d.x)), "shape": shape, "y": y })
}

/// Sequences as the RNN lab trains on them, by symbol index: each row's input symbols (its real
/// steps, no padding) and its targets — one class per row (many:1), or one per real step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeqSet {
    pub inputs: Vec<Vec<usize>>,
    pub targets: SeqTargets,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SeqTargets {
    Rows(Vec<usize>),
    Steps(Vec<Vec<usize>>),
}

impl Default for SeqTargets {
    fn default() -> Self {
        SeqTargets::Rows(Vec::new())
    }
}

impl SeqSet {
    /// Every row of a sequence source (one-hot batches with a mask for per-step targets), read
    /// back as symbol indices.
    pub fn of(source: &dyn crate::data::Source) -> SeqSet {
        let (mut x, mut y, mut classes, mut mask) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new(), Vec::new());
        let mut out = SeqSet::default();
        let mut steps = Vec::new();
        let rows: Vec<usize> = (0..source.len()).collect();
        for chunk in rows.chunks(512) {
            source.gather(chunk, &mut x, &mut y, &mut classes);
            let masked = source.mask(chunk, &mut mask);
            let (t, v) = (x.shape()[1], x.shape()[2]);
            let xs = tensor::slice(&x);
            for i in 0..chunk.len() {
                let symbols: Vec<usize> = (0..t).map_while(|s| xs[(i * t + s) * v..(i * t + s + 1) * v].iter().position(|&e| e != 0.0)).collect();
                if masked {
                    steps.push((0..t).filter(|&s| mask[i * t + s]).map(|s| classes[i * t + s]).collect());
                } else if let SeqTargets::Rows(r) = &mut out.targets {
                    r.push(classes[i]);
                }
                out.inputs.push(symbols);
            }
        }
        if !steps.is_empty() {
            out.targets = SeqTargets::Steps(steps);
        }
        out
    }

    fn to_json(&self) -> Value {
        match &self.targets {
            SeqTargets::Rows(r) => json!({ "inputs": self.inputs, "classes": r }),
            SeqTargets::Steps(s) => json!({ "inputs": self.inputs, "steps": s }),
        }
    }
}

/// The script for `config` with `model`'s current weights, or why this lab cannot be exported.
/// `data`: the training and test sets, embedded for the labs whose data the engine generates
/// (fit, playground); the MNIST labs read the published files instead.
pub fn pytorch(config: &LabConfig, model: &Sequential, data: Option<(&Dataset, &Dataset)>) -> Result<String, String> {
    pytorch_with(config, model, data, None)
}

/// [`pytorch`], with the RNN lab's training and test sequences.
pub fn pytorch_with(config: &LabConfig, model: &Sequential, data: Option<(&Dataset, &Dataset)>, seqs: Option<(&SeqSet, &SeqSet)>) -> Result<String, String> {
    supported(config)?;
    let mut hyper = json!({ "lab": config.lab(), "link": config.to_query(), "clip": 0.0, "l1": 0.0, "schedule": "constant", "period": 1000, "steps": 0 });
    let input: Vec<usize>;
    let mut embedded = Value::Null;
    if let Some(c) = config
        .get::<CnnConfig>()
        .map(|c| (c.data, c.norm, false, c.opt, c.lr, c.mom, c.l2, c.bs, c.epochs))
        .or_else(|| config.get::<BnConfig>().map(|c| (c.data, c.norm, true, c.opt, c.lr, c.mom, c.l2, c.bs, c.epochs)))
    {
        let (set, norm, flat, opt, lr, mom, l2, bs, epochs) = c;
        input = if flat { vec![784] } else { vec![1, 28, 28] };
        merge(
            &mut hyper,
            json!({
                "data": "idx", "dataset": set.dir(), "standardise": norm, "flatten": flat, "loss": "cross_entropy", "metric": "accuracy",
                "optimizer": optimizer(opt), "lr": decimal(lr), "momentum": decimal(mom), "l2": decimal(l2), "batch_size": bs,
                "epochs": if epochs == 0 { 1 } else { epochs }
            }),
        );
    } else if let Some(c) = config.get::<RnnConfig>() {
        let (train, test) = seqs.ok_or("the rnn lab's export needs its sequences")?;
        input = vec![crate::data::names::MAX_LEN + 1, c.vocab()];
        merge(
            &mut hyper,
            json!({
                "data": "sequences", "vocab": c.vocab(), "loss": "cross_entropy",
                "metric": if c.task == Task::Classify { "accuracy" } else { "nll" },
                "optimizer": optimizer(c.opt), "lr": decimal(c.lr), "momentum": decimal(c.mom), "l2": decimal(c.l2),
                "clip": decimal(c.clip), "batch_size": c.bs, "schedule": schedule(c.sched), "period": c.period,
                "epochs": if c.epochs == 0 { 20 } else { c.epochs }, "steps": c.stop
            }),
        );
        embedded = json!({ "train": train.to_json(), "test": test.to_json() });
    } else {
        let (train, test) = data.ok_or_else(|| format!("the {} lab's export needs its data", config.lab()))?;
        let metric;
        if let Some(c) = config.get::<FitConfig>() {
            input = vec![1];
            metric = "loss";
            merge(
                &mut hyper,
                json!({
                    "loss": loss_name(c.loss)?, "optimizer": optimizer(c.opt), "lr": decimal(c.lr), "momentum": decimal(c.mom),
                    "l2": decimal(c.l2), "clip": decimal(c.clip), "batch_size": c.bs.min(train.len()),
                    "steps": if c.stop == 0 { 5000 } else { c.stop }
                }),
            );
        } else {
            let c = config.get::<PlaygroundConfig>().expect("supported() let only these through");
            input = vec![c.features().len()];
            let (outputs, out_act, loss) = c.head();
            metric = match (outputs, out_act, loss) {
                (_, _, Loss::Softmax) => "accuracy",
                (1, _, Loss::Bce) => "accuracy_logit",
                (1, Some(_), Loss::Mse) => "accuracy_sign",
                (k, _, Loss::Mse) if k > 1 && matches!(train.y, Targets::Values(_)) && c.data.problem() != crate::data::playground::Problem::Regression => {
                    "accuracy_onehot"
                }
                _ => "loss",
            };
            let h = c.hyper();
            merge(
                &mut hyper,
                json!({
                    "loss": loss_name(loss)?, "optimizer": optimizer(c.opt), "lr": decimal(c.lr), "momentum": decimal(c.mom),
                    "l2": decimal(h.l2), "l1": decimal(h.l1), "batch_size": c.bs.min(train.len()).max(1),
                    "schedule": schedule(c.sched), "period": c.period,
                    "epochs": if c.stopepochs == 0 { 1000 } else { c.stopepochs }, "steps": c.stop
                }),
            );
        }
        merge(&mut hyper, json!({ "data": "inline", "metric": metric }));
        embedded = json!({ "train": inline(train), "test": inline(test) });
    }
    merge(&mut hyper, json!({ "input": input }));
    if hyper.get("epochs").is_none() {
        hyper["epochs"] = json!(1_000_000);
    }
    let layers = layers(model, &input)?;
    // Compact, like DATA (a pretty printer would be one more serializer in the page's download).
    let pretty = |v: &Value| serde_json::to_string(v).expect("plain data");
    Ok(TEMPLATE
        .replace("{HYPER}", &pretty(&hyper))
        .replace("{LAYERS}", &pretty(&Value::Array(layers)))
        .replace("{DATA}", &serde_json::to_string(&embedded).expect("plain data")))
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(a), Value::Object(b)) = (into, from) {
        a.extend(b);
    }
}

/// The script, with `{HYPER}`, `{LAYERS}` and `{DATA}` to fill in.
const TEMPLATE: &str = include_str!("run.py");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::parse_link;
    use crate::rng::Rng;

    #[test]
    fn an_export_without_the_data_it_embeds_is_refused_with_a_message() {
        let mut b = Sequential::builder();
        b.push(Dense::new(2, 1, crate::init::Init::Xavier, 0.0, &mut Rng::new(1)));
        let model = b.build();
        let rnn = parse_link("lab=rnn").config;
        assert!(supported(&rnn).is_ok());
        assert!(pytorch(&rnn, &model, None).unwrap_err().contains("needs its sequences"));
        let fit = parse_link("lab=fit").config;
        assert!(pytorch(&fit, &model, None).unwrap_err().contains("needs its data"));
    }

    #[test]
    fn dense_weights_are_transposed_to_pytorch_layout() {
        let c = parse_link("lab=batchnorm&hidden=3&nets=plain").config;
        let bn = c.get::<BnConfig>().unwrap();
        let model = bn.build_model(crate::lab::batchnorm::Net::Plain, &mut Rng::new(1));
        let script = pytorch(&c, &model, None).unwrap();
        let start = script.find("LAYERS = json.loads(r'''").unwrap() + "LAYERS = json.loads(r'''".len();
        let layers: Value = serde_json::from_str(&script[start..start + script[start..].find("''')").unwrap()]).unwrap();
        let first = &layers[0];
        assert_eq!((first["type"].as_str(), first["in"].as_u64(), first["out"].as_u64()), (Some("Linear"), Some(784), Some(3)));
        let bytes = base64::engine::general_purpose::STANDARD.decode(first["weight"].as_str().unwrap()).unwrap();
        let w: Vec<f32> = bytes.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let d = model.layers[0].as_any().downcast_ref::<Dense>().unwrap();
        // PyTorch's weight[o][i] is the engine's W[i][o].
        assert_eq!(w[785], tensor::slice(&d.w)[3 + 1], "row 1, column 1");
        assert_eq!(w[2 * 784 + 5], tensor::slice(&d.w)[5 * 3 + 2]);
    }
}
