//! Lab 4's session: trains the character RNN on mini-batches of names padded to the longest
//! (masks keep padding out of everything), evaluates the validation and test names every `eval`
//! steps and at every epoch's end (in chunks), keeps the best epoch by validation accuracy for
//! early stopping, and reports the typed name's guesses and its gradient through time.

use super::config::{RnnConfig, RnnData, Task, RANDOM_SHAPE};
use super::generate::{self, GenData};
use super::view::{Best, ClipMeter, EvalPoint, GenPoint, GenSample, GenView, Guess, Probe, Race, RnnCommand, RnnReply, RnnView};
use crate::data::images::Assets;
use crate::data::names::{self, Labelled, NaiveBayes, Split, TextSet};
use crate::data::play;
use crate::data::Source;
use crate::lab::diagnose;
use crate::lab::evalcopy::EvalInputs;
use crate::lab::params::Notice;
use crate::lab::snapshot::Metric;
use crate::lab::trainer::Trainer;
use crate::lab::{Applied, Lab, Report};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::math;
use crate::ops::{Rnn, RnnImpl};
use crate::rng::Rng;
use crate::tensor::{self, Mode, Tensor};
use std::sync::Arc;

const MAX_HISTORY: usize = 400;
/// Names per evaluation chunk (one call of `train`).
const EVAL_CHUNK: usize = 1000;
/// Steps the clipping meter looks back over.
const CLIP_WINDOW: usize = 100;
const RACE_EVERY_MS: f64 = 1000.0;
const RACE_SHARE: f64 = 0.1;
/// Runs of each implementation per race.
const RACE_REPS: usize = 10;
/// Sequences in shards of 32: the lab's default batch (32) trains as one piece, as it always did;
/// from 64 sequences a batch splits over workers (a shard of 32 names is ~1 ms of work against
/// ~0.1 ms to exchange 26,000 gradients). Generating, a shard's share of the loss is its real
/// characters over the batch's (see `parallel::shard_gradient`).
const RNN_SHARDING: crate::parallel::Sharding = crate::parallel::Sharding::Rows(32);

/// Some of the names as a mini-batch source: `(n, T, vocab)` one-hot, padded with zero rows to
/// the longest name of the batch.
struct Names<'a> {
    data: &'a Labelled,
    indices: &'a [usize],
    vocab: usize,
}

impl Source for Names<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn has_classes(&self) -> bool {
        true
    }

    fn gather(&self, rows: &[usize], x: &mut Tensor, _y: &mut Tensor, classes: &mut Vec<usize>) {
        let seqs: Vec<&[usize]> = rows.iter().map(|&r| self.data.names[self.indices[r]].as_slice()).collect();
        one_hot_into(&seqs, self.vocab, x);
        classes.clear();
        classes.extend(rows.iter().map(|&r| self.data.labels[self.indices[r]]));
    }
}

/// Writes sequences as a padded one-hot batch `(n, T, vocab)`.
fn one_hot_into(seqs: &[&[usize]], vocab: usize, x: &mut Tensor) {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    tensor::resize(x, &[seqs.len(), t, vocab]);
    let xs = tensor::slice_mut(x);
    xs.fill(0.0);
    for (i, s) in seqs.iter().enumerate() {
        for (step, &c) in s.iter().enumerate() {
            xs[(i * t + step) * vocab + c.min(vocab - 1)] = 1.0;
        }
    }
}

fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|&v| math::exp(v - max)).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

/// Random sequences of the W4 benchmark's shape (a fixed stream: the same data for every seed).
fn random_data() -> Labelled {
    let (len, symbols, classes, count) = RANDOM_SHAPE;
    let mut rng = Rng::new(4242);
    Labelled {
        names: (0..count).map(|_| (0..len).map(|_| rng.below(symbols)).collect()).collect(),
        labels: (0..count).map(|_| rng.below(classes)).collect(),
        classes: (0..classes).map(|c| format!("class {c}")).collect(),
    }
}

#[derive(Clone, Debug, Default)]
struct Evaluation {
    /// Position in validation then test names.
    next: usize,
    right: [usize; 2],
    loss: [f64; 2],
    confusion: Vec<u32>,
    epoch_end: bool,
}

/// Passages of Shakespeare shown at once (each is 200 characters with their top fives).
pub const MAX_PASSAGES: usize = 5;

/// The shortest pasted text the Shakespeare model trains on (characters).
pub const MIN_PASTED_TEXT: usize = 1_000;

/// The generation task's state.
#[derive(Clone)]
struct Gen {
    data: Arc<GenData>,
    bigram: f32,
    trigram: f32,
    history: Vec<GenPoint>,
    /// A dev evaluation under way: next position, NLL sum, characters.
    running: Option<(usize, f64, usize)>,
    samples: Vec<GenSample>,
    /// Sampling draws from its own stream, so showing samples never changes the training.
    rng: Rng,
    /// Mini-batch loss sum and steps since the last point.
    batch: (f64, u64),
}

#[derive(Clone)]
pub struct RnnLab {
    config: RnnConfig,
    gen: Option<Gen>,
    data: Arc<Labelled>,
    split: Split,
    /// Pasted data, kept across rebuilds until replaced.
    custom: Option<Arc<Labelled>>,
    trainer: Trainer,
    baseline: [f32; 2],
    running_eval: Option<Evaluation>,
    history: Vec<EvalPoint>,
    best: Option<Best>,
    confusion: Vec<u32>,
    /// The epoch last evaluated at its end.
    evaluated_epoch: u64,
    /// Mini-batch sums since the last evaluation: right, seen, loss, steps.
    batch: (u64, u64, f64, u64),
    step_grads: Vec<f32>,
    pre_clip: Vec<f32>,
    race: Option<Race>,
    last_race_at: f64,
    race_cost_ms: f64,
    /// Evaluation chunks' inputs (not in checkpoints).
    eval_x: EvalInputs,
}

impl RnnLab {
    pub fn create(config: RnnConfig, data: Arc<Labelled>, custom: Option<Arc<Labelled>>) -> RnnLab {
        let data = custom.clone().unwrap_or(data);
        let split = Split::new(data.len(), 0.15, 0.1, config.seed);
        let classes = data.classes.len();
        let model = config.build_model(classes, &mut Rng::fork(config.seed, 1));
        let mut trainer = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, config.bs, split.train.len(), Rng::fork(config.seed, 2));
        (trainer.schedule, trainer.schedule_period) = (config.sched, config.period);
        trainer.shard_if_possible(RNN_SHARDING);
        // Per-step gradient norms are recorded by the lab (the trainer's records stay sparse).
        trainer.set_record_every(10);
        let nb = NaiveBayes::train(&data, &split.train);
        let baseline = [nb.accuracy(&data, &split.test), balanced(&data, &split.test, |i| nb.predict(&data.names[i]))];
        RnnLab {
            config,
            gen: None,
            data,
            split,
            custom,
            trainer,
            baseline,
            running_eval: None,
            history: Vec::new(),
            best: None,
            confusion: Vec::new(),
            evaluated_epoch: 0,
            batch: (0, 0, 0.0, 0),
            step_grads: Vec::new(),
            pre_clip: Vec::new(),
            race: None,
            last_race_at: f64::NEG_INFINITY,
            race_cost_ms: 0.0,
            eval_x: EvalInputs::default(),
        }
    }

    /// The generation task on `names` (split 80/10/10 by the seed).
    pub fn create_gen(config: RnnConfig, names: Vec<Vec<usize>>) -> RnnLab {
        let data = GenData::new(names, config.seed);
        RnnLab::create_gen_from(config, data)
    }

    fn create_gen_from(config: RnnConfig, data: GenData) -> RnnLab {
        let gen_data = Arc::new(data);
        let vocab = config.vocab();
        let symbols = Labelled { classes: (0..vocab).map(|s| names::character(s).to_string()).collect(), ..Default::default() };
        let mut lab = RnnLab::create(config.clone(), Arc::new(symbols), None);
        let n = gen_data.split.train.len();
        let model = config.build_model(vocab, &mut Rng::fork(config.seed, 1));
        lab.trainer = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, config.bs, n, Rng::fork(config.seed, 2));
        (lab.trainer.schedule, lab.trainer.schedule_period) = (config.sched, config.period);
        lab.trainer.shard_if_possible(RNN_SHARDING);
        lab.trainer.set_record_every(10);
        lab.baseline = [f32::NAN; 2];
        let d = &gen_data;
        lab.gen = Some(Gen {
            bigram: generate::ngram_nll(&d.names, &d.split.train, &d.split.val, 2, d.stream),
            trigram: generate::ngram_nll(&d.names, &d.split.train, &d.split.val, 3, d.stream),
            data: gen_data.clone(),
            history: Vec::new(),
            running: None,
            samples: Vec::new(),
            rng: Rng::fork(config.seed, 9),
            batch: (0.0, 0),
        });
        lab.resample();
        lab
    }

    /// Draws the shown samples anew (after an evaluation, or a change of temperature or prefix).
    fn resample(&mut self) {
        let stream = self.gen.as_ref().is_some_and(|g| g.data.stream);
        let n = if stream { self.config.samples.min(MAX_PASSAGES) } else { self.config.samples };
        if let Some(samples) = self.draw_samples(n) {
            self.gen.as_mut().expect("generation").samples = samples;
        }
    }

    /// `n` samples from the sampling stream: names, or passages of Shakespeare.
    fn draw_samples(&mut self, n: usize) -> Option<Vec<GenSample>> {
        let data = self.gen.as_ref()?.data.clone();
        let (vocab, temp) = (self.config.vocab(), self.config.temp);
        let start = self.start_symbol();
        let model = &mut self.trainer.model;
        let rng = &mut self.gen.as_mut().expect("generation").rng;
        Some(if data.stream {
            let prime = play::encode(&self.config.prime);
            // Passages are long: at most MAX_PASSAGES are shown (the CLI asks for any number).
            (0..n).map(|_| generate::sample_passage(model, &prime, temp, rng)).collect()
        } else {
            let prime: Vec<usize> = names::encode(&self.config.prime).unwrap_or_default().into_iter().take(20).collect();
            (0..n).map(|_| generate::sample(model, start, &prime, temp, vocab, rng, &data.train_set)).collect()
        })
    }

    /// `n` sampled names or passages (the CLI's `sample`).
    pub fn sample_names(&mut self, n: usize) -> Vec<String> {
        self.draw_samples(n).unwrap_or_default().into_iter().map(|s| s.name).collect()
    }

    /// What samples start from: `.`, or the chosen language's symbol (1:many).
    fn start_symbol(&self) -> usize {
        match self.gen.as_ref().filter(|g| !g.data.classes.is_empty()) {
            Some(g) => names::VOCAB + g.data.classes.iter().position(|c| *c == self.config.lang).unwrap_or(0),
            None => generate::dot(),
        }
    }

    /// The latest dev NLL (generation).
    pub fn dev_nll(&self) -> Option<f32> {
        self.gen.as_ref()?.history.last().map(|p| p.dev_nll)
    }

    /// Bigram and trigram dev NLL (generation).
    pub fn ngram_baselines(&self) -> Option<[f32; 2]> {
        self.gen.as_ref().map(|g| [g.bigram, g.trigram])
    }

    fn gen_eval_chunk(&mut self) {
        let vocab = self.config.vocab();
        let epoch = self.epoch_fraction();
        let Some(g) = self.gen.as_mut() else { return };
        let Some((next, mut sum, mut count)) = g.running.take() else { return };
        let data = g.data.clone();
        let dev = &data.split.val;
        let end = (next + EVAL_CHUNK).min(dev.len());
        let (s, c) = generate::nll_sum(&mut self.trainer.model, &data, &dev[next..end], vocab, &mut self.eval_x.x);
        sum += s;
        count += c;
        if end < dev.len() {
            g.running = Some((end, sum, count));
            return;
        }
        let point = GenPoint {
            step: self.trainer.step,
            epoch,
            train_nll: if g.batch.1 > 0 { (g.batch.0 / g.batch.1 as f64) as f32 } else { f32::NAN },
            dev_nll: (sum / count.max(1) as f64) as f32,
        };
        g.batch = (0.0, 0);
        g.history.push(point);
        if g.history.len() > MAX_HISTORY {
            let mut keep = true;
            g.history.retain(|_| {
                keep = !keep;
                keep
            });
        }
        self.resample();
    }

    fn gen_report(&mut self) -> Report<RnnView> {
        let g = self.gen.as_ref().expect("generation");
        let mut metrics = vec![Metric { name: "epoch_fraction".into(), value: self.epoch_fraction() }];
        let last = g.history.last().cloned();
        if let Some(p) = &last {
            metrics.push(Metric { name: "dev_nll".into(), value: p.dev_nll });
        }
        let new_share = if g.data.stream { f32::NAN } else { g.samples.iter().filter(|s| s.is_new).count() as f32 / g.samples.len().max(1) as f32 };
        metrics.extend([Metric { name: "bigram_nll".into(), value: g.bigram }, Metric { name: "trigram_nll".into(), value: g.trigram }]);
        if !g.data.stream {
            metrics.push(Metric { name: "new_share".into(), value: new_share });
        }
        let gen = GenView { history: g.history.clone(), bigram: g.bigram, trigram: g.trigram, samples: g.samples.clone(), new_share };
        let eval_progress = g.running.map(|(next, _, _)| next as f32 / g.data.split.val.len().max(1) as f32).unwrap_or(0.0);
        let sizes = [g.data.split.train.len(), g.data.split.val.len(), g.data.split.test.len()];
        let rnn = self.rnn();
        let spectral_radius = crate::ops::rnn::spectral_radius(rnn.w_hh.data(), rnn.hidden);
        let view = RnnView {
            gen: Some(gen),
            sizes,
            step_grads: self.step_grads.clone(),
            step_grads_of: self.step_grads_of(),
            spectral_radius,
            clip: self.clip_meter(),
            eval_progress,
            ..Default::default()
        };
        let (train_loss, test_loss) = last.map(|p| (p.train_nll, p.dev_nll)).unwrap_or((f32::NAN, f32::NAN));
        Report { train_loss, test_loss, metrics, layers: self.trainer.layer_snapshots(), diagnoses: Vec::new(), view }
    }

    /// Pasted data for generation: names one per line (a new 80/10/10 split), or any text for
    /// the Shakespeare model (cut into windows, split in order). The data in use stays on refusal.
    fn set_gen_data(&mut self, text: &str) -> Result<Option<RnnReply>, Notice> {
        let g = self.gen.as_ref().expect("generation");
        let data = if g.data.stream {
            let chars = text.chars().count();
            if chars < MIN_PASTED_TEXT || text.len() > names::MAX_TEXT {
                return Err(Notice::new(
                    "data",
                    format!("pasted text refused, nothing changed: {chars} characters; paste {MIN_PASTED_TEXT} to {} (4 MB)", names::MAX_TEXT),
                ));
            }
            GenData::play(text)
        } else if !g.data.classes.is_empty() {
            return Err(Notice::new("data", "a surname given a language trains on the shipped surnames; paste names in the generate or classify task"));
        } else {
            let pasted = names::parse_plain_checked(text)
                .map_err(|errors| Notice::new("data", format!("pasted names refused, nothing changed: {}", errors.join("; "))))?;
            if pasted.len() < 20 {
                return Err(Notice::new("data", format!("{} names are too few to split into training, dev and test (at least 20)", pasted.len())));
            }
            GenData::new(pasted, self.config.seed)
        };
        let names = data.names.len();
        *self = RnnLab::create_gen_from(self.config.clone(), data);
        Ok(Some(RnnReply::DataSet { names, classes: 0 }))
    }

    pub fn history(&self) -> &[EvalPoint] {
        &self.history
    }

    pub fn best(&self) -> Option<&Best> {
        self.best.as_ref()
    }

    pub fn baseline(&self) -> [f32; 2] {
        self.baseline
    }

    fn classes(&self) -> usize {
        self.data.classes.len()
    }

    fn epoch_fraction(&self) -> f32 {
        let n = self.gen.as_ref().map_or(self.split.train.len(), |g| g.data.split.train.len());
        (self.trainer.step as f64 * self.config.bs as f64 / n.max(1) as f64) as f32
    }

    /// Which names the gradient-through-time line covers when the last mini-batch was split
    /// (empty: all of it): its first shard's, the rows the layer keeps (on any number of workers).
    fn step_grads_of(&self) -> String {
        let (first, rows) = (self.trainer.first_shard_rows(), self.trainer.batch_rows());
        if first < rows {
            format!("The mini-batch trains in shards of {first} sequences (over workers when there are several): its line is ‖∂L/∂h_t‖ over the first shard's {first} of its {rows} sequences, the rows the RNN layer keeps.")
        } else {
            String::new()
        }
    }

    fn rnn(&self) -> &Rnn {
        self.trainer.model.tapped::<Rnn>("rnn").expect("the model has its RNN")
    }

    fn rnn_mut(&mut self) -> &mut Rnn {
        self.trainer.model.tapped_mut::<Rnn>("rnn").expect("the model has its RNN")
    }

    fn eval_chunk(&mut self) {
        if self.gen.is_some() {
            return self.gen_eval_chunk();
        }
        let Some(mut e) = self.running_eval.take() else {
            return;
        };
        let k = self.classes();
        let (nv, nt) = (self.split.val.len(), self.split.test.len());
        let end = (e.next + EVAL_CHUNK).min(nv + nt);
        let data = self.data.clone();
        let rows: Vec<usize> = (e.next..end).map(|p| if p < nv { self.split.val[p] } else { self.split.test[p - nv] }).collect();
        let seqs: Vec<&[usize]> = rows.iter().map(|&i| data.names[i].as_slice()).collect();
        one_hot_into(&seqs, self.config.vocab(), &mut self.eval_x.x);
        let out = self.trainer.model.forward(&self.eval_x.x, Mode::Eval);
        for (r, row) in tensor::slice(out).chunks(k).enumerate() {
            let p = softmax(row);
            let (label, guess) = (data.labels[rows[r]], tensor::argmax(&p));
            let which = usize::from(e.next + r >= nv);
            e.loss[which] -= math::ln(p[label].max(1e-30)) as f64;
            e.right[which] += usize::from(guess == label);
            if which == 1 {
                e.confusion[label * k + guess] += 1;
            }
        }
        e.next = end;
        if end < nv + nt {
            self.running_eval = Some(e);
            return;
        }
        let recall = recall(&e.confusion, k);
        let test_balanced = recall.iter().filter(|r| r.is_finite()).sum::<f32>() / recall.iter().filter(|r| r.is_finite()).count().max(1) as f32;
        let (b_right, b_seen, b_loss, b_steps) = self.batch;
        let point = EvalPoint {
            step: self.trainer.step,
            epoch: self.epoch_fraction(),
            train_loss: if b_steps > 0 { (b_loss / b_steps as f64) as f32 } else { f32::NAN },
            train_accuracy: if b_seen > 0 { b_right as f32 / b_seen as f32 } else { f32::NAN },
            val_loss: (e.loss[0] / nv.max(1) as f64) as f32,
            val_accuracy: e.right[0] as f32 / nv.max(1) as f32,
            test_loss: (e.loss[1] / nt.max(1) as f64) as f32,
            test_accuracy: e.right[1] as f32 / nt.max(1) as f32,
            test_balanced,
            epoch_end: e.epoch_end,
        };
        self.batch = (0, 0, 0.0, 0);
        if e.epoch_end && self.best.as_ref().is_none_or(|b| point.val_accuracy > b.val_accuracy) {
            self.best = Some(Best {
                epoch: self.trainer.epoch,
                step: point.step,
                val_accuracy: point.val_accuracy,
                test_accuracy: point.test_accuracy,
                test_balanced: point.test_balanced,
            });
        }
        self.confusion = e.confusion;
        self.history.push(point);
        if self.history.len() > MAX_HISTORY {
            // Keep every epoch-end point; thin the others.
            let mut keep = true;
            self.history.retain(|p| {
                keep = !keep;
                keep || p.epoch_end
            });
        }
    }

    fn start_eval(&mut self, epoch_end: bool) {
        if let Some(g) = self.gen.as_mut() {
            g.running = Some((0, 0.0, 0));
            return;
        }
        let k = self.classes();
        self.running_eval = Some(Evaluation { confusion: vec![0; k * k], epoch_end, ..Default::default() });
    }

    /// Evaluates now, finishing any evaluation under way.
    pub fn evaluate_now(&mut self) {
        if !self.eval_running() {
            let epoch_end = self.evaluated_epoch < self.trainer.epoch;
            self.evaluated_epoch = self.trainer.epoch;
            self.start_eval(epoch_end);
        }
        while self.eval_running() {
            self.eval_chunk();
        }
    }

    fn eval_running(&self) -> bool {
        match &self.gen {
            Some(g) => g.running.is_some(),
            None => self.running_eval.is_some(),
        }
    }

    /// Class probabilities for one encoded name.
    pub fn classify(&mut self, symbols: &[usize]) -> Vec<f32> {
        let mut x = tensor::zeros(&[0]);
        one_hot_into(&[symbols], self.config.vocab(), &mut x);
        softmax(tensor::slice(self.trainer.model.forward(&x, Mode::Eval)))
    }

    /// The typed name: guesses, guesses after each prefix, states and gradients through time.
    /// The model's gradients are put back afterwards (snapshots show the last step's).
    fn probe(&mut self) -> Probe {
        let symbols = names::encode(&self.config.name).unwrap_or_else(|| vec![names::OOV]);
        let symbols: Vec<usize> = symbols.into_iter().map(|s| s.min(self.config.vocab() - 1)).collect();
        let classes = self.data.classes.clone();
        let guess = |p: &[f32], c: usize| Guess { class: classes[c].clone(), p: p[c] };
        // Each prefix forward, then backward from −log p(its top guess) with the input gradient
        // on: the guess after "K", "Ko", … and how strongly each character drives it. The last
        // prefix is the whole name (its states and gradients are shown). Everything is restored.
        let mut saved = Vec::new();
        self.trainer.model.visit_params(&mut |_, _, _, g| saved.push(g.clone()));
        self.rnn_mut().set_needs_input_grad(true);
        let (len, v) = (symbols.len(), self.config.vocab());
        let mut influence = vec![0.0f32; len * len];
        let mut prefixes = Vec::with_capacity(len);
        let mut p = Vec::new();
        for l in 1..=len {
            p = self.classify(&symbols[..l]);
            let top_class = tensor::argmax(&p);
            prefixes.push(guess(&p, top_class));
            let mut d = tensor::zeros(&[1, p.len()]);
            tensor::slice_mut(&mut d).iter_mut().enumerate().for_each(|(c, v)| *v = p[c] - if c == top_class { 1.0 } else { 0.0 });
            self.trainer.model.zero_grad();
            let mut g = d;
            for layer in self.trainer.model.layers.iter_mut().rev() {
                g = layer.backward(&g).clone();
            }
            for (s, row) in tensor::slice(&g).chunks(v).enumerate() {
                influence[(l - 1) * len + s] = row.iter().map(|&a| a * a).sum::<f32>().sqrt();
            }
        }
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let top = order.iter().take(3).map(|&c| guess(&p, c)).collect();
        let hidden = self.config.hidden;
        let states: Vec<f32> = (1..=len).flat_map(|t| self.rnn().state(t, 0).to_vec()).collect();
        let input_grads = influence[(len - 1) * len..].to_vec();
        let state_grads = self.rnn().step_grad_norms.clone();
        self.rnn_mut().set_needs_input_grad(false);
        let mut saved = saved.into_iter();
        self.trainer.model.visit_params(&mut |_, _, _, g| {
            if let Some(s) = saved.next() {
                *g = s;
            }
        });
        Probe { name: names::decode(&symbols), top, prefixes, states, hidden, state_grads, input_grads, influence }
    }

    /// The current mini-batch through the RNN layer as loops and batched (forward + backward with
    /// the gradient the output layer sent it), timed on `now_ms`'s clock. Restores everything.
    pub fn race(&mut self, now_ms: &mut dyn FnMut() -> f64) -> Race {
        let x = self.trainer.batch_x().clone();
        let classes = self.trainer.batch_classes().to_vec();
        // The gradient the output layer sends the RNN for this batch (recomputed: a probe may
        // have run since the step); every gradient is put back afterwards.
        let mut saved = Vec::new();
        self.trainer.model.visit_params(&mut |_, _, _, g| saved.push(g.clone()));
        let mut dy = tensor::zeros(&[0]);
        if x.shape().first().copied().unwrap_or(0) > 0 {
            let out = self.trainer.model.forward(&x, Mode::Train).clone();
            let mut d = tensor::zeros(&[0]);
            Loss::Softmax.value_and_grad(&out, crate::loss::Target::Classes(&classes), &mut d);
            dy = self.trainer.model.layers[1].backward(&d).clone();
        }
        let configured = self.config.implementation();
        let mut times = [0.0f64; 2];
        let mut results: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        let n = x.shape().first().copied().unwrap_or(0);
        if n > 0 && dy.shape() == [n, self.config.hidden] {
            let rnn = self.rnn_mut();
            // Repeated (the worker's clock is coarse): the mean of RACE_REPS runs each.
            for (r, imp) in [RnnImpl::Loop, RnnImpl::Batched].into_iter().enumerate() {
                rnn.implementation = imp;
                let t0 = now_ms();
                for _ in 0..RACE_REPS {
                    rnn.zero_grad();
                    rnn.forward(&x, Mode::Train);
                    rnn.backward(&dy);
                }
                times[r] = (now_ms() - t0) / RACE_REPS as f64;
                let out = rnn.output().data().to_vec();
                let grads = [rnn.dw_xh.data(), rnn.dw_hh.data(), rnn.db.data()].concat();
                results.push((out, grads));
            }
            rnn.implementation = configured;
        }
        let mut saved = saved.into_iter();
        self.trainer.model.visit_params(&mut |_, _, _, g| {
            if let Some(s) = saved.next() {
                *g = s;
            }
        });
        let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let (max_out_diff, max_grad_diff) = match results.as_slice() {
            [a, b] => (diff(&a.0, &b.0), diff(&a.1, &b.1)),
            _ => (0.0, 0.0),
        };
        let race = Race { step: self.trainer.step, batch: n, loop_ms: times[0], batched_ms: times[1], max_grad_diff, max_out_diff };
        self.race = Some(race.clone());
        race
    }

    fn timed_race(&mut self, now_ms: &mut dyn FnMut() -> f64) {
        let t0 = now_ms();
        self.race(now_ms);
        self.last_race_at = now_ms();
        self.race_cost_ms = self.last_race_at - t0;
    }

    fn clip_meter(&self) -> ClipMeter {
        let recent = &self.pre_clip[self.pre_clip.len().saturating_sub(CLIP_WINDOW)..];
        let n = recent.len().max(1) as f32;
        ClipMeter {
            threshold: self.config.clip,
            clipped: recent.iter().filter(|&&g| g > self.config.clip).count() as f32 / n,
            mean_norm: recent.iter().sum::<f32>() / n,
            max_norm: recent.iter().copied().fold(0.0, f32::max),
        }
    }

    fn rebuild_with(&mut self, config: RnnConfig) {
        *self = RnnLab::create(config, self.data.clone(), self.custom.clone());
    }
}

/// Recall per class from a confusion matrix (NaN for a class with no examples).
fn recall(confusion: &[u32], k: usize) -> Vec<f32> {
    (0..k)
        .map(|c| {
            let row = &confusion[c * k..(c + 1) * k];
            let total: u32 = row.iter().sum();
            if total == 0 {
                f32::NAN
            } else {
                row[c] as f32 / total as f32
            }
        })
        .collect()
}

/// Balanced accuracy (mean recall over the classes present) of `predict` on `indices`.
fn balanced(data: &Labelled, indices: &[usize], predict: impl Fn(usize) -> usize) -> f32 {
    let k = data.classes.len();
    let mut confusion = vec![0u32; k * k];
    for &i in indices {
        confusion[data.labels[i] * k + predict(i)] += 1;
    }
    let r: Vec<f32> = recall(&confusion, k).into_iter().filter(|v| v.is_finite()).collect();
    r.iter().sum::<f32>() / r.len().max(1) as f32
}

impl Lab for RnnLab {
    type Config = RnnConfig;
    type View = RnnView;
    type Command = RnnCommand;
    type Reply = RnnReply;

    fn needs_text(config: &RnnConfig) -> Option<TextSet> {
        match config.data {
            RnnData::Names => Some(TextSet::Names),
            RnnData::Baby => Some(TextSet::Baby),
            RnnData::Play => Some(TextSet::Play),
            RnnData::Random => None,
        }
    }

    fn new(config: RnnConfig, assets: &Assets) -> Result<Self, String> {
        if config.task == Task::Language {
            let file = assets.text(TextSet::Names).ok_or_else(|| format!("the {} are not loaded", TextSet::Names.label()))?;
            let labelled = Labelled::parse(&file.text, None).map_err(|e| e.join("; "))?;
            let data = GenData::labelled(&labelled, config.seed);
            return Ok(RnnLab::create_gen_from(config, data));
        }
        let data = match config.data {
            RnnData::Names => {
                let file = assets.text(TextSet::Names).ok_or_else(|| format!("the {} are not loaded", TextSet::Names.label()))?;
                Labelled::parse(&file.text, None).map_err(|e| e.join("; "))?
            }
            RnnData::Random => random_data(),
            RnnData::Baby => {
                let file = assets.text(TextSet::Baby).ok_or_else(|| format!("the {} are not loaded", TextSet::Baby.label()))?;
                return Ok(RnnLab::create_gen(config, names::parse_plain(&file.text)));
            }
            RnnData::Play => {
                let file = assets.text(TextSet::Play).ok_or_else(|| format!("{} is not loaded", TextSet::Play.label()))?;
                return Ok(RnnLab::create_gen_from(config, GenData::play(&file.text)));
            }
        };
        Ok(RnnLab::create(config, Arc::new(data), None))
    }

    fn config(&self) -> &RnnConfig {
        &self.config
    }

    fn set_config(&mut self, config: RnnConfig) {
        let resample =
            (config.temp, &config.prime, config.samples, &config.lang) != (self.config.temp, &self.config.prime, self.config.samples, &self.config.lang);
        self.config = config;
        if resample {
            self.resample();
        }
    }

    fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    fn trainer_mut(&mut self) -> &mut Trainer {
        &mut self.trainer
    }

    fn export_sequences(&self) -> Option<(crate::export::SeqSet, crate::export::SeqSet)> {
        use crate::export::SeqSet;
        let vocab = self.config.vocab();
        Some(match self.gen.as_ref() {
            Some(g) => (SeqSet::of(&g.data.seqs(&g.data.split.train, vocab)), SeqSet::of(&g.data.seqs(&g.data.split.test, vocab))),
            None => (
                SeqSet::of(&Names { data: &self.data, indices: &self.split.train, vocab }),
                SeqSet::of(&Names { data: &self.data, indices: &self.split.test, vocab }),
            ),
        })
    }

    fn train(&mut self, n: u64) {
        for i in 0..n {
            if self.eval_running() {
                self.eval_chunk();
                return;
            }
            if let Some(g) = self.gen.as_ref() {
                let data = g.data.clone();
                let source = data.seqs(&data.split.train, self.config.vocab());
                let more = i + 1 < n && (self.trainer.step + 1) % self.config.eval != 0;
                let loss = self.trainer.train_step_ahead(&source, more);
                let g = self.gen.as_mut().expect("generation");
                g.batch.0 += loss as f64;
                g.batch.1 += 1;
                let grads = self.rnn().step_grad_norms.clone();
                self.step_grads = grads;
                if let Some(norm) = self.trainer.last_pre_clip_norm {
                    self.pre_clip.push(norm);
                    if self.pre_clip.len() > 2 * CLIP_WINDOW {
                        self.pre_clip.drain(..CLIP_WINDOW);
                    }
                }
                if self.trainer.epoch > self.evaluated_epoch || self.trainer.step % self.config.eval == 0 {
                    self.evaluated_epoch = self.trainer.epoch;
                    self.start_eval(false);
                }
                continue;
            }
            let data = self.data.clone();
            let source = Names { data: &data, indices: &self.split.train, vocab: self.config.vocab() };
            // Another step follows in this call unless an evaluation falls due: then helpers (a
            // batch split over workers) start on it while this one is counted.
            let more = i + 1 < n && (self.trainer.step + 1) % self.config.eval != 0;
            let loss = self.trainer.train_step_ahead(&source, more);
            if let Some(right) = self.trainer.batch_right() {
                self.batch.0 += right as u64;
                self.batch.1 += self.trainer.batch_classes().len() as u64;
            }
            self.batch.2 += loss as f64;
            self.batch.3 += 1;
            let grads = self.rnn().step_grad_norms.clone();
            self.step_grads = grads;
            if let Some(norm) = self.trainer.last_pre_clip_norm {
                self.pre_clip.push(norm);
                if self.pre_clip.len() > 2 * CLIP_WINDOW {
                    self.pre_clip.drain(..CLIP_WINDOW);
                }
            }
            let epoch_end = self.trainer.epoch > self.evaluated_epoch;
            if epoch_end || self.trainer.step % self.config.eval == 0 {
                self.evaluated_epoch = self.trainer.epoch;
                self.start_eval(epoch_end);
            }
        }
    }

    fn stop_reason(&mut self) -> Option<String> {
        if self.eval_running() {
            return None;
        }
        let c = &self.config;
        if c.epochs > 0 && self.trainer.epoch >= c.epochs {
            return Some(format!("stopped after {} epochs (Play trains on)", c.epochs));
        }
        let best = self.best.as_ref()?;
        (c.patience > 0 && self.trainer.epoch >= best.epoch + c.patience).then(|| {
            format!(
                "stopped early: the validation accuracy has not improved for {} epochs (best: epoch {}, {:.1} %)",
                c.patience,
                best.epoch,
                best.val_accuracy * 100.0
            )
        })
    }

    fn evaluating(&self) -> bool {
        self.eval_running()
    }

    fn finish(&mut self) {
        let last = match &self.gen {
            Some(g) => g.history.last().map(|p| p.step),
            None => self.history.last().map(|h| h.step),
        };
        if last != Some(self.trainer.step) {
            self.evaluate_now();
        }
    }

    fn rebuild(&mut self, key: &str, next: RnnConfig) -> Result<Applied, String> {
        match key {
            "run" => {
                let imp = next.implementation();
                self.rnn_mut().implementation = imp;
                self.config = next;
                Ok(Applied::Live)
            }
            "truncate" => {
                self.rnn_mut().truncate = next.truncate;
                self.config = next;
                Ok(Applied::Live)
            }
            "data" | "task" if next.data != self.config.data && next.data != RnnData::Random => Err(format!(
                "the {} are loaded when the lab opens with that link: open it with data={}",
                match next.data {
                    RnnData::Baby => "baby names",
                    RnnData::Play => "plays",
                    _ => "surnames",
                },
                crate::lab::params::value_name(&next.data)
            )),
            "data" => {
                let data = if next.data == RnnData::Random { Arc::new(random_data()) } else { self.data.clone() };
                *self = RnnLab::create(next, data, None);
                Ok(Applied::Reset)
            }
            _ if self.gen.is_some() => {
                let g = self.gen.as_ref().expect("generation");
                let data = if g.data.stream {
                    // Split in order, whatever the seed.
                    let GenData { names, split, stream, .. } = &*g.data;
                    GenData {
                        names: names.clone(),
                        split: split.clone(),
                        stream: *stream,
                        starts: Vec::new(),
                        classes: Vec::new(),
                        train_set: Default::default(),
                    }
                } else if g.data.classes.is_empty() {
                    GenData::new(g.data.names.clone(), next.seed)
                } else {
                    let labels = g.data.starts.iter().map(|&s| s - names::VOCAB).collect();
                    GenData::labelled(&Labelled { names: g.data.names.clone(), labels, classes: g.data.classes.clone() }, next.seed)
                };
                *self = RnnLab::create_gen_from(next, data);
                Ok(Applied::Reset)
            }
            _ => {
                self.rebuild_with(next);
                Ok(Applied::Reset)
            }
        }
    }

    fn command(&mut self, command: RnnCommand, now_ms: &mut dyn FnMut() -> f64) -> Result<Option<RnnReply>, Notice> {
        match command {
            RnnCommand::Race if self.gen.is_some() => Err(Notice::new("race", "the race runs in the classify task")),
            RnnCommand::Race => {
                self.timed_race(now_ms);
                Ok(None)
            }
            RnnCommand::Sample { n } => {
                if !(1..=1000).contains(&n) || self.gen.is_none() {
                    return Err(Notice::new("samples", "sampling: 1 to 1000 names, in the generate task"));
                }
                Ok(Some(RnnReply::Samples { names: self.sample_names(n) }))
            }
            RnnCommand::SetData { text } if self.gen.is_some() => self.set_gen_data(&text),
            RnnCommand::SetData { text } => {
                if text.trim().is_empty() {
                    let shipped = self.custom.take().map(|_| ());
                    if shipped.is_some() {
                        return Err(Notice::new("data", "pasted data cleared: reload the page to train on the shipped names again"));
                    }
                    return Err(Notice::new("data", "paste name,label lines (one per line)"));
                }
                let pasted = Labelled::parse(&text, None)
                    .map_err(|errors| Notice::new("data", format!("pasted names refused, nothing changed: {}", errors.join("; "))))?;
                if pasted.len() < 20 {
                    return Err(Notice::new("data", format!("{} names are too few to split into training, validation and test (at least 20)", pasted.len())));
                }
                let (names, classes) = (pasted.len(), pasted.classes.len());
                let pasted = Arc::new(pasted);
                *self = RnnLab::create(self.config.clone(), self.data.clone(), Some(pasted));
                Ok(Some(RnnReply::DataSet { names, classes }))
            }
        }
    }

    /// The automatic race (`race=true`): about every second, and at most ~10 % of the time.
    fn background(&mut self, now_ms: &mut dyn FnMut() -> f64) -> bool {
        if !self.config.race || self.gen.is_some() || self.trainer.step == 0 || now_ms() - self.last_race_at < RACE_EVERY_MS.max(self.race_cost_ms / RACE_SHARE)
        {
            return false;
        }
        self.timed_race(now_ms);
        true
    }

    fn report(&mut self) -> Report<RnnView> {
        if self.gen.is_some() {
            return self.gen_report();
        }
        let k = self.classes();
        let mut metrics = vec![Metric { name: "epoch_fraction".into(), value: self.epoch_fraction() }];
        let (mut train_loss, mut test_loss) = (f32::NAN, f32::NAN);
        if let Some(e) = self.history.last() {
            metrics.extend([
                Metric { name: "val_accuracy".into(), value: e.val_accuracy },
                Metric { name: "test_accuracy".into(), value: e.test_accuracy },
                Metric { name: "balanced_accuracy".into(), value: e.test_balanced },
            ]);
            (train_loss, test_loss) = (e.train_loss, e.test_loss);
        }
        if let Some(b) = &self.best {
            metrics.push(Metric { name: "best_epoch".into(), value: b.epoch as f32 });
            metrics.push(Metric { name: "best_test_accuracy".into(), value: b.test_accuracy });
        }
        metrics.push(Metric { name: "baseline_test_accuracy".into(), value: self.baseline[0] });
        let recall = if self.confusion.len() == k * k { recall(&self.confusion, k) } else { Vec::new() };
        let test_counts = if self.confusion.len() == k * k { (0..k).map(|c| self.confusion[c * k..(c + 1) * k].iter().sum()).collect() } else { Vec::new() };
        let mut diagnoses = Vec::new();
        diagnoses.extend(diagnose::chance_level(
            self.history.last().map(|h| h.train_loss).unwrap_or(self.trainer.last_loss),
            k,
            self.trainer.step,
            self.config.lr,
        ));
        let rnn = self.rnn();
        let spectral_radius = crate::ops::rnn::spectral_radius(rnn.w_hh.data(), rnn.hidden);
        let view = RnnView {
            gen: None,
            classes: self.data.classes.clone(),
            sizes: [self.split.train.len(), self.split.val.len(), self.split.test.len()],
            custom: self.custom.is_some(),
            history: self.history.clone(),
            best: self.best.clone(),
            confusion: self.confusion.clone(),
            recall,
            test_counts,
            baseline: self.baseline,
            probe: self.probe(),
            step_grads: self.step_grads.clone(),
            step_grads_of: self.step_grads_of(),
            spectral_radius,
            clip: self.clip_meter(),
            race: self.race.clone(),
            eval_progress: self.running_eval.as_ref().map(|e| e.next as f32 / (self.split.val.len() + self.split.test.len()).max(1) as f32).unwrap_or(0.0),
        };
        Report { train_loss, test_loss, metrics, layers: self.trainer.layer_snapshots(), diagnoses, view }
    }

    fn snapshot_interval_ms(&self) -> f64 {
        100.0
    }
}
