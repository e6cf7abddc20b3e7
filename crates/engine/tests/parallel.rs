//! Data-parallel training gives the same bits for any number of workers: the CNN lab and the
//! Batch Norm lab on native threads (1, 2, 3, 4) — losses, weights and whole snapshots, whose
//! histograms read the activations a step leaves in the layers — an MLP with value targets and
//! uneven or empty shards, and helpers that die or answer wrongly (their shards are computed
//! here: same bits).
//! The sharded gradient equals the one-pass gradient to rounding.

use engine::data::images::{Assets, ImagePair, ImageSet};
use engine::data::{Dataset, Targets};
use engine::init::Init;
use engine::lab::trainer::Trainer;
use engine::lab::{build_with, parse_link, HelperFactory, LabSession};
use engine::layer::Layer;
use engine::loss::Loss;
use engine::ops::{Activation, ActivationKind, Dense};
use engine::optim::{Hyper, OptimizerKind};
use engine::parallel::{Batch, Copies, Helpers, NodeSum, ShardJob, ThreadHelpers, Vouched};
use engine::rng::Rng;
use engine::sequential::Sequential;
use engine::tensor;
use std::sync::Arc;

fn mnist() -> Assets {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut assets = Assets::default();
    assets.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).unwrap());
    assets
}

fn threads() -> HelperFactory {
    Arc::new(|model: &Sequential, n: usize, _: &engine::lab::LabConfig| ThreadHelpers::new(model, n).map(|h| Box::new(h) as Box<dyn Helpers>))
}

/// Every step's loss and the final weights, as bits.
fn run(session: &mut Box<dyn LabSession>, steps: u64) -> (Vec<u32>, Vec<u32>) {
    let losses = (0..steps).map(|_| session.step(1).to_bits()).collect();
    let mut weights = Vec::new();
    let mut model = session.model().clone();
    engine::parallel::read_params(&mut model, &mut weights);
    (losses, weights.iter().map(|w| w.to_bits()).collect())
}

#[test]
fn the_cnn_lab_trains_the_same_bits_on_1_2_3_and_4_threads() {
    let assets = mnist();
    // An odd batch: 3 shards of 12 and 13 rows (a tree of width 4); the last batch of an epoch is smaller again.
    let link = "lab=cnn&model=lenet5&bs=37&race=false&eval=1000000&seed=3";
    let mut runs = Vec::new();
    for workers in 1..=4 {
        let mut s = build_with(&parse_link(link).config, &assets).unwrap();
        s.set_workers(workers, Some(threads()));
        let (losses, weights) = run(&mut s, 12);
        // And all the page shows (layer statistics, activations left in the layers: shard 0's).
        runs.push((losses, weights, serde_json::to_string(&s.snapshot()).unwrap()));
        // Three shards keep at most three workers busy: a fourth is not started.
        assert_eq!(s.workers().training, workers.min(3), "the last step's workers, {workers} asked for");
        assert_eq!(s.workers().shards, 3, "37 rows in shards of about 16");
        assert!(s.take_worker_failure().is_none());
    }
    for (w, r) in runs.iter().enumerate().skip(1) {
        assert_eq!(r.0, runs[0].0, "losses on {} workers", w + 1);
        assert_eq!(r.1, runs[0].1, "weights on {} workers", w + 1);
        assert_eq!(r.2, runs[0].2, "snapshot on {} workers", w + 1);
    }
}

#[test]
fn the_batch_norm_lab_splits_its_plain_net_and_says_why_not_the_bn_net() {
    let assets = mnist();
    // 4 shards of 16 rows: on 3 workers the groups are shards 0, 1 and 2–3. The plain net alone
    // (it leads the run), then beside the BN net (which trains on one worker).
    for nets in ["plain", "both"] {
        let link = format!("lab=batchnorm&nets={nets}&hidden=32&bs=64&eval=1000000&seed=2");
        let mut runs = Vec::new();
        for workers in [1, 2, 3] {
            let mut s = build_with(&parse_link(&link).config, &assets).unwrap();
            s.set_workers(workers, Some(threads()));
            // The lab first evaluates the initial weights (calls that take no step), then trains.
            let mut losses = Vec::new();
            while s.steps() < 12 {
                losses.push(s.step(1).to_bits());
            }
            if nets == "plain" {
                assert_eq!(s.workers().training, workers, "the plain net's last step ran on {workers} workers");
            }
            // The whole snapshot: losses, accuracies and the histograms of activations, gradients
            // and weights (read from the layers after a step: shard 0's rows on any number of workers).
            let snap = serde_json::to_string(&s.snapshot()).unwrap();
            assert!(snap.contains("\"heat\":[") && snap.contains("\"steps\":[1,5,10]"), "columns at steps 1, 5 and 10");
            runs.push((losses, snap));
        }
        assert_eq!(runs[1], runs[0], "{nets}: 2 workers");
        assert_eq!(runs[2], runs[0], "{nets}: 3 workers");
    }
    let bn = build_with(&parse_link("lab=batchnorm&nets=bn").config, &assets).unwrap();
    let why = bn.workers().single.expect("a BN net trains as one piece");
    assert!(why.contains("batch norm needs the statistics of the whole mini-batch"), "{why}");
}

fn names() -> Assets {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut assets = Assets::default();
    for set in [engine::data::names::TextSet::Names, engine::data::names::TextSet::Baby] {
        assets.insert_text(engine::data::names::TextFile::load_dir(set, &dir).unwrap());
    }
    assets
}

#[test]
fn the_rnn_lab_splits_a_batch_of_64_sequences_or_more_and_says_why_not_a_smaller_one() {
    let assets = names();
    // 96 sequences: 3 shards of 32 (a tree of width 4). Classifying names, with truncated BPTT
    // and clipping (the clip's global norm is the tree sum's); generating names, whose loss is the
    // mean over the real characters of the whole batch (a shard's share: its real characters).
    // An evaluation every 5 steps: steps started ahead are dropped there.
    for link in ["lab=rnn&hidden=24&bs=96&clip=1&truncate=6&race=false&eval=5&seed=4", "lab=rnn&task=generate&hidden=24&bs=96&eval=5&samples=1&seed=4"] {
        let mut runs = Vec::new();
        for workers in 1..=3 {
            let mut s = build_with(&parse_link(link).config, &assets).unwrap();
            s.set_workers(workers, Some(threads()));
            let mut losses = Vec::new();
            while s.steps() < 12 {
                losses.push(s.step(1).to_bits());
            }
            let (_, weights) = run(&mut s, 0);
            assert_eq!(s.workers().training, workers, "{link}: the last step ran on {workers} workers");
            assert_eq!((s.workers().shards, s.workers().single.clone()), (3, None));
            assert!(s.take_worker_failure().is_none());
            // The whole snapshot, the gradient through time included (the first shard's rows).
            let snap = serde_json::to_string(&s.snapshot()).unwrap();
            assert!(snap.contains("over the first shard's 32 of its 96 sequences"), "the gradient-through-time line says whose it is");
            runs.push((losses, weights, snap));
        }
        assert_eq!(runs[1], runs[0], "{link}: 2 workers");
        assert_eq!(runs[2], runs[0], "{link}: 3 workers");
    }
    // The lab's default batch of 32 trains as one piece, as before, and the readout says why.
    let small = build_with(&parse_link("lab=rnn").config, &assets).unwrap();
    let why = small.workers().single.expect("32 names train as one piece");
    assert!(why.contains("a mini-batch of 32 is too small") && why.contains("from 64"), "{why}");
}

#[test]
fn a_split_batch_of_padded_sequences_has_the_gradient_of_the_whole_batch() {
    // Generating: the loss is the mean over every real character of the batch, and names differ
    // in length; 3 shards, each weighted by its real characters, summed by the tree, equal the
    // one-pass loss and gradient to rounding (a shard weighted by its names would not: the
    // shards' lengths differ).
    use engine::lab::rnn::{generate::GenData, RnnConfig};
    let mut rng = Rng::new(3);
    let text: String = (0..120)
        .map(|_| {
            let len = 2 + (rng.uniform() * 11.0) as usize;
            (0..len).map(|_| (b'a' + (rng.uniform() * 26.0) as u8) as char).collect::<String>() + "\n"
        })
        .collect();
    let data = GenData::new(engine::data::names::parse_plain(&text), 5);
    let config = RnnConfig { hidden: 16, ..RnnConfig::generate() };
    let source = data.seqs(&data.split.train, config.vocab());
    let hyper = Hyper { lr: 0.1, momentum: 0.0, l2: 0.0, l1: 0.0, clip: 0.0 };
    let trainer = |shards: usize| {
        let model = config.build_model(0, &mut Rng::new(8));
        let mut t = Trainer::new(model, OptimizerKind::Sgd, hyper, Loss::Softmax, 48, data.split.train.len(), Rng::new(2));
        t.set_shards(shards);
        t
    };
    let (mut one, mut three) = (trainer(1), trainer(3));
    one.train_step(&source);
    three.train_step(&source);
    assert!((one.last_loss - three.last_loss).abs() <= 1e-6 * one.last_loss.abs(), "{} vs {}", one.last_loss, three.last_loss);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    engine::parallel::read_grads(&mut one.model, &mut a);
    engine::parallel::read_grads(&mut three.model, &mut b);
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5 * scale, "{x} vs {y}");
    }
    assert_eq!(three.first_shard_rows(), 16, "the first of 3 shards of 48 sequences");
}

fn mlp(seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    let mut b = Sequential::builder();
    b.push(Dense::new(3, 16, Init::Xavier, 0.0, &mut rng));
    b.push(Activation::new(ActivationKind::Tanh, 0.0));
    b.push(Dense::new(16, 2, Init::Xavier, 0.0, &mut rng));
    b.build()
}

fn regression() -> Dataset {
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..200 * 3).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let y: Vec<f32> = x.chunks(3).flat_map(|r| [r[0] * r[1] + r[2], (r[0] - r[2]).sin()]).collect();
    Dataset { x: tensor::from_vec(&[200, 3], x), y: Targets::Values(tensor::from_vec(&[200, 2], y)) }
}

fn trainer(batch: usize, shards: usize) -> Trainer {
    let hyper = Hyper { lr: 0.05, momentum: 0.9, l2: 1e-3, l1: 0.0, clip: 0.0 };
    let mut t = Trainer::new(mlp(4), OptimizerKind::Momentum, hyper, Loss::Mse, batch, 200, Rng::new(5));
    t.set_shards(shards);
    t
}

fn weights(t: &mut Trainer) -> Vec<u32> {
    let mut w = Vec::new();
    engine::parallel::read_params(&mut t.model, &mut w);
    w.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn value_targets_uneven_and_empty_shards_give_the_same_bits_on_any_number_of_threads() {
    let data = regression();
    // 13 rows: shards of 1 and 2; 5 rows: three empty shards; 200 % 13 = 5 at each epoch's end.
    // Copies between the threads plain, streamed past the cache, or chosen as the steps go, and
    // the update replicated by every worker or made here and sent as weights: the same values,
    // so the same bits.
    for batch in [13, 5] {
        let mut base: Option<(Vec<u32>, Vec<u32>)> = None;
        for helpers in 0..4 {
            for copies in [Copies::Plain, Copies::Streamed, Copies::Chosen] {
                for replicate in [true, false] {
                    let mut t = trainer(batch, 8);
                    if helpers > 0 {
                        let h = ThreadHelpers::new(&t.model, helpers).unwrap().with_copies(copies).with_replication(replicate);
                        t.set_helpers(Some(Box::new(h)));
                    }
                    let losses: Vec<u32> = (0..60).map(|_| t.train_step(&data).to_bits()).collect();
                    assert_eq!(t.last_workers(), helpers + 1);
                    let r = (losses, weights(&mut t));
                    match &base {
                        None => base = Some(r),
                        Some(b) => assert_eq!(&r, b, "batch {batch}, {} workers, {copies:?}, replicated: {replicate}", helpers + 1),
                    }
                }
            }
        }
    }
}

#[test]
fn sixteen_shards_give_the_same_bits_on_up_to_sixteen_threads() {
    // The most shards and workers a run has (a batch of 256 on a 16-core machine): 15 helpers
    // each send their own shard's sum, and every buffer they send comes back to one of them.
    let data = regression();
    let mut base: Option<(Vec<u32>, Vec<u32>)> = None;
    for helpers in [0, 4, 15] {
        let mut t = trainer(40, 16);
        if helpers > 0 {
            t.set_helpers(Some(Box::new(ThreadHelpers::new(&t.model, helpers).unwrap())));
        }
        let losses: Vec<u32> = (0..40).map(|_| t.train_step(&data).to_bits()).collect();
        assert_eq!(t.last_workers(), helpers + 1);
        let r = (losses, weights(&mut t));
        match &base {
            None => base = Some(r),
            Some(b) => assert_eq!(&r, b, "{} workers", helpers + 1),
        }
    }
}

#[test]
fn the_sharded_gradient_is_the_batch_gradient() {
    let data = regression();
    let (mut one, mut eight) = (trainer(40, 1), trainer(40, 8));
    one.train_step(&data);
    eight.train_step(&data);
    assert!((one.last_loss - eight.last_loss).abs() <= 1e-6 * one.last_loss.abs(), "{} vs {}", one.last_loss, eight.last_loss);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    engine::parallel::read_grads(&mut one.model, &mut a);
    engine::parallel::read_grads(&mut eight.model, &mut b);
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5 * scale, "{x} vs {y}");
    }
    assert_ne!(a, b, "summed in another order: equal to rounding, not bits");
}

fn classification() -> Dataset {
    let mut rng = Rng::new(11);
    let x: Vec<f32> = (0..300 * 3).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let classes = x.chunks(3).map(|r| usize::from(r[0] * r[1] > r[2] * 0.5)).collect();
    Dataset { x: tensor::from_vec(&[300, 3], x), y: Targets::Classes(classes) }
}

#[test]
fn a_split_batch_counts_its_correct_predictions_over_every_shard() {
    // The training accuracy is counted shard by shard: no single shard's output covers the batch
    // (the labs once read the last shard's output against the whole batch's classes).
    let data = classification();
    for helpers in 0..3 {
        let hyper = Hyper { lr: 0.2, momentum: 0.0, l2: 0.0, l1: 0.0, clip: 0.0 };
        let mut t = Trainer::new(mlp(6), OptimizerKind::Sgd, hyper, Loss::Softmax, 64, 300, Rng::new(2));
        t.set_shards(4);
        if helpers > 0 {
            t.set_helpers(Some(Box::new(ThreadHelpers::new(&t.model, helpers).unwrap())));
        }
        let (mut total, mut seen) = (0u32, 0usize);
        for step in 0..40 {
            let mut before = t.model.clone();
            t.train_step(&data);
            // The same rows through the weights the step started from, in one pass.
            let out = before.forward(t.batch_x(), tensor::Mode::Train);
            let expected = engine::parallel::count_right(out, t.batch_classes());
            assert_eq!(t.batch_right(), Some(expected), "step {step}, {} workers", helpers + 1);
            // The step's record carries the share right (the accuracy charts' mini-batch curve).
            let record = t.records.last().expect("every early step is recorded");
            assert_eq!((record.step, record.accuracy), (t.step, Some(expected as f32 / t.batch_classes().len() as f32)));
            total += expected;
            seen += t.batch_classes().len();
        }
        assert!(total as f32 / seen as f32 > 0.7, "the net learns: {total} of {seen} right");
    }
    // Value targets have no accuracy.
    let mut t = trainer(40, 4);
    t.train_step(&regression());
    assert_eq!((t.batch_right(), t.records.last().unwrap().accuracy), (None, None));
}

#[test]
fn the_cnn_labs_training_accuracy_is_the_whole_batchs() {
    // Trained on 16-row shards (batch 64: four); its training accuracy after 300 steps is close to
    // its test accuracy, not a quarter or a half of it.
    let assets = mnist();
    for workers in [1, 2] {
        let mut s = build_with(&parse_link("lab=cnn&bs=64&race=false&eval=300&seed=1").config, &assets).unwrap();
        s.set_workers(workers, Some(threads()));
        for _ in 0..400 {
            s.step(1);
        }
        let metrics = s.snapshot().metrics;
        let metric = |name: &str| metrics.iter().find(|m| m.name == name).map(|m| m.value).unwrap_or(f32::NAN);
        let (train, test) = (metric("train_accuracy"), metric("test_accuracy"));
        assert!(test > 0.85 && (train - test).abs() < 0.1, "{workers} workers: train {train}, test {test}");
    }
}

/// A helper that fails the way a lost worker does: `mode` 0 never answers, 1 answers for the
/// wrong shards, 2 answers with the wrong number of gradients, 3 dispatch fails.
struct Broken {
    mode: u8,
    job: Option<Arc<ShardJob>>,
}

impl Helpers for Broken {
    fn count(&self) -> usize {
        1
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, _model: &mut Sequential, _batch: &Batch) -> Result<bool, String> {
        self.job = Some(job.clone());
        if self.mode == 3 {
            Err("worker 2 is gone".into())
        } else {
            Ok(true)
        }
    }
    fn collect(&mut self, _h: usize) -> Result<Vec<NodeSum>, String> {
        match self.mode {
            0 => Err("worker 2 stopped answering".into()),
            1 => Ok(vec![NodeSum { lo: 0, hi: 8, loss: 0.0, right: 0, grads: vec![0.0; 82] }]),
            _ => Ok(vec![NodeSum { lo: 4, hi: 8, loss: 0.0, right: 0, grads: vec![1.0; 3] }]),
        }
    }
    fn fingerprint(&self) -> u64 {
        0
    }
}

fn bits(t: &tensor::Tensor) -> Vec<u32> {
    tensor::slice(t).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_helper_that_dies_or_answers_wrongly_costs_time_not_the_run() {
    let data = regression();
    let mut reference = trainer(16, 8);
    let expected: Vec<u32> = (0..20).map(|_| reference.train_step(&data).to_bits()).collect();
    for mode in 0..4 {
        let mut t = trainer(16, 8);
        t.set_helpers(Some(Box::new(Broken { mode, job: None })));
        let losses: Vec<u32> = (0..20).map(|_| t.train_step(&data).to_bits()).collect();
        assert_eq!(losses, expected, "mode {mode}");
        assert_eq!(weights(&mut t), weights(&mut reference), "mode {mode}");
        // Shard 0 was run again after the failed helper's shards: its activations are in the layers.
        for (a, b) in t.model.layers.iter().zip(&reference.model.layers) {
            assert_eq!(bits(a.output()), bits(b.output()), "mode {mode}: {}'s output", a.name());
        }
        let why = t.take_helper_failure().expect("reported");
        assert!(why.contains("worker 2"), "{why}");
        assert!(why.contains("the same steps, slower"), "{why}");
    }
}

/// Native helper threads, counting the jobs handed to them and the comparisons of a step
/// started ahead's weights with the model's.
struct Counting {
    inner: ThreadHelpers,
    jobs: Arc<std::sync::atomic::AtomicUsize>,
    checks: Arc<std::sync::atomic::AtomicUsize>,
    /// What each job's caller vouched for, and whether it was true.
    vouched: Arc<std::sync::Mutex<Vec<(Vouched, bool)>>>,
    /// The weights of the last `after_update` and the rows of the last `stage`.
    published: Vec<f32>,
    staged: Vec<f32>,
}

impl Helpers for Counting {
    fn count(&self) -> usize {
        self.inner.count()
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        self.jobs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.dispatch(job, model, batch)
    }
    fn dispatch_vouched(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch, vouched: Vouched) -> Result<bool, String> {
        let weights_true = !vouched.weights || engine::parallel::same_bits(&self.published, model);
        let batch_true = !vouched.batch || self.staged.iter().map(|v| v.to_bits()).eq(batch.x.iter().map(|v| v.to_bits()));
        self.vouched.lock().unwrap().push((vouched, weights_true && batch_true));
        self.dispatch(job, model, batch)
    }
    fn after_update(&mut self, model: &mut Sequential) {
        engine::parallel::read_params(model, &mut self.published);
        self.inner.after_update(model)
    }
    fn stage(&mut self, batch: &Batch, shards: usize) {
        self.staged = batch.x.to_vec();
        self.inner.stage(batch, shards)
    }
    fn dispatched_with(&mut self, job: &ShardJob, model: &mut Sequential) -> bool {
        self.checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.dispatched_with(job, model)
    }
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        self.inner.collect(h)
    }
    fn recycle(&mut self, buffer: Vec<f32>) {
        self.inner.recycle(buffer)
    }
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
}

#[test]
fn a_step_started_ahead_is_used_only_while_nothing_changed_and_gives_the_same_bits() {
    let data = regression();
    // The same changes between steps for both: a new batch size (after step 10), a weight
    // edited (after step 20), the learning rate (after step 25: the update, not the gradient),
    // the model borrowed mutably without a weight changed (after step 30).
    let change = |t: &mut Trainer, i: usize| match i {
        10 => t.batch_size = 12,
        20 => t.model.visit_params(&mut |_, kind, w, _| {
            if kind == engine::layer::ParamKind::Weight {
                tensor::slice_mut(w)[0] += 0.25;
            }
        }),
        25 => t.hyper.lr = 0.02,
        30 => t.model.zero_grad(),
        _ => {}
    };
    let mut reference = trainer(16, 8);
    let mut expected = Vec::new();
    for i in 0..40 {
        expected.push(reference.train_step(&data).to_bits());
        change(&mut reference, i);
    }
    let jobs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut t = trainer(16, 8);
    let inner = ThreadHelpers::new(&t.model, 2).unwrap();
    let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let vouched = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counting = Counting { inner, jobs: jobs.clone(), checks: checks.clone(), vouched: vouched.clone(), published: Vec::new(), staged: Vec::new() };
    t.set_helpers(Some(Box::new(counting)));
    let mut losses = Vec::new();
    for i in 0..40 {
        // The last step starts none: the run ends.
        losses.push(t.train_step_ahead(&data, i + 1 < 40).to_bits());
        assert_eq!(t.last_workers(), 3, "step {i} ran on 3 workers");
        change(&mut t, i);
    }
    assert_eq!(losses, expected, "the losses of every step");
    assert_eq!(weights(&mut t), weights(&mut reference));
    assert!(t.take_helper_failure().is_none());
    // One job for the first step, one started ahead after each of the 39 others, and one again
    // for each of the 2 steps whose start was undone (the batch size, the weight); the learning
    // rate does not touch the gradient, but the update it changes is made before the next
    // step starts: its job stands.
    assert_eq!(jobs.load(std::sync::atomic::Ordering::Relaxed), 1 + 39 + 2);
    // The weights were compared only where the model had been lent out mutably: after the edit
    // (the step is undone) and after the borrow that changed no weight (the step stands).
    assert_eq!(checks.load(std::sync::atomic::Ordering::Relaxed), 2);
    // What the trainer vouched for, all of it true: the first job had no weights published yet,
    // and the step after the weight edit neither; the step after the batch size changed had
    // its weights published but not its batch staged; the 39 started ahead had both.
    let vouched = vouched.lock().unwrap().clone();
    assert!(vouched.iter().all(|(_, honest)| *honest), "{vouched:?}");
    let count = |weights, batch| vouched.iter().filter(|(v, _)| *v == Vouched { weights, batch }).count();
    assert_eq!((count(false, false), count(true, false), count(true, true), count(false, true)), (2, 1, 39, 0));
    // Settling waits for a step started ahead, which the next call then does not use.
    t.train_step_ahead(&data, true);
    t.settle();
    t.train_step(&data);
    reference.train_step(&data);
    reference.train_step(&data);
    assert_eq!(weights(&mut t), weights(&mut reference));
    assert_eq!(jobs.load(std::sync::atomic::Ordering::Relaxed), 1 + 39 + 2 + 2 + 1);
}

#[test]
fn the_labs_start_steps_ahead_within_a_call_and_train_the_same_bits() {
    let assets = mnist();
    // Calls of 5 steps with an evaluation due every 7: steps start ahead inside a call, not across
    // an evaluation or the end of a call.
    for link in ["lab=cnn&model=lenet5&bs=40&race=false&eval=7&seed=5", "lab=batchnorm&nets=both&hidden=32&bs=64&eval=7&seed=6"] {
        let mut runs = Vec::new();
        for workers in [1, 2, 3] {
            let mut s = build_with(&parse_link(link).config, &assets).unwrap();
            s.set_workers(workers, Some(threads()));
            let mut losses = Vec::new();
            while s.steps() < 30 {
                losses.push(s.step(5).to_bits());
            }
            let mut model = s.model().clone();
            let mut w = Vec::new();
            engine::parallel::read_params(&mut model, &mut w);
            assert!(s.take_worker_failure().is_none(), "{link}");
            runs.push((losses, w.iter().map(|v| v.to_bits()).collect::<Vec<u32>>(), serde_json::to_string(&s.snapshot()).unwrap()));
        }
        assert_eq!(runs[1], runs[0], "{link}: 2 workers");
        assert_eq!(runs[2], runs[0], "{link}: 3 workers");
    }
}

#[test]
fn the_benchmark_runs_worker_counts_side_by_side_each_on_its_own_workers() {
    // W2 on 1 and 2 threads in turn, chunk after chunk, in the same run (`deeply bench w2
    // --threads 1,2`): each result names the workers its steps ran on.
    let start = std::time::Instant::now();
    let mut clock = || start.elapsed().as_secs_f64() * 1e3;
    let r = engine::lab::bench::run_interleaved(engine::lab::bench::Workload::W2, None, &[2, 1], Some(threads()), 0.05, "test", &mnist(), &mut clock).unwrap();
    assert_eq!(r.iter().map(|x| x.workers).collect::<Vec<_>>(), [2, 1]);
    assert!(r.iter().all(|x| x.workload == "w2" && x.steps > 0 && x.items_per_s > 0.0), "{r:?}");
}

/// Replicating native helper threads, recording whether each job carried the weights.
struct Replicating {
    inner: ThreadHelpers,
    /// Per job: (replicated, carried weights and the optimiser's state).
    jobs: Arc<std::sync::Mutex<Vec<(bool, bool)>>>,
}

impl Helpers for Replicating {
    fn count(&self) -> usize {
        self.inner.count()
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        assert_eq!(job.params.is_empty(), job.optimizer.is_none(), "weights and state travel together");
        self.jobs.lock().unwrap().push((job.replicated, !job.params.is_empty()));
        self.inner.dispatch(job, model, batch)
    }
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        self.inner.collect(h)
    }
    fn replicates(&self) -> bool {
        self.inner.replicates()
    }
    fn exchange(&mut self, step: engine::parallel::Exchange) {
        self.inner.exchange(step)
    }
    fn collect_shared(&mut self, h: usize) -> Result<engine::parallel::SharedSums, String> {
        self.inner.collect_shared(h)
    }
    fn streaming(&mut self) -> bool {
        self.inner.streaming()
    }
    fn recycle(&mut self, buffer: Vec<f32>) {
        self.inner.recycle(buffer)
    }
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
}

#[test]
fn replicating_helpers_get_the_weights_only_when_they_changed_other_than_by_a_step() {
    let data = regression();
    // Between steps, for both runs: the optimiser switched (after step 10: Adam's state starts
    // fresh), a weight edited (15), the learning rate and clipping changed (20: sent with the
    // step's end, not the job), the model borrowed mutably without a change (25), the
    // optimiser's state reset (30), the batch size changed (35).
    let change = |t: &mut Trainer, i: usize| match i {
        10 => t.set_optimizer(OptimizerKind::Adam),
        15 => t.model.visit_params(&mut |_, kind, w, _| {
            if kind == engine::layer::ParamKind::Weight {
                tensor::slice_mut(w)[1] -= 0.5;
            }
        }),
        20 => (t.hyper.lr, t.hyper.clip) = (0.01, 0.5),
        25 => t.model.zero_grad(),
        30 => t.reset_optimizer(),
        35 => t.batch_size = 11,
        _ => {}
    };
    let mut reference = trainer(16, 8);
    let mut expected = Vec::new();
    for i in 0..45 {
        expected.push(reference.train_step(&data).to_bits());
        change(&mut reference, i);
    }
    for helpers in [1, 3] {
        for ahead in [false, true] {
            let mut t = trainer(16, 8);
            let jobs = Arc::new(std::sync::Mutex::new(Vec::new()));
            t.set_helpers(Some(Box::new(Replicating { inner: ThreadHelpers::new(&t.model, helpers).unwrap(), jobs: jobs.clone() })));
            let mut losses = Vec::new();
            for i in 0..45 {
                losses.push(t.train_step_ahead(&data, ahead && i + 1 < 45).to_bits());
                assert_eq!(t.last_workers(), helpers + 1);
                change(&mut t, i);
            }
            let what = format!("{} workers, steps started ahead: {ahead}", helpers + 1);
            assert_eq!(losses, expected, "{what}");
            assert_eq!(weights(&mut t), weights(&mut reference), "{what}");
            assert!(t.take_helper_failure().is_none(), "{what}");
            let jobs = jobs.lock().unwrap().clone();
            assert!(jobs.iter().all(|&(replicated, _)| replicated), "{what}");
            // The weights went with the first job and after each change that was not a step:
            // the optimiser (twice), the edit and the borrow. Not after the learning rate or the
            // batch size, nor after any of the other 39 steps.
            let with_weights = jobs.iter().filter(|&&(_, weights)| weights).count();
            assert_eq!(with_weights, 5, "{what}: {jobs:?}");
            // Steps started ahead are undone by all five changes but the learning rate's (their
            // helpers' work dropped, no replica updated: a new optimiser's state must not meet
            // a step whose helpers hold the old) and started again.
            assert_eq!(jobs.len(), if ahead { 45 + 5 } else { 45 }, "{what}");
        }
    }
}

/// Thread helpers (sending weights, not replicating) that add a helper's answer into the root
/// themselves and make the update part by part, as the browser's workers do; `fail_at`: the
/// answer of that call to `collect_added` is refused after garbage was written into the
/// gradients (as a helper that stops midway leaves them).
struct Adding {
    inner: ThreadHelpers,
    added: Arc<std::sync::atomic::AtomicUsize>,
    updated: Arc<std::sync::atomic::AtomicUsize>,
    fail_at: Option<usize>,
}

impl Helpers for Adding {
    fn count(&self) -> usize {
        self.inner.count()
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        self.inner.dispatch(job, model, batch)
    }
    fn after_update(&mut self, model: &mut Sequential) {
        self.inner.after_update(model)
    }
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        self.inner.collect(h)
    }
    fn collect_added(&mut self, h: usize, expected: (usize, usize), left: &NodeSum, model: &mut Sequential) -> Option<Result<(f32, u32), String>> {
        let call = self.added.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sums = match self.inner.collect(h) {
            Ok(sums) => sums,
            Err(why) => return Some(Err(why)),
        };
        let fail = self.fail_at == Some(call);
        let mut at = 0;
        model.visit_params(&mut |_, _, _, g| {
            let g = tensor::slice_mut(g);
            let n = g.len();
            if fail {
                g.fill(f32::NAN);
            } else {
                engine::lanes::add_to(g, &left.grads[at..at + n], &sums[0].grads[at..at + n]);
            }
            at += n;
        });
        if fail {
            return Some(Err("worker 2 stopped answering".into()));
        }
        assert_eq!(sums.iter().map(|s| (s.lo, s.hi)).collect::<Vec<_>>(), [expected]);
        Some(Ok((sums[0].loss, sums[0].right)))
    }
    fn update_and_publish(&mut self, model: &mut Sequential, optimizer: &mut dyn engine::optim::Optimizer, hyper: &Hyper) -> bool {
        if !engine::optim::apply_in_parts(model, optimizer, hyper, 7, &mut |_, _, _| {}) {
            return false;
        }
        self.updated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.after_update(model);
        true
    }
    fn recycle(&mut self, buffer: Vec<f32>) {
        self.inner.recycle(buffer)
    }
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
}

#[test]
fn a_helpers_answer_added_as_it_arrives_and_the_update_made_in_parts_give_the_same_bits() {
    let data = regression();
    // 13 rows in 8 shards: each of 2 workers has one half of the tree (the answer is added into
    // the root), and so for 5 rows (three empty shards); on 3 workers no answer is a half (each
    // collected as before). With clipping
    // the update is made whole. A refused answer: its shards computed here, the root made again.
    for (batch, clip, fail_at, helpers) in [(13, 0.0, None, 1), (13, 0.0, Some(9), 1), (5, 0.0, None, 1), (13, 0.0, None, 2), (13, 0.5, None, 1)] {
        let run = |helpers: usize| {
            let mut t = trainer(batch, 8);
            t.hyper.clip = clip;
            let added = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let updated = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            if helpers > 0 {
                let inner = ThreadHelpers::new(&t.model, helpers).unwrap().with_replication(false);
                t.set_helpers(Some(Box::new(Adding { inner, added: added.clone(), updated: updated.clone(), fail_at })));
            }
            let losses: Vec<u32> = (0..40).map(|_| t.train_step(&data).to_bits()).collect();
            let failure = t.take_helper_failure();
            (losses, weights(&mut t), added.load(std::sync::atomic::Ordering::Relaxed), updated.load(std::sync::atomic::Ordering::Relaxed), failure)
        };
        let one = run(0);
        let two = run(helpers);
        let case = format!("batch {batch}, clip {clip}, failing at {fail_at:?}, {} workers", helpers + 1);
        assert_eq!((&two.0, &two.1), (&one.0, &one.1), "{case}");
        assert_eq!(two.2 > 0, helpers == 1, "{case}: answers added {}", two.2);
        assert_eq!(two.3, if clip > 0.0 { 0 } else { 40 }, "{case}: updates in parts");
        assert_eq!(fail_at.is_some(), two.4.is_some(), "{case}: {:?}", two.4);
    }
}
