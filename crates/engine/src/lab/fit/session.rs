//! Lab 1's session: trains the fit lab's model on samples of the target, and reports the curve,
//! unit contributions, R² and diagnoses.

use super::config::{FitConfig, FitModel};
use super::view::FitView;
use crate::data::fit::FitData;
use crate::data::images::Assets;
use crate::data::Targets;
use crate::lab::diagnose::{self, Diagnosis, DiagnosisKind, Fix};
use crate::lab::snapshot::Metric;
use crate::lab::trainer::Trainer;
use crate::lab::{Applied, Lab, NoCommand, Report};
use crate::layer::Layer;
use crate::ops::Dense;
use crate::rng::Rng;
use crate::tensor::{self, Mode};

/// Points on the fit chart.
const CURVE_POINTS: usize = 241;

#[derive(Clone)]
pub struct FitLab {
    config: FitConfig,
    pub(crate) data: FitData,
    pub(crate) trainer: Trainer,
    curve_x: tensor::Tensor,
}

impl FitLab {
    pub fn create(config: FitConfig) -> Self {
        // Separate streams: changing the data size does not change the initial weights.
        let data = FitData::generate(config.target, config.n, config.noise, config.norm, &mut Rng::fork(config.seed, 1));
        let model = config.build_model(&mut Rng::fork(config.seed, 2));
        let trainer = Trainer::new(model, config.opt, config.hyper(), config.loss, config.bs, data.train.len(), Rng::fork(config.seed, 3));
        let (lo, hi) = config.target.extended_domain();
        let xs: Vec<f32> = (0..CURVE_POINTS).map(|i| data.x_scaler.apply((lo + (hi - lo) * i as f64 / (CURVE_POINTS - 1) as f64) as f32)).collect();
        FitLab { config, data, trainer, curve_x: tensor::from_vec(&[CURVE_POINTS, 1], xs) }
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
        let Targets::Values(train_y) = &self.data.train.y else {
            return f32::NAN;
        };
        let Targets::Values(test_y) = &self.data.test.y else {
            return f32::NAN;
        };
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
        let Some(&units) = self.config.hidden.last().filter(|_| self.config.model == FitModel::Mlp) else {
            return Vec::new();
        };
        if units > 64 {
            return Vec::new();
        }
        let model = &self.trainer.model;
        let (Some(h), Some(out)) = (model.tap(&format!("hidden {} activation", self.config.hidden.len())), model.tapped::<Dense>("output")) else {
            return Vec::new();
        };
        let (h, w) = (tensor::slice(h), tensor::slice(&out.w));
        let n = h.len() / units;
        let scale = self.data.y_scaler.std;
        (0..units).map(|j| (0..n).map(|i| h[i * units + j] * w[j] * scale).collect()).collect()
    }

    /// Diagnoses from the layers' outputs on the training set (call right after evaluating it).
    /// A diverged run gets the shared diagnosis instead (see `Session`).
    fn diagnose(&mut self, train_loss: f32) -> Vec<Diagnosis> {
        let c = &self.config;
        let mut found = Vec::new();
        if c.model == FitModel::Mlp {
            for (hidden, &units) in c.hidden.iter().enumerate() {
                let Some(y) = self.trainer.model.tap(&format!("hidden {} activation", hidden + 1)) else {
                    continue;
                };
                let (dead, saturated) = diagnose::unit_health(c.act, tensor::slice(y), units);
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
            let ratios = self.trainer.weight_ratios();
            if let Some((i, &r)) = ratios.iter().enumerate().find(|(_, &r)| r > diagnose::RATIO_HIGH) {
                found.push(Diagnosis {
                    kind: DiagnosisKind::UpdateTooLarge,
                    layer: Some(i),
                    message: format!(
                        "Layer {}: each step changes the weights by {r:.1e} of their size (healthy ≈ 1e-3): the learning rate is too high.",
                        i + 1
                    ),
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

impl Lab for FitLab {
    type Config = FitConfig;
    type View = FitView;
    type Command = NoCommand;
    type Reply = NoCommand;

    fn new(config: FitConfig, _assets: &Assets) -> Result<Self, String> {
        Ok(FitLab::create(config))
    }

    fn config(&self) -> &FitConfig {
        &self.config
    }

    fn set_config(&mut self, config: FitConfig) {
        self.config = config;
    }

    fn export_data(&self) -> Option<(&crate::data::Dataset, &crate::data::Dataset)> {
        Some((&self.data.train, &self.data.test))
    }

    fn trace(&self, example: usize) -> Result<crate::lab::vjp::VjpView, String> {
        crate::lab::vjp::trace(&self.trainer, example)
    }

    fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    fn trainer_mut(&mut self) -> &mut Trainer {
        &mut self.trainer
    }

    fn train(&mut self, n: u64) {
        for _ in 0..n {
            self.trainer.train_step(&self.data.train);
        }
    }

    fn rebuild(&mut self, _key: &str, next: FitConfig) -> Result<Applied, String> {
        *self = FitLab::create(next);
        Ok(Applied::Reset)
    }

    /// 10 per second: each redraws four charts and the layer histograms on the page, which at
    /// 30 per second cost the page its frame rate (measured ~36 fps in headless Chromium).
    fn snapshot_interval_ms(&self) -> f64 {
        1000.0 / 10.0
    }

    fn report(&mut self) -> Report<FitView> {
        let test_loss = self.trainer.evaluate(&self.data.test);
        let train_loss = self.trainer.evaluate(&self.data.train);
        let layers = self.trainer.layer_snapshots();
        let diagnoses = self.diagnose(train_loss);
        let r2 = self.test_r2();
        let (view, extended_loss) = self.view();
        Report {
            train_loss,
            test_loss,
            metrics: vec![Metric { name: "test_r2".into(), value: r2 }, Metric { name: "extended_loss".into(), value: extended_loss }],
            layers,
            diagnoses,
            view,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::lab::params::with_value;
    use crate::lab::{parse_link, LabConfig, LabSession, Session};
    use crate::ops::ActivationKind;
    use crate::optim::OptimizerKind;

    fn session(c: FitConfig) -> Session<FitLab> {
        Session::new(FitLab::create(c))
    }

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
        let mut s = session(FitConfig::default());
        s.step(10);
        assert_eq!(s.set("lr", "0.5").unwrap(), Applied::Live);
        assert_eq!(s.steps(), 10);
        assert_eq!(s.lab.trainer.hyper.lr, 0.5);
        assert!(s.set("lr", "-1").is_err());
        assert_eq!(s.set("hidden", "4").unwrap(), Applied::Reset);
        assert_eq!(s.steps(), 0);
    }

    #[test]
    fn snapshot_reports_every_layer() {
        let mut s = session(FitConfig::default());
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
        let crate::lab::View::Fit(v) = &snap.view else { panic!("fit view") };
        assert_eq!(v.xs.len(), CURVE_POINTS);
        assert!((v.xs[0] + 2.0 * std::f32::consts::PI).abs() < 1e-5, "the curve covers the extended range");
        assert!(v.target[0].abs() < 1e-5);
        assert_eq!(v.batch.len(), 32);
        assert_eq!(v.units.len(), 16);
        // The unit contributions plus the output bias rebuild the prediction.
        let b = snap.layers[2].params[1].value.mean;
        let scaler = s.lab.data.y_scaler;
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
        let mut s = session(c);
        s.step(200);
        assert!(s.snapshot().diverged);
    }
}
