//! Lab 3's config: two MLPs on MNIST or Fashion-MNIST trained in lockstep — the same layers,
//! the same initial weights, the same mini-batches — one plain, one with a batch-norm layer in
//! every hidden layer (before or after the activation).
//!
//! Hidden layer `i` is `dense(hidden[i])`, then (BN net) `batchnorm` and the activation in the
//! order `place` says; the output is a dense layer to the 10 classes, trained with softmax
//! cross-entropy. Weights: `init` (normal: `N(0, sigma²)`) times `gain`; biases 0.

use crate::data::images::ImageSet;
use crate::init::Init;
use crate::lab::budget::{self, Cost};
use crate::lab::params::{comma_list, LabParams, Notice, Training};
use crate::ops::{Activation, ActivationKind, BatchNorm, Dense};
use crate::optim::{Hyper, OptimizerKind, Schedule};
use crate::rng::Rng;
use crate::sequential::Sequential;
use serde::{Deserialize, Serialize};

pub const INPUTS: usize = 28 * 28;
pub const CLASSES: usize = 10;
pub const MAX_HIDDEN: usize = 6;
pub const MAX_UNITS: usize = 1024;
/// The smallest `sigma` and `gain` (see `check`).
pub const MIN_SPREAD: f32 = 1e-3;

/// Where the BN net normalises: the input of the activation (the paper's choice) or its output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    #[default]
    Before,
    After,
}

impl Place {
    pub const ALL: [Place; 2] = [Place::Before, Place::After];

    pub fn label(self) -> &'static str {
        match self {
            Place::Before => "before the activation",
            Place::After => "after the activation",
        }
    }
}

/// How the BN net is run for the accuracy shown: with its running statistics (evaluation mode,
/// correct) or with each test batch's own statistics (training mode, the pitfall).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShownMode {
    #[default]
    Eval,
    Train,
}

impl ShownMode {
    pub const ALL: [ShownMode; 2] = [ShownMode::Eval, ShownMode::Train];

    pub fn label(self) -> &'static str {
        match self {
            ShownMode::Eval => "evaluation mode (running statistics)",
            ShownMode::Train => "training mode (batch statistics)",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BnConfig {
    pub data: ImageSet,
    /// Hidden layer widths, e.g. `100,100,100`.
    #[serde(with = "comma_list")]
    pub hidden: Vec<usize>,
    pub act: ActivationKind,
    pub init: Init,
    /// σ of `init=normal`.
    pub sigma: f32,
    /// Multiplies every initial weight (too small: signals vanish; too large: they saturate).
    pub gain: f32,
    pub place: Place,
    /// Which of the pair train.
    pub nets: Nets,
    /// γ and β stay at 1 and 0: BN as pure standardisation.
    pub freeze: bool,
    pub opt: OptimizerKind,
    pub lr: f32,
    pub mom: f32,
    pub l2: f32,
    pub bs: usize,
    /// Standardise the pixels with the training set's mean and spread (else p/255 in [0, 1]).
    pub norm: bool,
    /// How the BN net's shown test accuracy is measured.
    pub mode: ShownMode,
    /// Steps between two evaluations on the 10,000 test images.
    pub eval: u64,
    /// The unit of the last hidden layer whose input percentiles are tracked (Figure 1 b, c).
    pub unit: usize,
    /// Pause after this many epochs (0: never).
    pub epochs: u64,
    pub seed: u64,
    /// Pause at this step (0: never).
    pub stop: u64,
}

impl Default for BnConfig {
    /// The seed's network: 784-128-10 ReLU, Adam 1e-3, batch 64.
    fn default() -> Self {
        BnConfig {
            data: ImageSet::Mnist,
            hidden: vec![128],
            act: ActivationKind::Relu,
            init: Init::He,
            sigma: 0.1,
            gain: 1.0,
            place: Place::Before,
            nets: Nets::Both,
            freeze: false,
            opt: OptimizerKind::Adam,
            lr: 0.001,
            mom: 0.9,
            l2: 0.0,
            bs: 64,
            norm: true,
            mode: ShownMode::Eval,
            eval: 500,
            unit: 0,
            epochs: 3,
            seed: 1,
            stop: 0,
        }
    }
}

/// Which of the pair train (one alone: the other keeps its initial weights; for speed and the
/// W2 benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nets {
    #[default]
    Both,
    Plain,
    Bn,
}

impl Nets {
    pub const ALL: [Nets; 3] = [Nets::Both, Nets::Plain, Nets::Bn];

    pub fn label(self) -> &'static str {
        match self {
            Nets::Both => "both, side by side",
            Nets::Plain => "the plain net only",
            Nets::Bn => "the BN net only",
        }
    }

    pub fn trains(self, net: Net) -> bool {
        matches!((self, net), (Nets::Both, _) | (Nets::Plain, Net::Plain) | (Nets::Bn, Net::Bn))
    }
}

/// Which of the two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Net {
    Plain,
    Bn,
}

impl Net {
    pub const BOTH: [Net; 2] = [Net::Plain, Net::Bn];

    pub fn label(self) -> &'static str {
        match self {
            Net::Plain => "plain",
            Net::Bn => "with BN",
        }
    }
}

impl BnConfig {
    /// Every layer's width from the input to the output.
    pub fn widths(&self) -> Vec<usize> {
        [&[INPUTS][..], &self.hidden, &[CLASSES]].concat()
    }

    pub fn hyper(&self) -> Hyper {
        Hyper { lr: self.lr, momentum: self.mom, l2: self.l2, l1: 0.0, clip: 0.0 }
    }

    /// Forward FLOPs and activations (values) per image of the BN net (the larger of the two).
    pub fn per_image(&self) -> (f64, f64) {
        let (flops, _, activations) = budget::dense_stack(&self.widths());
        let bn: f64 = self.hidden.iter().map(|&u| u as f64).sum();
        (flops + 8.0 * bn, activations + bn)
    }

    pub fn param_count(&self) -> usize {
        self.widths().windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Test images per evaluation chunk: 1,000, fewer for a costly model (each image runs
    /// through the plain net and twice through the BN net: evaluation and training mode).
    pub fn eval_chunk(&self) -> usize {
        ((budget::EVAL_CHUNK_FLOPS / (3.0 * self.per_image().0).max(1.0)) as usize).clamp(self.bs.min(1000), 1000)
    }

    /// Both networks together: two steps, two snapshots' statistics.
    pub fn cost(&self) -> Cost {
        let (forward, activations) = self.per_image();
        let batch = self.bs as f64;
        let params = self.param_count() as f64;
        Cost {
            step_flops: 2.0 * (Cost::TRAIN_FACTOR * forward * batch + 10.0 * params),
            snapshot_flops: 2.0 * (Cost::PER_ACTIVATION * activations * batch + 4.0 * params),
            bytes: 2.0 * (budget::parameter_bytes(params) + 4.0 * activations * (3.0 * batch + self.eval_chunk() as f64)),
        }
    }

    /// One network of the pair. Both draw their weights from the same stream in the same order
    /// (BN layers draw nothing), so every dense layer starts identical in both.
    /// The input is the flat image `(n, 784)`. Taps, for hidden layer `k` (from 1): `dense k`, `bn k` (BN net), `act k`; and `output`.
    /// `pre k` names the activation's input: `dense k`, or `bn k` when BN comes before it.
    pub fn build_model(&self, net: Net, rng: &mut Rng) -> Sequential {
        let mut b = Sequential::builder();
        let mut width = INPUTS;
        let layer = |inputs: usize, outputs: usize, rng: &mut Rng| {
            let mut d = Dense::new(inputs, outputs, self.init, self.sigma, rng);
            d.w.data_mut().iter_mut().for_each(|w| *w *= self.gain);
            d
        };
        for (i, &u) in self.hidden.iter().enumerate() {
            let k = i + 1;
            b.push(layer(width, u, rng)).tap(format!("dense {k}"));
            let bn = || {
                let mut bn = BatchNorm::new(u);
                bn.affine_trainable = !self.freeze;
                bn
            };
            if net == Net::Bn && self.place == Place::Before {
                b.push(bn()).tap(format!("bn {k}"));
            }
            b.push(Activation::new(self.act, 0.01)).tap(format!("act {k}"));
            if net == Net::Bn && self.place == Place::After {
                b.push(bn()).tap(format!("bn {k}"));
            }
            width = u;
        }
        b.push(layer(width, CLASSES, rng)).tap("output");
        b.build()
    }

    /// The tap holding hidden layer `k`'s activation input in `net`.
    pub fn pre_tap(&self, net: Net, k: usize) -> String {
        if net == Net::Bn && self.place == Place::Before {
            format!("bn {k}")
        } else {
            format!("dense {k}")
        }
    }
}

fn notice(key: &str, message: impl Into<String>) -> Notice {
    Notice { key: key.into(), message: message.into() }
}

impl LabParams for BnConfig {
    const LAB: &'static str = "batchnorm";
    const LIVE: &'static [&'static str] = &["lr", "mom", "l2", "bs", "opt", "mode", "eval", "unit", "epochs", "stop"];
    const STOP_KEYS: &'static [&'static str] = &["stop", "epochs"];

    fn seed(&self) -> u64 {
        self.seed
    }

    fn stop(&self) -> u64 {
        self.stop
    }

    fn training(&self) -> Training {
        Training { hyper: self.hyper(), batch_size: self.bs, optimizer: self.opt, schedule: Schedule::Constant, period: 1000 }
    }

    fn check(&self) -> Result<(), Notice> {
        if self.hidden.is_empty() || self.hidden.len() > MAX_HIDDEN || self.hidden.iter().any(|&u| u == 0 || u > MAX_UNITS) {
            return Err(notice("hidden", format!("1 to {MAX_HIDDEN} hidden layers of 1 to {MAX_UNITS} units (e.g. 100,100,100)")));
        }
        // Smaller spreads make the weights, or a deep plain net's activations and gradients,
        // subnormal floats, which x86 computes about 60× slower (gain 1e-40: 340 ms a step
        // instead of 5); at 1e-3 for both, six layers of 200 units step at full speed.
        if !(self.sigma.is_finite() && (MIN_SPREAD..=10.0).contains(&self.sigma)) {
            return Err(notice("sigma", "sigma must be a number in [0.001, 10]"));
        }
        if !(self.gain.is_finite() && (MIN_SPREAD..=100.0).contains(&self.gain)) {
            return Err(notice("gain", "gain must be a number in [0.001, 100]"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(notice("lr", "lr must be a number in (0, 10]"));
        }
        if !(self.mom.is_finite() && (0.0..1.0).contains(&self.mom)) {
            return Err(notice("mom", "mom must be a number in [0, 1)"));
        }
        if !(self.l2.is_finite() && (0.0..=1.0).contains(&self.l2)) {
            return Err(notice("l2", "l2 must be a number in [0, 1]"));
        }
        if self.bs == 1 {
            return Err(notice(
                "bs",
                "batch norm needs at least 2 examples per batch: with one, every value equals its batch mean, the variance is 0 and the normalised value carries no information",
            ));
        }
        if !(2..=1024).contains(&self.bs) {
            return Err(notice("bs", "bs must be a whole number from 2 to 1024"));
        }
        if !(10..=1_000_000).contains(&self.eval) {
            return Err(notice("eval", "eval must be a number of steps from 10 to 1,000,000"));
        }
        if self.unit >= *self.hidden.last().unwrap_or(&1) {
            return Err(notice("unit", format!("unit must be from 0 to {} (the units of the last hidden layer)", self.hidden.last().unwrap_or(&1) - 1)));
        }
        if self.epochs > 1000 {
            return Err(notice("epochs", "epochs must be from 0 (never stop) to 1000"));
        }
        let smaller_batch = BnConfig { bs: 32, ..self.clone() };
        let blame = if self.bs > 32 && smaller_batch.cost().check(["", "", ""]).is_ok() { "bs" } else { "hidden" };
        self.cost().check([blame, blame, "hidden"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use crate::tensor::{self, Mode};

    #[test]
    fn the_pair_shares_every_dense_layer_and_the_bn_net_adds_batch_norm() {
        let c = BnConfig { hidden: vec![100, 100, 100], act: ActivationKind::Sigmoid, ..BnConfig::default() };
        let mut plain = c.build_model(Net::Plain, &mut Rng::new(7));
        let bn = c.build_model(Net::Bn, &mut Rng::new(7));
        let weights = |m: &Sequential| m.layers_of::<Dense>().map(|d| d.w.data().to_vec()).collect::<Vec<_>>();
        assert_eq!(weights(&plain), weights(&bn));
        assert_eq!(plain.layers_of::<BatchNorm>().count(), 0);
        assert_eq!(bn.layers_of::<BatchNorm>().count(), 3);
        let x = tensor::zeros(&[5, INPUTS]);
        assert_eq!(plain.forward(&x, Mode::Train).shape(), &[5, 10]);
        assert_eq!(bn.output_shape(&[5, INPUTS]).unwrap(), vec![5, 10]);
        // BN before the activation: the activation's input is the BN output.
        assert_eq!(c.pre_tap(Net::Bn, 3), "bn 3");
        let after = BnConfig { place: Place::After, ..c.clone() };
        assert_eq!(after.pre_tap(Net::Bn, 3), "dense 3");
        let m = after.build_model(Net::Bn, &mut Rng::new(7));
        let bn1 = m.tap_index("bn 1").unwrap();
        assert_eq!(m.tap_index("act 1").unwrap() + 1, bn1);
    }

    #[test]
    fn a_batch_of_one_and_absurd_values_are_refused_by_name() {
        let key = |c: BnConfig| c.check().unwrap_err().key;
        assert_eq!(key(BnConfig { bs: 1, ..BnConfig::default() }), "bs");
        assert!(BnConfig { bs: 1, ..BnConfig::default() }.check().unwrap_err().message.contains("at least 2"));
        assert_eq!(key(BnConfig { hidden: vec![], ..BnConfig::default() }), "hidden");
        assert_eq!(key(BnConfig { gain: f32::NAN, ..BnConfig::default() }), "gain");
        // Subnormal weights would make every step ~60× slower: refused.
        assert_eq!(key(BnConfig { gain: 1e-40, ..BnConfig::default() }), "gain");
        assert_eq!(key(BnConfig { sigma: 1e-4, ..BnConfig::default() }), "sigma");
        assert!(BnConfig { gain: 1e-3, sigma: 1e-3, ..BnConfig::default() }.check().is_ok());
        assert_eq!(key(BnConfig { unit: 128, ..BnConfig::default() }), "unit");
        assert_eq!(key(BnConfig { hidden: vec![512], bs: 1024, ..BnConfig::default() }), "bs");
        assert_eq!(key(BnConfig { hidden: vec![1024; 6], bs: 1024, ..BnConfig::default() }), "hidden");
        assert!(BnConfig::default().check().is_ok());
    }
}
