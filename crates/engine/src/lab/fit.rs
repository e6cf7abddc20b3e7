//! Lab 1, "Fit a function": an MLP learns a 1-D function from samples.

use super::link::{comma_list, LabConfig, LabParams, Notice};
use super::diagnose::{self, Diagnosis, DiagnosisKind, Fix};
use super::snapshot::{FitView, Metric, Snapshot, View};
use super::trainer::Trainer;
use super::{Applied, LabSession};
use crate::data::fit::{FitData, FitTarget};
use crate::data::Targets;
use crate::init::Init;
use crate::layer::Layer;
use crate::loss::Loss;
use crate::ops::{Activation, ActivationKind, Dense, Polynomial};
use crate::optim::{Hyper, OptimizerKind};
use crate::rng::Rng;
use crate::sequential::Sequential;
use crate::tensor::{self, Mode};
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
        count("degree", self.degree, 1, 9)?;
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
        Hyper { lr: self.lr, momentum: self.mom, l2: self.l2, l1: 0.0, clip: self.clip }
    }

    /// The MLP `1 → hidden… → 1` (activation after every hidden layer) or the polynomial.
    pub fn build_model(&self, rng: &mut Rng) -> Sequential {
        if self.model == FitModel::Poly {
            return Sequential::new(vec![Box::new(Polynomial::new(self.degree, self.init, self.sigma, rng))]);
        }
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
const CURVE_POINTS: usize = 241;

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
        let (lo, hi) = config.target.extended_domain();
        let xs: Vec<f32> = (0..CURVE_POINTS)
            .map(|i| data.x_scaler.apply((lo + (hi - lo) * i as f64 / (CURVE_POINTS - 1) as f64) as f32))
            .collect();
        FitSession { config, data, trainer, ms_per_step: 0.0, curve_x: tensor::from_vec(&[CURVE_POINTS, 1], xs) }
    }

    /// The chart data, and the loss (in model units) on the extended range outside the
    /// training interval.
    fn view(&mut self) -> (FitView, f32) {
        let ys = tensor::slice(self.trainer.model.forward(&self.curve_x, Mode::Eval)).to_vec();
        let ys_scaler = self.data.y_scaler;
        let xs: Vec<f32> = tensor::slice(&self.curve_x).iter().map(|&x| self.data.x_scaler.invert(x)).collect();
        let target: Vec<f32> = xs.iter().map(|&x| self.config.target.eval(x as f64) as f32).collect();
        let (lo, hi) = self.config.target.domain();
        let (mut outside, mut count) = (0.0f64, 0usize);
        for i in 0..xs.len() {
            if (xs[i] as f64) < lo || (xs[i] as f64) > hi {
                let e = (ys[i] - ys_scaler.apply(target[i])) as f64;
                outside += e * e;
                count += 1;
            }
        }
        let view = FitView {
            prediction: ys.iter().map(|&y| ys_scaler.invert(y)).collect(),
            units: self.unit_contributions(),
            target,
            xs,
            domain: (lo as f32, hi as f32),
            train_points: self.data.train_points.clone(),
            batch: self.trainer.last_batch.iter().map(|&i| i as u32).collect(),
        };
        (view, (outside / count.max(1) as f64) as f32)
    }

    /// R² on the test set: `1 − MSE / Var(y)`, the same whatever the units (so runs with and
    /// without normalisation compare). Variance of the training targets, in model units.
    fn test_r2(&mut self) -> f32 {
        let Targets::Values(train_y) = &self.data.train.y else { return f32::NAN };
        let Targets::Values(test_y) = &self.data.test.y else { return f32::NAN };
        let ys = tensor::slice(train_y);
        let mean = ys.iter().map(|&v| v as f64).sum::<f64>() / ys.len() as f64;
        let var = ys.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / ys.len() as f64;
        let out = self.trainer.model.forward(&self.data.test.x, Mode::Eval);
        let p = tensor::slice(out);
        let t = tensor::slice(test_y);
        let mse = p.iter().zip(t).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>() / t.len() as f64;
        (1.0 - mse / var.max(1e-30)) as f32
    }

    /// `w_j · h_j(x)` for each unit of the last hidden layer, in the target's units (needs the
    /// forward pass on the curve to have just run).
    fn unit_contributions(&mut self) -> Vec<Vec<f32>> {
        let layers = &mut self.trainer.model.layers;
        if self.config.model != FitModel::Mlp || self.config.hidden.is_empty() || layers.len() < 3 {
            return Vec::new();
        }
        let units = *self.config.hidden.last().expect("non-empty");
        if units > 64 {
            return Vec::new();
        }
        let last = layers.len() - 1;
        let h = tensor::slice(layers[last - 1].output()).to_vec();
        let mut w = Vec::new();
        layers[last].visit_params(&mut |name, _, value, _| {
            if name == "W" {
                w = tensor::slice(value).to_vec();
            }
        });
        let n = h.len() / units;
        let scale = self.data.y_scaler.std;
        (0..units).map(|j| (0..n).map(|i| h[i * units + j] * w[j] * scale).collect()).collect()
    }

    /// Diagnoses from the layers' outputs on the training set (call right after evaluating it).
    fn diagnose(&mut self, train_loss: f32, diverged: bool) -> Vec<Diagnosis> {
        let c = &self.config;
        let mut found = Vec::new();
        if diverged {
            found.push(Diagnosis {
                kind: DiagnosisKind::NonFinite,
                layer: None,
                message: format!(
                    "The loss or a weight became NaN or infinite (train loss {train_loss}). The steps were too large: \
                     the learning rate is probably too high for these inputs — or the inputs are unnormalised."
                ),
                fix: Some(Fix { label: "Reset with learning rate ÷ 10".into(), key: "lr".into(), value: diagnose::scaled_lr(c.lr, 0.1), reset: true }),
            });
            return found;
        }
        if c.model == FitModel::Mlp {
            // The MLP is [dense, activation] per hidden layer, then the output dense.
            for (hidden, &units) in c.hidden.iter().enumerate() {
                let layer = &self.trainer.model.layers[2 * hidden + 1];
                let (dead, saturated) = diagnose::unit_health(c.act, tensor::slice(layer.output()), units);
                if dead > 0.5 {
                    found.push(Diagnosis {
                        kind: DiagnosisKind::DeadUnits,
                        layer: Some(hidden),
                        message: format!(
                            "Layer {}: {:.0} % of its ReLUs are dead — never positive on any training point, so no gradient \
                             reaches them and they never recover. Typical causes: all-positive init (uniform [0, 1)) on \
                             unnormalised inputs, or a step that was too large.",
                            hidden + 1,
                            dead * 100.0
                        ),
                        fix: Some(Fix { label: "Reset with He init".into(), key: "init".into(), value: "he".into(), reset: true }),
                    });
                }
                if saturated > 0.5 {
                    found.push(Diagnosis {
                        kind: DiagnosisKind::Saturated,
                        layer: Some(hidden),
                        message: format!(
                            "Layer {}: {:.0} % of its {} units are saturated (flat ends of the curve on ≥ 90 % of the points), \
                             where the gradient is nearly zero. Normalise the inputs or use a smaller init.",
                            hidden + 1,
                            saturated * 100.0,
                            c.act.label()
                        ),
                        fix: (!c.norm).then(|| Fix { label: "Reset with standardised x and y".into(), key: "norm".into(), value: "true".into(), reset: true }),
                    });
                }
            }
        }
        // Dead or saturated units explain tiny updates better than the learning rate does.
        if self.trainer.step >= 20 && found.is_empty() {
            let ratios: Vec<f32> = self.trainer.ratios().iter().step_by(if c.model == FitModel::Mlp { 2 } else { 1 }).copied().collect();
            if let Some((i, &r)) = ratios.iter().enumerate().find(|(_, &r)| r > diagnose::RATIO_HIGH) {
                found.push(Diagnosis {
                    kind: DiagnosisKind::UpdateTooLarge,
                    layer: Some(i),
                    message: format!("Layer {}: each step changes the weights by {r:.1e} of their size (healthy ≈ 1e-3): the learning rate is too high.", i + 1),
                    fix: Some(Fix { label: "Learning rate ÷ 10".into(), key: "lr".into(), value: diagnose::scaled_lr(c.lr, 0.1), reset: false }),
                });
            } else if let Some((i, &r)) = ratios.iter().enumerate().find(|(_, &r)| r > 0.0 && r < diagnose::RATIO_LOW) {
                if train_loss > 1e-3 {
                    found.push(Diagnosis {
                        kind: DiagnosisKind::UpdateTooSmall,
                        layer: Some(i),
                        message: format!("Layer {}: each step changes the weights by only {r:.1e} of their size (healthy ≈ 1e-3): learning crawls — the learning rate is probably too low.", i + 1),
                        fix: Some(Fix { label: "Learning rate × 10".into(), key: "lr".into(), value: diagnose::scaled_lr(c.lr, 10.0), reset: false }),
                    });
                }
            }
        }
        found
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
            _ => unreachable!("a fit config stays one"),
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
        let diagnoses = self.diagnose(train_loss, diverged);
        let r2 = self.test_r2();
        let (view, extended_loss) = self.view();
        Snapshot {
            lab: "fit".into(),
            step: self.trainer.step,
            epoch: self.trainer.epoch,
            loss: self.trainer.last_loss,
            train_loss,
            test_loss,
            metrics: vec![
                Metric { name: "test_r2".into(), value: r2 },
                Metric { name: "extended_loss".into(), value: extended_loss },
            ],
            grad_norm: self.trainer.grad_norm(),
            ms_per_step: self.ms_per_step,
            diverged,
            layers,
            records: std::mem::take(&mut self.trainer.records),
            diagnoses,
            view: View::Fit(view),
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
        let LabConfig::Fit(c) = p.config else { panic!("fit") };
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
        assert_eq!(snap.records.iter().map(|r| r.step).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(snap.records[4].loss, snap.loss);
        assert_eq!(snap.records[0].grads.len(), 6);
        assert!(s.snapshot().records.is_empty(), "records are handed over once");
        assert_eq!(snap.layers.len(), 3);
        assert_eq!(snap.layers[0].name, "dense 1→16 + tanh");
        assert_eq!(snap.layers[0].params.len(), 2);
        assert!(snap.layers[0].params[0].update_ratio > 0.0);
        assert_eq!(snap.layers[0].activations.count, 200 * 16);
        assert!(snap.layers[0].activations.max <= 1.0);
        let View::Fit(v) = &snap.view else { panic!("fit view") };
        assert_eq!(v.xs.len(), CURVE_POINTS);
        assert!((v.xs[0] + 2.0 * std::f32::consts::PI).abs() < 1e-5, "the curve covers the extended range");
        assert!(v.target[0].abs() < 1e-5);
        assert_eq!(v.batch.len(), 32);
        assert_eq!(v.units.len(), 16);
        // The unit contributions plus the output bias rebuild the prediction.
        let b = snap.layers[2].params[1].value.mean;
        let scaler = s.data.y_scaler;
        let mid = CURVE_POINTS / 2;
        let sum: f32 = v.units.iter().map(|u| u[mid]).sum::<f32>() + b * scaler.std + scaler.mean;
        assert!((sum - v.prediction[mid]).abs() < 1e-4, "{sum} vs {}", v.prediction[mid]);
        assert_eq!(snap.metrics[0].name, "test_r2");
        assert_eq!(snap.metrics[1].name, "extended_loss");
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
