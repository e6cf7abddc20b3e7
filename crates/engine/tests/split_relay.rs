//! The first layer split with relayed helpers (`engine::split_layer::SplitRelay`, the browser's
//! way: each helper keeps its rows; only rows of Z, ∂Z and mirrors travel), here with helpers
//! simulated in one thread through the same `Part` a browser worker runs: the sharded step's
//! bits on 2–4 workers for every optimiser, steps taken in runs that gather the helpers' rows
//! only when the model is read, a model changed between steps, and a helper lost part-way.
use engine::data::{Dataset, Targets};
use engine::init::Init;
use engine::lab::trainer::Trainer;
use engine::layer::Layer;
use engine::loss::Loss;
use engine::ops::{Activation, ActivationKind, Dense};
use engine::optim::{Hyper, OptimizerKind};
use engine::parallel::{Batch, Helpers, NodeSum, ShardJob};
use engine::rng::Rng;
use engine::sequential::Sequential;
use engine::split_layer::{part_rows, Part, RelayStep, SplitRelay, FORWARD_BLOCK};
use engine::tensor;
use std::ops::Range;
use std::sync::{Arc, Mutex};

const INPUTS: usize = 64;
const ROWS: usize = 300;

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

/// Every weight and gradient, and what each layer keeps of its last forward.
fn state(t: &mut Trainer) -> Vec<u32> {
    let mut out = Vec::new();
    let model: &mut Sequential = &mut t.model;
    model.visit_params(&mut |_, _, w, g| out.extend(tensor::slice(w).iter().chain(tensor::slice(g)).map(|v| v.to_bits())));
    for layer in &t.model.layers {
        out.extend(tensor::slice(layer.output()).iter().map(|v| v.to_bits()));
    }
    out
}

/// Helpers in this thread: each step's work is done as the lead hands it over, in the order a
/// worker would do it, on rows each helper keeps (nothing is read from the lead's model but
/// what a step's `init` carries). `die`: helper v stops at block b of step s (`usize::MAX`
/// blocks: after Z, before its update).
struct Sim {
    count: usize,
    parts: Vec<Part>,
    /// Each helper's rows as at the step's start (W, state 0, state 1): the mirror a browser
    /// worker leaves.
    start: Vec<[Vec<f32>; 3]>,
    /// Each helper's mirror after its update (W, state 0, state 1, ∂W): what a gather reads.
    mirror: Vec<[Vec<f32>; 4]>,
    step: Option<(usize, usize, usize, usize, usize, Hyper, engine::optim::Rule, bool)>,
    x: Vec<f32>,
    z: Vec<f32>,
    /// Blocks of Z every helper has added its terms to.
    done_blocks: usize,
    steps: usize,
    die: Option<(usize, usize, usize)>,
    dead: bool,
    /// Before this step the helpers lose their rows (as on a new buffer).
    forget_at: Option<usize>,
    /// Steps begun, steps that sent rows, steps that asked for ∂W's mirror.
    counts: Arc<Mutex<[usize; 3]>>,
}

impl Sim {
    fn new(count: usize, die: Option<(usize, usize, usize)>) -> Sim {
        Sim {
            count,
            parts: (0..count).map(|_| Part::default()).collect(),
            start: vec![Default::default(); count],
            mirror: vec![Default::default(); count],
            step: None,
            x: Vec::new(),
            z: Vec::new(),
            done_blocks: 0,
            steps: 0,
            die,
            dead: false,
            forget_at: None,
            counts: Arc::default(),
        }
    }

    fn dies_at(&self, v: usize, block: usize) -> bool {
        self.die.is_some_and(|(s, dv, b)| s == self.steps && dv == v && block >= b)
    }
}

impl SplitRelay for Sim {
    fn ready(&mut self, _: &mut Sequential, _: usize, _: (usize, usize), _: usize) -> Option<bool> {
        if self.dead {
            return None;
        }
        // Helpers that started over (a new buffer) hold no rows: say so.
        let fresh = self.forget_at == Some(self.steps + 1);
        if fresh {
            self.parts.iter_mut().for_each(|p| *p = Part::default());
        }
        Some(fresh)
    }

    fn begin(&mut self, s: &RelayStep) {
        self.steps += 1;
        self.step = Some((s.workers, s.n, s.input, s.out, s.shards, s.hyper, s.rule, s.grads));
        {
            let mut c = self.counts.lock().unwrap();
            c[0] += 1;
            c[1] += s.init.is_some() as usize;
            c[2] += s.grads as usize;
        }
        for v in 1..s.workers {
            let rows = part_rows(s.input, s.workers, v);
            let span = rows.start * s.out..rows.end * s.out;
            let (w, _, st) = self.parts[v - 1].tensors(s.input, s.out);
            if let Some((iw, istate)) = &s.init {
                w[span.clone()].copy_from_slice(&iw[span.clone()]);
                for (j, is) in istate.iter().enumerate() {
                    if !is.is_empty() {
                        st[j][span.clone()].copy_from_slice(&is[span.clone()]);
                    }
                }
            }
            let start = &mut self.start[v - 1];
            start[0] = w.to_vec();
            start[1] = st[0].to_vec();
            start[2] = st[1].to_vec();
        }
        self.x = vec![f32::NAN; s.n * s.input];
        self.z = vec![f32::NAN; s.n * s.out];
        self.done_blocks = 0;
    }

    fn put_block(&mut self, i: usize, rows: Range<usize>, x: &[f32], z: &[f32]) {
        let (workers, _, input, out, ..) = self.step.unwrap();
        self.x[rows.start * input..rows.end * input].copy_from_slice(x);
        let zr = &mut self.z[rows.start * out..rows.end * out];
        zr.copy_from_slice(z);
        for v in 1..workers {
            if self.die.is_some_and(|(s, dv, b)| s == self.steps && dv == v && i >= b) {
                self.dead = true;
            }
            if self.dead {
                return;
            }
            self.parts[v - 1].forward(workers, v, input, out, rows.clone(), &self.x, zr);
        }
        self.done_blocks = i + 1;
    }

    fn get_rows(&mut self, rows: Range<usize>, z: &mut [f32]) -> bool {
        let out = self.step.unwrap().3;
        if self.done_blocks * FORWARD_BLOCK < rows.end {
            return false;
        }
        z.copy_from_slice(&self.z[rows.start * out..rows.end * out]);
        true
    }

    fn put_dz(&mut self, dz: &[f32]) {
        let (workers, n, input, out, shards, hyper, rule, _) = self.step.unwrap();
        for v in 1..workers {
            if self.dies_at(v, usize::MAX) {
                self.dead = true;
            }
            if self.dead {
                return;
            }
            self.parts[v - 1].update((workers, v), (n, input, out, shards), &self.x, dz, rule, &hyper);
            let (w, dw, [s0, s1]) = self.parts[v - 1].tensors(input, out);
            self.mirror[v - 1] = [w.to_vec(), s0.to_vec(), s1.to_vec(), dw.to_vec()];
        }
    }

    fn wait_done(&mut self) -> bool {
        !self.dead
    }

    fn restore(&mut self, w: &mut [f32], state: [&mut [f32]; 2]) {
        let (workers, _, input, out, ..) = self.step.unwrap();
        let [s0, s1] = state;
        for v in 1..workers {
            let span = part_rows(input, workers, v);
            let span = span.start * out..span.end * out;
            let start = &self.start[v - 1];
            w[span.clone()].copy_from_slice(&start[0][span.clone()]);
            for (s, from) in [(&mut *s0, &start[1]), (&mut *s1, &start[2])] {
                if !s.is_empty() {
                    s[span.clone()].copy_from_slice(&from[span.clone()]);
                }
            }
        }
    }

    fn gather(&mut self, w: &mut [f32], dw: &mut [f32], state: [&mut [f32]; 2]) {
        let (workers, _, input, out, .., grads) = self.step.unwrap();
        let [s0, s1] = state;
        for v in 1..workers {
            let span = part_rows(input, workers, v);
            let span = span.start * out..span.end * out;
            let [pw, p0, p1, pdw] = &self.mirror[v - 1];
            w[span.clone()].copy_from_slice(&pw[span.clone()]);
            if grads {
                dw[span.clone()].copy_from_slice(&pdw[span.clone()]);
            }
            for (s, from) in [(&mut *s0, p0), (&mut *s1, p1)] {
                if !s.is_empty() {
                    s[span.clone()].copy_from_slice(&from[span.clone()]);
                }
            }
        }
    }

    fn failure(&mut self) -> Option<String> {
        self.dead.then(|| "worker 2 stopped answering".to_string())
    }
}

impl Helpers for Sim {
    fn count(&self) -> usize {
        // A lost helper is left out, as the browser's are.
        if self.dead {
            0
        } else {
            self.count
        }
    }
    fn dispatch(&mut self, _: &Arc<ShardJob>, _: &mut Sequential, _: &Batch) -> Result<bool, String> {
        // Not ready for data-parallel jobs: the lead computes those steps' shards (the same bits).
        Ok(false)
    }
    fn collect(&mut self, _: usize) -> Result<Vec<NodeSum>, String> {
        Err("no job".into())
    }
    fn fingerprint(&self) -> u64 {
        0
    }
    fn relay(&mut self) -> Option<&mut dyn SplitRelay> {
        Some(self)
    }
}

/// 30 steps in runs of 7 (the helpers' rows gathered at each run's end, and for the trainer's
/// records), with `change` applied to the model before step 12; the losses, correct counts and
/// the final state.
fn run(t: &mut Trainer, data: &Dataset, change: bool) -> (Vec<u32>, Vec<Option<u32>>, Vec<u32>) {
    let (mut losses, mut right) = (Vec::new(), Vec::new());
    for i in 0..30 {
        if change && i == 12 {
            // A weight of the helpers' rows changed between steps (as a rewind would): the next
            // step must send the model's rows again.
            let model: &mut Sequential = &mut t.model;
            let mut first = true;
            model.visit_params(&mut |_, _, w, _| {
                if std::mem::take(&mut first) {
                    tensor::slice_mut(w)[INPUTS * 24 - 1] += 0.25;
                }
            });
        }
        let more = i % 7 != 6 && i != 29;
        losses.push(t.train_step_ahead(data, more).to_bits());
        right.push(t.batch_right());
    }
    (losses, right, state(t))
}

#[test]
fn relayed_helpers_give_the_sharded_steps_bits() {
    let cases = [
        (OptimizerKind::Sgd, Loss::Softmax, true),
        (OptimizerKind::Momentum, Loss::Mse, false),
        (OptimizerKind::Nesterov, Loss::Softmax, true),
        (OptimizerKind::Adagrad, Loss::Mse, false),
        (OptimizerKind::Adam, Loss::Softmax, true),
    ];
    for (opt, loss, classes) in cases {
        let data = data(classes);
        for (batch, shards) in [(64, 4), (13, 8)] {
            for change in [false, true] {
                let base = run(&mut trainer(opt, loss, batch, shards), &data, change);
                for helpers in 1..4 {
                    let mut t = trainer(opt, loss, batch, shards);
                    t.set_helpers(Some(Box::new(Sim::new(helpers, None))));
                    let r = run(&mut t, &data, change);
                    assert!(t.last_step_split() && t.last_workers() == helpers + 1, "{opt:?}: the steps were relayed");
                    assert!(r == base, "{opt:?}, batch {batch}, change {change}: {} relayed workers differ from one", helpers + 1);
                }
            }
        }
    }
}

#[test]
fn relayed_helpers_are_sent_rows_only_when_the_model_changed_and_mirror_gradients_only_when_read() {
    let data = data(true);
    let mut t = trainer(OptimizerKind::Adam, Loss::Softmax, 64, 4);
    t.set_record_every(1_000_000);
    let sim = Sim::new(1, None);
    let counts = sim.counts.clone();
    t.set_helpers(Some(Box::new(sim)));
    // Steps 1–6 in one run (read after the last), then the model changed (a mutable borrow),
    // then steps 7–12 in another run.
    for i in 0..12 {
        if i == 6 {
            let _: &mut Sequential = &mut t.model;
        }
        t.train_step_ahead(&data, i % 6 != 5);
    }
    assert_eq!(*counts.lock().unwrap(), [12, 2, 2], "12 steps relayed; rows sent before steps 1 and 7; ∂W mirrored after steps 6 and 12");
    // Read between runs without a change: no rows sent again.
    let _ = t.grad_norm();
    t.train_step_ahead(&data, false);
    assert_eq!(*counts.lock().unwrap(), [13, 2, 3]);
}

#[test]
fn a_relayed_helper_lost_part_way_costs_time_not_bits() {
    let data = data(true);
    let base = run(&mut trainer(OptimizerKind::Adam, Loss::Softmax, 64, 4), &data, false);
    // Helper 1 of 2 dies in step 9 at block 3 of Z; after Z, before its update; in the first step.
    for die in [(9, 1, 3), (9, 2, 0), (9, 1, usize::MAX), (1, 1, 0)] {
        let mut t = trainer(OptimizerKind::Adam, Loss::Softmax, 64, 4);
        t.set_helpers(Some(Box::new(Sim::new(2, Some(die)))));
        let mut failures = Vec::new();
        let r = run(&mut t, &data, false);
        failures.extend(t.take_helper_failure());
        assert!(r == base, "{die:?}: the same bits");
        assert_eq!(t.last_workers(), 1, "{die:?}: then on one worker");
        let why = failures.first().unwrap_or_else(|| panic!("{die:?}: the loss is reported"));
        assert!(why.contains("stopped answering") && why.contains("training continues on this worker alone"), "{why}");
    }
}

#[test]
fn helpers_that_lost_their_rows_say_so_and_are_sent_them_again() {
    let data = data(true);
    // No step records: within a run of steps the model lacks the helpers' rows until its end.
    let quiet = || {
        let mut t = trainer(OptimizerKind::Momentum, Loss::Softmax, 64, 4);
        t.set_record_every(1_000_000);
        t
    };
    let base = run(&mut quiet(), &data, false);
    let mut t = quiet();
    let mut sim = Sim::new(2, None);
    // Mid-run (step 10 of a run of 7 starting at step 8): the trainer still thinks they hold them,
    // and its model lacks their rows of step 9 (gathered from the mirrors before they are sent).
    sim.forget_at = Some(10);
    let counts = sim.counts.clone();
    t.set_helpers(Some(Box::new(sim)));
    assert!(run(&mut t, &data, false) == base, "the same bits");
    assert_eq!(counts.lock().unwrap()[1], 2, "rows sent before steps 1 and 10");
}
