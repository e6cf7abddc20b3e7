//! Lab 2's session: trains a CNN on image data, evaluates the 10,000 test images every `eval`
//! steps (in chunks, so the worker stays responsive; training waits for the evaluation, so the
//! run is the same however the driver slices its calls), and reports filters, feature maps,
//! accuracy curves, a confusion matrix and the most confidently wrong test images.

use super::cnn::{CnnConfig, CLASSES, SIDE};
use super::link::LabConfig;
use super::snapshot::{Metric, Snapshot, View};
use super::trainer::Trainer;
use super::{Applied, LabSession};
use crate::data::images::{scale_into, ImagePair, ImageSet};
use crate::data::Source;
use crate::layer::Layer;
use crate::loss::Loss;
use crate::math;
use crate::ops::{Conv2d, ConvImpl};
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Test images evaluated per call of `step` while an evaluation is under way.
const EVAL_CHUNK: usize = 1000;
/// Confidently wrong test images kept for display.
const WRONG_SHOWN: usize = 12;

/// One point of the accuracy curves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccuracyPoint {
    pub step: u64,
    /// Epochs as a fraction (steps × batch / training images).
    pub epoch: f32,
    /// Mean accuracy and loss of the mini-batches since the previous point.
    pub train_accuracy: f32,
    pub train_loss: f32,
    /// On all test images, at this step.
    pub test_accuracy: f32,
    pub test_loss: f32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WrongImage {
    pub index: usize,
    pub label: usize,
    pub predicted: usize,
    /// The probability given to the wrong class.
    pub confidence: f32,
    pub pixels: Vec<u8>,
}

/// The weights of one conv layer, to draw each filter as a small image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterBank {
    pub name: String,
    pub filters: usize,
    pub channels: usize,
    pub k: usize,
    /// `(filters, channels, k, k)` row-major.
    pub weights: Vec<f32>,
}

/// The output of one layer for the probe image: `channels` maps of `side × side`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureMaps {
    pub name: String,
    pub channels: usize,
    pub side: usize,
    pub values: Vec<f32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub index: usize,
    pub label: usize,
    pub pixels: Vec<u8>,
    pub probabilities: Vec<f32>,
    pub maps: Vec<FeatureMaps>,
}

/// The same mini-batch through both convolutions (forward + backward of every conv layer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Race {
    pub step: u64,
    pub batch: usize,
    pub naive_ms: f64,
    pub im2col_ms: f64,
    /// The largest |difference| between the two implementations' outputs.
    pub max_diff: f32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CnnView {
    pub data: ImageSet,
    pub classes: Vec<String>,
    pub train_size: usize,
    pub history: Vec<AccuracyPoint>,
    /// Share of the running test evaluation done (0 when none is running).
    pub eval_progress: f32,
    /// `confusion[true][predicted]` of the last evaluation (row-major 10×10).
    pub confusion: Vec<u32>,
    pub wrong: Vec<WrongImage>,
    pub filters: Vec<FilterBank>,
    pub probe: Probe,
    pub race: Option<Race>,
}

/// A test evaluation in progress (or finished).
#[derive(Clone, Debug, Default)]
struct Evaluation {
    next: usize,
    right: usize,
    loss_sum: f64,
    confusion: Vec<u32>,
    wrong: Vec<(f32, usize, usize, usize)>,
}

pub struct CnnSession {
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
    /// The epochs stop has paused the run once; Play trains on past it.
    epochs_stop_fired: bool,
    ms_per_step: f64,
    eval_x: Tensor,
    eval_y: Tensor,
    eval_classes: Vec<usize>,
}

impl CnnSession {
    pub fn new(config: CnnConfig, images: Arc<ImagePair>) -> CnnSession {
        let model = config.build_model(&mut Rng::fork(config.seed, 1));
        let n = images.train.len();
        let mut trainer = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, config.bs, n, Rng::fork(config.seed, 2));
        trainer.schedule = config.sched;
        trainer.schedule_period = config.period;
        CnnSession {
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
            epochs_stop_fired: false,
            ms_per_step: 0.0,
            eval_x: tensor::zeros(&[0]),
            eval_y: tensor::zeros(&[0]),
            eval_classes: Vec::new(),
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
        let Some(mut e) = self.running_eval.take() else { return };
        let images = self.images.clone();
        let test = images.test_source(self.scaling);
        let end = (e.next + EVAL_CHUNK).min(test.len());
        let indices: Vec<usize> = (e.next..end).collect();
        test.gather(&indices, &mut self.eval_x, &mut self.eval_y, &mut self.eval_classes);
        let out = self.trainer.model.forward(&self.eval_x, Mode::Eval);
        for (r, row) in tensor::slice(out).chunks(CLASSES).enumerate() {
            let probs = softmax(row);
            let label = self.eval_classes[r];
            let predicted = argmax(&probs);
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
        (self.batch_right, self.batch_seen, self.batch_loss_sum, self.batch_count) = (0, 0, 0.0, 0);
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
        let x = self.trainer.batch_x().clone();
        let classes = self.trainer.batch_classes().to_vec();
        let mut times = [0.0f64; 2];
        let mut outputs: Vec<Vec<Tensor>> = vec![Vec::new(), Vec::new()];
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
                    }
                    h = out;
                }
                let mut d = tensor::zeros(&[0]);
                Loss::Softmax.value_and_grad(&h, crate::loss::Target::Classes(&classes), &mut d);
                layers.iter_mut().for_each(|l| l.zero_grad());
                for (layer, &conv) in layers.iter_mut().zip(&is_conv).rev() {
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
        let race = Race { step: self.trainer.step, batch: x.shape().first().copied().unwrap_or(0), naive_ms: times[0], im2col_ms: times[1], max_diff };
        self.race = Some(race.clone());
        race
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
        let mut maps = Vec::new();
        let mut last_name = String::new();
        for layer in self.trainer.model.layers.iter() {
            let out = layer.output();
            let name = layer.name();
            if out.ndim() == 4 {
                let s = out.shape();
                let entry = FeatureMaps { name: name.clone(), channels: s[1], side: s[2], values: tensor::slice(out).to_vec() };
                // An activation right after a conv replaces the conv's raw output in the view.
                if last_name.starts_with("conv") && !name.contains("pool") {
                    maps.pop();
                    maps.push(FeatureMaps { name: format!("{last_name} + {name}"), ..entry });
                } else {
                    maps.push(entry);
                }
            }
            last_name = name;
        }
        Probe {
            index,
            label: self.images.test.labels[index] as usize,
            pixels: self.images.test.images[index * SIDE * SIDE..(index + 1) * SIDE * SIDE].to_vec(),
            probabilities,
            maps,
        }
    }

    fn rebuild(&mut self, config: CnnConfig) {
        *self = CnnSession::new(config, self.images.clone());
    }
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|&v| math::exp(v - max)).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &p)| if p > best.1 { (i, p) } else { best }).0
}

impl LabSession for CnnSession {
    fn config(&self) -> LabConfig {
        LabConfig::Cnn(self.config.clone())
    }

    /// Trains up to `n` steps; while a test evaluation is due, a call evaluates one chunk instead.
    fn step(&mut self, n: u64) -> f32 {
        for _ in 0..n {
            if self.running_eval.is_some() {
                self.eval_chunk();
                return self.trainer.last_loss;
            }
            let images = self.images.clone();
            let loss = self.trainer.train_step(&images.train_source(self.scaling));
            let out = self.trainer.model.layers.last().expect("a model has layers").output();
            let right = tensor::slice(out).chunks(CLASSES).zip(self.trainer.batch_classes()).filter(|(row, &c)| argmax(row) == c).count();
            self.batch_right += right as u64;
            self.batch_seen += self.trainer.batch_classes().len() as u64;
            self.batch_loss_sum += loss as f64;
            self.batch_count += 1;
            if self.trainer.step % self.config.eval == 0 {
                self.running_eval = Some(Evaluation { confusion: vec![0; CLASSES * CLASSES], ..Default::default() });
            }
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

    fn stop_reason(&mut self) -> Option<String> {
        let e = self.config.epochs;
        if e > 0 && self.trainer.epoch >= e && self.running_eval.is_none() && !self.epochs_stop_fired {
            self.epochs_stop_fired = true;
            return Some(format!("stopped after {e} epochs (Play trains on)"));
        }
        None
    }

    fn finish(&mut self) {
        if self.last_eval.as_ref().is_none_or(|_| self.history.last().is_none_or(|h| h.step != self.trainer.step)) {
            self.evaluate_now();
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<Applied, String> {
        let next = match LabConfig::Cnn(self.config.clone()).with_value(key, value).map_err(|n| n.message)? {
            LabConfig::Cnn(c) => c,
            _ => unreachable!("a cnn config stays one"),
        };
        match key {
            "lr" | "mom" | "l2" | "bs" | "opt" | "sched" | "period" | "eval" | "epochs" | "stop" | "race" | "probe" => {
                if key == "epochs" {
                    self.epochs_stop_fired = false;
                }
                self.trainer.hyper = next.hyper();
                self.trainer.schedule = next.sched;
                self.trainer.schedule_period = next.period;
                self.trainer.batch_size = next.bs;
                self.trainer.set_optimizer(next.opt);
                self.config = next;
                Ok(Applied::Live)
            }
            "conv" => {
                let imp = next.conv;
                self.trainer.model.layers_of_mut::<Conv2d>().for_each(|c| c.implementation = imp);
                self.config = next;
                Ok(Applied::Live)
            }
            "model" => {
                let c = &self.config;
                let fresh = CnnConfig { data: c.data, seed: c.seed, conv: c.conv, race: c.race, probe: c.probe, ..CnnConfig::for_model(next.model) };
                self.rebuild(fresh);
                Ok(Applied::Reset)
            }
            "data" if next.data != self.images.set => Err(format!("the {} images are not loaded here", next.data.label())),
            _ => {
                self.rebuild(next);
                Ok(Applied::Reset)
            }
        }
    }

    fn set_timing(&mut self, ms_per_step: f64) {
        self.ms_per_step = ms_per_step;
    }

    fn snapshot(&mut self) -> Snapshot {
        let layers = self.trainer.layer_snapshots();
        let grad_norm = self.trainer.grad_norm();
        let diverged = !self.trainer.last_loss.is_finite() && self.trainer.step > 0 || self.trainer.params_non_finite();
        let mut metrics = vec![Metric { name: "epoch_fraction".into(), value: self.epoch_fraction() }];
        if self.ms_per_step > 0.0 {
            metrics.push(Metric { name: "examples_per_s".into(), value: (self.config.bs as f64 * 1000.0 / self.ms_per_step) as f32 });
        }
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
        Snapshot {
            lab: "cnn".into(),
            step: self.trainer.step,
            epoch: self.trainer.epoch,
            loss: self.trainer.last_loss,
            train_loss,
            test_loss,
            metrics,
            grad_norm,
            ms_per_step: self.ms_per_step,
            diverged,
            layers,
            records: std::mem::take(&mut self.trainer.records),
            diagnoses: Vec::new(),
            view: View::Cnn(Box::new(view)),
        }
    }

    fn as_cnn(&mut self) -> Option<&mut CnnSession> {
        Some(self)
    }

    /// 12 per second: each carries feature maps, filters and images for the page to paint.
    fn snapshot_interval_ms(&self) -> f64 {
        1000.0 / 12.0
    }
}
