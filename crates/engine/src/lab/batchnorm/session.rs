//! Lab 3's session: the plain and the BN network trained in lockstep — each step both take the
//! same mini-batch (their trainers shuffle with the same stream) from the same initial weights
//! (see `BnConfig::build_model`). Every `eval` steps both are evaluated on the 10,000 test images
//! (in chunks, like the CNN lab), the BN net twice: in evaluation mode and in training mode.
//! Every few steps each hidden layer's distributions are sampled for the histograms over time.
//!
//! If the plain net's loss becomes NaN or infinite it stops there (the run pauses once, with a
//! diagnosis) while the BN net trains on; if the BN net diverges the whole run pauses, as in
//! every lab.

use super::config::{BnConfig, Net, Nets, CLASSES, INPUTS};
use super::view::{BnCommand, BnReply, BnStats, BnView, Columns, EvalPoint, TracePoint, HEAT_BINS, QUANTITIES, SERIES};
use crate::data::images::{fill_images, Assets, ImagePair, ImageSet};
use crate::data::mnist::Digits;
use crate::data::Source;
use crate::lab::diagnose::{self, Diagnosis, DiagnosisKind, Fix};
use crate::lab::evalcopy::EvalInputs;
use crate::lab::params::Notice;
use crate::lab::snapshot::Metric;
use crate::lab::trainer::Trainer;
use crate::lab::{Applied, Lab, Report};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::math;
use crate::ops::{ActivationKind, BatchNorm, Dense};
use crate::rng::Rng;
use crate::sequential::Sequential;
use crate::stats::lane_sum;
use crate::tensor::{self, Mode, Tensor};
use std::sync::Arc;

/// Evaluation points kept (thinned evenly past this).
const MAX_HISTORY: usize = 400;
/// Mini-batch trace points kept.
const MAX_TRACE: usize = 400;
/// Samples of the histograms over time.
const MAX_COLUMNS: usize = 48;
/// BN features shown in the running-vs-batch statistics.
const STATS_SHOWN: usize = 64;
/// A calibration reads at most this much work of training images (≈ 1 s in the browser).
const CALIBRATE_FLOPS: f64 = 1.5e10;

/// A split as `(n, 784)` rows of scaled pixels (the MLPs take flat images).
struct Flat<'a> {
    digits: &'a Digits,
    scaling: (f32, f32),
    /// The pair `digits` is the training split of, when helpers may gather from it.
    shared: Option<&'a Arc<ImagePair>>,
}

impl Source for Flat<'_> {
    fn len(&self) -> usize {
        self.digits.len()
    }

    fn has_classes(&self) -> bool {
        true
    }

    fn gather(&self, indices: &[usize], x: &mut Tensor, y: &mut Tensor, classes: &mut Vec<usize>) {
        self.gather_first(indices, indices.len(), x, y, classes)
    }

    fn gather_first(&self, indices: &[usize], rows: usize, x: &mut Tensor, _y: &mut Tensor, classes: &mut Vec<usize>) {
        tensor::resize(x, &[indices.len(), INPUTS]);
        let rows = rows.min(indices.len());
        fill_images(self.digits, &indices[..rows], self.scaling, &mut tensor::slice_mut(x)[..rows * INPUTS]);
        classes.clear();
        classes.extend(indices.iter().map(|&i| self.digits.labels[i] as usize));
    }

    fn shared_rows(&self) -> Option<crate::parallel::SharedRows> {
        self.shared.map(|pair| pair.shared_train_rows(self.scaling))
    }
}

/// A test evaluation in progress.
#[derive(Clone, Debug, Default)]
struct Evaluation {
    next: usize,
    right: [usize; 2],
    loss_sum: [f64; 2],
    train_mode_right: usize,
    /// The tracked unit's activation input for every test image, per net.
    unit: [Vec<f32>; 2],
}

/// One sample of the histograms over time: `hist[net][layer][quantity]`, `series[net][dense][s]`.
#[derive(Clone, Debug)]
struct Column {
    step: u64,
    hist: Vec<((f32, f32), [u8; HEAT_BINS])>,
    series: Vec<f32>,
}

/// A net's part of a column that depends on its network alone (its layers' last outputs and
/// gradients, its weights), and the version of the network it was sampled from (see
/// [`crate::lab::watched::Watched`]): a net that has not changed since — the one that does not
/// train when one trains alone, ~0.65 ms a column for W2's net — is not sampled again.
#[derive(Clone)]
struct Sampled {
    version: (u64, u64),
    config: BnConfig,
    hist: Vec<((f32, f32), [u8; HEAT_BINS])>,
    /// Per dense layer: saturated, dead, gradient:data, mean |∂L/∂W|.
    stats: Vec<[f32; 4]>,
}

#[derive(Clone)]
pub struct BnLab {
    config: BnConfig,
    images: Arc<ImagePair>,
    scaling: (f32, f32),
    /// `[plain, bn]`; see [`BnLab::lead`] for whose step and epoch are the run's.
    nets: [Trainer; 2],
    plain_diverged_at: Option<u64>,
    /// Why the plain net failed (diverged, or stalled with its ReLUs dead or its loss at chance)
    /// and whether that pause has been reported.
    plain_failure: Option<String>,
    failure_reported: bool,
    running_eval: Option<Evaluation>,
    history: Vec<EvalPoint>,
    trace: Vec<TracePoint>,
    trace_every: u64,
    /// Sums since the last trace point: loss, right answers, examples, steps — per net.
    acc: [(f64, u64, u64, u64); 2],
    columns: Vec<Column>,
    column_every: u64,
    /// Each net's last sample, `[plain, bn]`.
    sampled: [Option<Sampled>; 2],
    bn_stats: Vec<BnStats>,
    calibrated: Option<String>,
    /// Evaluation chunks' inputs (not in checkpoints).
    eval: EvalInputs,
}

/// Summed cross-entropy of the rows of `out` (log-sum-exp, stable).
fn loss_sum(out: &Tensor, classes: &[usize]) -> f64 {
    tensor::slice(out)
        .chunks(CLASSES)
        .zip(classes)
        .map(|(row, &c)| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&v| math::exp(v - max)).sum();
            (math::ln(sum) + max - row[c]) as f64
        })
        .sum()
}

/// A histogram of the finite values in `HEAT_BINS` bins over their range, scaled to 0–255.
fn histogram(values: &[f32]) -> ((f32, f32), [u8; HEAT_BINS]) {
    // Every weight of a layer, each column: written to vectorise (the range in lanes, no branch
    // per value; a multiplication by a scale computed once rather than a division per value;
    // four sub-histograms, so a run of values in one bin does not wait on each increment).
    let (mut lo, mut hi) = ([f32::INFINITY; 4], [f32::NEG_INFINITY; 4]);
    for c in values.chunks(4) {
        for (l, &v) in c.iter().enumerate() {
            let ok = v.is_finite();
            lo[l] = if ok && v < lo[l] { v } else { lo[l] };
            hi[l] = if ok && v > hi[l] { v } else { hi[l] };
        }
    }
    let (lo, hi) = (lo.into_iter().fold(f32::INFINITY, f32::min), hi.into_iter().fold(f32::NEG_INFINITY, f32::max));
    if lo > hi {
        return ((0.0, 0.0), [0; HEAT_BINS]);
    }
    let mut counts = [0u32; HEAT_BINS];
    let width = (hi - lo) as f64;
    if width > 0.0 {
        let scale = HEAT_BINS as f64 / width;
        let bin = |v: f32| (((v - lo) as f64 * scale) as usize).min(HEAT_BINS - 1);
        let mut sub = [[0u32; HEAT_BINS]; 4];
        for c in values.chunks(4) {
            for (l, &v) in c.iter().enumerate() {
                sub[l][bin(v)] += v.is_finite() as u32;
            }
        }
        for (b, count) in counts.iter_mut().enumerate() {
            *count = sub.iter().map(|h| h[b]).sum();
        }
    } else {
        counts[HEAT_BINS / 2] = values.iter().filter(|v| v.is_finite()).count() as u32;
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut bins = [0u8; HEAT_BINS];
    for (b, &c) in bins.iter_mut().zip(&counts) {
        *b = ((c as f64 / peak as f64) * 255.0).round() as u8;
    }
    ((lo, hi), bins)
}

/// The `p`-th percentile (0–100) of sorted values, by the nearest rank.
fn percentile(sorted: &[f32], p: f32) -> f32 {
    if sorted.is_empty() {
        return f32::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f32).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Keeps at most `max` points by dropping every other one but the newest.
fn thin<T>(v: &mut Vec<T>, max: usize) -> bool {
    if v.len() <= max {
        return false;
    }
    let last = v.len() - 1;
    let mut i = 0;
    v.retain(|_| {
        i += 1;
        (i - 1) % 2 == 0 || i - 1 == last
    });
    true
}

/// Fractions of `y`'s values that are saturated (tanh |y| > 0.97; sigmoid outside [0.03, 0.97])
/// and of its units that are dead (ReLU: not positive for any example of the batch).
fn saturation(kind: ActivationKind, y: &[f32], units: usize) -> (f32, f32) {
    let n = y.len().max(1) as f32;
    let saturated = match kind {
        ActivationKind::Tanh => y.iter().filter(|v| v.abs() > 0.97).count() as f32 / n,
        ActivationKind::Sigmoid => y.iter().filter(|&&v| !(0.03..=0.97).contains(&v)).count() as f32 / n,
        _ => f32::NAN,
    };
    let dead = if kind == ActivationKind::Relu { diagnose::unit_health(kind, y, units).0 } else { f32::NAN };
    (saturated, dead)
}

fn std_of(v: &[f32]) -> f64 {
    let n = v.len().max(1) as f64;
    let mean = lane_sum(v, |x| x as f64) / n;
    (lane_sum(v, |x| (x as f64 - mean).powi(2)) / n).sqrt()
}

/// The part of a column that `model` alone determines (see [`Sampled`]).
fn sample(c: &BnConfig, net: Net, model: &Sequential, version: (u64, u64)) -> Sampled {
    let layers = c.hidden.len();
    let mut hist = Vec::with_capacity(layers * QUANTITIES.len());
    for k in 1..=layers {
        let pre = model.tap(&c.pre_tap(net, k)).map(tensor::slice).unwrap_or(&[]);
        let act_at = model.tap_index(&format!("act {k}"));
        let act = act_at.map(|a| tensor::slice(model.layers[a].output())).unwrap_or(&[]);
        let grad = act_at.and_then(|a| model.layers.get(a + 1)).map(|l| tensor::slice(l.input_grad())).unwrap_or(&[]);
        let w = model.tapped::<Dense>(&format!("dense {k}")).map(|d| tensor::slice(&d.w)).unwrap_or(&[]);
        for values in [pre, act, grad, w] {
            hist.push(histogram(values));
        }
    }
    let mut stats = Vec::new();
    for (j, d) in model.layers_of::<Dense>().enumerate() {
        let (saturated, dead) = if j < layers {
            let act = model.tap_index(&format!("act {}", j + 1)).map(|a| tensor::slice(model.layers[a].output())).unwrap_or(&[]);
            saturation(c.act, act, c.hidden[j])
        } else {
            (f32::NAN, f32::NAN)
        };
        let (w, g) = (tensor::slice(&d.w), tensor::slice(&d.dw));
        let w_std = std_of(w);
        let grad_data = if w_std > 0.0 { (std_of(g) / w_std) as f32 } else { f32::NAN };
        let mean_abs = (lane_sum(g, |v| v.abs() as f64) / g.len().max(1) as f64) as f32;
        stats.push([saturated, dead, grad_data, mean_abs]);
    }
    Sampled { version, config: c.clone(), hist, stats }
}

impl BnLab {
    pub fn create(config: BnConfig, images: Arc<ImagePair>) -> BnLab {
        let n = images.train.len();
        let trainer = |net: Net| {
            let model = config.build_model(net, &mut Rng::fork(config.seed, 1));
            // The same shuffle stream in both: identical mini-batches.
            let mut t = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, config.bs, n, Rng::fork(config.seed, 2));
            t.shard_if_possible(crate::parallel::LAB_SHARDING);
            t
        };
        BnLab {
            scaling: images.scaling(config.norm),
            nets: [trainer(Net::Plain), trainer(Net::Bn)],
            config,
            images,
            plain_diverged_at: None,
            plain_failure: None,
            failure_reported: false,
            // The first evaluation is of the initial weights: the curves start at chance.
            running_eval: Some(Evaluation::default()),
            history: Vec::new(),
            trace: Vec::new(),
            trace_every: 1,
            acc: [(0.0, 0, 0, 0); 2],
            columns: Vec::new(),
            column_every: 5,
            sampled: [None, None],
            bn_stats: Vec::new(),
            calibrated: None,
            eval: EvalInputs::default(),
        }
    }

    /// The trainer whose step and epoch are the run's: the BN net's, unless only the plain one trains.
    fn lead(&self) -> usize {
        if self.config.nets == Nets::Plain {
            Net::Plain as usize
        } else {
            Net::Bn as usize
        }
    }

    pub fn trainer_of(&self, net: Net) -> &Trainer {
        &self.nets[net as usize]
    }

    pub fn history(&self) -> &[EvalPoint] {
        &self.history
    }

    pub fn plain_diverged_at(&self) -> Option<u64> {
        self.plain_diverged_at
    }

    /// Why the plain net failed, if it did.
    pub fn plain_failure(&self) -> Option<&str> {
        self.plain_failure.as_deref()
    }

    fn epoch_fraction(&self) -> f32 {
        (self.nets[self.lead()].step as f64 * self.config.bs as f64 / self.images.train.len().max(1) as f64) as f32
    }

    fn bn_layers(&mut self) -> impl Iterator<Item = &mut BatchNorm> {
        self.nets[1].model.layers_of_mut::<BatchNorm>()
    }

    /// Test images per chunk: a whole number of batches (the training-mode evaluation
    /// normalises each batch of `bs` test images with its own statistics).
    fn chunk(&self) -> usize {
        let bs = self.config.bs.max(2);
        (self.config.eval_chunk() / bs).max(1) * bs
    }

    fn eval_chunk(&mut self) {
        let Some(mut e) = self.running_eval.take() else {
            return;
        };
        let images = self.images.clone();
        let test = Flat { digits: &images.test, scaling: self.scaling, shared: None };
        let end = (e.next + self.chunk()).min(test.len());
        let indices: Vec<usize> = (e.next..end).collect();
        test.gather(&indices, &mut self.eval.x, &mut self.eval.y, &mut self.eval.classes);
        let last = *self.config.hidden.last().unwrap_or(&1);
        let unit = self.config.unit.min(last - 1);
        for net in Net::BOTH {
            let i = net as usize;
            let model = &mut self.nets[i].model;
            let out = model.forward(&self.eval.x, Mode::Eval);
            e.right[i] += crate::parallel::count_right(out, &self.eval.classes) as usize;
            e.loss_sum[i] += loss_sum(out, &self.eval.classes);
            if let Some(pre) = model.tap(&self.config.pre_tap(net, self.config.hidden.len())) {
                e.unit[i].extend(tensor::slice(pre).chunks(last).map(|row| row[unit]));
            }
        }
        // The pitfall: the BN net left in training mode normalises each test batch with that
        // batch's own statistics (the running statistics are not touched).
        self.bn_layers().for_each(|b| b.update_running = false);
        let bs = self.config.bs.max(2);
        let rows = tensor::slice(&self.eval.x);
        for (b, classes) in self.eval.classes.chunks(bs).enumerate() {
            let x = tensor::from_vec(&[classes.len(), INPUTS], rows[b * bs * INPUTS..(b * bs + classes.len()) * INPUTS].to_vec());
            e.train_mode_right += crate::parallel::count_right(self.nets[1].model.forward(&x, Mode::Train), classes) as usize;
        }
        self.bn_layers().for_each(|b| b.update_running = true);
        e.next = end;
        if end < test.len() {
            self.running_eval = Some(e);
            return;
        }
        let n = test.len().max(1) as f32;
        let mut percentiles = [[f32::NAN; 3]; 2];
        for (p, values) in percentiles.iter_mut().zip(e.unit.iter_mut()) {
            values.sort_by(f32::total_cmp);
            *p = [percentile(values, 15.0), percentile(values, 50.0), percentile(values, 85.0)];
        }
        let plain_alive = self.plain_diverged_at.is_none();
        self.history.push(EvalPoint {
            step: self.nets[self.lead()].step,
            epoch: self.epoch_fraction(),
            accuracy: [if plain_alive { e.right[0] as f32 / n } else { f32::NAN }, e.right[1] as f32 / n],
            loss: [if plain_alive { (e.loss_sum[0] / n as f64) as f32 } else { f32::NAN }, (e.loss_sum[1] / n as f64) as f32],
            bn_train_mode_accuracy: e.train_mode_right as f32 / n,
            percentiles: if plain_alive { percentiles } else { [[f32::NAN; 3], percentiles[1]] },
        });
        thin(&mut self.history, MAX_HISTORY);
    }

    /// Evaluates all test images now, finishing any evaluation under way.
    pub fn evaluate_now(&mut self) {
        if self.running_eval.is_none() {
            self.running_eval = Some(Evaluation::default());
        }
        while self.running_eval.is_some() {
            self.eval_chunk();
        }
    }

    /// The latest complete evaluation.
    pub fn last_eval(&self) -> Option<&EvalPoint> {
        self.history.last()
    }

    /// One optimiser step of both nets on the same mini-batch; `more`: another follows at once
    /// (the plain net's helpers start on it while this step is recorded).
    fn step_both(&mut self, more: bool) {
        let images = self.images.clone();
        let source = Flat { digits: &images.train, scaling: self.scaling, shared: Some(&images) };
        for net in Net::BOTH {
            let i = net as usize;
            if (net == Net::Plain && self.plain_diverged_at.is_some()) || !self.config.nets.trains(net) {
                continue;
            }
            let loss = self.nets[i].train_step_ahead(&source, more);
            if !loss.is_finite() && net == Net::Plain {
                let at = self.nets[i].step;
                self.plain_diverged_at = Some(at);
                self.plain_failure.get_or_insert(format!("the plain net diverged at step {at} (its loss became {loss}) and stopped; the BN net trains on"));
                continue;
            }
            let t = &self.nets[i];
            let a = &mut self.acc[i];
            a.0 += loss as f64;
            if let Some(right) = t.batch_right() {
                a.1 += right as u64;
                a.2 += t.batch_classes().len() as u64;
            }
            a.3 += 1;
        }
        let step = self.nets[self.lead()].step;
        if step % self.trace_every == 0 {
            let mut point = TracePoint { step, loss: [f32::NAN; 2], accuracy: [f32::NAN; 2] };
            for (i, a) in self.acc.iter_mut().enumerate() {
                if a.3 > 0 {
                    point.loss[i] = (a.0 / a.3 as f64) as f32;
                    point.accuracy[i] = a.1 as f32 / a.2.max(1) as f32;
                }
                *a = (0.0, 0, 0, 0);
            }
            self.trace.push(point);
            if thin(&mut self.trace, MAX_TRACE) {
                self.trace_every *= 2;
            }
        }
        if step % self.column_every == 0 || step == 1 {
            self.record_column();
            self.check_plain_stall();
        }
    }

    /// The plain net has stalled when, after 100 steps, ≥ 90 % of a hidden layer's ReLUs are
    /// dead, or after 300 steps its mini-batch loss is still at chance (ln 10).
    fn check_plain_stall(&mut self) {
        let step = self.nets[Net::Plain as usize].step;
        if self.plain_failure.is_some() || !self.config.nets.trains(Net::Plain) || step < 100 {
            return;
        }
        let Some(last) = self.columns.last() else { return };
        let dead = (0..self.config.hidden.len()).map(|k| last.series.get(k * SERIES.len() + 1).copied().unwrap_or(f32::NAN)).fold(0.0f32, f32::max);
        let chance = (CLASSES as f32).ln();
        let loss = self.trace.last().map(|t| t.loss[0]).unwrap_or(f32::NAN);
        if dead >= 0.9 {
            self.plain_failure =
                Some(format!("the plain net stalled at step {step}: {:.0} % of a hidden layer's ReLUs are dead; the BN net trains on", dead * 100.0));
        } else if step >= 300 && loss > 0.97 * chance {
            self.plain_failure = Some(format!("the plain net stalled at step {step}: its loss is stuck at chance (ln 10 ≈ 2.30); the BN net trains on"));
        }
    }

    /// Samples every hidden layer of both nets (last mini-batch) and every dense layer's weights.
    fn record_column(&mut self) {
        let c = self.config.clone();
        let layers = c.hidden.len();
        let mut hist = Vec::with_capacity(2 * layers * QUANTITIES.len());
        let mut series = Vec::with_capacity(2 * (layers + 1) * SERIES.len());
        for net in Net::BOTH {
            let i = net as usize;
            let ratios = self.nets[i].weight_ratios();
            let version = self.nets[i].model.version();
            if !self.sampled[i].as_ref().is_some_and(|s| s.version == version && s.config == c) {
                self.sampled[i] = Some(sample(&c, net, &self.nets[i].model, version));
            }
            let sampled = self.sampled[i].as_ref().expect("sampled above");
            hist.extend_from_slice(&sampled.hist);
            for (j, &[saturated, dead, grad_data, mean_abs]) in sampled.stats.iter().enumerate() {
                let ratio = ratios.get(j).copied().unwrap_or(0.0);
                let update = if ratio > 0.0 { ratio.log10() } else { f32::NAN };
                series.extend([saturated, dead, update, grad_data, mean_abs]);
            }
        }
        self.columns.push(Column { step: self.nets[self.lead()].step, hist, series });
        if thin(&mut self.columns, MAX_COLUMNS) {
            self.column_every *= 2;
        }
        self.bn_stats = self.nets[1]
            .model
            .layers_of::<BatchNorm>()
            .enumerate()
            .map(|(layer, b)| {
                let first = |v: &[f32]| v.iter().take(STATS_SHOWN).copied().collect::<Vec<f32>>();
                BnStats {
                    layer,
                    batch_mean: first(&b.batch_mean),
                    running_mean: first(b.running_mean.data()),
                    batch_var: first(&b.batch_var),
                    running_var: first(b.running_var.data()),
                    gamma: first(b.gamma.data()),
                    beta: first(b.beta.data()),
                }
            })
            .collect();
    }

    fn flat_columns(&self) -> Columns {
        let layers = self.config.hidden.len();
        let dense = layers + 1;
        let n = self.columns.len();
        let mut out = Columns { steps: self.columns.iter().map(|c| c.step).collect(), layers, dense, ..Default::default() };
        let slots = 2 * layers * QUANTITIES.len();
        out.heat = Vec::with_capacity(slots * n * HEAT_BINS);
        out.ranges = Vec::with_capacity(slots * n);
        for slot in 0..slots {
            for c in &self.columns {
                let (range, bins) = c.hist.get(slot).copied().unwrap_or(((0.0, 0.0), [0; HEAT_BINS]));
                out.heat.extend_from_slice(&bins);
                out.ranges.push(range);
            }
        }
        for s in 0..2 * dense * SERIES.len() {
            out.series.extend(self.columns.iter().map(|c| c.series.get(s).copied().unwrap_or(f32::NAN)));
        }
        out
    }

    /// Recomputes the BN net's running statistics over the training images (in order, batches of
    /// `bs`, each batch counted equally), then evaluates the test set again.
    pub fn calibrate(&mut self) -> (usize, String) {
        let per_image = self.config.per_image().0.max(1.0);
        let total = self.images.train.len();
        let images = ((CALIBRATE_FLOPS / per_image) as usize).clamp(self.config.bs, total).min(total);
        self.bn_layers().for_each(|b| b.begin_calibration());
        let bs = self.config.bs.max(2);
        let (mut x, mut y, mut classes) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new());
        let source = Flat { digits: &self.images.train, scaling: self.scaling, shared: None };
        for start in (0..images).step_by(bs) {
            let indices: Vec<usize> = (start..(start + bs).min(images)).collect();
            source.gather(&indices, &mut x, &mut y, &mut classes);
            self.nets[1].model.forward(&x, Mode::Train);
        }
        self.bn_layers().for_each(|b| b.end_calibration());
        self.record_column();
        self.running_eval = None;
        self.evaluate_now();
        let message =
            format!("running statistics recomputed over {images} training images at step {} (each batch of {bs} counted equally)", self.nets[self.lead()].step);
        self.calibrated = Some(message.clone());
        (images, message)
    }

    fn diagnose(&self) -> Vec<Diagnosis> {
        let mut found = Vec::new();
        if let Some(at) = self.plain_diverged_at {
            found.push(Diagnosis {
                kind: DiagnosisKind::NonFinite,
                layer: None,
                message: format!(
                    "The plain net's loss became NaN or infinite at step {at}: at this learning rate its steps overshoot and the weights blow up, so it has stopped. \
                     The BN net trains on — normalising every layer keeps its activations at the same scale whatever the weights grow to."
                ),
                fix: Some(Fix { label: "Reset with learning rate ÷ 10".into(), key: "lr".into(), value: diagnose::scaled_lr(self.config.lr, 0.1), reset: true }),
            });
        }
        let Some(last) = self.columns.last() else {
            return found;
        };
        let dense = self.config.hidden.len() + 1;
        for net in Net::BOTH {
            if net == Net::Plain && self.plain_diverged_at.is_some() {
                continue;
            }
            for k in 0..self.config.hidden.len() {
                let at = |s: usize| last.series.get((net as usize * dense + k) * SERIES.len() + s).copied().unwrap_or(f32::NAN);
                let (saturated, dead) = (at(0), at(1));
                if saturated > 0.5 {
                    found.push(Diagnosis {
                        kind: DiagnosisKind::Saturated,
                        layer: Some(k),
                        message: format!(
                            "{:.0} % of the {} net's layer {} activations are saturated: their derivative is ≈ 0, so hardly any gradient flows through them.",
                            saturated * 100.0,
                            net.label(),
                            k + 1
                        ),
                        fix: None,
                    });
                }
                if dead > 0.5 {
                    found.push(Diagnosis {
                        kind: DiagnosisKind::DeadUnits,
                        layer: Some(k),
                        message: format!(
                            "{:.0} % of the {} net's layer {} ReLUs are dead (never positive on the last mini-batch): they pass no gradient and stop learning.",
                            dead * 100.0,
                            net.label(),
                            k + 1
                        ),
                        fix: Some(Fix {
                            label: "Reset with learning rate ÷ 10".into(),
                            key: "lr".into(),
                            value: diagnose::scaled_lr(self.config.lr, 0.1),
                            reset: true,
                        }),
                    });
                }
            }
        }
        found
    }
}

impl Lab for BnLab {
    type Config = BnConfig;
    type View = BnView;
    type Command = BnCommand;
    type Reply = BnReply;

    fn needs_images(config: &BnConfig) -> Option<ImageSet> {
        Some(config.data)
    }

    fn new(config: BnConfig, assets: &Assets) -> Result<Self, String> {
        let images = assets.get(config.data).ok_or_else(|| format!("the {} images are not loaded", config.data.label()))?;
        Ok(BnLab::create(config, images))
    }

    fn config(&self) -> &BnConfig {
        &self.config
    }

    /// A live key changed: both nets get the new settings (the session gave them to the lead).
    fn set_config(&mut self, config: BnConfig) {
        let training = crate::lab::LabParams::training(&config);
        self.nets.iter_mut().for_each(|t| t.apply(&training));
        self.config = config;
    }

    fn trainer(&self) -> &Trainer {
        &self.nets[self.lead()]
    }

    fn trainer_mut(&mut self) -> &mut Trainer {
        let lead = self.lead();
        &mut self.nets[lead]
    }

    fn trainers_mut(&mut self) -> Vec<&mut Trainer> {
        self.nets.iter_mut().collect()
    }

    /// Trains up to `n` steps of both nets; while a test evaluation is due, a call evaluates one
    /// chunk instead.
    fn train(&mut self, n: u64) {
        for i in 0..n {
            if self.running_eval.is_some() {
                self.eval_chunk();
                return;
            }
            // Another step follows in this call unless an evaluation falls due after this one.
            let more = i + 1 < n && (self.nets[self.lead()].step + 1) % self.config.eval != 0;
            self.step_both(more);
            if self.nets[self.lead()].step % self.config.eval == 0 {
                self.running_eval = Some(Evaluation::default());
            }
        }
    }

    fn pause_reason(&mut self) -> Option<String> {
        if self.failure_reported || !self.config.nets.trains(Net::Bn) {
            return None;
        }
        let why = self.plain_failure.clone()?;
        self.failure_reported = true;
        Some(format!("{why} (press Play)"))
    }

    fn stop_reason(&mut self) -> Option<String> {
        let e = self.config.epochs;
        (e > 0 && self.nets[self.lead()].epoch >= e && self.running_eval.is_none()).then(|| format!("stopped after {e} epochs (Play trains on)"))
    }

    fn evaluating(&self) -> bool {
        self.running_eval.is_some()
    }

    fn finish(&mut self) {
        if self.history.last().is_none_or(|h| h.step != self.nets[self.lead()].step) {
            self.evaluate_now();
        }
    }

    fn rebuild(&mut self, key: &str, next: BnConfig) -> Result<Applied, String> {
        match key {
            "data" if next.data != self.images.set => Err(format!("the {} images are not loaded here", next.data.label())),
            // Freezing keeps the weights: γ and β stop being parameters, so the BN net's
            // optimiser state (indexed by parameter) starts fresh.
            "freeze" => {
                let trainable = !next.freeze;
                self.bn_layers().for_each(|b| b.affine_trainable = trainable);
                let t = &mut self.nets[1];
                t.reset_optimizer();
                self.config = next;
                Ok(Applied::Live)
            }
            _ => {
                *self = BnLab::create(next, self.images.clone());
                Ok(Applied::Reset)
            }
        }
    }

    fn command(&mut self, command: BnCommand, _now_ms: &mut dyn FnMut() -> f64) -> Result<Option<BnReply>, Notice> {
        match command {
            BnCommand::Calibrate => {
                let (images, message) = self.calibrate();
                Ok(Some(BnReply::Calibrated { images, message }))
            }
        }
    }

    fn report(&mut self) -> Report<BnView> {
        let mut metrics = vec![Metric { name: "epoch_fraction".into(), value: self.epoch_fraction() }];
        let (mut train_loss, mut test_loss) = (f32::NAN, f32::NAN);
        if let Some(e) = self.history.last() {
            metrics.extend([
                Metric { name: "plain_test_accuracy".into(), value: e.accuracy[0] },
                Metric { name: "bn_test_accuracy".into(), value: e.accuracy[1] },
                Metric { name: "bn_test_accuracy_train_mode".into(), value: e.bn_train_mode_accuracy },
                Metric { name: "plain_test_loss".into(), value: e.loss[0] },
                Metric { name: "bn_test_loss".into(), value: e.loss[1] },
            ]);
            test_loss = e.loss[1];
        }
        if let Some(t) = self.trace.last() {
            train_loss = t.loss[1];
        }
        // Percentile drift, over the evaluations after step 0 (at step 0 the BN net's running
        // statistics are still their initial 0 and 1, not the network's).
        let trained: Vec<&EvalPoint> = self.history.iter().filter(|h| h.step > 0).collect();
        let mut drift = [f32::NAN; 2];
        if let [.., last] = trained[..] {
            if trained.len() >= 2 {
                for (i, d) in drift.iter_mut().enumerate() {
                    let spread = last.percentiles[i][2] - last.percentiles[i][0];
                    let moved = (0..3)
                        .map(|p| {
                            let values = trained.iter().map(|h| h.percentiles[i][p]);
                            values.clone().fold(f32::NEG_INFINITY, f32::max) - values.fold(f32::INFINITY, f32::min)
                        })
                        .sum::<f32>()
                        / 3.0;
                    *d = if spread > 0.0 { moved / spread } else { f32::NAN };
                }
                metrics.push(Metric { name: "plain_percentile_drift".into(), value: drift[0] });
                metrics.push(Metric { name: "bn_percentile_drift".into(), value: drift[1] });
            }
        }
        let view = BnView {
            data: self.images.set,
            train_size: self.images.train.len(),
            dense_names: self.nets[1].model.layers_of::<Dense>().map(|d| d.name()).collect(),
            trace: self.trace.clone(),
            history: self.history.clone(),
            columns: self.flat_columns(),
            bn_stats: self.bn_stats.clone(),
            plain_diverged_at: self.plain_diverged_at,
            plain_failure: self.plain_failure.clone(),
            drift,
            eval_progress: self.running_eval.as_ref().map(|e| e.next as f32 / self.images.test.len().max(1) as f32).unwrap_or(0.0),
            calibrated: self.calibrated.clone(),
        };
        Report { train_loss, test_loss, metrics, layers: Vec::new(), diagnoses: self.diagnose(), view }
    }

    /// 10 per second: each carries the histograms over time of both nets.
    fn snapshot_interval_ms(&self) -> f64 {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised histogram gives the bins of the plain definition (a division per value).
    #[test]
    fn histogram_equals_the_plain_definition() {
        let mut rng = Rng::new(5);
        for len in [1, 2, 5, 64, 1003] {
            let values: Vec<f32> = (0..len)
                .map(|i| {
                    if i % 31 == 7 {
                        f32::NAN
                    } else if i % 53 == 9 {
                        f32::INFINITY
                    } else {
                        rng.normal()
                    }
                })
                .collect();
            let finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
            let (lo, hi) = finite.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let mut counts = [0u32; HEAT_BINS];
            for &v in &finite {
                let b = if hi > lo { ((v - lo) as f64 / (hi - lo) as f64 * HEAT_BINS as f64) as usize } else { HEAT_BINS / 2 };
                counts[b.min(HEAT_BINS - 1)] += 1;
            }
            let peak = *counts.iter().max().unwrap();
            let bins: Vec<u8> = counts.iter().map(|&c| ((c as f64 / peak as f64) * 255.0).round() as u8).collect();
            let (range, got) = histogram(&values);
            assert_eq!((range, got.to_vec()), ((lo, hi), bins), "{len}");
        }
    }

    /// A net that has not changed since its last sample is not sampled again, and every column
    /// holds what sampling both nets afresh gives — also after the net that does not train was
    /// run on other rows (its layers' outputs changed), or evaluated.
    #[test]
    fn an_unchanged_net_is_not_sampled_again_and_every_column_equals_fresh_samples() {
        use crate::lab::{parse_link, Lab};
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
        let mut assets = Assets::default();
        assets.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST"));
        let link = "lab=batchnorm&nets=plain&hidden=32,16&eval=40";
        let config = parse_link(link).config.get::<BnConfig>().expect("a batchnorm link").clone();
        let mut lab = BnLab::new(config, &assets).expect("MNIST loaded");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let (layers, dense) = (2, 3);
        let (mut columns, mut reused, mut resampled) = (0, 0, 0);
        let mut last_bn = None;
        while lab.nets[0].step < 300 {
            let before = lab.columns.last().map(|c| c.step);
            if lab.nets[0].step % 50 == 17 {
                // Other rows through the net that does not train (as a preview would).
                let from = lab.nets[0].step as usize * INPUTS;
                let x = tensor::from_vec(&[3, INPUTS], lab.images.test.images[from..from + 3 * INPUTS].iter().map(|&p| p as f32 / 255.0).collect());
                lab.nets[1].model.forward(&x, Mode::Eval);
            }
            lab.train(1);
            let Some(column) = lab.columns.last().filter(|c| Some(c.step) != before && c.step == lab.nets[0].step) else { continue };
            columns += 1;
            for net in Net::BOTH {
                let i = net as usize;
                let fresh = sample(&lab.config, net, &lab.nets[i].model, (0, 0));
                let q = layers * QUANTITIES.len();
                assert_eq!(column.hist[i * q..(i + 1) * q], fresh.hist[..], "{net:?}'s histograms at step {}", column.step);
                for (j, stats) in fresh.stats.iter().enumerate() {
                    let at = (i * dense + j) * SERIES.len();
                    let got = &column.series[at..at + SERIES.len()];
                    let got = [got[0], got[1], got[3], got[4]];
                    assert_eq!(bits(&got), bits(stats), "{net:?}'s dense layer {j} at step {}", column.step);
                }
            }
            let bn = lab.sampled[1].as_ref().expect("sampled").version;
            match last_bn.replace(bn) {
                Some(v) if v == bn => reused += 1,
                Some(_) => resampled += 1,
                None => {}
            }
        }
        // The BN net never trains: sampled again only after it ran on other rows or was
        // evaluated (steps 40, 80, …).
        assert_eq!(lab.nets[1].step, 0);
        assert!(columns >= 20 && reused >= 10, "{columns} columns, the BN net's sample reused in {reused}");
        assert!(resampled >= 6, "the BN net sampled again {resampled} times");
    }

    #[test]
    fn histograms_percentiles_and_saturation() {
        let ((lo, hi), bins) = histogram(&[0.0, 1.0, 1.0, f32::NAN, 2.0]);
        assert_eq!((lo, hi), (0.0, 2.0));
        assert_eq!((bins[0], bins[8], bins[15]), (128, 255, 128));
        assert_eq!(histogram(&[f32::NAN]), ((0.0, 0.0), [0; HEAT_BINS]));
        let sorted: Vec<f32> = (0..101).map(|v| v as f32).collect();
        assert_eq!([percentile(&sorted, 15.0), percentile(&sorted, 50.0), percentile(&sorted, 85.0)], [15.0, 50.0, 85.0]);
        assert!(percentile(&[], 50.0).is_nan());
        // Two units over two examples: unit 1 never positive.
        assert_eq!(saturation(ActivationKind::Relu, &[1.0, 0.0, 2.0, 0.0], 2).1, 0.5);
        assert_eq!(saturation(ActivationKind::Tanh, &[0.99, 0.0, -0.98, 0.5], 2).0, 0.5);
    }
}
