//! The playground's session: builds the data and the network, trains, and paints the plane.

use super::config::{PlayLoss, PlaygroundConfig, EXTENT, GRID, NEURON_GRID};
use super::view::{NeuronMap, PlaygroundCommand, PlaygroundReply, PlaygroundView, SavedState};
use crate::data::images::Assets;
use crate::data::playground::{check_points, generate, PlayData, Point, Problem};
use crate::data::{Dataset, Targets};
use crate::lab::diagnose::{self, Diagnosis};
use crate::lab::params::Notice;
use crate::lab::snapshot::Metric;
use crate::lab::trainer::Trainer;
use crate::lab::{Applied, Lab, LabConfig, Report};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::ops::ActivationKind;
use crate::ops::Dense;
use crate::rng::Rng;
use crate::sequential::ModelState;
use crate::tensor::{self, Mode, Tensor};

/// The largest export file imported.
pub const MAX_IMPORT_BYTES: usize = 8 << 20;
/// Step and epoch counters above this can't be shown exactly by the page (JavaScript numbers).
pub const MAX_COUNTER: u64 = 1 << 53;

#[derive(Clone)]
pub struct PlaygroundLab {
    pub(crate) config: PlaygroundConfig,
    train_points: Vec<Point>,
    test_points: Vec<Point>,
    train: Dataset,
    test: Dataset,
    trainer: Trainer,
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

impl PlaygroundLab {
    pub fn with_custom(config: PlaygroundConfig, custom: Vec<Point>) -> Self {
        let mut data_rng = Rng::fork(config.seed, 1);
        let mut points = if config.data == PlayData::Custom { custom.clone() } else { generate(config.data, config.n, config.noise, &mut data_rng) };
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
                (Problem::Binary, Loss::Mse) => Targets::Values(tensor::from_vec(&[pts.len(), 1], pts.iter().map(|p| 2.0 * p.label - 1.0).collect())),
                _ => Targets::Values(tensor::from_vec(&[pts.len(), 1], pts.iter().map(|p| p.label).collect())),
            }
        };
        let train = Dataset { x: features_of(&config, &train_points), y: targets(&train_points) };
        let test = Dataset { x: features_of(&config, &test_points), y: targets(&test_points) };
        let model = config.build_model(&mut Rng::fork(config.seed, 2));
        let mut trainer = Trainer::new(model, config.opt, config.hyper(), config.head().2, config.bs, train.len().max(1), Rng::fork(config.seed, 3));
        trainer.schedule = config.sched;
        trainer.schedule_period = config.period;
        PlaygroundLab {
            grid: features_of(&config, &grid_points(GRID)),
            neuron_grid: features_of(&config, &grid_points(NEURON_GRID)),
            config,
            train_points,
            test_points,
            train,
            test,
            trainer,
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
            // Labels are checked on the way in; a row or column that doesn't exist is skipped.
            let Some(cell) = confusion.get_mut(truth).and_then(|row| row.get_mut(c)) else { continue };
            *cell += 1;
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
        for (i, &units) in self.config.hidden.iter().enumerate() {
            let y = self.trainer.model.tap(&format!("hidden {} activation", i + 1)).map(tensor::slice).unwrap_or(&[]);
            maps.push((0..units).map(|j| map_of(y, units, j)).collect());
        }
        maps
    }

    fn weights(&mut self) -> Vec<Vec<f32>> {
        self.trainer.model.layers_of::<Dense>().map(|d| tensor::slice(&d.w).to_vec()).collect()
    }

    /// Sets one weight (dense layer `layer`'s W at `[from, to]`), e.g. when clicked in the graph.
    pub fn set_weight(&mut self, layer: usize, from: usize, to: usize, value: f32) -> Result<(), String> {
        if !value.is_finite() {
            return Err(format!("a weight must be a finite number, not {value}"));
        }
        match self.trainer.model.layers_of_mut::<Dense>().nth(layer) {
            Some(d) if from < d.inputs && to < d.outputs => {
                d.w[[from, to]] = value;
                Ok(())
            }
            _ => Err(format!("no weight {from}→{to} in layer {layer}")),
        }
    }

    /// Replaces the user's own points and switches to them (a reset); refused (nothing changes)
    /// unless every point fits the problem they will train (see `check_points`).
    pub fn set_points(&mut self, points: Vec<Point>) -> Result<(), String> {
        check_points(&points, PlayData::Custom.problem())?;
        let config = PlaygroundConfig { data: PlayData::Custom, ..self.config.clone() };
        *self = PlaygroundLab::with_custom(config, points);
        Ok(())
    }

    /// The whole state as JSON: the link, the counters, every parameter and the user's points.
    /// Refused when a weight is no longer finite (JSON has no NaN: it would be written as
    /// `null`, which no import can take back) — reset or import instead.
    pub fn export(&mut self) -> Result<String, String> {
        let state = SavedState {
            link: LabConfig::Playground(self.config.clone()).to_query(),
            step: self.trainer.step,
            epoch: self.trainer.epoch,
            model: self.trainer.model.state(),
            points: self.custom.clone(),
        };
        if state.model.parameters.iter().chain(&state.model.buffers).flatten().any(|v| !v.is_finite()) {
            return Err("the weights are not finite numbers (the run diverged): reset it before exporting".into());
        }
        Ok(serde_json::to_string_pretty(&state).expect("plain data"))
    }

    /// A session restored from `export`'s JSON: the same config, points and weights.
    /// Every field is checked: the link (no notice), the counters (≤ 2⁵³, as the page's numbers
    /// can't hold more), the points (as if clicked in), the weights (finite, the right sizes).
    pub fn import(json: &str) -> Result<PlaygroundLab, String> {
        if json.len() > MAX_IMPORT_BYTES {
            return Err(format!("the file is larger than {} MB", MAX_IMPORT_BYTES >> 20));
        }
        let state: SavedState = serde_json::from_str(json).map_err(|e| format!("not a Deeply playground export: {e}"))?;
        if state.step > MAX_COUNTER || state.epoch > MAX_COUNTER || state.epoch > state.step {
            return Err(format!("the step and epoch counters ({}, {}) are not a run's", state.step, state.epoch));
        }
        let parsed = crate::lab::parse_link(&state.link);
        let LabConfig::Playground(config) = parsed.config else {
            return Err("the export is not of the playground".into());
        };
        if let Some(n) = parsed.notices.first() {
            return Err(format!("the export's link has a problem: {}", n.message));
        }
        check_points(&state.points, PlayData::Custom.problem()).map_err(|e| format!("the export's points: {e}"))?;
        let mut session = PlaygroundLab::with_custom(config, state.points);
        session.restore(&state.model, state.step, state.epoch)?;
        Ok(session)
    }

    /// Dead ReLU layers (on the training points, the last forward pass) and a loss stuck at
    /// guessing, for classification with cross-entropy.
    fn diagnose(&mut self) -> Vec<Diagnosis> {
        let c = &self.config;
        let mut found = Vec::new();
        for (i, &units) in c.hidden.iter().enumerate() {
            if c.activation(i) != ActivationKind::Relu {
                continue;
            }
            if let Some(y) = self.trainer.model.tap(&format!("hidden {} activation", i + 1)) {
                let (dead, _) = diagnose::unit_health(ActivationKind::Relu, tensor::slice(y), units);
                found.extend(diagnose::dead_units(i, dead, c.lr));
            }
        }
        let classes = match c.data.problem() {
            Problem::Binary => 2,
            Problem::MultiClass(k) => k,
            Problem::Regression => 0,
        };
        if classes > 0 && c.loss == PlayLoss::Ce && found.is_empty() {
            found.extend(diagnose::chance_level(self.trainer.last_loss, classes, self.trainer.step, c.lr));
        }
        found
    }

    /// Every parameter, in model order (for export).
    pub fn parameters(&mut self) -> Vec<Vec<f32>> {
        self.trainer.model.state().parameters
    }

    /// Restores a model state exported by `export` (same config), with the step counters.
    pub fn restore(&mut self, state: &ModelState, step: u64, epoch: u64) -> Result<(), String> {
        self.trainer.model.restore(state)?;
        self.trainer.resume_at(step, epoch);
        Ok(())
    }
}

impl Lab for PlaygroundLab {
    type Config = PlaygroundConfig;
    type View = PlaygroundView;
    type Command = PlaygroundCommand;
    type Reply = PlaygroundReply;

    fn new(config: PlaygroundConfig, _assets: &Assets) -> Result<Self, String> {
        Ok(PlaygroundLab::with_custom(config, Vec::new()))
    }

    fn config(&self) -> &PlaygroundConfig {
        &self.config
    }

    fn set_config(&mut self, config: PlaygroundConfig) {
        self.config = config;
    }

    fn export_data(&self) -> Option<(&crate::data::Dataset, &crate::data::Dataset)> {
        Some((&self.train, &self.test))
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
        if self.train.is_empty() {
            return;
        }
        for _ in 0..n {
            self.trainer.train_step(&self.train);
        }
    }

    fn cannot_train(&self) -> Option<String> {
        self.train.is_empty().then(|| "no training points yet: add points first (click the output plot or load a CSV)".to_string())
    }

    fn stop_reason(&mut self) -> Option<String> {
        let c = &self.config;
        if c.stopepochs > 0 && self.trainer.epoch >= c.stopepochs {
            Some(format!("stopped after {} epochs (Play trains on)", c.stopepochs))
        } else if c.stoploss > 0.0 && !self.test.is_empty() {
            let test_loss = self.trainer.evaluate(&self.test);
            (test_loss < c.stoploss).then(|| format!("stopped: test loss {test_loss:.4} < {} (Play trains on)", c.stoploss))
        } else {
            None
        }
    }

    fn rebuild(&mut self, key: &str, next: PlaygroundConfig) -> Result<Applied, String> {
        let custom = std::mem::take(&mut self.custom);
        if matches!(key, "act" | "acts" | "dropout" | "loss") {
            // Same weights, new activations / dropout / loss: rebuild around the current
            // parameters, keeping the counters (the optimiser's state starts afresh).
            let (state, step, epoch) = (self.trainer.model.state(), self.trainer.step, self.trainer.epoch);
            *self = PlaygroundLab::with_custom(next, custom);
            return Ok(match self.restore(&state, step, epoch) {
                Ok(()) => Applied::Live,
                Err(_) => Applied::Reset,
            });
        }
        *self = PlaygroundLab::with_custom(next, custom);
        Ok(Applied::Reset)
    }

    fn command(&mut self, command: PlaygroundCommand, _now_ms: &mut dyn FnMut() -> f64) -> Result<Option<PlaygroundReply>, Notice> {
        match command {
            PlaygroundCommand::SetPoints { points } => self.set_points(points).map_err(|m| Notice::new("points", m))?,
            PlaygroundCommand::SetWeight { layer, from, to, value } => self.set_weight(layer, from, to, value).map_err(|m| Notice::new("weight", m))?,
            PlaygroundCommand::Export => return Ok(Some(PlaygroundReply::Exported { json: self.export().map_err(|m| Notice::new("export", m))? })),
            PlaygroundCommand::Import { json } => *self = PlaygroundLab::import(&json).map_err(|m| Notice::new("import", m))?,
        }
        Ok(None)
    }

    fn report(&mut self) -> Report<PlaygroundView> {
        let test_loss = if self.test.is_empty() { f32::NAN } else { self.trainer.evaluate(&self.test) };
        let train_loss = if self.train.is_empty() { f32::NAN } else { self.trainer.evaluate(&self.train) };
        let layers = self.trainer.layer_snapshots();
        let diagnoses = if self.train.is_empty() { Vec::new() } else { self.diagnose() };
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
        Report { train_loss, test_loss, metrics, layers, diagnoses, view }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{build, parse_link, LabSession, Session};
    use crate::ops::ActivationKind;

    fn session(c: PlaygroundConfig) -> Session<PlaygroundLab> {
        Session::new(PlaygroundLab::with_custom(c, Vec::new()))
    }

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
        let mut s = session(PlaygroundConfig { data: PlayData::Spiral3, hidden: vec![6, 5], ..Default::default() });
        s.step(50);
        let snap = s.snapshot();
        let crate::lab::View::Playground(v) = &snap.view else { panic!("playground view") };
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
        let mut a = session(config.clone());
        a.step(300);
        let state = a.lab.trainer.model.state();
        let mut b = session(config);
        b.lab.restore(&state, a.steps(), a.epochs()).unwrap();
        assert_eq!(b.lab.parameters(), state.parameters);
        assert_eq!(a.snapshot().test_loss.to_bits(), b.snapshot().test_loss.to_bits());
        let short = ModelState { parameters: state.parameters[1..].to_vec(), buffers: vec![] };
        assert!(b.lab.restore(&short, 0, 0).is_err());
        b.lab.set_weight(0, 1, 2, 0.75).unwrap();
        assert_eq!(b.lab.parameters()[0][8 + 2], 0.75);
        assert!(b.lab.set_weight(0, 9, 0, 1.0).is_err());
        assert!(b.lab.set_weight(0, 1, 2, f32::NAN).is_err());
        // Through JSON, with own points.
        let mut c = session(PlaygroundConfig::default());
        c.lab.set_points(vec![Point { x: 1.0, y: 1.0, label: 1.0 }, Point { x: -1.0, y: 2.0, label: 0.0 }, Point { x: 2.0, y: -3.0, label: 1.0 }]).unwrap();
        c.step(10);
        let json = c.lab.export().unwrap();
        let mut d = PlaygroundLab::import(&json).unwrap();
        assert_eq!(d.parameters(), c.lab.parameters());
        assert_eq!(d.custom, c.lab.custom);
        assert_eq!(d.config, c.lab.config);
        assert_eq!(d.export().unwrap(), json);
        assert!(PlaygroundLab::import("{}").is_err());
    }

    #[test]
    fn activation_dropout_and_loss_change_mid_run_keeping_the_weights() {
        let mut s = session(PlaygroundConfig::default());
        s.step(100);
        let before = s.lab.parameters();
        for (key, value) in [("act", "relu"), ("acts", "sigmoid,tanh"), ("dropout", "0.2"), ("loss", "mse"), ("lr", "0.1")] {
            assert_eq!(s.set(key, value).unwrap(), Applied::Live, "{key}");
            assert_eq!(s.steps(), 100);
        }
        assert_eq!(s.lab.parameters(), before);
        assert_eq!(s.lab.config.act, ActivationKind::Relu);
        assert_eq!(s.set("hidden", "3").unwrap(), Applied::Reset);
        assert_eq!(s.steps(), 0);
    }

    #[test]
    fn dropout_and_stop_conditions() {
        let mut s = session(PlaygroundConfig { dropout: 0.5, stopepochs: 2, ..Default::default() });
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
