//! Export a run as a self-contained PyTorch script: the same layers with the run's weights, the
//! same data preparation and hyper-parameters, and a training loop that runs as is
//! (`python run.py`, CPU or GPU) or data-parallel (`torchrun --nproc_per_node=N run.py`:
//! DistributedDataParallel with a DistributedSampler).
//!
//! The architecture and hyper-parameters are written as data (`LAYERS`, `HYPER`) that the script
//! builds from, so a test can read them back and compare them with the config. Weights travel as
//! base64 of little-endian f32 (the engine's `(in, out)` dense weights transposed to PyTorch's
//! `(out, in)`). Today: the MNIST labs (`cnn`, `batchnorm`); the others say so.

use crate::lab::batchnorm::BnConfig;
use crate::lab::cnn::CnnConfig;
use crate::lab::LabConfig;
use crate::ops::{Activation, ActivationKind, BatchNorm, Conv2d, Dense, Dropout, Flatten, Pool2d, PoolKind};
use crate::optim::OptimizerKind;
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
        } else if let Some(d) = any.downcast_ref::<Dropout>() {
            json!({ "type": "Dropout", "p": decimal(d.p) })
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
    if config.get::<CnnConfig>().is_some() || config.get::<BnConfig>().is_some() {
        Ok(())
    } else {
        Err(format!("the {} lab has no PyTorch export yet (the MNIST labs, cnn and batchnorm, do)", config.lab()))
    }
}

/// The script for `config` with `model`'s current weights, or why this lab cannot be exported.
pub fn pytorch(config: &LabConfig, model: &Sequential) -> Result<String, String> {
    supported(config)?;
    let (set, norm, flat, opt, lr, mom, l2, bs, epochs) = if let Some(c) = config.get::<CnnConfig>() {
        (c.data, c.norm, false, c.opt, c.lr, c.mom, c.l2, c.bs, c.epochs)
    } else if let Some(c) = config.get::<BnConfig>() {
        (c.data, c.norm, true, c.opt, c.lr, c.mom, c.l2, c.bs, c.epochs)
    } else {
        return Err(format!("the {} lab has no PyTorch export yet", config.lab()));
    };
    let input: Vec<usize> = if flat { vec![784] } else { vec![1, 28, 28] };
    let hyper = json!({
        "lab": config.lab(), "link": config.to_query(), "dataset": set.dir(), "standardise": norm, "flatten": flat,
        "optimizer": optimizer(opt), "lr": decimal(lr), "momentum": decimal(mom), "l2": decimal(l2), "batch_size": bs,
        "epochs": if epochs == 0 { 1 } else { epochs }, "input": input, "classes": 10
    });
    let layers = layers(model, &input)?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("plain data");
    Ok(TEMPLATE.replace("{HYPER}", &pretty(&hyper)).replace("{LAYERS}", &pretty(&Value::Array(layers))))
}

const TEMPLATE: &str = r#"#!/usr/bin/env python3
"""A Deeply run, exported: the same network and weights, data preparation and hyper-parameters.

    python run.py                          # one process, on the GPU if there is one
    torchrun --nproc_per_node=N run.py     # N processes, DistributedDataParallel

Data: the four MNIST-format IDX files (*.gz) in --data (default data/<dataset>, next to this
file), as Deeply ships them. The mini-batch order is PyTorch's, not the engine's, so the curves
match Deeply's in shape, not bit for bit.
"""
import argparse, base64, gzip, json, os, struct

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

HYPER = json.loads(r'''{HYPER}''')

LAYERS = json.loads(r'''{LAYERS}''')

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def tensor(b64, shape):
    return torch.frombuffer(bytearray(base64.b64decode(b64)), dtype=torch.float32).reshape(shape).clone()


def build():
    """nn.Sequential from LAYERS, with the exported weights."""
    modules = []
    for spec in LAYERS:
        kind = spec["type"]
        if kind == "Linear":
            m = nn.Linear(spec["in"], spec["out"])
            m.weight.data = tensor(spec["weight"], (spec["out"], spec["in"]))
            m.bias.data = tensor(spec["bias"], (spec["out"],))
        elif kind == "Conv2d":
            m = nn.Conv2d(spec["in"], spec["out"], spec["kernel"], stride=spec["stride"], padding=spec["padding"])
            m.weight.data = tensor(spec["weight"], (spec["out"], spec["in"], spec["kernel"], spec["kernel"]))
            m.bias.data = tensor(spec["bias"], (spec["out"],))
        elif kind in ("BatchNorm1d", "BatchNorm2d"):
            m = getattr(nn, kind)(spec["features"], eps=1e-5, momentum=0.1)
            m.weight.data = tensor(spec["weight"], (spec["features"],))
            m.bias.data = tensor(spec["bias"], (spec["features"],))
            m.running_mean.data = tensor(spec["running_mean"], (spec["features"],))
            m.running_var.data = tensor(spec["running_var"], (spec["features"],))
            m.weight.requires_grad_(spec["affine_trainable"])
            m.bias.requires_grad_(spec["affine_trainable"])
        elif kind in ("MaxPool2d", "AvgPool2d"):
            m = getattr(nn, kind)(spec["kernel"], stride=spec["stride"])
        elif kind == "LeakyReLU":
            m = nn.LeakyReLU(spec["negative_slope"])
        elif kind == "Dropout":
            m = nn.Dropout(spec["p"])
        else:
            m = getattr(nn, kind)()
        modules.append(m)
    return nn.Sequential(*modules)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def load(directory):
    """Images as Deeply prepares them: p/255, standardised with the training set's mean and
    (population) standard deviation when HYPER["standardise"]."""
    xs, ys, xt, yt = (read_idx(os.path.join(directory, f)) for f in FILES)
    xs, xt = xs.float() / 255.0, xt.float() / 255.0
    if HYPER["standardise"]:
        mean, std = xs.mean(), xs.std(unbiased=False).clamp_min(1e-6)
        xs, xt = (xs - mean) / std, (xt - mean) / std
    shape = (-1, *HYPER["input"])
    return TensorDataset(xs.reshape(shape), ys.long()), TensorDataset(xt.reshape(shape), yt.long())


def optimizer(model):
    """Deeply's L2 applies to weights, not biases (nor batch norm's γ, β)."""
    decay = [p for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)) for p in [m.weight]]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    groups = [{"params": decay, "weight_decay": HYPER["l2"]}, {"params": rest, "weight_decay": 0.0}]
    kind, lr, mom = HYPER["optimizer"], HYPER["lr"], HYPER["momentum"]
    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    if kind == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr)
    return torch.optim.SGD(groups, lr=lr, momentum=0.0 if kind == "sgd" else mom, nesterov=kind == "nesterov")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="Train the exported Deeply run: " + HYPER["link"])
    parser.add_argument("--data", default=os.path.join(here, "data", HYPER["dataset"]))
    parser.add_argument("--epochs", type=int, default=HYPER["epochs"])
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: the epochs)")
    args = parser.parse_args()

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, local = 0, 0
    device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(1)

    train, test = load(args.data)
    model = build().to(device)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[local] if device.type == "cuda" else None)
        sampler = DistributedSampler(train, shuffle=True)
        # Each process takes an equal share of Deeply's mini-batch.
        per_process = max(1, HYPER["batch_size"] // dist.get_world_size())
        loader = DataLoader(train, batch_size=per_process, sampler=sampler)
    else:
        sampler = None
        loader = DataLoader(train, batch_size=HYPER["batch_size"], shuffle=True)
    opt = optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            step += 1
            if rank == 0 and (step <= 10 or step % 100 == 0):
                print(json.dumps({"step": step, "loss": loss.item()}), flush=True)
            if args.steps and step >= args.steps:
                break
        model.eval()
        right = 0
        with torch.no_grad():
            for x, y in DataLoader(test, batch_size=1000):
                right += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
        if rank == 0:
            print(json.dumps({"epoch": epoch + 1, "step": step, "test_accuracy": right / len(test)}), flush=True)
        if args.steps and step >= args.steps:
            break
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::parse_link;
    use crate::rng::Rng;

    #[test]
    fn other_labs_are_refused_with_a_message() {
        let c = parse_link("lab=fit").config;
        let err = supported(&c).unwrap_err();
        assert!(err.contains("fit lab has no PyTorch export"), "{err}");
        let mut b = Sequential::builder();
        b.push(Dense::new(2, 1, crate::init::Init::Xavier, 0.0, &mut Rng::new(1)));
        assert!(pytorch(&c, &b.build()).is_err());
    }

    #[test]
    fn dense_weights_are_transposed_to_pytorch_layout() {
        let c = parse_link("lab=batchnorm&hidden=3&nets=plain").config;
        let bn = c.get::<BnConfig>().unwrap();
        let model = bn.build_model(crate::lab::batchnorm::Net::Plain, &mut Rng::new(1));
        let script = pytorch(&c, &model).unwrap();
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
