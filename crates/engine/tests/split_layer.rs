//! The first layer split between threads (`engine::split_layer`): the sharded step's bits on
//! 1–6 workers (up to 4 split) for every optimiser, with L1 and L2, class and value targets,
//! uneven and empty shards; the steps really split; a helper lost before its part costs time,
//! not bits.
use engine::data::{Dataset, Targets};
use engine::init::Init;
use engine::lab::trainer::Trainer;
use engine::layer::Layer;
use engine::loss::Loss;
use engine::ops::{Activation, ActivationKind, Dense};
use engine::optim::{Hyper, OptimizerKind};
use engine::parallel::{Batch, Helpers, NodeSum, ShardJob, ThreadHelpers};
use engine::rng::Rng;
use engine::sequential::Sequential;
use engine::split_layer::{SplitHelpers, SplitJob, MAX_SPLIT_WORKERS};
use engine::tensor;
use std::sync::Arc;

const INPUTS: usize = 64;
const ROWS: usize = 300;

/// A first layer wide enough to split 4 ways (runs of 16 inputs each).
fn mlp() -> Sequential {
    let mut rng = Rng::new(3);
    let mut b = Sequential::builder();
    b.push(Dense::new(INPUTS, 24, Init::He, 0.0, &mut rng));
    b.push(Activation::new(ActivationKind::Relu, 0.0));
    b.push(Dense::new(24, 5, Init::Xavier, 0.0, &mut rng));
    b.build()
}

fn data(classes: bool) -> Dataset {
    let mut rng = Rng::new(9);
    let x: Vec<f32> = (0..ROWS * INPUTS).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let y = if classes {
        Targets::Classes(x.chunks(INPUTS).map(|r| (r[0] * 2.0 + r[1] + 2.5).clamp(0.0, 4.0) as usize).collect())
    } else {
        let v: Vec<f32> = x.chunks(INPUTS).flat_map(|r| (0..5).map(move |j| r[j] * r[j + 5] + r[10 + j])).collect();
        Targets::Values(tensor::from_vec(&[ROWS, 5], v))
    };
    Dataset { x: tensor::from_vec(&[ROWS, INPUTS], x), y }
}

fn trainer(opt: OptimizerKind, loss: Loss, batch: usize, shards: usize) -> Trainer {
    let hyper = Hyper { lr: 0.05, momentum: 0.9, l2: 1e-3, l1: 1e-4, clip: 0.0 };
    let mut t = Trainer::new(mlp(), opt, hyper, loss, batch, ROWS, Rng::new(5));
    t.set_shards(shards);
    t
}

/// Every weight and gradient, and what each layer keeps of its last forward (what the labs read).
fn state(t: &mut Trainer) -> Vec<u32> {
    let mut out = Vec::new();
    let model: &mut Sequential = &mut t.model;
    model.visit_params(&mut |_, _, w, g| out.extend(tensor::slice(w).iter().chain(tensor::slice(g)).map(|v| v.to_bits())));
    for layer in &t.model.layers {
        out.extend(tensor::slice(layer.output()).iter().map(|v| v.to_bits()));
    }
    out
}

#[test]
fn the_first_layer_split_between_threads_gives_the_sharded_steps_bits() {
    let cases = [
        (OptimizerKind::Sgd, Loss::Softmax, true),
        (OptimizerKind::Momentum, Loss::Mse, false),
        (OptimizerKind::Nesterov, Loss::Softmax, true),
        (OptimizerKind::Adagrad, Loss::Mse, false),
        (OptimizerKind::Adam, Loss::Softmax, true),
    ];
    for (opt, loss, classes) in cases {
        let data = data(classes);
        // 64 rows in 4 shards of 16; 13 rows in 8 shards of 1–2 (300 % 13 = 1 at each epoch's
        // end: one row, seven empty shards).
        for (batch, shards) in [(64, 4), (13, 8)] {
            let mut base: Option<(Vec<u32>, Vec<u32>, Vec<Option<u32>>)> = None;
            // Up to 4 workers split the first layer; more (batch 13: 8 shards) go data-parallel.
            for helpers in 0..6 {
                let mut t = trainer(opt, loss, batch, shards);
                if helpers > 0 {
                    t.set_helpers(Some(Box::new(ThreadHelpers::new(&t.model, helpers).unwrap())));
                }
                let (mut losses, mut right) = (Vec::new(), Vec::new());
                for _ in 0..30 {
                    losses.push(t.train_step(&data).to_bits());
                    right.push(t.batch_right());
                    if helpers > 0 && t.last_workers() > 1 {
                        assert_eq!(t.last_step_split(), t.last_workers() <= MAX_SPLIT_WORKERS, "{opt:?}, {} workers", t.last_workers());
                    }
                }
                assert_eq!(t.last_workers(), (helpers + 1).min(shards), "{opt:?}");
                let r = (losses, state(&mut t), right);
                match &base {
                    None => base = Some(r),
                    Some(b) => assert!(&r == b, "{opt:?}, batch {batch}: {} workers differ from one", helpers + 1),
                }
            }
        }
    }
}

#[test]
fn a_clipped_update_is_not_split() {
    // Clipping needs the whole gradient's norm before any element's update: data-parallel then.
    let data = data(true);
    let mut t = trainer(OptimizerKind::Sgd, Loss::Softmax, 64, 4);
    t.hyper.clip = 1.0;
    t.set_helpers(Some(Box::new(ThreadHelpers::new(&t.model, 1).unwrap())));
    t.train_step(&data);
    assert_eq!(t.last_workers(), 2);
    assert!(!t.last_step_split());
}

/// Threads that say they are `count` but have fewer: the split steps' last helpers are never
/// started (as if their threads had stopped).
struct Short {
    inner: ThreadHelpers,
    count: usize,
}

impl Helpers for Short {
    fn count(&self) -> usize {
        self.count
    }
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        self.inner.dispatch(job, model, batch)
    }
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        self.inner.collect(h)
    }
    fn fingerprint(&self) -> u64 {
        self.inner.fingerprint()
    }
    fn split(&mut self) -> Option<&mut dyn SplitHelpers> {
        Some(self)
    }
}

impl SplitHelpers for Short {
    fn start_split(&mut self, job: &Arc<SplitJob>, lost: &mut dyn FnMut(usize, String)) {
        self.inner.start_split(job, lost);
    }
}

#[test]
fn a_helper_lost_before_its_part_costs_time_not_bits() {
    let data = data(true);
    let run = |helpers: Option<(usize, usize)>| {
        let mut t = trainer(OptimizerKind::Adam, Loss::Softmax, 64, 4);
        if let Some((threads, count)) = helpers {
            t.set_helpers(Some(Box::new(Short { inner: ThreadHelpers::new(&t.model, threads).unwrap(), count })));
        }
        let mut failures = Vec::new();
        let losses: Vec<u32> = (0..12).map(|_| t.train_step(&data).to_bits()).collect();
        failures.extend(t.take_helper_failure());
        (losses, state(&mut t), failures, t.last_workers())
    };
    let (losses, weights, _, _) = run(None);
    // Three workers, the third never started (the lead does its part); then none started.
    for helpers in [(1, 2), (0, 1), (0, 3)] {
        let (l, w, failures, workers) = run(Some(helpers));
        assert_eq!((&l, &w), (&losses, &weights), "{helpers:?}: the same bits");
        let why = failures.first().unwrap_or_else(|| panic!("{helpers:?}: the loss is reported"));
        assert!(why.contains("has stopped") && why.contains("training continues on this worker alone"), "{why}");
        assert_eq!(workers, 1, "{helpers:?}: then on one worker");
    }
}
