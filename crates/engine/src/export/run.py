#!/usr/bin/env python3
"""A Deeply run, exported: the same network and weights, data preparation and hyper-parameters.

    python run.py                          # one process, on the GPU if there is one
    torchrun --nproc_per_node=N run.py     # N processes, DistributedDataParallel

Data: for the MNIST labs, the four MNIST-format IDX files (*.gz) in --data (default
data/<dataset>, next to this file), as Deeply ships them; for the fit and playground labs, the
points themselves, embedded below (DATA) exactly as the engine prepared them (features computed,
standardised); for the RNN lab, its training and test sequences as symbol indices (one-hot
inside the network) with their targets: a class per name, or the next symbol at every step.
The mini-batch order is PyTorch's, not the engine's, so the curves match Deeply's in shape, not
bit for bit.
"""
import argparse, base64, gzip, json, math, os, struct

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

HYPER = json.loads(r'''{HYPER}''')

LAYERS = json.loads(r'''{LAYERS}''')

DATA = json.loads(r'''{DATA}''')

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def tensor(b64, shape):
    return torch.frombuffer(bytearray(base64.b64decode(b64)), dtype=torch.float32).reshape(shape).clone()


class Polynomial(nn.Module):
    """y = sum_k c_k x^k (k = 0..degree), the fit lab's first model."""

    def __init__(self, degree):
        super().__init__()
        self.degree = degree
        self.weight = nn.Parameter(torch.zeros(degree + 1))

    def forward(self, x):
        powers = torch.stack([x ** k for k in range(self.degree + 1)], dim=-1)
        return (powers * self.weight).sum(-1)


class RNN(nn.Module):
    """Deeply's vanilla RNN over padded symbol indices (-1: padding, always at the end):
    h_t = tanh(x_t W_xh + h_{t-1} W_hh + b) on real steps; padding carries the state. Returns
    the last state (many:1) or every state (many:many, padding steps 0). Truncated BPTT(k): the
    gradient into h_{t-1} is cut after every k real steps counted back from a sequence's end
    (W_hh still learns from that step), as the engine does."""

    def __init__(self, spec):
        super().__init__()
        v, h = spec["in"], spec["hidden"]
        self.vocab, self.all_steps, self.recurrent, self.truncate = v, spec["all_steps"], spec["recurrent"], spec["truncate"]
        self.w_xh = nn.Parameter(tensor(spec["w_xh"], (v, h)))
        self.w_hh = nn.Parameter(tensor(spec["w_hh"], (h, h)), requires_grad=spec["recurrent"])
        self.bias = nn.Parameter(tensor(spec["bias"], (h,)))
        self.register_buffer("h0", tensor(spec["h0"], (h,)))

    def forward(self, idx):
        n, steps = idx.shape
        real = idx >= 0
        lengths = real.sum(1)
        x = nn.functional.one_hot(idx.clamp_min(0), self.vocab).float() * real.unsqueeze(-1)
        h = self.h0.expand(n, -1)
        outputs = []
        for t in range(steps):
            z = x[:, t] @ self.w_xh + self.bias
            if self.recurrent:
                h_in = h
                if self.truncate > 0:
                    cut = real[:, t] & ((lengths - t) % self.truncate == 0) & (t > 0)
                    h_in = torch.where(cut.unsqueeze(1), h.detach(), h)
                z = z + h_in @ self.w_hh
            new = torch.tanh(z)
            keep = real[:, t].unsqueeze(1)
            h = torch.where(keep, new, h)
            outputs.append(torch.where(keep, new, torch.zeros_like(new)))
        return torch.stack(outputs, 1) if self.all_steps else h


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
        elif kind == "Polynomial":
            m = Polynomial(spec["degree"])
            m.weight.data = tensor(spec["weight"], (spec["degree"] + 1,))
        elif kind in ("MaxPool2d", "AvgPool2d"):
            m = getattr(nn, kind)(spec["kernel"], stride=spec["stride"])
        elif kind == "LeakyReLU":
            m = nn.LeakyReLU(spec["negative_slope"])
        elif kind == "Dropout":
            m = nn.Dropout(spec["p"])
        elif kind == "RNN":
            m = RNN(spec)
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


def embedded(part):
    """One of DATA's sets: inputs (n, features) and targets (values (n, k) or classes)."""
    x = tensor(part["x"], part["shape"])
    y = part["y"]
    if "classes" in y:
        return TensorDataset(x, torch.tensor(y["classes"], dtype=torch.long))
    return TensorDataset(x, tensor(y["values"], y["shape"]))


def sequences(part):
    """One of DATA's sequence sets, padded to its longest row: inputs (n, T) symbol indices with
    -1 for padding; targets a class per row, or (n, T) next symbols with -100 (ignored) on padding."""
    rows = part["inputs"]
    steps = max(1, max((len(r) for r in rows), default=1))
    x = torch.full((len(rows), steps), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    if "classes" in part:
        return TensorDataset(x, torch.tensor(part["classes"], dtype=torch.long))
    y = torch.full((len(rows), steps), -100, dtype=torch.long)
    for i, r in enumerate(part["steps"]):
        y[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return TensorDataset(x, y)


def load(directory):
    """The training and test sets as Deeply prepares them. MNIST: p/255, standardised with the
    training set's mean and (population) standard deviation when HYPER["standardise"]."""
    if HYPER["data"] == "inline":
        return embedded(DATA["train"]), embedded(DATA["test"])
    if HYPER["data"] == "sequences":
        return sequences(DATA["train"]), sequences(DATA["test"])
    xs, ys, xt, yt = (read_idx(os.path.join(directory, f)) for f in FILES)
    xs, xt = xs.float() / 255.0, xt.float() / 255.0
    if HYPER["standardise"]:
        mean, std = xs.mean(), xs.std(unbiased=False).clamp_min(1e-6)
        xs, xt = (xs - mean) / std, (xt - mean) / std
    shape = (-1, *HYPER["input"])
    return TensorDataset(xs.reshape(shape), ys.long()), TensorDataset(xt.reshape(shape), yt.long())


def penalised(model):
    """The parameters Deeply's L1/L2 apply to: weights, not biases (nor batch norm's gamma, beta)."""
    weights = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, Polynomial))]
    return weights + [w for m in model.modules() if isinstance(m, RNN) for w in (m.w_xh, m.w_hh)]


def optimizer(model):
    """The penalties are added to the gradients by hand (see train_step), as Deeply does."""
    params = [p for p in model.parameters() if p.requires_grad]
    kind, lr, mom = HYPER["optimizer"], HYPER["lr"], HYPER["momentum"]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    if kind == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.0 if kind == "sgd" else mom, nesterov=kind == "nesterov")


def rate(step):
    """The learning rate's factor at a step (0-based): Deeply's schedules over HYPER["period"]."""
    period = max(1, HYPER["period"])
    if HYPER["schedule"] == "step":
        return 0.5 ** min(step // period, 200)
    if HYPER["schedule"] == "cosine":
        return (1.0 + math.cos(math.pi * (step % period) / period)) / 2.0
    return 1.0


def loss_function(reduction="mean"):
    if HYPER["loss"] == "cross_entropy":
        # -100: a padding step of a sequence (the mean is over real steps, as Deeply's).
        return nn.CrossEntropyLoss(ignore_index=-100, reduction=reduction)
    return {"mse": nn.MSELoss, "l1": nn.L1Loss, "bce_logits": nn.BCEWithLogitsLoss}[HYPER["loss"]](reduction=reduction)


def shaped(out, y):
    """Outputs and targets as the loss takes them: every step of a sequence is a row."""
    if HYPER["loss"] != "cross_entropy":
        return out.reshape(y.shape), y
    if out.dim() == 3:
        return out.reshape(-1, out.shape[-1]), y.reshape(-1)
    return out, y


def train_step(model, opt, loss_fn, x, y):
    """One step as Deeply takes it: loss, gradients, L2 (g += l2*w) and L1 (g += l1*sign(w)) on
    the weights, clipping by the global norm, the optimiser's update."""
    opt.zero_grad()
    loss = loss_fn(*shaped(model(x), y))
    loss.backward()
    with torch.no_grad():
        for w in penalised(model.module if hasattr(model, "module") else model):
            if w.grad is not None:
                w.grad += HYPER["l2"] * w + HYPER["l1"] * torch.sign(w)
    if HYPER["clip"] > 0:
        nn.utils.clip_grad_norm_(model.parameters(), HYPER["clip"])
    opt.step()
    return loss


def evaluate(model, test, device):
    """The test metric: accuracy for classifiers (by how the lab reads its outputs), else the loss."""
    model.eval()
    loss_fn, right, total, loss_sum = loss_function(), 0, 0, 0.0
    if HYPER["metric"] == "nll":
        # A language model: nats per predicted character over the test sequences.
        summed, count = loss_function("sum"), 0
        with torch.no_grad():
            for x, y in DataLoader(test, batch_size=1000):
                x, y = x.to(device), y.to(device)
                loss_sum += summed(*shaped(model(x), y)).item()
                count += (y != -100).sum().item()
        model.train()
        return {"test_nll": loss_sum / max(1, count)}
    with torch.no_grad():
        for x, y in DataLoader(test, batch_size=1000):
            x, y = x.to(device), y.to(device)
            out = model(x)
            metric = HYPER["metric"]
            if metric == "accuracy":
                right += (out.argmax(1) == y).sum().item()
            elif metric == "accuracy_logit":
                right += ((out.reshape(y.shape) > 0).float() == y).sum().item()
            elif metric == "accuracy_sign":
                right += ((out.reshape(y.shape) > 0) == (y > 0)).sum().item()
            elif metric == "accuracy_onehot":
                right += (out.argmax(1) == y.argmax(1)).sum().item()
            loss_sum += loss_fn(*shaped(out, y)).item() * len(x)
            total += len(x)
    model.train()
    if HYPER["metric"] == "loss":
        return {"test_loss": loss_sum / max(1, total)}
    return {"test_accuracy": right / max(1, total), "test_loss": loss_sum / max(1, total)}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="Train the exported Deeply run: " + HYPER["link"])
    parser.add_argument("--data", default=os.path.join(here, "data", HYPER.get("dataset", "")))
    parser.add_argument("--epochs", type=int, default=HYPER["epochs"])
    parser.add_argument("--steps", type=int, default=HYPER["steps"], help="stop after this many steps (0: the epochs)")
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
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    loss_fn = loss_function()
    step = 0
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        for x, y in loader:
            loss = train_step(model, opt, loss_fn, x.to(device), y.to(device))
            schedule.step()
            step += 1
            if rank == 0 and (step <= 10 or step % 100 == 0):
                print(json.dumps({"step": step, "loss": loss.item()}), flush=True)
            if args.steps and step >= args.steps:
                break
        last = bool(args.steps and step >= args.steps) or epoch + 1 == args.epochs
        if rank == 0 and (HYPER["data"] == "idx" or last):
            print(json.dumps({"epoch": epoch + 1, "step": step, **evaluate(model, test, device)}), flush=True)
        if args.steps and step >= args.steps:
            break
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
