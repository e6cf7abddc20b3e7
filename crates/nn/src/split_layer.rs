//! One training step on several threads with the model's first layer split by its inputs (the
//! rows of W) and the rest of the network by micro-shards: how W2 (an MLP whose first layer
//! holds 99 % of the weights) uses two cores.
//!
//! ```text
//! first layer   Z = b + X·W      X (n × in), W (in × out); worker v owns rows K_v of W (in order)
//! phase 1       a row block of Z at a time, in a pipeline: worker 0 starts it from b and adds
//!               X[blk, K_0]·W[K_0, :]; worker 1 adds X[blk, K_1]·W[K_1, :] to that; …
//! phase 2       for each of its shards s: Z[s, :] → the rest → loss, ∂Z[s, :], the rest's ∂θ_s
//! phase 3       ∂W[K_v, :] = tree over s of X[s, K_v]ᵀ·∂Z[s, :], then its update (the lead: ∂b too)
//! the lead      the tree of the rest's ∂θ_s and its update; the tree of the shards' losses
//! ```
//!
//! Every number is the sharded step's ([`crate::parallel`]): Z's elements are summed over k in
//! order (worker 1 carries on from worker 0's partial sums), each shard runs the same layers on
//! the same inputs, each gradient is the same tree of the same leaves, and each element's update
//! is the optimiser's [`Rule`]. So a run has the same bits on 1, 2, 3 … workers. Two workers
//! exchange ~80 KB a step (partial rows of Z, rows of Z and ∂Z), where the data-parallel step
//! moves ~800 KB of gradients; and each worker writes whole rows of W, ∂W and the optimiser's
//! state. (A split by W's columns, tried first, had both threads write halves of the same
//! rows: their caches fought over the neighbouring lines and the update took 1.7× as long.)
//!
//! Everything shared is reached through the job's pointers: each element is written by one
//! worker in one phase (a row block of Z by each worker in turn) and read by others only after
//! the writer said so (Release/Acquire); the lead touches none of it again before every helper
//! has said it is done. A helper that fails part-way (a panic) is reported and its remaining
//! work is done by the lead: the same bits.
use crate::layer::{Layer, ParamKind};
use crate::loss::Loss;
use crate::ops::dense::Dense;
use crate::ops::gemm::{gemm_strided, gemm_tn_strided};
use crate::optim::{self, Hyper, Optimizer, Rule};
use crate::parallel::{group, layers_gradient, shard_rows, width, Batch, Scratch, SharedRows, MAX_SHARDS, MAX_WORKERS};
use crate::sequential::Sequential;
use crate::tensor;
use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

mod relay;
pub use relay::{part_rows, Part, RelayStep, SplitRelay};

/// W's rows are dealt in runs of this many.
const DEAL: usize = 16;
/// The most workers a split step takes: each more one adds a block to phase 1's pipeline and a
/// handoff to every block, while the data-parallel step scales to 16 (measured on 2 workers,
/// 2026-12-06; more go data-parallel until measured).
pub const MAX_SPLIT_WORKERS: usize = 4;
/// Rows of Z per block of phase 1's pipeline (W2: 4 blocks; the last worker finishes one block
/// after the first).
pub const FORWARD_BLOCK: usize = 16;
/// Rows of ∂W computed at a time in phase 3: each shard's leaf of a block (8 × 128 floats for
/// W2) and their tree stay in the nearest cache, and each block is written and applied at once.
const BLOCK: usize = 8;

/// Worker `v`'s rows of W (inputs of the layer) for a layer with `inputs` split between `workers`.
pub fn rows_of(inputs: usize, workers: usize, v: usize) -> Range<usize> {
    let runs = inputs.div_ceil(DEAL);
    let at = |v: usize| (runs * v / workers.max(1) * DEAL).min(inputs);
    at(v)..at(v + 1)
}

/// Why a step of `model` cannot split its first layer over `workers` (None: it can): the first
/// layer must be a dense layer with a run of inputs for each worker, the inputs plain rows, and
/// the update one that each element makes alone (no clipping by the global norm).
pub fn unsplittable(model: &Sequential, shape: &[usize], workers: usize, hyper: &Hyper, masked: bool) -> Option<&'static str> {
    let Some(dense) = model.layers.first().and_then(|l| l.as_any().downcast_ref::<Dense>()) else {
        return Some("the first layer is not a dense layer");
    };
    if model.layers.len() < 2 {
        Some("the network is a single layer")
    } else if !(2..=MAX_SPLIT_WORKERS).contains(&workers) {
        Some("more workers than a split step takes")
    } else if dense.inputs < DEAL * workers {
        Some("the first layer has too few inputs for each worker")
    } else if shape.len() != 2 || shape[1] != dense.inputs {
        Some("the inputs are not rows of the first layer's width")
    } else if hyper.clip > 0.0 {
        Some("clipping needs the whole gradient's norm before any update")
    } else if masked {
        Some("padded sequences")
    } else {
        None
    }
}

/// What every worker reads of one step (set by the lead before it starts the helpers).
#[derive(Clone, Copy)]
struct Plan {
    workers: usize,
    n: usize,
    input: usize,
    out: usize,
    shards: usize,
    x: *const f32,
    /// The rows of the data set the batch holds, and those the next batch will hold (a guess:
    /// a helper checks it), when the helpers gather rows themselves (`SplitJob::source`).
    indices: *const usize,
    indices_len: usize,
    next: *const usize,
    next_len: usize,
    classes: *const usize,
    classes_len: usize,
    values: *const f32,
    values_len: usize,
    loss: Loss,
    /// The lead's first layer: W, b and their gradients.
    w: *mut f32,
    b: *mut f32,
    dw: *mut f32,
    db: *mut f32,
    rule: Rule,
    /// The optimiser's state for W and b (`rule.states()` of each; null past those).
    w_state: [*mut f32; 2],
    b_state: [*mut f32; 2],
    hyper: Hyper,
    /// Parameters of the layers after the first, end to end.
    rest_len: usize,
    /// The job's shared buffers (sized by the lead before the step): Z, ∂Z, the shards' rest
    /// gradients and results.
    z: *mut f32,
    dz: *mut f32,
    leaves: *mut f32,
    results: *mut Option<(f32, u32)>,
}

impl Default for Plan {
    fn default() -> Self {
        let null = std::ptr::null_mut();
        Plan {
            workers: 1,
            n: 0,
            input: 0,
            out: 0,
            shards: 0,
            x: std::ptr::null(),
            indices: std::ptr::null(),
            indices_len: 0,
            next: std::ptr::null(),
            next_len: 0,
            classes: std::ptr::null(),
            classes_len: 0,
            values: std::ptr::null(),
            values_len: 0,
            loss: Loss::Mse,
            w: null,
            b: null,
            dw: null,
            db: null,
            rule: Rule::Sgd,
            w_state: [null; 2],
            b_state: [null; 2],
            hyper: Hyper { lr: 0.0, momentum: 0.0, l2: 0.0, l1: 0.0, clip: 0.0 },
            rest_len: 0,
            z: null,
            dz: null,
            leaves: null,
            results: std::ptr::null_mut(),
        }
    }
}

impl Plan {
    fn blocks(&self) -> usize {
        self.n.div_ceil(FORWARD_BLOCK)
    }

    /// Phase 1's blocks that rows `rows` need finished.
    fn blocks_for(&self, rows: &Range<usize>) -> usize {
        rows.end.div_ceil(FORWARD_BLOCK)
    }
}

/// A worker's own buffers: its gradient leaves of a block of ∂W, one per shard (and the lead's
/// of ∂b); a helper's rows of the mini-batch and of the next one, and which rows they are.
#[derive(Default)]
struct Own {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
    x: Vec<f32>,
    x_for: Vec<usize>,
    next_x: Vec<f32>,
    next_for: Vec<usize>,
}

/// One step's shared state (reused from step to step; see the module's notes on who writes what).
pub struct SplitJob {
    workers: usize,
    /// Blocks of phase 1 each worker has added its rows' terms to, this step.
    forward: [AtomicUsize; MAX_WORKERS],
    /// Phases each worker has finished this step: 2, 3 when its phase 2, 3 is done.
    progress: [AtomicUsize; MAX_WORKERS],
    /// A worker stopped part-way (a helper: the lead does the rest of its part; the lead: the
    /// helpers stop waiting).
    failed: [AtomicBool; MAX_WORKERS],
    plan: UnsafeCell<Plan>,
    /// Where the helpers gather their own rows of the batch (None: they read the lead's).
    source: UnsafeCell<Option<SharedRows>>,
    /// The lead's parameters of the layers after the first, end to end (the helpers copy them).
    rest_params: UnsafeCell<Vec<f32>>,
    /// Z (n × out), built up block by block by the workers in turn.
    z: UnsafeCell<Vec<f32>>,
    /// ∂Z (n × out): rows written by their shard's worker.
    dz: UnsafeCell<Vec<f32>>,
    /// Each shard's gradient of the layers after the first (`rest_len` each), and its loss and
    /// correct count (None: an empty shard).
    rest_leaves: UnsafeCell<Vec<f32>>,
    results: UnsafeCell<Vec<Option<(f32, u32)>>>,
    own: Vec<UnsafeCell<Own>>,
}

// SAFETY: the cells are shared by the discipline in the module's notes: every element is written
// by one worker at a time and read by others only after its writer said so (Release/Acquire on
// `forward` and `progress`), and the lead changes the plan and sizes only while no helper is in
// a step.
unsafe impl Sync for SplitJob {}
unsafe impl Send for SplitJob {}

impl SplitJob {
    fn new(workers: usize) -> SplitJob {
        SplitJob {
            workers,
            forward: std::array::from_fn(|_| AtomicUsize::new(0)),
            progress: std::array::from_fn(|_| AtomicUsize::new(0)),
            failed: std::array::from_fn(|_| AtomicBool::new(false)),
            plan: UnsafeCell::new(Plan::default()),
            source: UnsafeCell::new(None),
            rest_params: UnsafeCell::new(Vec::new()),
            z: UnsafeCell::new(Vec::new()),
            dz: UnsafeCell::new(Vec::new()),
            rest_leaves: UnsafeCell::new(Vec::new()),
            results: UnsafeCell::new(Vec::new()),
            own: (0..workers).map(|_| UnsafeCell::new(Own::default())).collect(),
        }
    }

    /// Workers the job is for (the lead included).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// For a helper: spins until `counter[u]` reaches `at`; false when the lead failed.
    fn helper_wait(&self, counter: &[AtomicUsize; MAX_WORKERS], u: usize, at: usize) -> bool {
        while counter[u].load(Ordering::Acquire) < at {
            if self.failed[0].load(Ordering::Acquire) {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    }

    /// For a helper: spins until every worker has finished `phase`; false when the lead failed.
    fn helper_wait_all(&self, phase: usize) -> bool {
        (0..self.workers).all(|u| self.helper_wait(&self.progress, u, phase))
    }

    /// For the lead: spins until `counter[u]` reaches `at`, or helper `u` failed short of it
    /// (false then: its work is the lead's).
    fn lead_wait(&self, counter: &[AtomicUsize; MAX_WORKERS], u: usize, at: usize) -> bool {
        loop {
            if counter[u].load(Ordering::Acquire) >= at {
                return true;
            }
            if self.failed[u].load(Ordering::Acquire) {
                // It may have got there just before it failed: read again.
                return counter[u].load(Ordering::Acquire) >= at;
            }
            std::hint::spin_loop();
        }
    }
}

/// Phase 1, block `i`, worker `v`'s terms: rows of the block of Z from b (worker 0) or from the
/// partial sums before (`restart`: from b through every worker up to `v`, for a block a failed
/// helper may have left half done).
///
/// # Safety
/// The plan's pointers are live and sized as it says; worker `v − 1` has finished block `i` and
/// no one else writes it; no one writes W or b during phase 1.
unsafe fn forward_block(plan: &Plan, v: usize, i: usize, x: &[f32], restart: bool) {
    let (input, out) = (plan.input, plan.out);
    let rows = i * FORWARD_BLOCK..((i + 1) * FORWARD_BLOCK).min(plan.n);
    let z = std::slice::from_raw_parts_mut(plan.z.add(rows.start * out), rows.len() * out);
    let w = std::slice::from_raw_parts(plan.w, input * out);
    let first = if restart { 0 } else { v };
    if first == 0 {
        let b = std::slice::from_raw_parts(plan.b, out);
        z.chunks_exact_mut(out).for_each(|row| row.copy_from_slice(b));
    }
    for u in first..=v {
        // y = b, then y += x·W over k in order (the dense layer's forward), k in runs by worker.
        let k = rows_of(input, plan.workers, u);
        gemm_strided(rows.len(), k.len(), out, &x[rows.start * input + k.start..], input, &w[k.start * out..], out, z, out, true);
    }
}

/// Phase 2 for shard `s`: the layers after the first from its rows of Z; writes its rows of ∂Z,
/// its gradient of those layers and its loss.
///
/// # Safety
/// As [`forward_block`]; after the last worker's phase 1 for the shard's rows, and shard `s` is
/// computed by one worker at a time.
unsafe fn rest_shard(plan: &Plan, s: usize, layers: &mut [Box<dyn Layer>], scratch: &mut Scratch) {
    let rows = shard_rows(plan.n, plan.shards, s);
    let out = plan.out;
    if rows.is_empty() {
        *plan.results.add(s) = None;
        return;
    }
    let z = std::slice::from_raw_parts(plan.z.add(rows.start * out), rows.len() * out);
    scratch.input(&[rows.len(), out]).copy_from_slice(z);
    let classes = (!plan.classes.is_null()).then(|| std::slice::from_raw_parts(plan.classes, plan.classes_len));
    let values: &[f32] = if plan.values.is_null() { &[] } else { std::slice::from_raw_parts(plan.values, plan.values_len) };
    let shape = [plan.n, out];
    let batch = Batch { x: &[], shape: &shape, classes, values, mask: None };
    *plan.results.add(s) = Some(layers_gradient(layers, plan.loss, &batch, rows.clone(), scratch));
    let dz = std::slice::from_raw_parts_mut(plan.dz.add(rows.start * out), rows.len() * out);
    dz.copy_from_slice(tensor::slice(layers[0].input_grad()));
    let leaves = std::slice::from_raw_parts_mut(plan.leaves.add(s * plan.rest_len), plan.rest_len);
    let mut at = 0;
    for layer in layers.iter_mut() {
        layer.visit_params(&mut |_, _, _, g| {
            let g = tensor::slice(g);
            leaves[at..at + g.len()].copy_from_slice(g);
            at += g.len();
        });
    }
}

/// Phase 3 for worker `v`: its rows of ∂W (each shard's leaf, then their tree), written into
/// the lead's gradients, penalised and applied with the optimiser's rule, a block at a time;
/// worker 0 does ∂b and b too.
///
/// # Safety
/// As [`forward_block`]; after every worker's phase 2. Writes only `v`'s rows (and b: worker 0).
unsafe fn update_rows(own: &mut Own, plan: &Plan, v: usize, x: &[f32]) {
    let (out, input) = (plan.out, plan.input);
    own.w.resize_with(plan.shards, Vec::new);
    let dz = std::slice::from_raw_parts(plan.dz, plan.n * out);
    let mut present = [false; MAX_SHARDS];
    for (s, p) in present.iter_mut().enumerate().take(plan.shards) {
        *p = !shard_rows(plan.n, plan.shards, s).is_empty();
    }
    let present = &present[..plan.shards];
    let width = width(plan.shards);
    let (h, rule) = (&plan.hyper, plan.rule);
    let state = |p: *mut f32, at: usize, len: usize| if p.is_null() { &mut [][..] } else { std::slice::from_raw_parts_mut(p.add(at), len) };
    let k = rows_of(input, plan.workers, v);
    for r0 in k.clone().step_by(BLOCK) {
        let rb = (k.end - r0).min(BLOCK);
        for s in (0..plan.shards).filter(|&s| present[s]) {
            // Rows r0.. of ∂W_s = X_sᵀ·∂Z_s, from +0 (the dense layer's fresh backward).
            let rows = shard_rows(plan.n, plan.shards, s);
            let leaf = &mut own.w[s];
            leaf.resize(rb * out, 0.0);
            gemm_tn_strided(rb, rows.len(), out, &x[rows.start * input + r0..], input, &dz[rows.start * out..], out, leaf, out, false);
        }
        let Some(root) = tree(0, width, present, &mut own.w) else { return };
        let (at, len) = (r0 * out, rb * out);
        let g = std::slice::from_raw_parts_mut(plan.dw.add(at), len);
        g.copy_from_slice(&own.w[root][..len]);
        let w = std::slice::from_raw_parts_mut(plan.w.add(at), len);
        if h.l2 > 0.0 || h.l1 > 0.0 {
            optim::penalise(w, g, h);
        }
        rule.apply(w, g, state(plan.w_state[0], at, len), state(plan.w_state[1], at, len), h);
    }
    if v == 0 {
        // ∂b_s = Σ rows of ∂Z_s from +0, then their tree and b's update.
        own.b.resize_with(plan.shards, Vec::new);
        for s in 0..plan.shards {
            let db = &mut own.b[s];
            db.clear();
            db.resize(out, 0.0);
            for i in shard_rows(plan.n, plan.shards, s) {
                for (d, &g) in db.iter_mut().zip(&dz[i * out..(i + 1) * out]) {
                    *d += g;
                }
            }
        }
        let Some(root) = tree(0, width, present, &mut own.b) else { return };
        let g = std::slice::from_raw_parts_mut(plan.db, out);
        g.copy_from_slice(&own.b[root]);
        let b = std::slice::from_raw_parts_mut(plan.b, out);
        rule.apply(b, g, state(plan.b_state[0], 0, out), state(plan.b_state[1], 0, out), h);
    }
}

/// The tree over shards `[lo, hi)` of the leaves in `bufs` (shard `s`'s in `bufs[s]`, where
/// `present`), summed in place: the node's left half plus its right half, an absent half passed
/// through — the sharded step's tree, element by element. Returns the buffer holding the node.
fn tree(lo: usize, hi: usize, present: &[bool], bufs: &mut [Vec<f32>]) -> Option<usize> {
    if hi - lo == 1 {
        return present.get(lo).copied().unwrap_or(false).then_some(lo);
    }
    let mid = (lo + hi) / 2;
    match (tree(lo, mid, present, bufs), tree(mid, hi, present, bufs)) {
        (Some(a), Some(b)) => {
            let (l, r) = bufs.split_at_mut(b);
            crate::lanes::add_assign(&mut l[a], &r[0]);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

/// [`tree`] over the shards' slices of `leaves` (`len` each), in place.
fn rest_tree(lo: usize, hi: usize, present: &[bool], leaves: &mut [f32], len: usize) -> Option<usize> {
    if hi - lo == 1 {
        return present.get(lo).copied().unwrap_or(false).then_some(lo);
    }
    let mid = (lo + hi) / 2;
    match (rest_tree(lo, mid, present, leaves, len), rest_tree(mid, hi, present, leaves, len)) {
        (Some(a), Some(b)) => {
            let (l, r) = leaves.split_at_mut(b * len);
            crate::lanes::add_assign(&mut l[a * len..(a + 1) * len], &r[..len]);
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

/// The same tree over the shards' losses and correct counts.
fn loss_tree(lo: usize, hi: usize, results: &[Option<(f32, u32)>]) -> Option<(f32, u32)> {
    if hi - lo == 1 {
        return results.get(lo).copied().flatten();
    }
    let mid = (lo + hi) / 2;
    match (loss_tree(lo, mid, results), loss_tree(mid, hi, results)) {
        (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
        (a, b) => a.or(b),
    }
}

/// The batch's targets in the plan.
fn plan_batch(plan: &mut Plan, batch: &Batch) {
    if let Some(c) = batch.classes {
        (plan.classes, plan.classes_len) = (c.as_ptr(), c.len());
    }
    (plan.values, plan.values_len) = (batch.values.as_ptr(), batch.values.len());
}

/// The first layer's W, b, their gradients and optimiser state in the plan (after the
/// optimiser's `begin_step`: the rule is this step's).
fn plan_first_layer(plan: &mut Plan, model: &mut Sequential, optimizer: &mut dyn Optimizer) {
    let mut index = 0;
    model.layers[0].visit_params(&mut |_, _, w, g| {
        let len = w.len();
        let (rule, [s0, s1]) = optimizer.split(index, len);
        let ptr = |s: &mut [f32]| if s.len() == len { s.as_mut_ptr() } else { std::ptr::null_mut() };
        let state = [ptr(s0), ptr(s1)];
        plan.rule = rule;
        let (w, g) = (tensor::slice_mut(w).as_mut_ptr(), tensor::slice_mut(g).as_mut_ptr());
        if index == 0 {
            (plan.w, plan.dw, plan.w_state) = (w, g, state);
        } else {
            (plan.b, plan.db, plan.b_state) = (w, g, state);
        }
        index += 1;
    });
}

/// The rest's weights copied into the job and its buffers sized for the plan.
///
/// # Safety
/// No helper is in a step of `job`.
unsafe fn plan_buffers(job: &SplitJob, plan: &mut Plan, model: &mut Sequential) {
    let params = &mut *job.rest_params.get();
    params.clear();
    for layer in &mut model.layers[1..] {
        layer.visit_params(&mut |_, _, w, _| params.extend_from_slice(tensor::slice(w)));
    }
    plan.rest_len = params.len();
    let (n, out) = (plan.n, plan.out);
    let z = &mut *job.z.get();
    z.resize(n * out, 0.0);
    plan.z = z.as_mut_ptr();
    let dz = &mut *job.dz.get();
    dz.resize(n * out, 0.0);
    plan.dz = dz.as_mut_ptr();
    let leaves = &mut *job.rest_leaves.get();
    leaves.resize(plan.shards * plan.rest_len, 0.0);
    plan.leaves = leaves.as_mut_ptr();
    let results = &mut *job.results.get();
    results.clear();
    results.resize(plan.shards, None);
    plan.results = results.as_mut_ptr();
}

/// A helper's part of a step: worker `me` (≥ 1) on its replica of the model, whose layers after
/// the first take the lead's weights here. A panic is caught and reported to the lead, which
/// then does what is left of this part.
pub fn helper_part(job: &SplitJob, me: usize, replica: &mut Sequential, scratch: &mut Scratch) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the job's discipline (module notes); `me` is this helper's worker number.
        unsafe { helper_phases(job, me, &mut replica.layers[1..], scratch) }
    }));
    if !matches!(outcome, Ok(true)) {
        // A panic, or the lead failed: this helper writes nothing more this step.
        job.failed[me].store(true, Ordering::Release);
    }
}

/// Whether every phase was done (false: the lead failed).
///
/// # Safety
/// See [`helper_part`].
unsafe fn helper_phases(job: &SplitJob, me: usize, rest: &mut [Box<dyn Layer>], scratch: &mut Scratch) -> bool {
    let plan = *job.plan.get();
    let params = &*job.rest_params.get();
    let mut at = 0;
    for layer in rest.iter_mut() {
        layer.visit_params(&mut |_, _, w, _| {
            let w = tensor::slice_mut(w);
            w.copy_from_slice(&params[at..at + w.len()]);
            at += w.len();
        });
    }
    let x = own_rows(job, &plan, me);
    for i in 0..plan.blocks() {
        if !job.helper_wait(&job.forward, me - 1, i + 1) {
            return false;
        }
        forward_block(&plan, me, i, x, false);
        job.forward[me].store(i + 1, Ordering::Release);
    }
    for s in group(plan.shards, plan.workers, me) {
        let rows = shard_rows(plan.n, plan.shards, s);
        if !job.helper_wait(&job.forward, plan.workers - 1, plan.blocks_for(&rows)) {
            return false;
        }
        rest_shard(&plan, s, rest, scratch);
    }
    job.progress[me].store(2, Ordering::Release);
    if !job.helper_wait_all(2) {
        return false;
    }
    update_rows(&mut *job.own[me].get(), &plan, me, x);
    // What the next batch's rows need, taken before saying done: after that the lead may set
    // up the next step in the job.
    let next = next_rows(job, &plan, me);
    job.progress[me].store(3, Ordering::Release);
    if let Some(source) = next {
        let own = &mut *job.own[me].get();
        own.next_x.resize(own.next_for.len() * plan.input, 0.0);
        source.pixels.fill(&own.next_for, source.scaling, &mut own.next_x);
    }
    true
}

/// Helper `me`'s rows of the mini-batch: gathered by itself from the shared images where the
/// lead gave them (the lead's 200 KB of rows read across the cores cost as much as they save),
/// from the next batch it gathered at the end of the last step when that is this one;
/// otherwise the lead's rows.
///
/// # Safety
/// See [`helper_part`].
unsafe fn own_rows<'a>(job: &'a SplitJob, plan: &Plan, me: usize) -> &'a [f32] {
    let lead = std::slice::from_raw_parts(plan.x, plan.n * plan.input);
    let Some(source) = &*job.source.get() else { return lead };
    let indices = std::slice::from_raw_parts(plan.indices, plan.indices_len);
    let own = &mut *job.own[me].get();
    if own.x_for != indices {
        if own.next_for == indices {
            std::mem::swap(&mut own.x, &mut own.next_x);
            std::mem::swap(&mut own.x_for, &mut own.next_for);
        } else {
            own.x.resize(plan.n * plan.input, 0.0);
            source.pixels.fill(indices, source.scaling, &mut own.x);
            own.x_for.clear();
            own.x_for.extend_from_slice(indices);
        }
    }
    &own.x
}

/// The rows the next mini-batch will hold (kept in this helper's buffers) and where to gather
/// them from, when the lead said (the helper gathers them while the lead finishes the step).
///
/// # Safety
/// See [`helper_part`]; after this helper's phase 3, before it says it is done.
unsafe fn next_rows(job: &SplitJob, plan: &Plan, me: usize) -> Option<SharedRows> {
    let source = (*job.source.get()).clone()?;
    if plan.next.is_null() || plan.next_len == 0 {
        return None;
    }
    let own = &mut *job.own[me].get();
    own.next_for.clear();
    own.next_for.extend_from_slice(std::slice::from_raw_parts(plan.next, plan.next_len));
    Some(source)
}

/// Starts helpers on a split job: each of the `job.workers() − 1` helpers runs [`helper_part`]
/// with its worker number (1, 2, …); `lost(w, why)` for each one that could not be started (its
/// part is then done by the lead).
pub trait SplitHelpers {
    fn start_split(&mut self, job: &Arc<SplitJob>, lost: &mut dyn FnMut(usize, String));
}

/// Where the helpers gather their own rows of a step's batch: the rows of `source` that the
/// batch holds (`indices`, as the lead gathered them) and those the next batch will hold.
pub struct Gathering<'a> {
    pub source: SharedRows,
    pub indices: &'a [usize],
    pub next: &'a [usize],
}

/// The lead's side of split steps, kept between steps.
#[derive(Default)]
pub struct SplitStep {
    job: Option<Arc<SplitJob>>,
    scratch: Scratch,
}

/// A copy (a trainer's checkpoint) starts with buffers of its own.
impl Clone for SplitStep {
    fn clone(&self) -> Self {
        SplitStep::default()
    }
}

impl SplitStep {
    /// One step of `model` on `batch` split in `shards`, its first layer split over `workers`
    /// (the helpers' count + 1; see [`unsplittable`], which the caller checked): the gradient
    /// left in the model's gradients and the update made, as `optim::apply` after the sharded
    /// step's tree would make it. Returns the loss, the correct count (class targets) and, when
    /// a helper failed part-way, why (its part was then done here: the same bits). Err: this
    /// worker's own part failed (a bug; the model may be part-way through the update).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        model: &mut Sequential,
        optimizer: &mut dyn Optimizer,
        loss: Loss,
        batch: &Batch,
        shards: usize,
        hyper: &Hyper,
        helpers: &mut dyn SplitHelpers,
        workers: usize,
        gathering: Option<Gathering>,
    ) -> Result<((f32, u32), Option<String>), String> {
        let n = batch.shape[0];
        let (input, out) = match model.layers[0].as_any().downcast_ref::<Dense>() {
            Some(dense) => (dense.inputs, dense.outputs),
            None => return Err("the first layer is not a dense layer".into()),
        };
        if batch.x.len() < n * input || shards == 0 || shards > MAX_SHARDS || !(2..=MAX_WORKERS).contains(&workers) {
            return Err("the batch, its shards or the workers do not fit a split step".into());
        }
        if !self.job.as_ref().is_some_and(|j| j.workers == workers) {
            self.job = Some(Arc::new(SplitJob::new(workers)));
        }
        let job = self.job.clone().expect("just set");
        optimizer.begin_step();
        let mut plan = Plan { workers, n, input, out, shards, loss, hyper: *hyper, x: batch.x.as_ptr(), ..Plan::default() };
        plan_batch(&mut plan, batch);
        plan_first_layer(&mut plan, model, optimizer);
        // SAFETY: no helper is in a step of this job (each finished its last before the last
        // step returned, or failed), so the lead alone touches its cells now.
        unsafe {
            plan_buffers(&job, &mut plan, model);
            // The helpers' rows: their own, gathered as the lead's were, when the rows are known.
            let gathering = gathering.filter(|g| g.indices.len() == n);
            if let Some(g) = &gathering {
                (plan.indices, plan.indices_len) = (g.indices.as_ptr(), g.indices.len());
                (plan.next, plan.next_len) = (g.next.as_ptr(), g.next.len());
            }
            *job.source.get() = gathering.map(|g| g.source);
            *job.plan.get() = plan;
        }
        for w in 0..workers {
            job.forward[w].store(0, Ordering::Relaxed);
            job.progress[w].store(0, Ordering::Relaxed);
            job.failed[w].store(false, Ordering::Relaxed);
        }
        let mut failure = None;
        helpers.start_split(&job, &mut |w, why| {
            // Its part is done here.
            job.failed[w].store(true, Ordering::Release);
            failure.get_or_insert(why);
        });
        // From here until the helpers are done, the first layer's tensors and the optimiser's
        // state for them are reached only through the plan.
        let lead = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the job's discipline (module notes); this is worker 0.
            unsafe { self.lead_phases(&job, &plan, &mut model.layers[1..], &mut failure) }
        }));
        if lead.is_err() {
            job.failed[0].store(true, Ordering::Release);
            // The helpers stop at their next wait (and say so); wait until none is writing.
            for w in 1..workers {
                while job.progress[w].load(Ordering::Acquire) < 3 && !job.failed[w].load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            }
            return Err("the training step failed on this worker".into());
        }
        // SAFETY: every helper is done (or failed and its part was done here).
        let out = unsafe { finish_parts(&job, &plan, model, optimizer) };
        Ok((out, failure))
    }

    /// # Safety
    /// See [`SplitStep::step`].
    unsafe fn lead_phases(&mut self, job: &SplitJob, plan: &Plan, rest: &mut [Box<dyn Layer>], failure: &mut Option<String>) {
        let mut note = |w: usize| {
            failure.get_or_insert_with(|| format!("training thread {} failed during a step", w + 1));
        };
        let x = std::slice::from_raw_parts(plan.x, plan.n * plan.input);
        let last = plan.workers - 1;
        for i in 0..plan.blocks() {
            forward_block(plan, 0, i, x, false);
            job.forward[0].store(i + 1, Ordering::Release);
        }
        // Z's rows `..blocks` finished by the last worker, doing a failed helper's blocks here.
        let wait_z = |blocks: usize, note: &mut dyn FnMut(usize)| {
            for v in 1..=last {
                while !job.lead_wait(&job.forward, v, blocks) {
                    note(v);
                    let i = job.forward[v].load(Ordering::Acquire);
                    // Worker v − 1 is done with the block (the lead, or a helper waited for or
                    // done here above); v may have left it half done: from b again.
                    forward_block(plan, v, i, x, true);
                    job.forward[v].store(i + 1, Ordering::Release);
                }
            }
        };
        // Last to first: shard 0's activations stay in the layers for the lab to read.
        for s in group(plan.shards, plan.workers, 0).rev() {
            wait_z(plan.blocks_for(&shard_rows(plan.n, plan.shards, s)), &mut note);
            rest_shard(plan, s, rest, &mut self.scratch);
        }
        job.progress[0].store(2, Ordering::Release);
        // All of Z before waiting for any helper's phase 2: a helper may be waiting for rows a
        // failed one left, which are done here.
        wait_z(plan.blocks(), &mut note);
        let mut others = false;
        for v in 1..=last {
            if !job.lead_wait(&job.progress, v, 2) {
                note(v);
                wait_z(plan.blocks(), &mut note);
                for s in group(plan.shards, plan.workers, v) {
                    rest_shard(plan, s, rest, &mut self.scratch);
                }
                job.progress[v].store(2, Ordering::Release);
                others = true;
            }
        }
        if others && !shard_rows(plan.n, plan.shards, 0).is_empty() {
            // Shard 0 again, so that its activations are the ones left in the layers (its
            // results are the same bits).
            rest_shard(plan, 0, rest, &mut self.scratch);
        }
        update_rows(&mut *job.own[0].get(), plan, 0, x);
        job.progress[0].store(3, Ordering::Release);
        for v in 1..=last {
            if !job.lead_wait(&job.progress, v, 3) {
                note(v);
                update_rows(&mut *job.own[0].get(), plan, v, x);
                job.progress[v].store(3, Ordering::Release);
            }
        }
    }
}

/// The rest's tree and update, the first layer's kept rows, the loss's tree.
///
/// # Safety
/// After every worker's phase 3.
unsafe fn finish_parts(job: &SplitJob, plan: &Plan, model: &mut Sequential, optimizer: &mut dyn Optimizer) -> (f32, u32) {
    let results = &*job.results.get();
    let leaves = &mut *job.rest_leaves.get();
    let width = width(plan.shards);
    let mut present = [false; MAX_SHARDS];
    for (p, r) in present.iter_mut().zip(results) {
        *p = r.is_some();
    }
    let root = rest_tree(0, width, &present[..plan.shards], leaves, plan.rest_len);
    let (h, mut at, mut index) = (&plan.hyper, 0, 2);
    for layer in &mut model.layers[1..] {
        layer.visit_params(&mut |_, kind, w, g| {
            let (w, g) = (tensor::slice_mut(w), tensor::slice_mut(g));
            if let Some(r) = root {
                g.copy_from_slice(&leaves[r * plan.rest_len + at..r * plan.rest_len + at + g.len()]);
            }
            if kind == ParamKind::Weight && (h.l2 > 0.0 || h.l1 > 0.0) {
                optim::penalise(w, g, h);
            }
            optimizer.update(index, w, g, h);
            at += g.len();
            index += 1;
        });
    }
    // What a forward of shard 0 through the first layer leaves in it.
    let rows = shard_rows(plan.n, plan.shards, 0);
    if let Some(dense) = model.layers[0].as_any_mut().downcast_mut::<Dense>() {
        let (x, y) = dense.kept_mut(rows.len());
        x.copy_from_slice(std::slice::from_raw_parts(plan.x.add(rows.start * plan.input), rows.len() * plan.input));
        y.copy_from_slice(std::slice::from_raw_parts(plan.z.add(rows.start * plan.out), rows.len() * plan.out));
    }
    loss_tree(0, width, results).unwrap_or((0.0, 0))
}
