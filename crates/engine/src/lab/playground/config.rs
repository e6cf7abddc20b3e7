//! The playground's config: 2-D classification and regression, on par with TensorFlow Playground.

use crate::data::playground::{Feature, PlayData, Problem};
use crate::init::Init;
use crate::lab::budget::{self, Cost};
use crate::lab::params::{comma_list, LabParams, Notice, Training};
use crate::loss::Loss;
use crate::ops::{Activation, ActivationKind, Dense, Dropout};
use crate::optim::{Hyper, OptimizerKind, Schedule};
use crate::rng::Rng;
use crate::sequential::Sequential;
use serde::{Deserialize, Serialize};

pub const MAX_LAYERS: usize = 8;
pub const MAX_UNITS: usize = 32;
/// Side of the decision-boundary grid.
pub const GRID: usize = 100;
/// Side of each neuron's own small heatmap.
pub const NEURON_GRID: usize = 24;
/// The plane shown: [−EXTENT, EXTENT]².
pub const EXTENT: f32 = 6.0;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Regularization {
    #[default]
    None,
    L1,
    L2,
}

/// The playground's config; field names are the link keys (TensorFlow Playground's keys are
/// translated to these by `link::translate_tf`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlaygroundConfig {
    pub data: PlayData,
    /// Jitter / spread, 0 to 0.5.
    pub noise: f32,
    /// Share of the points used for training, in percent.
    pub ptrain: u32,
    /// Number of generated points.
    pub n: usize,
    pub x: bool,
    pub y: bool,
    pub xsq: bool,
    pub ysq: bool,
    pub xy: bool,
    pub sinx: bool,
    pub siny: bool,
    pub cosx: bool,
    pub cosy: bool,
    #[serde(with = "comma_list")]
    pub hidden: Vec<usize>,
    /// Activation of every hidden layer…
    pub act: ActivationKind,
    /// …unless given per layer here (comma list, e.g. `relu,tanh`).
    #[serde(with = "activation_list")]
    pub acts: Vec<ActivationKind>,
    /// `mse` (squared error, as TensorFlow Playground) or `ce` (cross-entropy); regression
    /// datasets always use squared error.
    pub loss: PlayLoss,
    pub reg: Regularization,
    pub regrate: f32,
    /// Dropout probability after each hidden layer (0: off).
    pub dropout: f32,
    pub opt: OptimizerKind,
    pub lr: f32,
    pub mom: f32,
    pub bs: usize,
    pub sched: Schedule,
    /// Schedule period T in steps.
    pub period: u64,
    pub seed: u64,
    /// Pause at this step (0: never).
    pub stop: u64,
    /// Pause when the test loss falls below this (0: never).
    pub stoploss: f32,
    /// Pause after this many epochs (0: never).
    pub stopepochs: u64,
    /// Display: show test points on the heatmap.
    pub showtest: bool,
    /// Display: discretise the output (class colours instead of a gradient).
    pub discretize: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayLoss {
    Mse,
    Ce,
}

impl Default for PlaygroundConfig {
    fn default() -> Self {
        PlaygroundConfig {
            data: PlayData::Circle,
            noise: 0.0,
            ptrain: 50,
            n: 500,
            x: true,
            y: true,
            xsq: false,
            ysq: false,
            xy: false,
            sinx: true,
            siny: true,
            cosx: false,
            cosy: false,
            hidden: vec![8, 8],
            act: ActivationKind::Tanh,
            acts: Vec::new(),
            loss: PlayLoss::Ce,
            reg: Regularization::None,
            regrate: 0.0,
            dropout: 0.0,
            opt: OptimizerKind::Sgd,
            lr: 0.03,
            mom: 0.9,
            bs: 10,
            sched: Schedule::Constant,
            period: 1000,
            seed: 1,
            stop: 0,
            stoploss: 0.0,
            stopepochs: 0,
            showtest: false,
            discretize: false,
        }
    }
}

fn notice(key: &str, message: &str) -> Notice {
    Notice { key: key.into(), message: message.into() }
}

impl LabParams for PlaygroundConfig {
    const LAB: &'static str = "playground";
    const LIVE: &'static [&'static str] =
        &["lr", "mom", "reg", "regrate", "bs", "opt", "sched", "period", "stop", "stoploss", "stopepochs", "showtest", "discretize"];
    const STOP_KEYS: &'static [&'static str] = &["stop", "stoploss", "stopepochs"];

    fn seed(&self) -> u64 {
        self.seed
    }

    fn stop(&self) -> u64 {
        self.stop
    }

    fn training(&self) -> Training {
        Training { hyper: self.hyper(), batch_size: self.bs, optimizer: self.opt, schedule: self.sched, period: self.period }
    }

    /// TensorFlow Playground's keys (and its defaults, for a link of its own) become ours.
    fn base(pairs: &mut Vec<(String, String)>, _notices: &mut Vec<Notice>) -> Self {
        *pairs = crate::lab::tf_link::translate(std::mem::take(pairs));
        Self::default()
    }

    fn check(&self) -> Result<(), Notice> {
        let finite_in = |v: f32, lo: f32, hi: f32| v.is_finite() && v >= lo && v <= hi;
        if !finite_in(self.noise, 0.0, 0.5) {
            return Err(notice("noise", "noise must be a number in [0, 0.5]"));
        }
        if !(10..=90).contains(&self.ptrain) {
            return Err(notice("ptrain", "ptrain must be a percentage from 10 to 90"));
        }
        if !(20..=2000).contains(&self.n) {
            return Err(notice("n", "n must be a whole number from 20 to 2000"));
        }
        if self.features().is_empty() {
            return Err(notice("x", "at least one input feature must be on"));
        }
        if self.hidden.len() > MAX_LAYERS || self.hidden.iter().any(|&u| u == 0 || u > MAX_UNITS) {
            return Err(notice("hidden", &format!("at most {MAX_LAYERS} hidden layers of 1 to {MAX_UNITS} units")));
        }
        if self.acts.len() > MAX_LAYERS {
            return Err(notice("acts", &format!("at most {MAX_LAYERS} activations")));
        }
        if !finite_in(self.regrate, 0.0, 1.0) {
            return Err(notice("regrate", "regrate must be a number in [0, 1]"));
        }
        if !finite_in(self.dropout, 0.0, 0.9) {
            return Err(notice("dropout", "dropout must be a probability in [0, 0.9]"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(notice("lr", "lr must be a number in (0, 10]"));
        }
        if !(self.mom.is_finite() && (0.0..1.0).contains(&self.mom)) {
            return Err(notice("mom", "mom must be a number in [0, 1)"));
        }
        if !(1..=2000).contains(&self.bs) {
            return Err(notice("bs", "bs must be a whole number from 1 to 2000"));
        }
        if !(1..=10_000_000).contains(&self.period) {
            return Err(notice("period", "period must be a whole number of steps from 1 to 10,000,000"));
        }
        if !finite_in(self.stoploss, 0.0, 1e6) {
            return Err(notice("stoploss", "stoploss must be a number ≥ 0"));
        }
        self.cost().check(["bs", "n", "hidden"])
    }
}

impl PlaygroundConfig {
    /// The work and memory of a step and a snapshot (see `budget`): a snapshot runs the model over
    /// every point three times (losses, accuracy, confusion) and over the 100×100 and 24×24 grids.
    pub fn cost(&self) -> Cost {
        let widths = [&[self.features().len()][..], &self.hidden, &[self.head().0]].concat();
        let (forward, params, activations) = budget::dense_stack(&widths);
        let batch = self.bs.min(self.n) as f64;
        let evaluated = (3 * self.n + GRID * GRID + NEURON_GRID * NEURON_GRID) as f64;
        Cost {
            step_flops: Cost::TRAIN_FACTOR * forward * batch + 10.0 * params,
            snapshot_flops: (forward + Cost::PER_ACTIVATION * activations) * evaluated,
            bytes: budget::parameter_bytes(params) + 4.0 * activations * evaluated.max(3.0 * batch),
        }
    }

    /// The enabled input features, in their fixed order.
    pub fn features(&self) -> Vec<Feature> {
        let on = [self.x, self.y, self.xsq, self.ysq, self.xy, self.sinx, self.siny, self.cosx, self.cosy];
        Feature::ALL.iter().zip(on).filter(|(_, on)| *on).map(|(f, _)| *f).collect()
    }

    pub fn activation(&self, layer: usize) -> ActivationKind {
        self.acts.get(layer).copied().unwrap_or(self.act)
    }

    pub fn hyper(&self) -> Hyper {
        let (l1, l2) = match self.reg {
            Regularization::None => (0.0, 0.0),
            Regularization::L1 => (self.regrate, 0.0),
            Regularization::L2 => (0.0, self.regrate),
        };
        Hyper { lr: self.lr, momentum: self.mom, l2, l1, clip: 0.0 }
    }

    /// Output units, output activation and loss for the dataset's problem.
    pub fn head(&self) -> (usize, Option<ActivationKind>, Loss) {
        match (self.data.problem(), self.loss) {
            (Problem::Binary, PlayLoss::Ce) => (1, None, Loss::Bce),
            // As TensorFlow Playground: a tanh output against labels ±1.
            (Problem::Binary, PlayLoss::Mse) => (1, Some(ActivationKind::Tanh), Loss::Mse),
            (Problem::MultiClass(k), PlayLoss::Ce) => (k, None, Loss::Softmax),
            (Problem::MultiClass(k), PlayLoss::Mse) => (k, None, Loss::Mse),
            (Problem::Regression, _) => (1, None, Loss::Mse),
        }
    }

    /// Taps: `hidden k pre-activation`, `hidden k activation` (k from 1) and `output`.
    pub fn build_model(&self, rng: &mut Rng) -> Sequential {
        let mut b = Sequential::builder();
        let mut width = self.features().len();
        for (i, &units) in self.hidden.iter().enumerate() {
            b.push(Dense::new(width, units, Init::Xavier, 0.0, rng)).tap(format!("hidden {} pre-activation", i + 1));
            b.push(Activation::new(self.activation(i), 0.01)).tap(format!("hidden {} activation", i + 1));
            if self.dropout > 0.0 {
                b.push(Dropout::new(self.dropout, rng.next_u32() as u64));
            }
            width = units;
        }
        let (outputs, out_act, _) = self.head();
        b.push(Dense::new(width, outputs, Init::Xavier, 0.0, rng)).tap("output");
        if let Some(a) = out_act {
            b.push(Activation::new(a, 0.0)).tap("output activation");
        }
        b.build()
    }
}

/// Comma lists of activation names in links.
mod activation_list {
    use crate::ops::ActivationKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[ActivationKind], s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<String> = v.iter().map(|a| crate::lab::params::value_name(a)).collect();
        s.serialize_str(&names.join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ActivationKind>, D::Error> {
        let s = String::deserialize(d)?;
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                ActivationKind::ALL
                    .into_iter()
                    .find(|a| crate::lab::params::value_name(a) == p)
                    .ok_or_else(|| serde::de::Error::custom(format!("\"{p}\" is not an activation (relu, leaky, tanh, sigmoid, identity)")))
            })
            .collect()
    }
}
