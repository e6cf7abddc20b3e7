//! Lab 1, "Fit a function": an MLP learns a 1-D function from samples.

use super::link::{comma_list, LabConfig, LabParams, Notice};
use super::snapshot::{FitView, Snapshot, View};
use super::trainer::Trainer;
use super::{Applied, LabSession};
use crate::data::fit::{FitData, FitTarget};
use crate::init::Init;
use crate::layer::Layer;
use crate::loss::Loss;
use crate::ops::{Activation, ActivationKind, Dense};
use crate::optim::{Hyper, OptimizerKind};
use crate::rng::Rng;
use crate::sequential::Sequential;
use crate::tensor::{self, Mode};
use serde::{Deserialize, Serialize};

/// Limits that keep any link from freezing a tab.
pub const MAX_HIDDEN_LAYERS: usize = 10;
pub const MAX_UNITS: usize = 1024;
pub const MAX_POINTS: usize = 10_000;

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

fn range(key: &str, v: f32, lo: f32, hi: f32, lo_open: bool) -> Result<(), Notice> {
    let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
    if ok {
        Ok(())
    } else {
        let l = if lo_open { "(" } else { "[" };
        Err(Notice { key: key.into(), message: format!("{key} must be a number in {l}{lo}, {hi}]") })
    }
}

fn count(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), Notice> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Notice { key: key.into(), message: format!("{key} must be a whole number from {lo} to {hi}") })
    }
}

impl LabParams for FitConfig {
    const LAB: &'static str = "fit";

    fn check(&self) -> Result<(), Notice> {
        count("n", self.n, 10, MAX_POINTS)?;
        range("noise", self.noise, 0.0, 1.0, false)?;
        if self.hidden.len() > MAX_HIDDEN_LAYERS || self.hidden.iter().any(|&u| u == 0 || u > MAX_UNITS) {
            return Err(Notice {
                key: "hidden".into(),
                message: format!("at most {MAX_HIDDEN_LAYERS} hidden layers of 1 to {MAX_UNITS} units"),
            });
        }
        range("alpha", self.alpha, 0.0, 1.0, false)?;
        range("sigma", self.sigma, 0.0, 10.0, true)?;
        range("lr", self.lr, 0.0, 10.0, true)?;
        if !(self.mom.is_finite() && (0.0..1.0).contains(&self.mom)) {
            return Err(Notice { key: "mom".into(), message: "mom must be a number in [0, 1)".into() });
        }
        count("bs", self.bs, 1, MAX_POINTS)?;
        range("l2", self.l2, 0.0, 10.0, false)?;
        range("clip", self.clip, 0.0, 1e6, false)?;
        if !matches!(self.loss, Loss::Mse | Loss::L1) {
            return Err(Notice { key: "loss".into(), message: "fitting a function uses mse or l1".into() });
        }
        Ok(())
    }
}

impl FitConfig {
    fn hyper(&self) -> Hyper {
        Hyper { lr: self.lr, momentum: self.mom, l2: self.l2, clip: self.clip }
    }

    /// The MLP `1 → hidden… → 1`, activation after every hidden layer.
    pub fn build_model(&self, rng: &mut Rng) -> Sequential {
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        let mut width = 1;
        for &units in &self.hidden {
            layers.push(Box::new(Dense::new(width, units, self.init, self.sigma, rng)));
            layers.push(Box::new(Activation::new(self.act, self.alpha)));
            width = units;
        }
        layers.push(Box::new(Dense::new(width, 1, self.init, self.sigma, rng)));
        Sequential::new(layers)
    }
}

/// Points on the fit chart.
const CURVE_POINTS: usize = 161;

pub struct FitSession {
    config: FitConfig,
    data: FitData,
    trainer: Trainer,
    ms_per_step: f64,
    curve_x: tensor::Tensor,
}

impl FitSession {
    pub fn new(config: FitConfig) -> Self {
        // Separate streams: changing the data size does not change the initial weights.
        let data = FitData::generate(config.target, config.n, config.noise, config.norm, &mut Rng::fork(config.seed, 1));
        let model = config.build_model(&mut Rng::fork(config.seed, 2));
        let trainer = Trainer::new(
            model,
            config.opt,
            config.hyper(),
            config.loss,
            config.bs,
            data.train.len(),
            Rng::fork(config.seed, 3),
        );
        let (lo, hi) = config.target.domain();
        let xs: Vec<f32> = (0..CURVE_POINTS)
            .map(|i| data.x_scaler.apply((lo + (hi - lo) * i as f64 / (CURVE_POINTS - 1) as f64) as f32))
            .collect();
        FitSession { config, data, trainer, ms_per_step: 0.0, curve_x: tensor::from_vec(&[CURVE_POINTS, 1], xs) }
    }

    fn view(&mut self) -> FitView {
        let (xs_scaled, ys) = {
            let out = self.trainer.model.forward(&self.curve_x, Mode::Eval);
            (tensor::slice(&self.curve_x).to_vec(), tensor::slice(out).to_vec())
        };
        let xs: Vec<f32> = xs_scaled.iter().map(|&x| self.data.x_scaler.invert(x)).collect();
        FitView {
            target: xs.iter().map(|&x| self.config.target.eval(x as f64) as f32).collect(),
            prediction: ys.iter().map(|&y| self.data.y_scaler.invert(y)).collect(),
            xs,
            train_points: self.data.train_points.clone(),
        }
    }
}

impl LabSession for FitSession {
    fn config(&self) -> LabConfig {
        LabConfig::Fit(self.config.clone())
    }

    fn step(&mut self, n: u64) -> f32 {
        for _ in 0..n {
            self.trainer.train_step(&self.data.train);
        }
        self.trainer.last_loss
    }

    fn steps(&self) -> u64 {
        self.trainer.step
    }

    fn epochs(&self) -> u64 {
        self.trainer.epoch
    }

    fn stop_at(&self) -> u64 {
        self.config.stop
    }

    fn set(&mut self, key: &str, value: &str) -> Result<Applied, String> {
        let next = match self.config().with_value(key, value).map_err(|n| n.message)? {
            LabConfig::Fit(c) => c,
        };
        let live = matches!(key, "lr" | "mom" | "l2" | "clip" | "bs" | "opt" | "stop");
        if live {
            self.trainer.hyper = next.hyper();
            self.trainer.batch_size = next.bs;
            self.trainer.set_optimizer(next.opt);
            self.config = next;
            Ok(Applied::Live)
        } else {
            *self = FitSession::new(next);
            Ok(Applied::Reset)
        }
    }

    fn set_timing(&mut self, ms_per_step: f64) {
        self.ms_per_step = ms_per_step;
    }

    fn snapshot(&mut self) -> Snapshot {
        let test_loss = self.trainer.evaluate(&self.data.test);
        let train_loss = self.trainer.evaluate(&self.data.train);
        let layers = self.trainer.layer_snapshots();
        let diverged = !self.trainer.last_loss.is_finite() && self.trainer.step > 0
            || !train_loss.is_finite()
            || self.trainer.params_non_finite();
        Snapshot {
            lab: "fit".into(),
            step: self.trainer.step,
            epoch: self.trainer.epoch,
            loss: self.trainer.last_loss,
            train_loss,
            test_loss,
            metrics: Vec::new(),
            grad_norm: self.trainer.grad_norm,
            ms_per_step: self.ms_per_step,
            diverged,
            layers,
            view: View::Fit(self.view()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::link::{parse_link, with_value};

    #[test]
    fn link_round_trip_restores_every_value() {
        let mut c = FitConfig::default();
        c.hidden = vec![8, 4, 2];
        c.act = ActivationKind::Relu;
        c.lr = 0.003;
        c.seed = 123_456_789_012;
        c.norm = false;
        let q = LabConfig::Fit(c.clone()).to_query();
        assert!(q.starts_with("lab=fit&"), "{q}");
        assert!(q.contains("hidden=8%2C4%2C2") || q.contains("hidden=8,4,2"), "{q}");
        let parsed = parse_link(&format!("http://127.0.0.1:8080/?{q}"));
        assert!(parsed.notices.is_empty(), "{:?}", parsed.notices);
        assert_eq!(parsed.config, LabConfig::Fit(c));
    }

    #[test]
    fn bad_values_name_their_key_and_fall_back() {
        let p = parse_link("lab=fit&lr=NaN&hidden=16,0&bs=abc&act=swish&zzz=1&seed=5&n=99999999999999999999");
        let keys: Vec<&str> = p.notices.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(keys, ["lr", "hidden", "bs", "act", "zzz", "n"]);
        assert!(p.notices[0].message.contains("lr=\"NaN\""), "{}", p.notices[0].message);
        assert!(p.notices[4].message.contains("unknown key"));
        let c = match p.config {
            LabConfig::Fit(c) => c,
        };
        let d = FitConfig::default();
        assert_eq!((c.lr, c.hidden.clone(), c.bs, c.act, c.seed), (d.lr, d.hidden.clone(), d.bs, d.act, 5));
        assert!(with_value(&d, "hidden", &"1,".repeat(11)).is_err());
        assert!(with_value(&d, "hidden", "1025").is_err());
        assert!(with_value(&d, "hidden", "").unwrap().hidden.is_empty());
    }

    #[test]
    fn live_changes_do_not_reset_and_others_do() {
        let mut s = FitSession::new(FitConfig::default());
        s.step(10);
        assert_eq!(s.set("lr", "0.5").unwrap(), Applied::Live);
        assert_eq!(s.steps(), 10);
        assert_eq!(s.trainer.hyper.lr, 0.5);
        assert!(s.set("lr", "-1").is_err());
        assert_eq!(s.set("hidden", "4").unwrap(), Applied::Reset);
        assert_eq!(s.steps(), 0);
    }

    #[test]
    fn snapshot_reports_every_layer() {
        let mut s = FitSession::new(FitConfig::default());
        s.step(5);
        let snap = s.snapshot();
        assert_eq!(snap.step, 5);
        assert_eq!(snap.layers.len(), 3);
        assert_eq!(snap.layers[0].name, "dense 1→16 + tanh");
        assert_eq!(snap.layers[0].params.len(), 2);
        assert!(snap.layers[0].params[0].update_ratio > 0.0);
        assert_eq!(snap.layers[0].activations.count, 200 * 16);
        assert!(snap.layers[0].activations.max <= 1.0);
        let View::Fit(v) = &snap.view else { panic!("fit view") };
        assert_eq!(v.xs.len(), CURVE_POINTS);
        assert!((v.target[0] - (-std::f32::consts::PI).sin()).abs() < 1e-5);
        assert!(!snap.diverged);
    }

    #[test]
    fn divergence_is_reported() {
        let mut c = FitConfig::default();
        c.opt = OptimizerKind::Sgd;
        c.lr = 10.0;
        c.act = ActivationKind::Relu;
        c.init = Init::Uniform;
        c.norm = false;
        c.hidden = vec![64, 64];
        let mut s = FitSession::new(c);
        s.step(200);
        assert!(s.snapshot().diverged);
    }
}
