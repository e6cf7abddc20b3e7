//! Lab 1's config, "Fit a function": an MLP (or a polynomial) learns a 1-D function from samples.

use crate::data::fit::FitTarget;
use crate::init::Init;
use crate::lab::budget::{self, Cost};
use crate::lab::params::{comma_list, count_in, in_range, LabParams, Notice, Training};
use crate::loss::Loss;
use crate::ops::{Activation, ActivationKind, Dense, Polynomial};
use crate::optim::{Hyper, OptimizerKind, Schedule};
use crate::rng::Rng;
use crate::sequential::Sequential;
use serde::{Deserialize, Serialize};

/// Limits that keep any link from freezing a tab.
pub const MAX_HIDDEN_LAYERS: usize = 10;
pub const MAX_UNITS: usize = 1024;
pub const MAX_POINTS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FitModel {
    Mlp,
    Poly,
}

impl FitModel {
    pub fn label(self) -> &'static str {
        match self {
            FitModel::Mlp => "neural network (MLP)",
            FitModel::Poly => "polynomial",
        }
    }
}

/// The fit lab's config. Field names are the share-link keys (see README).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitConfig {
    /// Target function.
    #[serde(rename = "fn")]
    pub target: FitTarget,
    /// Number of training points (test points: half as many).
    pub n: usize,
    /// Standard deviation of Gaussian noise on the training targets.
    pub noise: f32,
    /// Standardise x and y (fitted on the training data).
    pub norm: bool,
    /// Model family: an MLP or a polynomial with learnable coefficients.
    pub model: FitModel,
    /// Degree of the polynomial model.
    pub degree: usize,
    /// Hidden layer sizes, e.g. `16,16`.
    #[serde(with = "comma_list")]
    pub hidden: Vec<usize>,
    pub act: ActivationKind,
    /// LeakyReLU slope for x < 0.
    pub alpha: f32,
    pub init: Init,
    /// σ of the `normal` init.
    pub sigma: f32,
    pub opt: OptimizerKind,
    pub lr: f32,
    /// Momentum μ (momentum and Nesterov optimisers).
    pub mom: f32,
    /// Mini-batch size (clamped to the number of training points: full batch).
    pub bs: usize,
    /// L2 weight decay λ.
    pub l2: f32,
    /// Gradient clipping by global norm (0: off).
    pub clip: f32,
    pub loss: Loss,
    pub seed: u64,
    /// Pause automatically at this step (0: never).
    pub stop: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            target: FitTarget::Sin,
            n: 200,
            noise: 0.0,
            norm: true,
            model: FitModel::Mlp,
            degree: 3,
            hidden: vec![16, 16],
            act: ActivationKind::Tanh,
            alpha: 0.01,
            init: Init::Xavier,
            sigma: 0.1,
            opt: OptimizerKind::Adam,
            lr: 0.01,
            mom: 0.9,
            bs: 32,
            l2: 0.0,
            clip: 0.0,
            loss: Loss::Mse,
            seed: 1,
            stop: 0,
        }
    }
}

impl LabParams for FitConfig {
    const LAB: &'static str = "fit";
    const LIVE: &'static [&'static str] = &["lr", "mom", "l2", "clip", "bs", "opt", "stop"];

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
        count_in("n", self.n as u64, 10, MAX_POINTS as u64)?;
        in_range("noise", self.noise, 0.0, 1.0, false)?;
        count_in("degree", self.degree as u64, 1, 9)?;
        if self.hidden.len() > MAX_HIDDEN_LAYERS || self.hidden.iter().any(|&u| u == 0 || u > MAX_UNITS) {
            return Err(Notice { key: "hidden".into(), message: format!("at most {MAX_HIDDEN_LAYERS} hidden layers of 1 to {MAX_UNITS} units") });
        }
        in_range("alpha", self.alpha, 0.0, 1.0, false)?;
        // A smaller σ makes a deep net's activations and gradients subnormal floats, which x86
        // computes many times slower (σ 1e-10, 8 layers of 100: 452 ms to build, step and
        // snapshot instead of 31).
        in_range("sigma", self.sigma, 1e-3, 10.0, false)?;
        in_range("lr", self.lr, 0.0, 10.0, true)?;
        if !(self.mom.is_finite() && (0.0..1.0).contains(&self.mom)) {
            return Err(Notice { key: "mom".into(), message: "mom must be a number in [0, 1)".into() });
        }
        count_in("bs", self.bs as u64, 1, MAX_POINTS as u64)?;
        in_range("l2", self.l2, 0.0, 10.0, false)?;
        in_range("clip", self.clip, 0.0, 1e6, false)?;
        if !matches!(self.loss, Loss::Mse | Loss::L1) {
            return Err(Notice { key: "loss".into(), message: "fitting a function uses mse or l1".into() });
        }
        self.check_budget()
    }
}

impl FitConfig {
    /// The work and memory a step and a snapshot of this config take (see `budget`). A snapshot
    /// runs the model over the training set, the test set twice and the 241-point curve.
    pub fn cost(&self) -> Cost {
        let (forward, params, activations) = match self.model {
            FitModel::Poly => (2.0 * (self.degree + 1) as f64, (self.degree + 1) as f64, 1.0),
            FitModel::Mlp => budget::dense_stack(&[&[1][..], &self.hidden, &[1]].concat()),
        };
        let batch = self.bs.min(self.n) as f64;
        let evaluated = (2 * self.n + 241) as f64;
        Cost {
            step_flops: Cost::TRAIN_FACTOR * forward * batch + 10.0 * params,
            snapshot_flops: (forward + Cost::PER_ACTIVATION * activations) * evaluated,
            bytes: budget::parameter_bytes(params) + 4.0 * activations * (3.0 * batch).max(self.n as f64),
        }
    }

    /// The budgets, blaming the batch size or the points where a smaller one would do, else
    /// the hidden layers.
    fn check_budget(&self) -> Result<(), Notice> {
        let fits = |c: FitConfig| c.cost().check(["", "", ""]).is_ok();
        let step = if self.bs > 32 && fits(FitConfig { bs: 32, ..self.clone() }) { "bs" } else { "hidden" };
        let data = if self.n > 200 && fits(FitConfig { n: 200, ..self.clone() }) { "n" } else { "hidden" };
        self.cost().check([step, data, data])
    }

    pub fn hyper(&self) -> Hyper {
        Hyper { lr: self.lr, momentum: self.mom, l2: self.l2, l1: 0.0, clip: self.clip }
    }

    /// The MLP `1 → hidden… → 1` (activation after every hidden layer) or the polynomial. Taps:
    /// `hidden k pre-activation`, `hidden k activation` (k from 1) and `output`.
    pub fn build_model(&self, rng: &mut Rng) -> Sequential {
        let mut b = Sequential::builder();
        if self.model == FitModel::Poly {
            b.push(Polynomial::new(self.degree, self.init, self.sigma, rng)).tap("output");
            return b.build();
        }
        let mut width = 1;
        for (i, &units) in self.hidden.iter().enumerate() {
            b.push(Dense::new(width, units, self.init, self.sigma, rng)).tap(format!("hidden {} pre-activation", i + 1));
            b.push(Activation::new(self.act, self.alpha)).tap(format!("hidden {} activation", i + 1));
            width = units;
        }
        b.push(Dense::new(width, 1, self.init, self.sigma, rng)).tap("output");
        b.build()
    }
}
