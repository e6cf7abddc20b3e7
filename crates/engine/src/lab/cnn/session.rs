//! Lab 2's session: trains a CNN on image data, evaluates the 10,000 test images every `eval`
//! steps (in chunks, so the worker stays responsive; training waits for the evaluation, so the
//! run is the same however the driver slices its calls), and reports filters, feature maps,
//! accuracy curves, a confusion matrix and the most confidently wrong test images.

use super::config::{CnnConfig, CLASSES, SIDE};
use super::view::{AccuracyPoint, CnnCommand, CnnReply, CnnView, FeatureMaps, FilterBank, Probe, Race, WrongImage};
use crate::data::images::{scale_into, Assets, ImagePair, ImageSet};
use crate::data::Source;
use crate::lab::accel::{RaceLane, RaceLayer, RaceProbe};
use crate::lab::diagnose::{self, Diagnosis};
use crate::lab::evalcopy::EvalCopy;
use crate::lab::params::Notice;
use crate::lab::snapshot::Metric;
use crate::lab::trainer::Trainer;
use crate::lab::{Applied, Lab, Report};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::math;
use crate::ops::ActivationKind;
use crate::ops::{Conv2d, ConvImpl};
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};
use std::sync::Arc;

/// Confidently wrong test images kept for display.
const WRONG_SHOWN: usize = 12;
/// Accuracy points kept (every snapshot carries them): past this, every other older one goes.
const MAX_HISTORY: usize = 400;
/// Races the two convolutions at most this often while training…
const RACE_EVERY_MS: f64 = 1500.0;
/// …and spends at most about this share of the time on them.
const RACE_SHARE: f64 = 0.1;

/// A test evaluation in progress (or finished).
#[derive(Clone, Debug, Default)]
struct Evaluation {
    next: usize,
    right: usize,
    loss_sum: f64,
    confusion: Vec<u32>,
    wrong: Vec<(f32, usize, usize, usize)>,
}

#[derive(Clone)]
pub struct CnnLab {
    config: CnnConfig,
    images: Arc<ImagePair>,
    /// Input scaling `(mean, std)`.
    scaling: (f32, f32),
    trainer: Trainer,
    running_eval: Option<Evaluation>,
    last_eval: Option<Evaluation>,
    history: Vec<AccuracyPoint>,
    /// Mini-batch accuracy and loss sums since the last accuracy point.
    batch_right: u64,
    batch_seen: u64,
    batch_loss_sum: f64,
    batch_count: u64,
    race: Option<Race>,
    /// The last race's mini-batch per conv layer, until a driver with a GPU takes it.
    race_probe: Option<RaceProbe>,
    /// When the last race ended and how long it took, on the driver's clock (ms).
    last_race_at: f64,
    race_cost_ms: f64,
    /// Evaluation's copy of the network and its chunk buffers (not in checkpoints).
    eval: EvalCopy,
}

impl CnnLab {
    pub fn create(config: CnnConfig, images: Arc<ImagePair>) -> CnnLab {
        let model = config.build_model(&mut Rng::fork(config.seed, 1));
        let n = images.train.len();
        let mut trainer = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, config.bs, n, Rng::fork(config.seed, 2));
        trainer.schedule = config.sched;
        trainer.schedule_period = config.period;
        trainer.shard_if_possible(crate::parallel::LAB_SHARDING);
        CnnLab {
            scaling: images.scaling(config.norm),
            config,
            images,
            trainer,
            running_eval: None,
            last_eval: None,
            history: Vec::new(),
            batch_right: 0,
            batch_seen: 0,
            batch_loss_sum: 0.0,
            batch_count: 0,
            race: None,
            race_probe: None,
            last_race_at: f64::NEG_INFINITY,
            race_cost_ms: 0.0,
            eval: EvalCopy::default(),
        }
    }

    pub fn images(&self) -> &Arc<ImagePair> {
        &self.images
    }

    /// The last complete test evaluation: (accuracy, loss).
    pub fn test_result(&self) -> Option<(f32, f32)> {
        let e = self.last_eval.as_ref()?;
        let n = self.images.test.len().max(1) as f64;
        Some(((e.right as f64 / n) as f32, (e.loss_sum / n) as f32))
    }

    /// Evaluates all test images now, finishing any evaluation under way.
    pub fn evaluate_now(&mut self) {
        if self.running_eval.is_none() {
            self.running_eval = Some(Evaluation { confusion: vec![0; CLASSES * CLASSES], ..Default::default() });
        }
        while self.running_eval.is_some() {
            self.eval_chunk();
        }
    }

    fn eval_chunk(&mut self) {
        let Some(mut e) = self.running_eval.take() else {
            return;
        };
        if e.next == 0 && self.trainer.accelerated() {
            self.accelerated_train_stats();
        }
        let images = self.images.clone();
        let test = images.test_source(self.scaling);
        // Test images per call of `train` while an evaluation is under way: 1,000, or fewer for
        // a costly model (see `CnnConfig::eval_chunk`), so the worker stays responsive.
        let end = (e.next + self.config.eval_chunk()).min(test.len());
        let indices: Vec<usize> = (e.next..end).collect();
        let parts = self.eval.sync(&mut self.trainer.model);
        test.gather(&indices, &mut parts.x, &mut parts.y, &mut parts.classes);
        let out = parts.model.forward(&parts.x, Mode::Eval);
        for (r, row) in tensor::slice(out).chunks(CLASSES).enumerate() {
            let probs = softmax(row);
            let label = parts.classes[r];
            let predicted = tensor::argmax(&probs);
            e.loss_sum -= math::ln(probs[label].max(1e-30)) as f64;
            e.confusion[label * CLASSES + predicted] += 1;
            if predicted == label {
                e.right += 1;
            } else {
                e.wrong.push((probs[predicted], indices[r], label, predicted));
                e.wrong.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                e.wrong.truncate(WRONG_SHOWN);
            }
        }
        e.next = end;
        if end < test.len() {
            self.running_eval = Some(e);
            return;
        }
        self.last_eval = Some(e);
        let (test_accuracy, test_loss) = self.test_result().expect("just evaluated");
        let seen = self.batch_seen.max(1) as f32;
        self.history.push(AccuracyPoint {
            step: self.trainer.step,
            epoch: self.epoch_fraction(),
            train_accuracy: if self.batch_seen > 0 { self.batch_right as f32 / seen } else { f32::NAN },
            train_loss: if self.batch_count > 0 { (self.batch_loss_sum / self.batch_count as f64) as f32 } else { f32::NAN },
            test_accuracy,
            test_loss,
        });
        thin(&mut self.history, MAX_HISTORY);
        (self.batch_right, self.batch_seen, self.batch_loss_sum, self.batch_count) = (0, 0, 0.0, 0);
    }

    /// On an accelerator the batches' outputs stay on the device: the training accuracy is that
    /// of the last mini-batch (evaluation mode, synced weights), the loss the mean of the losses
    /// read back since the last evaluation.
    fn accelerated_train_stats(&mut self) {
        let (sum, count) = self.trainer.take_synced_losses();
        self.batch_loss_sum += sum;
        self.batch_count += count;
        let x = self.trainer.batch_x().clone();
        let classes = self.trainer.batch_classes().to_vec();
        if x.shape().first().is_some_and(|&n| n == classes.len() && n > 0) {
            let out = self.trainer.model.forward(&x, Mode::Eval);
            self.batch_right += crate::parallel::count_right(out, &classes) as u64;
            self.batch_seen += classes.len() as u64;
        }
    }

    fn epoch_fraction(&self) -> f32 {
        (self.trainer.step as f64 * self.config.bs as f64 / self.images.train.len().max(1) as f64) as f32
    }

    /// Class probabilities for one 28×28 image with values in [0, 1] (draw-a-digit).
    pub fn classify(&mut self, pixels: &[f32]) -> Vec<f32> {
        let mut x = tensor::zeros(&[1, 1, SIDE, SIDE]);
        let n = pixels.len().min(SIDE * SIDE);
        scale_into(pixels[..n].iter().copied(), self.scaling, tensor::slice_mut(&mut x));
        softmax(tensor::slice(self.trainer.model.forward(&x, Mode::Eval)))
    }

    /// Runs the current mini-batch through every conv layer with the naive loops and with
    /// im2col (forward and backward), timing only the conv layers on `now_ms`'s clock. Uses
    /// evaluation mode and leaves the weights, the optimiser and the random streams untouched,
    /// so a race never changes the run.
    pub fn race(&mut self, now_ms: &mut dyn FnMut() -> f64) -> Race {
        // The first images of the batch: all of them unless the loops would take too long.
        let batch = self.trainer.batch_x();
        let n = batch.shape().first().copied().unwrap_or(0).min(self.config.race_images());
        let per_image = batch.len() / batch.shape().first().copied().unwrap_or(1).max(1);
        let mut shape = batch.shape().to_vec();
        if let Some(first) = shape.first_mut() {
            *first = n;
        }
        let x = tensor::from_vec(&shape, batch.data()[..n * per_image].to_vec());
        let classes = self.trainer.batch_classes()[..n].to_vec();
        let mut times = [0.0f64; 2];
        let mut outputs: Vec<Vec<Tensor>> = vec![Vec::new(), Vec::new()];
        let mut probe = RaceProbe::default();
        // The last step's gradients, put back afterwards (snapshots show them).
        let mut saved: Vec<Tensor> = Vec::new();
        self.trainer.model.visit_params(&mut |_, _, _, g| saved.push(g.clone()));
        if x.shape().first().copied().unwrap_or(0) > 0 {
            for (r, imp) in [ConvImpl::Naive, ConvImpl::Im2col].into_iter().enumerate() {
                self.trainer.model.layers_of_mut::<Conv2d>().for_each(|c| c.implementation = imp);
                let layers = &mut self.trainer.model.layers;
                let is_conv: Vec<bool> = layers.iter().map(|l| l.as_any().is::<Conv2d>()).collect();
                let mut h = x.clone();
                for (layer, &conv) in layers.iter_mut().zip(&is_conv) {
                    let t0 = now_ms();
                    let out = layer.forward(&h, Mode::Eval).clone();
                    if conv {
                        times[r] += now_ms() - t0;
                        outputs[r].push(out.clone());
                        if imp == ConvImpl::Im2col {
                            probe.layers.push(race_layer(layer.as_any().downcast_ref::<Conv2d>().expect("a conv"), &h, &out));
                        }
                    }
                    h = out;
                }
                let mut d = tensor::zeros(&[0]);
                Loss::Softmax.value_and_grad(&h, crate::loss::Target::Classes(&classes), &mut d);
                layers.iter_mut().for_each(|l| l.zero_grad());
                let mut convs_left = probe.layers.len();
                for (layer, &conv) in layers.iter_mut().zip(&is_conv).rev() {
                    if conv && imp == ConvImpl::Im2col && convs_left > 0 {
                        convs_left -= 1;
                        probe.layers[convs_left].dy = tensor::slice(&d).to_vec();
                    }
                    let t0 = now_ms();
                    let dx = layer.backward(&d).clone();
                    if conv {
                        times[r] += now_ms() - t0;
                    }
                    d = dx;
                }
            }
            let configured = self.config.conv;
            self.trainer.model.layers_of_mut::<Conv2d>().for_each(|c| c.implementation = configured);
        }
        let mut saved = saved.into_iter();
        self.trainer.model.visit_params(&mut |_, _, _, g| {
            if let Some(s) = saved.next() {
                *g = s;
            }
        });
        let max_diff = outputs[0]
            .iter()
            .zip(&outputs[1])
            .flat_map(|(a, b)| tensor::slice(a).iter().zip(tensor::slice(b)).map(|(p, q)| (p - q).abs()))
            .fold(0.0f32, f32::max);
        let race =
            Race { step: self.trainer.step, batch: x.shape().first().copied().unwrap_or(0), naive_ms: times[0], im2col_ms: times[1], max_diff, gpu: None };
        self.race = Some(race.clone());
        self.race_probe = (!probe.layers.is_empty()).then_some(probe);
        race
    }

    /// Dead filters and units (ReLU, on the last mini-batch), a loss stuck at guessing, and a
    /// test accuracy that stopped improving.
    fn diagnose(&self) -> Vec<Diagnosis> {
        let (c, model) = (&self.config, &self.trainer.model);
        let mut found = Vec::new();
        if c.act == ActivationKind::Relu {
            for (i, &(filters, ..)) in c.convs().iter().enumerate() {
                if let Some(y) = model.tap(&format!("conv {} activation", i + 1)) {
                    let n = y.shape().first().copied().unwrap_or(0);
                    found.extend(diagnose::dead_units(i, diagnose::dead_channels(tensor::slice(y), n, filters), c.lr));
                }
            }
            for (j, &units) in c.dense.iter().enumerate() {
                if let Some(y) = model.tap(&format!("dense {} activation", j + 1)) {
                    let (dead, _) = diagnose::unit_health(ActivationKind::Relu, tensor::slice(y), units);
                    found.extend(diagnose::dead_units(c.filters.len() + j, dead, c.lr));
                }
            }
        }
        let recent_loss = self.history.last().map(|h| h.train_loss).unwrap_or(self.trainer.last_loss);
        found.extend(diagnose::chance_level(recent_loss, CLASSES, self.trainer.step, c.lr));
        let accuracies: Vec<f32> = self.history.iter().map(|h| h.test_accuracy).collect();
        found.extend(diagnose::plateau(&accuracies, c.lr));
        found
    }

    /// A race, timed whole on the driver's clock for the automatic schedule.
    fn timed_race(&mut self, now_ms: &mut dyn FnMut() -> f64) {
        let t0 = now_ms();
        self.race(now_ms);
        self.last_race_at = now_ms();
        self.race_cost_ms = self.last_race_at - t0;
    }

    fn filters(&self) -> Vec<FilterBank> {
        self.trainer
            .model
            .layers_of::<Conv2d>()
            .map(|c| FilterBank { name: c.name(), filters: c.c_out, channels: c.c_in, k: c.k, weights: tensor::slice(c.filters()).to_vec() })
            .collect()
    }

    /// The probe image through the network, keeping each conv / pooling output.
    fn probe(&mut self) -> Probe {
        let index = self.config.probe.min(self.images.test.len().saturating_sub(1));
        let pixels: Vec<f32> = self.images.test.image(index).collect();
        let probabilities = self.classify(&pixels);
        let model = &self.trainer.model;
        let mut maps = Vec::new();
        for i in 1..=self.config.filters.len() {
            let conv = model.tap_index(&format!("conv {i}")).map(|c| model.layers[c].name()).unwrap_or_default();
            for (tap, name) in [(format!("conv {i} activation"), None), (format!("pool {i}"), Some(()))] {
                let Some(at) = model.tap_index(&tap) else {
                    continue;
                };
                let (layer, out) = (&model.layers[at], model.layers[at].output());
                let s = out.shape();
                let name = if name.is_some() { layer.name() } else { format!("{conv} + {}", layer.name()) };
                maps.push(FeatureMaps { name, channels: s[1], side: s[2], values: tensor::slice(out).to_vec() });
            }
        }
        Probe {
            index,
            label: self.images.test.labels[index] as usize,
            pixels: self.images.test.images[index * SIDE * SIDE..(index + 1) * SIDE * SIDE].to_vec(),
            probabilities,
            maps,
        }
    }

    fn rebuild_with(&mut self, config: CnnConfig) {
        *self = CnnLab::create(config, self.images.clone());
    }
}

/// Keeps a history at most `max` long by dropping every other point but the newest, so a long run
/// keeps an evenly thinned curve and snapshots stay the same size.
fn thin<T>(history: &mut Vec<T>, max: usize) {
    if history.len() > max {
        let last = history.len() - 1;
        let mut i = 0;
        history.retain(|_| {
            i += 1;
            (i - 1) % 2 == 0 || i - 1 == last
        });
    }
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|&v| math::exp(v - max)).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

impl Lab for CnnLab {
    type Config = CnnConfig;
    type View = CnnView;
    type Command = CnnCommand;
    type Reply = CnnReply;

    fn needs_images(config: &CnnConfig) -> Option<ImageSet> {
        Some(config.data)
    }

    fn new(config: CnnConfig, assets: &Assets) -> Result<Self, String> {
        let images = assets.get(config.data).ok_or_else(|| format!("the {} images are not loaded", config.data.label()))?;
        Ok(CnnLab::create(config, images))
    }

    fn config(&self) -> &CnnConfig {
        &self.config
    }

    fn set_config(&mut self, config: CnnConfig) {
        self.config = config;
    }

    fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    fn trainer_mut(&mut self) -> &mut Trainer {
        &mut self.trainer
    }

    fn accelerator_input(&self) -> Result<Vec<usize>, String> {
        Ok(vec![1, SIDE, SIDE])
    }

    fn take_race_probe(&mut self) -> Option<RaceProbe> {
        self.race_probe.take()
    }

    fn set_race_lane(&mut self, lane: RaceLane) {
        if let Some(r) = self.race.as_mut() {
            r.gpu = Some(lane);
        }
    }

    /// Trains up to `n` steps; while a test evaluation is due, a call evaluates one chunk instead.
    fn train(&mut self, n: u64) {
        for i in 0..n {
            if self.running_eval.is_some() {
                if !self.trainer.in_sync() {
                    // The evaluation needs this step's weights: ask the device (the run waits).
                    let _ = self.trainer.sync(false);
                    if !self.trainer.in_sync() {
                        return;
                    }
                }
                self.eval_chunk();
                return;
            }
            let images = self.images.clone();
            let before = self.trainer.step;
            // Another step follows in this call unless an evaluation falls due after this one:
            // then the helpers start on it while this one is counted.
            let more = i + 1 < n && (before + 1) % self.config.eval != 0;
            let loss = self.trainer.train_step_ahead(&images.shared_train_source(self.scaling), more);
            if self.trainer.step == before {
                return; // the device is ahead: this call waits
            }
            if !self.trainer.accelerated() {
                if let Some(right) = self.trainer.batch_right() {
                    self.batch_right += right as u64;
                    self.batch_seen += self.trainer.batch_classes().len() as u64;
                }
                self.batch_loss_sum += loss as f64;
                self.batch_count += 1;
            }
            if self.trainer.step % self.config.eval == 0 {
                self.running_eval = Some(Evaluation { confusion: vec![0; CLASSES * CLASSES], ..Default::default() });
            }
        }
    }

    fn stop_reason(&mut self) -> Option<String> {
        let e = self.config.epochs;
        (e > 0 && self.trainer.epoch >= e && self.running_eval.is_none()).then(|| format!("stopped after {e} epochs (Play trains on)"))
    }

    fn evaluating(&self) -> bool {
        self.running_eval.is_some()
    }

    fn finish(&mut self) {
        if self.last_eval.as_ref().is_none_or(|_| self.history.last().is_none_or(|h| h.step != self.trainer.step)) {
            self.evaluate_now();
        }
    }

    fn rebuild(&mut self, key: &str, next: CnnConfig) -> Result<Applied, String> {
        match key {
            "conv" => {
                let imp = next.conv;
                self.trainer.model.layers_of_mut::<Conv2d>().for_each(|c| c.implementation = imp);
                self.config = next;
                Ok(Applied::Live)
            }
            "model" => {
                let c = &self.config;
                let fresh = CnnConfig { data: c.data, seed: c.seed, conv: c.conv, race: c.race, probe: c.probe, ..CnnConfig::for_model(next.model) };
                self.rebuild_with(fresh);
                Ok(Applied::Reset)
            }
            "data" if next.data != self.images.set => Err(format!("the {} images are not loaded here", next.data.label())),
            _ => {
                self.rebuild_with(next);
                Ok(Applied::Reset)
            }
        }
    }

    fn command(&mut self, command: CnnCommand, now_ms: &mut dyn FnMut() -> f64) -> Result<Option<CnnReply>, Notice> {
        match command {
            CnnCommand::Race => {
                self.timed_race(now_ms);
                Ok(None)
            }
            CnnCommand::Classify { pixels } => {
                if pixels.len() != SIDE * SIDE || pixels.iter().any(|p| !p.is_finite()) {
                    return Err(Notice::new("classify", format!("a drawing is {} finite pixel values, not {}", SIDE * SIDE, pixels.len())));
                }
                Ok(Some(CnnReply::Classified { probabilities: self.classify(&pixels) }))
            }
        }
    }

    /// The automatic race (`race=true`): about every 1.5 s, and at most ~10 % of the time.
    fn background(&mut self, now_ms: &mut dyn FnMut() -> f64) -> bool {
        if !self.config.race || now_ms() - self.last_race_at < RACE_EVERY_MS.max(self.race_cost_ms / RACE_SHARE) {
            return false;
        }
        self.timed_race(now_ms);
        true
    }

    fn report(&mut self) -> Report<CnnView> {
        let layers = self.trainer.layer_snapshots();
        // Before the probe image overwrites the layers' outputs of the last mini-batch.
        let diagnoses = self.diagnose();
        let mut metrics = vec![Metric { name: "epoch_fraction".into(), value: self.epoch_fraction() }];
        let (test_accuracy, test_loss) = self.test_result().unwrap_or((f32::NAN, f32::NAN));
        if let Some(last) = self.history.last() {
            metrics.push(Metric { name: "train_accuracy".into(), value: last.train_accuracy });
        }
        if !test_accuracy.is_nan() {
            metrics.push(Metric { name: "test_accuracy".into(), value: test_accuracy });
        }
        let train_loss = self.history.last().map(|h| h.train_loss).unwrap_or(f32::NAN);
        let (confusion, wrong) = match &self.last_eval {
            Some(e) => (
                e.confusion.clone(),
                e.wrong
                    .iter()
                    .map(|&(confidence, index, label, predicted)| WrongImage {
                        index,
                        label,
                        predicted,
                        confidence,
                        pixels: self.images.test.images[index * SIDE * SIDE..(index + 1) * SIDE * SIDE].to_vec(),
                    })
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let view = CnnView {
            data: self.images.set,
            classes: self.images.set.classes().iter().map(|c| c.to_string()).collect(),
            train_size: self.images.train.len(),
            history: self.history.clone(),
            eval_progress: self.running_eval.as_ref().map(|e| e.next as f32 / self.images.test.len().max(1) as f32).unwrap_or(0.0),
            confusion,
            wrong,
            filters: self.filters(),
            probe: self.probe(),
            race: self.race.clone(),
        };
        Report { train_loss, test_loss, metrics, layers, diagnoses, view }
    }

    /// 12 per second: each carries feature maps, filters and images for the page to paint.
    fn snapshot_interval_ms(&self) -> f64 {
        1000.0 / 12.0
    }
}

/// One conv layer of the race for a GPU lane: shape, weights, the input and (im2col) output.
fn race_layer(c: &Conv2d, x: &Tensor, y: &Tensor) -> RaceLayer {
    let sh = x.shape();
    RaceLayer {
        shape: [sh[0], sh[1], sh[2], sh[3], c.c_out, c.k, c.stride, c.pad],
        w: tensor::slice(&c.w).to_vec(),
        b: tensor::slice(&c.b).to_vec(),
        x: tensor::slice(x).to_vec(),
        dy: Vec::new(),
        y: tensor::slice(y).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::thin;

    #[test]
    fn a_long_history_is_thinned_evenly_and_keeps_its_newest_point() {
        let mut h: Vec<u32> = (0..401).collect();
        thin(&mut h, 400);
        assert_eq!(h.len(), 201);
        assert_eq!((h[0], h[1], h[200]), (0, 2, 400));
        let mut h: Vec<u32> = (0..10).collect();
        thin(&mut h, 4);
        assert_eq!(h, [0, 2, 4, 6, 8, 9]);
        // It stays bounded however many points arrive.
        let mut h = Vec::new();
        for p in 0..100_000u32 {
            h.push(p);
            thin(&mut h, 400);
        }
        assert!(h.len() <= 400 && h.last() == Some(&99_999));
    }
}
