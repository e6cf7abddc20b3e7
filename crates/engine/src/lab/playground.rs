//! The playground: 2-D classification and regression, on par with TensorFlow Playground.

use super::link::{comma_list, LabConfig, LabParams, Notice};
use super::snapshot::{Metric, Snapshot, View};
use super::trainer::Trainer;
use super::{Applied, LabSession};
use crate::data::playground::{generate, Feature, PlayData, Point, Problem};
use crate::data::{Dataset, Targets};
use crate::init::Init;
use crate::layer::Layer;
use crate::loss::Loss;
use crate::ops::{Activation, ActivationKind, Dense, Dropout};
use crate::optim::{Hyper, OptimizerKind, Schedule};
use crate::rng::Rng;
use crate::sequential::Sequential;
use crate::tensor::{self, Mode, Tensor};
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
        Ok(())
    }
}

impl PlaygroundConfig {
    /// The enabled input features, in their fixed order.
    pub fn features(&self) -> Vec<Feature> {
        let on = [self.x, self.y, self.xsq, self.ysq, self.xy, self.sinx, self.siny, self.cosx, self.cosy];
        Feature::ALL.iter().zip(on).filter(|(_, on)| *on).map(|(f, _)| *f).collect()
    }

    pub fn activation(&self, layer: usize) -> ActivationKind {
        self.acts.get(layer).copied().unwrap_or(self.act)
    }

    fn hyper(&self) -> Hyper {
        let (l1, l2) = match self.reg {
            Regularization::None => (0.0, 0.0),
            Regularization::L1 => (self.regrate, 0.0),
            Regularization::L2 => (0.0, self.regrate),
        };
        Hyper { lr: self.lr, momentum: self.mom, l2, l1, clip: 0.0 }
    }

    /// Output units, output activation and loss for the dataset's problem.
    fn head(&self) -> (usize, Option<ActivationKind>, Loss) {
        match (self.data.problem(), self.loss) {
            (Problem::Binary, PlayLoss::Ce) => (1, None, Loss::Bce),
            // As TensorFlow Playground: a tanh output against labels ±1.
            (Problem::Binary, PlayLoss::Mse) => (1, Some(ActivationKind::Tanh), Loss::Mse),
            (Problem::MultiClass(k), PlayLoss::Ce) => (k, None, Loss::Softmax),
            (Problem::MultiClass(k), PlayLoss::Mse) => (k, None, Loss::Mse),
            (Problem::Regression, _) => (1, None, Loss::Mse),
        }
    }

    pub fn build_model(&self, rng: &mut Rng) -> Sequential {
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        let mut width = self.features().len();
        for (i, &units) in self.hidden.iter().enumerate() {
            layers.push(Box::new(Dense::new(width, units, Init::Xavier, 0.0, rng)));
            layers.push(Box::new(Activation::new(self.activation(i), 0.01)));
            if self.dropout > 0.0 {
                layers.push(Box::new(Dropout::new(self.dropout, rng.next_u32() as u64)));
            }
            width = units;
        }
        let (outputs, out_act, _) = self.head();
        layers.push(Box::new(Dense::new(width, outputs, Init::Xavier, 0.0, rng)));
        if let Some(a) = out_act {
            layers.push(Box::new(Activation::new(a, 0.0)));
        }
        Sequential::new(layers)
    }
}

/// Comma lists of activation names in links.
mod activation_list {
    use crate::ops::ActivationKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[ActivationKind], s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<String> = v.iter().map(|a| crate::lab::link::value_name(a)).collect();
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
                    .find(|a| crate::lab::link::value_name(a) == p)
                    .ok_or_else(|| serde::de::Error::custom(format!("\"{p}\" is not an activation (relu, leaky, tanh, sigmoid, identity)")))
            })
            .collect()
    }
}

/// The playground's drawing data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundView {
    /// `GRID × GRID` cells, row 0 at y = +EXTENT: the output mapped to 0..=255 (binary: P(class 1)
    /// or (tanh + 1)/2; regression: (value + 1)/2; multi-class: the winning class' probability).
    #[serde(with = "serde_bytes")]
    pub heat: Vec<u8>,
    /// Multi-class only: the winning class of each cell.
    #[serde(with = "serde_bytes")]
    pub heat_class: Vec<u8>,
    pub classes: usize,
    pub train: Vec<Point>,
    pub test: Vec<Point>,
    /// Every hidden unit's output over the plane (`NEURON_GRID²`, 0..=255 over the unit's own
    /// range [lo, hi]), by layer; layer 0 holds the input features.
    pub neurons: Vec<Vec<NeuronMap>>,
    /// Dense weights by layer, `(inputs × outputs)` row-major, for drawing the graph.
    pub weights: Vec<Vec<f32>>,
    pub feature_names: Vec<String>,
    /// Confusion matrix on the test set, `[true][predicted]` (classification).
    pub confusion: Vec<Vec<u32>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NeuronMap {
    #[serde(with = "serde_bytes")]
    pub map: Vec<u8>,
    pub lo: f32,
    pub hi: f32,
}

/// What "Export" saves (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub link: String,
    pub step: u64,
    pub epoch: u64,
    pub parameters: Vec<Vec<f32>>,
    pub points: Vec<Point>,
}

pub struct PlaygroundSession {
    config: PlaygroundConfig,
    points: Vec<Point>,
    train_points: Vec<Point>,
    test_points: Vec<Point>,
    train: Dataset,
    test: Dataset,
    trainer: Trainer,
    ms_per_step: f64,
    /// A stop condition has paused the run; Play trains on past it (until a stop key changes).
    stop_fired: bool,
    grid: Tensor,
    neuron_grid: Tensor,
    /// Points added by hand or from a CSV (the `custom` dataset).
    pub custom: Vec<Point>,
}

fn features_of(config: &PlaygroundConfig, points: &[Point]) -> Tensor {
    let feats = config.features();
    let mut data = Vec::with_capacity(points.len() * feats.len());
    for p in points {
        data.extend(feats.iter().map(|f| f.eval(p.x, p.y)));
    }
    tensor::from_vec(&[points.len(), feats.len()], data)
}

fn grid_points(side: usize) -> Vec<Point> {
    let mut pts = Vec::with_capacity(side * side);
    for row in 0..side {
        for col in 0..side {
            let x = -EXTENT + 2.0 * EXTENT * (col as f32 + 0.5) / side as f32;
            let y = EXTENT - 2.0 * EXTENT * (row as f32 + 0.5) / side as f32;
            pts.push(Point { x, y, label: 0.0 });
        }
    }
    pts
}

impl PlaygroundSession {
    pub fn new(config: PlaygroundConfig) -> Self {
        Self::with_custom(config, Vec::new())
    }

    pub fn with_custom(config: PlaygroundConfig, custom: Vec<Point>) -> Self {
        let mut data_rng = Rng::fork(config.seed, 1);
        let mut points =
            if config.data == PlayData::Custom { custom.clone() } else { generate(config.data, config.n, config.noise, &mut data_rng) };
        data_rng.shuffle(&mut points);
        let n_train = ((points.len() * config.ptrain as usize) / 100).clamp(points.len().min(1), points.len());
        let (train_points, test_points) = (points[..n_train].to_vec(), points[n_train..].to_vec());
        let targets = |pts: &[Point]| -> Targets {
            match (config.data.problem(), config.head().2) {
                (Problem::MultiClass(_), Loss::Softmax) => Targets::Classes(pts.iter().map(|p| p.label as usize).collect()),
                (Problem::MultiClass(k), _) => {
                    let mut v = vec![0.0; pts.len() * k];
                    for (i, p) in pts.iter().enumerate() {
                        v[i * k + p.label as usize] = 1.0;
                    }
                    Targets::Values(tensor::from_vec(&[pts.len(), k], v))
                }
                (Problem::Binary, Loss::Mse) => {
                    Targets::Values(tensor::from_vec(&[pts.len(), 1], pts.iter().map(|p| 2.0 * p.label - 1.0).collect()))
                }
                _ => Targets::Values(tensor::from_vec(&[pts.len(), 1], pts.iter().map(|p| p.label).collect())),
            }
        };
        let train = Dataset { x: features_of(&config, &train_points), y: targets(&train_points) };
        let test = Dataset { x: features_of(&config, &test_points), y: targets(&test_points) };
        let model = config.build_model(&mut Rng::fork(config.seed, 2));
        let mut trainer = Trainer::new(model, config.opt, config.hyper(), config.head().2, config.bs, train.len().max(1), Rng::fork(config.seed, 3));
        trainer.schedule = config.sched;
        trainer.schedule_period = config.period;
        PlaygroundSession {
            grid: features_of(&config, &grid_points(GRID)),
            neuron_grid: features_of(&config, &grid_points(NEURON_GRID)),
            config,
            points,
            train_points,
            test_points,
            train,
            test,
            trainer,
            ms_per_step: 0.0,
            stop_fired: false,
            custom,
        }
    }

    pub fn config_ref(&self) -> &PlaygroundConfig {
        &self.config
    }

    /// The class (or value) the model predicts for each row of its last output.
    fn predictions(&self, out: &[f32]) -> Vec<usize> {
        let (k, _, loss) = self.config.head();
        out.chunks(k)
            .map(|row| {
                if k > 1 {
                    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
                } else if loss == Loss::Bce {
                    (row[0] > 0.0) as usize
                } else {
                    (row[0] > 0.0) as usize
                }
            })
            .collect()
    }

    fn accuracy_and_confusion(&mut self, test: bool) -> (f32, Vec<Vec<u32>>) {
        let classes = match self.config.data.problem() {
            Problem::Binary => 2,
            Problem::MultiClass(k) => k,
            Problem::Regression => return (f32::NAN, Vec::new()),
        };
        let (x, pts) = if test { (&self.test.x, &self.test_points) } else { (&self.train.x, &self.train_points) };
        if pts.is_empty() {
            return (f32::NAN, vec![vec![0; classes]; classes]);
        }
        let out = tensor::slice(self.trainer.model.forward(x, Mode::Eval)).to_vec();
        let predicted = self.predictions(&out);
        let mut confusion = vec![vec![0u32; classes]; classes];
        let mut right = 0;
        for (p, &c) in pts.iter().zip(&predicted) {
            let truth = p.label as usize;
            confusion[truth][c] += 1;
            right += (truth == c) as usize;
        }
        (right as f32 / pts.len() as f32, confusion)
    }

    fn heat(&mut self) -> (Vec<u8>, Vec<u8>, usize) {
        let (k, _, loss) = self.config.head();
        let out = tensor::slice(self.trainer.model.forward(&self.grid, Mode::Eval)).to_vec();
        let to_byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        if k > 1 {
            let mut heat = Vec::with_capacity(GRID * GRID);
            let mut class = Vec::with_capacity(GRID * GRID);
            for row in out.chunks(k) {
                let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
                let z: f32 = row.iter().map(|&v| crate::math::exp(v - m)).sum();
                let (best, _) = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
                heat.push(to_byte(1.0 / z));
                class.push(best as u8);
            }
            (heat, class, k)
        } else {
            let heat = out
                .iter()
                .map(|&v| match loss {
                    Loss::Bce => to_byte(crate::math::sigmoid(v)),
                    _ => to_byte((v + 1.0) / 2.0),
                })
                .collect();
            (heat, Vec::new(), if self.config.data.problem() == Problem::Regression { 0 } else { 2 })
        }
    }

    fn neuron_maps(&mut self) -> Vec<Vec<NeuronMap>> {
        let map_of = |values: &[f32], units: usize, j: usize| {
            let col: Vec<f32> = values.chunks(units).map(|r| r[j]).collect();
            let lo = col.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = col.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let span = if hi > lo { hi - lo } else { 1.0 };
            NeuronMap { map: col.iter().map(|&v| (((v - lo) / span) * 255.0 + 0.5) as u8).collect(), lo, hi }
        };
        let nf = self.config.features().len();
        let inputs = tensor::slice(&self.neuron_grid).to_vec();
        let mut maps = vec![(0..nf).map(|j| map_of(&inputs, nf, j)).collect::<Vec<_>>()];
        self.trainer.model.forward(&self.neuron_grid, Mode::Eval);
        let stride = if self.config.dropout > 0.0 { 3 } else { 2 };
        for (i, &units) in self.config.hidden.iter().enumerate() {
            let y = tensor::slice(self.trainer.model.layers[stride * i + 1].output()).to_vec();
            maps.push((0..units).map(|j| map_of(&y, units, j)).collect());
        }
        maps
    }

    fn weights(&mut self) -> Vec<Vec<f32>> {
        let mut all = Vec::new();
        self.trainer.model.visit_params(&mut |name, _, w, _| {
            if name == "W" {
                all.push(tensor::slice(w).to_vec());
            }
        });
        all
    }

    /// Sets one weight (layer `layer`'s W at `[from, to]`), e.g. when clicked in the graph.
    pub fn set_weight(&mut self, layer: usize, from: usize, to: usize, value: f32) -> Result<(), String> {
        let mut index = 0;
        let mut done = Err(format!("no weight {from}→{to} in layer {layer}"));
        self.trainer.model.visit_params(&mut |name, _, w, _| {
            if name == "W" {
                if index == layer && w.ndim() == 2 && from < w.shape()[0] && to < w.shape()[1] && value.is_finite() {
                    w[[from, to]] = value;
                    done = Ok(());
                }
                index += 1;
            }
        });
        done
    }

    /// Replaces the user's own points and switches to them (a reset).
    pub fn set_points(&mut self, points: Vec<Point>) {
        let config = PlaygroundConfig { data: PlayData::Custom, ..self.config.clone() };
        *self = PlaygroundSession::with_custom(config, points);
    }

    /// The whole state as JSON: the link, the counters, every parameter and the user's points.
    pub fn export(&mut self) -> String {
        let state = SavedState {
            link: LabConfig::Playground(self.config.clone()).to_query(),
            step: self.trainer.step,
            epoch: self.trainer.epoch,
            parameters: self.parameters(),
            points: self.custom.clone(),
        };
        serde_json::to_string_pretty(&state).expect("plain data")
    }

    /// A session restored from `export`'s JSON: the same config, points and weights.
    pub fn import(json: &str) -> Result<PlaygroundSession, String> {
        let state: SavedState = serde_json::from_str(json).map_err(|e| format!("not a Deeply playground export: {e}"))?;
        let parsed = super::parse_link(&state.link);
        let LabConfig::Playground(config) = parsed.config else { return Err("the export is not of the playground".into()) };
        if let Some(n) = parsed.notices.first() {
            return Err(format!("the export's link has a problem: {}", n.message));
        }
        let mut session = PlaygroundSession::with_custom(config, state.points);
        session.restore(&state.parameters, state.step, state.epoch)?;
        Ok(session)
    }

    /// Every parameter, in model order (for export).
    pub fn parameters(&mut self) -> Vec<Vec<f32>> {
        let mut all = Vec::new();
        self.trainer.model.visit_params(&mut |_, _, w, _| all.push(tensor::slice(w).to_vec()));
        all
    }

    /// Restores parameters exported by `parameters` (same config), with the step counters.
    pub fn restore(&mut self, params: &[Vec<f32>], step: u64, epoch: u64) -> Result<(), String> {
        let mut sizes = Vec::new();
        self.trainer.model.visit_params(&mut |_, _, w, _| sizes.push(w.len()));
        if sizes.len() != params.len() || sizes.iter().zip(params).any(|(&n, p)| n != p.len()) {
            return Err("the weights do not fit this network".into());
        }
        let mut i = 0;
        self.trainer.model.visit_params(&mut |_, _, w, _| {
            tensor::slice_mut(w).copy_from_slice(&params[i]);
            i += 1;
        });
        self.trainer.step = step;
        self.trainer.epoch = epoch;
        Ok(())
    }
}

impl LabSession for PlaygroundSession {
    fn config(&self) -> LabConfig {
        LabConfig::Playground(self.config.clone())
    }

    fn step(&mut self, n: u64) -> f32 {
        if self.train.is_empty() {
            return f32::NAN;
        }
        for _ in 0..n {
            self.trainer.train_step(&self.train);
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

    fn as_playground(&mut self) -> Option<&mut PlaygroundSession> {
        Some(self)
    }

    fn stop_reason(&mut self) -> Option<String> {
        if self.stop_fired {
            return None;
        }
        let c = &self.config;
        let reason = if c.stopepochs > 0 && self.trainer.epoch >= c.stopepochs {
            Some(format!("stopped after {} epochs (Play trains on)", c.stopepochs))
        } else if c.stoploss > 0.0 && !self.test.is_empty() {
            let test_loss = self.trainer.evaluate(&self.test);
            (test_loss < c.stoploss).then(|| format!("stopped: test loss {test_loss:.4} < {} (Play trains on)", c.stoploss))
        } else {
            None
        };
        self.stop_fired = reason.is_some();
        reason
    }

    fn set(&mut self, key: &str, value: &str) -> Result<Applied, String> {
        let next = match LabConfig::Playground(self.config.clone()).with_value(key, value).map_err(|n| n.message)? {
            LabConfig::Playground(c) => c,
            _ => unreachable!("a playground config stays one"),
        };
        let live = matches!(
            key,
            "lr" | "mom" | "reg" | "regrate" | "bs" | "opt" | "sched" | "period" | "stop" | "stoploss" | "stopepochs" | "showtest" | "discretize"
        );
        if live {
            if matches!(key, "stoploss" | "stopepochs") {
                self.stop_fired = false;
            }
            self.trainer.hyper = next.hyper();
            self.trainer.batch_size = next.bs;
            self.trainer.set_optimizer(next.opt);
            self.trainer.schedule = next.sched;
            self.trainer.schedule_period = next.period;
            self.config = next;
            Ok(Applied::Live)
        } else if matches!(key, "act" | "acts" | "dropout" | "loss") {
            // Same weights, new activations / dropout / loss: rebuild around the current
            // parameters, keeping the counters (the optimiser's state starts afresh).
            let (params, step, epoch) = (self.parameters(), self.trainer.step, self.trainer.epoch);
            let custom = std::mem::take(&mut self.custom);
            *self = PlaygroundSession::with_custom(next, custom);
            match self.restore(&params, step, epoch) {
                Ok(()) => Ok(Applied::Live),
                Err(_) => Ok(Applied::Reset),
            }
        } else {
            let custom = std::mem::take(&mut self.custom);
            *self = PlaygroundSession::with_custom(next, custom);
            Ok(Applied::Reset)
        }
    }

    fn set_timing(&mut self, ms_per_step: f64) {
        self.ms_per_step = ms_per_step;
    }

    fn snapshot(&mut self) -> Snapshot {
        let test_loss = if self.test.is_empty() { f32::NAN } else { self.trainer.evaluate(&self.test) };
        let train_loss = if self.train.is_empty() { f32::NAN } else { self.trainer.evaluate(&self.train) };
        let layers = self.trainer.layer_snapshots();
        let (train_acc, _) = self.accuracy_and_confusion(false);
        let (test_acc, confusion) = self.accuracy_and_confusion(true);
        let (heat, heat_class, classes) = self.heat();
        let view = PlaygroundView {
            heat,
            heat_class,
            classes,
            train: self.train_points.clone(),
            test: self.test_points.clone(),
            neurons: self.neuron_maps(),
            weights: self.weights(),
            feature_names: self.config.features().iter().map(|f| f.label().to_string()).collect(),
            confusion,
        };
        let mut metrics = vec![Metric { name: "lr".into(), value: self.trainer.current_lr() }];
        if !train_acc.is_nan() {
            metrics.push(Metric { name: "train_accuracy".into(), value: train_acc });
            metrics.push(Metric { name: "test_accuracy".into(), value: test_acc });
        }
        let diverged = !train_loss.is_finite() && !self.train.is_empty() || self.trainer.params_non_finite();
        let _ = &self.points;
        Snapshot {
            lab: "playground".into(),
            step: self.trainer.step,
            epoch: self.trainer.epoch,
            loss: self.trainer.last_loss,
            train_loss,
            test_loss,
            metrics,
            grad_norm: self.trainer.grad_norm(),
            ms_per_step: self.ms_per_step,
            diverged,
            layers,
            records: std::mem::take(&mut self.trainer.records),
            diagnoses: Vec::new(),
            view: View::Playground(Box::new(view)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{build, parse_link};

    #[test]
    fn spiral_with_the_default_network_reaches_test_loss_below_0_1() {
        let mut s = build(&parse_link("lab=playground&data=spiral").config);
        let mut reached = None;
        for _ in 0..50 {
            s.step(200);
            if s.snapshot().test_loss < 0.1 {
                reached = Some(s.steps());
                break;
            }
        }
        let at = reached.expect("test loss < 0.1 within 10,000 steps");
        assert!(at <= 10_000, "{at}");
    }

    #[test]
    fn snapshot_has_the_heatmap_neurons_weights_and_metrics() {
        let mut s = PlaygroundSession::new(PlaygroundConfig { data: PlayData::Spiral3, hidden: vec![6, 5], ..Default::default() });
        s.step(50);
        let snap = s.snapshot();
        let View::Playground(v) = &snap.view else { panic!("playground view") };
        assert_eq!(v.heat.len(), GRID * GRID);
        assert_eq!(v.heat_class.len(), GRID * GRID);
        assert_eq!(v.classes, 3);
        assert_eq!(v.neurons.iter().map(|l| l.len()).collect::<Vec<_>>(), [4, 6, 5]);
        assert!(v.neurons[1].iter().all(|n| n.map.len() == NEURON_GRID * NEURON_GRID));
        assert_eq!(v.weights.iter().map(|w| w.len()).collect::<Vec<_>>(), [4 * 6, 6 * 5, 5 * 3]);
        assert_eq!(v.confusion.len(), 3);
        assert_eq!(v.confusion.iter().flatten().sum::<u32>() as usize, v.test.len());
        assert_eq!(v.train.len() + v.test.len(), 498);
        let names: Vec<&str> = snap.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lr", "train_accuracy", "test_accuracy"]);
    }

    #[test]
    fn export_and_restore_round_trip_exactly() {
        let config = PlaygroundConfig { data: PlayData::Xor, ..Default::default() };
        let mut a = PlaygroundSession::new(config.clone());
        a.step(300);
        let params = a.parameters();
        let mut b = PlaygroundSession::new(config);
        b.restore(&params, a.steps(), a.epochs()).unwrap();
        assert_eq!(b.parameters(), params);
        assert_eq!(a.snapshot().test_loss.to_bits(), b.snapshot().test_loss.to_bits());
        assert!(b.restore(&params[1..], 0, 0).is_err());
        b.set_weight(0, 1, 2, 0.75).unwrap();
        assert_eq!(b.parameters()[0][8 + 2], 0.75);
        assert!(b.set_weight(0, 9, 0, 1.0).is_err());
        // Through JSON, with own points.
        let mut c = PlaygroundSession::new(PlaygroundConfig::default());
        c.set_points(vec![Point { x: 1.0, y: 1.0, label: 1.0 }, Point { x: -1.0, y: 2.0, label: 0.0 }, Point { x: 2.0, y: -3.0, label: 1.0 }]);
        c.step(10);
        let json = c.export();
        let mut d = PlaygroundSession::import(&json).unwrap();
        assert_eq!(d.parameters(), c.parameters());
        assert_eq!(d.custom, c.custom);
        assert_eq!(d.config, c.config);
        assert_eq!(d.export(), json);
        assert!(PlaygroundSession::import("{}").is_err());
    }

    #[test]
    fn activation_dropout_and_loss_change_mid_run_keeping_the_weights() {
        let mut s = PlaygroundSession::new(PlaygroundConfig::default());
        s.step(100);
        let before = s.parameters();
        for (key, value) in [("act", "relu"), ("acts", "sigmoid,tanh"), ("dropout", "0.2"), ("loss", "mse"), ("lr", "0.1")] {
            assert_eq!(s.set(key, value).unwrap(), Applied::Live, "{key}");
            assert_eq!(s.steps(), 100);
        }
        assert_eq!(s.parameters(), before);
        assert_eq!(s.config.act, ActivationKind::Relu);
        assert_eq!(s.set("hidden", "3").unwrap(), Applied::Reset);
        assert_eq!(s.steps(), 0);
    }

    #[test]
    fn dropout_and_stop_conditions() {
        let mut s = PlaygroundSession::new(PlaygroundConfig { dropout: 0.5, stopepochs: 2, ..Default::default() });
        assert!(s.stop_reason().is_none());
        s.step(60);
        assert!(s.stop_reason().unwrap().contains("2 epochs"));
        // Paused once; Play trains on past it, until a stop key is set again.
        s.step(1);
        assert!(s.stop_reason().is_none());
        assert_eq!(s.set("stopepochs", "2").unwrap(), Applied::Live);
        assert!(s.stop_reason().is_some());
        // Evaluation is deterministic (dropout off in eval mode).
        assert_eq!(s.snapshot().test_loss.to_bits(), s.snapshot().test_loss.to_bits());
    }
}
