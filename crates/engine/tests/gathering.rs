//! Helper threads that gather their own rows of each mini-batch (`Helpers::gathers_rows`): the
//! lead gathers only its own rows and copies none for them. The same bits as one worker; the
//! lab still reads the whole batch; a helper lost mid-step has its rows gathered by the lead.

use engine::data::images::{ImagePair, ImageSet};
use engine::lab::cnn::{CnnConfig, CnnModel};
use engine::lab::trainer::Trainer;
use engine::loss::Loss;
use engine::parallel::{Batch, Exchange, Helpers, NodeSum, ShardJob, SharedSums, ThreadHelpers};
use engine::rng::Rng;
use engine::sequential::Sequential;
use engine::tensor;
use std::sync::{Arc, Mutex};

fn images() -> Arc<ImagePair> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    Arc::new(ImagePair::load_dir(ImageSet::Mnist, &dir).unwrap())
}

/// The CNN lab's small net, a batch of 24 in 4 shards.
fn trainer(images: &ImagePair) -> Trainer {
    let config = CnnConfig::for_model(CnnModel::Small);
    let model = config.build_model(&mut Rng::new(1));
    let mut t = Trainer::new(model, config.opt, config.hyper(), Loss::Softmax, 24, images.train.len(), Rng::new(2));
    t.set_shards(4);
    t
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn weights(t: &mut Trainer) -> Vec<u32> {
    let mut w = Vec::new();
    engine::parallel::read_params(&mut t.model, &mut w);
    bits(&w)
}

/// Native helper threads, recording for each job whether it named rows to gather and how many
/// values of the batch it carried.
struct Recording {
    inner: ThreadHelpers,
    jobs: Arc<Mutex<Vec<(bool, usize)>>>,
}

impl Helpers for Recording {
    fn count(&self) -> usize {
        self.inner.count()
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        self.jobs.lock().unwrap().push((job.rows.is_some(), job.x.len()));
        self.inner.dispatch(job, model, batch)
    }
    fn gathers_rows(&self) -> bool {
        self.inner.gathers_rows()
    }
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        self.inner.collect(h)
    }
    fn replicates(&self) -> bool {
        self.inner.replicates()
    }
    fn exchange(&mut self, step: Exchange) {
        self.inner.exchange(step)
    }
    fn collect_shared(&mut self, h: usize) -> Result<SharedSums, String> {
        self.inner.collect_shared(h)
    }
    fn recycle(&mut self, buffer: Vec<f32>) {
        self.inner.recycle(buffer)
    }
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
}

#[test]
fn helpers_gathering_their_own_rows_train_the_same_bits_and_the_batch_reads_whole() {
    let images = images();
    let source = images.shared_train_source(images.scaling(true));
    let mut reference = trainer(&images);
    let expected: Vec<u32> = (0..12).map(|_| reference.train_step(&source).to_bits()).collect();
    for helpers in [1, 2, 3] {
        let mut t = trainer(&images);
        let jobs = Arc::new(Mutex::new(Vec::new()));
        t.set_helpers(Some(Box::new(Recording { inner: ThreadHelpers::new(&t.model, helpers).unwrap(), jobs: jobs.clone() })));
        let losses: Vec<u32> = (0..12).map(|_| t.train_step_ahead(&source, true).to_bits()).collect();
        t.settle();
        assert_eq!(losses, expected, "{helpers} helpers");
        assert_eq!(weights(&mut t), weights(&mut reference), "{helpers} helpers");
        assert_eq!(t.last_workers(), helpers + 1);
        // Every job named its rows and carried none of them.
        let jobs = jobs.lock().unwrap();
        assert!(jobs.len() >= 12 && jobs.iter().all(|&(rows, x)| rows && x == 0), "{helpers} helpers: {jobs:?}");
        // The last step was started ahead: its helpers' rows were not gathered here, and are
        // filled in when the batch is read.
        assert!(t.gathered_batch_x().is_none(), "{helpers} helpers: every row gathered here");
        assert_eq!(bits(tensor::slice(t.batch_x())), bits(tensor::slice(reference.batch_x())), "{helpers} helpers");
        assert!(t.gathered_batch_x().is_some());
        assert_eq!(t.batch_classes(), reference.batch_classes());
    }
}

#[test]
fn helpers_that_are_not_told_to_gather_are_sent_their_rows() {
    let images = images();
    let mut reference = trainer(&images);
    let plain = images.train_source(images.scaling(true));
    let expected: Vec<u32> = (0..6).map(|_| reference.train_step(&plain).to_bits()).collect();
    // A source that shares no rows, and helpers that gather none from one that does.
    for (gather, source) in [(true, images.train_source(images.scaling(true))), (false, images.shared_train_source(images.scaling(true)))] {
        let mut t = trainer(&images);
        let jobs = Arc::new(Mutex::new(Vec::new()));
        let inner = ThreadHelpers::new(&t.model, 1).unwrap().with_row_gathering(gather);
        t.set_helpers(Some(Box::new(Recording { inner, jobs: jobs.clone() })));
        let losses: Vec<u32> = (0..6).map(|_| t.train_step_ahead(&source, true).to_bits()).collect();
        t.settle();
        assert_eq!(losses, expected, "gathering {gather}");
        assert!(t.gathered_batch_x().is_some(), "gathering {gather}");
        assert!(jobs.lock().unwrap().iter().all(|&(rows, x)| !rows && x > 0), "gathering {gather}");
    }
}

/// Native helper threads that stop answering after `steps` jobs.
struct Dying {
    inner: ThreadHelpers,
    jobs: usize,
    steps: usize,
}

impl Helpers for Dying {
    fn count(&self) -> usize {
        self.inner.count()
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        self.jobs += 1;
        self.inner.dispatch(job, model, batch)
    }
    fn gathers_rows(&self) -> bool {
        true
    }
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        self.collect_shared(h).map(|s| s.as_ref().clone())
    }
    fn replicates(&self) -> bool {
        self.inner.replicates()
    }
    fn exchange(&mut self, step: Exchange) {
        self.inner.exchange(step)
    }
    fn collect_shared(&mut self, h: usize) -> Result<SharedSums, String> {
        let answer = self.inner.collect_shared(h);
        if self.jobs > self.steps {
            return Err(format!("worker {} stopped answering", h + 2));
        }
        answer
    }
    fn recycle(&mut self, buffer: Vec<f32>) {
        self.inner.recycle(buffer)
    }
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
}

#[test]
fn a_helper_lost_while_its_rows_were_its_own_to_gather_has_them_gathered_here() {
    let images = images();
    let source = images.shared_train_source(images.scaling(true));
    let mut reference = trainer(&images);
    let expected: Vec<u32> = (0..8).map(|_| reference.train_step(&source).to_bits()).collect();
    let mut t = trainer(&images);
    t.set_helpers(Some(Box::new(Dying { inner: ThreadHelpers::new(&t.model, 1).unwrap(), jobs: 0, steps: 4 })));
    let losses: Vec<u32> = (0..8).map(|_| t.train_step_ahead(&source, true).to_bits()).collect();
    t.settle();
    assert_eq!(losses, expected);
    assert_eq!(weights(&mut t), weights(&mut reference));
    let why = t.take_helper_failure().expect("reported");
    assert!(why.contains("worker 2") && why.contains("the same steps, slower"), "{why}");
    assert_eq!(bits(tensor::slice(t.batch_x())), bits(tensor::slice(reference.batch_x())));
}

#[test]
fn a_job_naming_too_few_rows_is_refused_not_computed_on_stale_rows() {
    let images = images();
    let source = images.shared_train_source(images.scaling(true));
    let t = trainer(&images);
    let mut replica = t.model.clone();
    let mut params = Vec::new();
    engine::parallel::read_params(&mut replica, &mut params);
    let mut x = tensor::zeros(&[0]);
    let (mut y, mut classes) = (tensor::zeros(&[0]), Vec::new());
    engine::data::Source::gather(&source, &[0, 1, 2, 3], &mut x, &mut y, &mut classes);
    let job = ShardJob {
        params,
        x: Vec::new(),
        shape: x.shape().to_vec(),
        targets: engine::parallel::Targets::Classes(classes),
        loss: Loss::Softmax,
        shards: 2,
        workers: 2,
        stream: false,
        replicated: false,
        optimizer: None,
        rows: Some(images.shared_train_rows(images.scaling(true))),
        indices: vec![0, 1, 2],
    };
    let (mut scratch, mut spare) = (engine::parallel::Scratch::default(), Vec::new());
    let why = engine::parallel::compute_group(&mut replica, &job, 1, &mut scratch, &mut spare).unwrap_err();
    assert!(why.contains("3 rows for a batch of 4"), "{why}");
    // With every row named, the helper's sums are those of its rows gathered in full.
    let job = ShardJob { indices: vec![0, 1, 2, 3], ..job };
    let mine = engine::parallel::compute_group(&mut replica, &job, 1, &mut scratch, &mut spare).unwrap();
    let full = ShardJob { rows: None, x: tensor::slice(&x).to_vec(), ..job };
    let copied = engine::parallel::compute_group(&mut replica, &full, 1, &mut scratch, &mut spare).unwrap();
    assert_eq!(mine.len(), copied.len());
    for (a, b) in mine.iter().zip(&copied) {
        assert_eq!((a.lo, a.hi, a.loss.to_bits(), a.right), (b.lo, b.hi, b.loss.to_bits(), b.right));
        assert_eq!(bits(&a.grads), bits(&b.grads));
    }
}
