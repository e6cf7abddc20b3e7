//! One training step on several threads with the model's first layer split by its output
//! columns (tensor parallelism) and the rest of the network split by micro-shards: how W2 (an
//! MLP whose first layer holds 99 % of the weights) uses two cores.
//!
//! ```text
//! first layer   Z = b + X·W     X (n × in), W (in × out); worker w owns columns C_w of W, b, Z
//! phase 1       Z[:, C_w] = b[C_w] + X·W[:, C_w]                    every row, its columns
//! phase 2       for each of its shards s: Z[s, :] → the rest → loss, ∂Z[s, :], the rest's ∂θ_s
//! phase 3       ∂W[:, C_w] = tree over s of X[s]ᵀ·∂Z[s, C_w];  ∂b[C_w] likewise;  its update
//! the lead      the tree of the rest's ∂θ_s and its update; the tree of the shards' losses
//! ```
//!
//! Every number is computed as the sharded step ([`crate::parallel`]) computes it: a column
//! block of a product has the bits of those columns of the whole product (`gemm_strided`), each
//! shard runs the same layers on the same inputs, each gradient is the same tree of the same
//! leaves, and each element's update is the optimiser's [`Rule`]. So a run has the same bits on
//! 1, 2, 3 … workers, as the share-link guarantee needs. Per step two workers exchange only
//! their rows' columns of Z and ∂Z (~32 KB for W2), where the data-parallel step moves ~800 KB
//! of gradients — which is what two cores that share no cache pay for.
//!
//! The workers meet at two barriers (phases 1 → 2 → 3) by spinning on each other's progress.
//! Everything shared is reached through the job's pointers, each element written by one worker
//! in one phase and read by others only after a barrier; the lead touches none of it again
//! before every helper has said it is done. A helper that fails part-way (a panic) is reported
//! and its remaining phases are computed by the lead: the same bits.
use crate::layer::{Layer, ParamKind};
use crate::loss::Loss;
use crate::ops::dense::Dense;
use crate::ops::gemm::{gemm_strided, gemm_tn_strided};
use crate::optim::{self, Hyper, Optimizer, Rule};
use crate::parallel::{group, layers_gradient, shard_rows, width, Batch, Scratch, SharedRows, MAX_WORKERS};
use crate::sequential::Sequential;
use crate::tensor;
use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Columns are dealt in runs of 16 (one 64-byte cache line of a row), so that no line of W, ∂W
/// or the optimiser's state is written by two workers.
const DEAL: usize = 16;

/// Worker `w`'s columns of a layer with `out` outputs split between `workers`.
pub fn columns(out: usize, workers: usize, w: usize) -> Range<usize> {
    let runs = out.div_ceil(DEAL);
    let at = |w: usize| (runs * w / workers.max(1) * DEAL).min(out);
    at(w)..at(w + 1)
}

/// Why a step of `model` cannot split its first layer over `workers` (None: it can): the first
/// layer must be a dense layer with a run of columns for each worker, the inputs plain rows, and
/// the update one that each element makes alone (no clipping by the global norm).
pub fn unsplittable(model: &Sequential, shape: &[usize], workers: usize, hyper: &Hyper, masked: bool) -> Option<&'static str> {
    let Some(dense) = model.layers.first().and_then(|l| l.as_any().downcast_ref::<Dense>()) else {
        return Some("the first layer is not a dense layer");
    };
    if model.layers.len() < 2 {
        Some("the network is a single layer")
    } else if !(2..=MAX_WORKERS).contains(&workers) || dense.outputs < DEAL * workers {
        Some("the first layer has too few outputs for each worker")
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
    /// a helper checks it), when the helpers gather rows themselves (`ColumnJob::source`).
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
        }
    }
}

/// A worker's own buffers: its columns' gradient leaves, one per shard; a helper's rows of the
/// mini-batch and of the next one, and which rows they are.
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
pub struct ColumnJob {
    workers: usize,
    /// How far each worker is this step: 1, 2, 3 when its phase 1, 2, 3 is done.
    progress: [AtomicUsize; MAX_WORKERS],
    /// A worker stopped part-way (a helper: the lead does the rest of its part; the lead: the
    /// helpers stop waiting).
    failed: [AtomicBool; MAX_WORKERS],
    plan: UnsafeCell<Plan>,
    /// Where the helpers gather their own rows of the batch (None: they read the lead's).
    source: UnsafeCell<Option<SharedRows>>,
    /// The lead's parameters of the layers after the first, end to end (the helpers copy them).
    rest_params: UnsafeCell<Vec<f32>>,
    /// Each worker's columns of Z, every row (n × its columns).
    z: Vec<UnsafeCell<Vec<f32>>>,
    /// ∂Z (n × out): rows written by their shard's worker.
    dz: UnsafeCell<Vec<f32>>,
    /// Each shard's gradient of the layers after the first (`rest_len` each), and its loss and
    /// correct count (None: an empty shard).
    rest_leaves: UnsafeCell<Vec<f32>>,
    results: UnsafeCell<Vec<Option<(f32, u32)>>>,
    own: Vec<UnsafeCell<Own>>,
}

// SAFETY: the cells are shared by the discipline in the module's notes: every element is written
// by one worker in one phase, read by others only after the phase's barrier (Release/Acquire on
// `progress`), and the lead changes the plan and sizes only while no helper is in a step.
unsafe impl Sync for ColumnJob {}
unsafe impl Send for ColumnJob {}

impl ColumnJob {
    fn new(workers: usize) -> ColumnJob {
        ColumnJob {
            workers,
            progress: std::array::from_fn(|_| AtomicUsize::new(0)),
            failed: std::array::from_fn(|_| AtomicBool::new(false)),
            plan: UnsafeCell::new(Plan::default()),
            source: UnsafeCell::new(None),
            rest_params: UnsafeCell::new(Vec::new()),
            z: (0..workers).map(|_| UnsafeCell::new(Vec::new())).collect(),
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

    fn done(&self, w: usize, phase: usize) {
        self.progress[w].store(phase, Ordering::Release);
    }

    /// Waits (spinning) until every worker but `me` has finished `phase`; false when one of
    /// them cannot (for a helper: the lead failed; the lead itself is told by `failed_below`).
    fn wait_all(&self, me: usize, phase: usize) -> bool {
        loop {
            let mut all = true;
            for w in (0..self.workers).filter(|&w| w != me) {
                if self.progress[w].load(Ordering::Acquire) < phase {
                    all = false;
                    if w == 0 && self.failed[0].load(Ordering::Acquire) {
                        return false;
                    }
                }
            }
            if all {
                return true;
            }
            std::hint::spin_loop();
        }
    }

    /// For the lead: spins until every helper has finished `phase` or failed before it; returns
    /// the first failed helper still short of it.
    fn wait_or_failed(&self, phase: usize) -> Option<usize> {
        loop {
            let mut all = true;
            for w in 1..self.workers {
                if self.progress[w].load(Ordering::Acquire) < phase {
                    if self.failed[w].load(Ordering::Acquire) {
                        // Its progress may have moved on just before it failed: read again.
                        if self.progress[w].load(Ordering::Acquire) < phase {
                            return Some(w);
                        }
                        continue;
                    }
                    all = false;
                }
            }
            if all {
                return None;
            }
            std::hint::spin_loop();
        }
    }
}

/// Phase 1 for worker `v`: its columns of Z for every row.
///
/// # Safety
/// The plan's pointers are live and sized as it says; only worker `v` (or the lead after `v`
/// failed) runs this for `v`, and no one writes W or b during phase 1.
unsafe fn forward_columns(job: &ColumnJob, plan: &Plan, v: usize, x: &[f32]) {
    let cols = columns(plan.out, plan.workers, v);
    let cw = cols.len();
    let z = &mut *job.z[v].get();
    z.resize(plan.n * cw, 0.0);
    let b = std::slice::from_raw_parts(plan.b, plan.out);
    let w = std::slice::from_raw_parts(plan.w, plan.input * plan.out);
    // y = b, then y += x·W over k in order (the dense layer's forward).
    z.chunks_exact_mut(cw).for_each(|row| row.copy_from_slice(&b[cols.clone()]));
    gemm_strided(plan.n, plan.input, cw, x, &w[cols.start..], plan.out, z, cw, true);
}

/// Phase 2 for shard `s`: the layers after the first from its rows of Z; writes its rows of ∂Z,
/// its gradient of those layers and its loss.
///
/// # Safety
/// As [`forward_columns`]; after every worker's phase 1, and shard `s` is computed by one worker.
unsafe fn rest_shard(job: &ColumnJob, plan: &Plan, s: usize, layers: &mut [Box<dyn Layer>], scratch: &mut Scratch) {
    let rows = shard_rows(plan.n, plan.shards, s);
    let results = &mut *job.results.get();
    let out = plan.out;
    if rows.is_empty() {
        results[s] = None;
        return;
    }
    let input = scratch.input(&[rows.len(), out]);
    for u in 0..plan.workers {
        let cols = columns(out, plan.workers, u);
        let z = &*job.z[u].get();
        let cw = cols.len();
        for (r, row) in rows.clone().enumerate() {
            input[r * out + cols.start..r * out + cols.end].copy_from_slice(&z[row * cw..(row + 1) * cw]);
        }
    }
    let classes = (!plan.classes.is_null()).then(|| std::slice::from_raw_parts(plan.classes, plan.classes_len));
    let values: &[f32] = if plan.values.is_null() { &[] } else { std::slice::from_raw_parts(plan.values, plan.values_len) };
    let shape = [plan.n, out];
    let batch = Batch { x: &[], shape: &shape, classes, values, mask: None };
    let result = layers_gradient(layers, plan.loss, &batch, rows.clone(), scratch);
    results[s] = Some(result);
    let dz = &mut *job.dz.get();
    dz[rows.start * out..rows.end * out].copy_from_slice(tensor::slice(layers[0].input_grad()));
    let leaves = &mut *job.rest_leaves.get();
    let mut at = s * plan.rest_len;
    for layer in layers.iter_mut() {
        layer.visit_params(&mut |_, _, _, g| {
            let g = tensor::slice(g);
            leaves[at..at + g.len()].copy_from_slice(g);
            at += g.len();
        });
    }
}

/// Phase 3 for worker `v`: its columns' weight and bias gradients (each shard's, then their
/// tree), written into the lead's gradients, penalised and applied with the optimiser's rule.
///
/// # Safety
/// As [`forward_columns`]; after every worker's phase 2. Writes only `v`'s columns.
unsafe fn update_columns(job: &ColumnJob, plan: &Plan, v: usize, x: &[f32]) {
    let cols = columns(plan.out, plan.workers, v);
    let (cw, out, input) = (cols.len(), plan.out, plan.input);
    let own = &mut *job.own[v].get();
    own.w.resize_with(plan.shards, Vec::new);
    own.b.resize_with(plan.shards, Vec::new);
    let dz = &*job.dz.get();
    let mut present = [false; crate::parallel::MAX_SHARDS];
    for s in 0..plan.shards {
        let rows = shard_rows(plan.n, plan.shards, s);
        present[s] = !rows.is_empty();
        if rows.is_empty() {
            continue;
        }
        // ∂W_s = X_sᵀ·∂Z_s and ∂b_s = Σ rows of ∂Z_s, from +0 (the dense layer's fresh backward).
        own.w[s].resize(input * cw, 0.0);
        gemm_tn_strided(input, rows.len(), cw, &x[rows.start * input..rows.end * input], &dz[rows.start * out + cols.start..], out, &mut own.w[s], cw, false);
        let db = &mut own.b[s];
        db.clear();
        db.resize(cw, 0.0);
        for i in rows {
            for (d, &g) in db.iter_mut().zip(&dz[i * out + cols.start..i * out + cols.end]) {
                *d += g;
            }
        }
    }
    let width = width(plan.shards);
    let (Some(wi), Some(bi)) = (tree(0, width, &present[..plan.shards], &mut own.w), tree(0, width, &present[..plan.shards], &mut own.b)) else { return };
    let (h, rule) = (&plan.hyper, plan.rule);
    let penalty = h.l2 > 0.0 || h.l1 > 0.0;
    let run = |p: *mut f32, at: usize| if p.is_null() { &mut [][..] } else { std::slice::from_raw_parts_mut(p.add(at), cw) };
    for r in 0..input {
        let at = r * out + cols.start;
        let g = std::slice::from_raw_parts_mut(plan.dw.add(at), cw);
        g.copy_from_slice(&own.w[wi][r * cw..(r + 1) * cw]);
        let w = std::slice::from_raw_parts_mut(plan.w.add(at), cw);
        if penalty {
            optim::penalise(w, g, h);
        }
        rule.apply(w, g, run(plan.w_state[0], at), run(plan.w_state[1], at), h);
    }
    let g = std::slice::from_raw_parts_mut(plan.db.add(cols.start), cw);
    g.copy_from_slice(&own.b[bi]);
    let b = std::slice::from_raw_parts_mut(plan.b.add(cols.start), cw);
    rule.apply(b, g, run(plan.b_state[0], cols.start), run(plan.b_state[1], cols.start), h);
}

/// The tree over shards `[lo, hi)` of the leaves in `bufs` (shard `s`'s in `bufs[s]`, where
/// `present`), summed in place: the node's left half plus its right half, an absent half passed
/// through — the sharded step's tree, element by element. Returns the buffer holding the node.
fn tree(lo: usize, hi: usize, present: &[bool], bufs: &mut [Vec<f32>]) -> Option<usize> {
    if hi - lo == 1 {
        return present.get(lo).copied().unwrap_or(false).then_some(lo);
    }
    let mid = (lo + hi) / 2;
    let (left, right) = (tree(lo, mid, present, bufs), tree(mid, hi, present, bufs));
    match (left, right) {
        (Some(a), Some(b)) => {
            let (l, r) = bufs.split_at_mut(b);
            crate::lanes::add_assign(&mut l[a], &r[0]);
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

/// A helper's part of a step: worker `me` (≥ 1) on its replica of the model, whose layers after
/// the first take the lead's weights here. A panic is caught and reported to the lead, which
/// then computes what is left of this part.
pub fn helper_part(job: &ColumnJob, me: usize, replica: &mut Sequential, scratch: &mut Scratch) {
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
unsafe fn helper_phases(job: &ColumnJob, me: usize, rest: &mut [Box<dyn Layer>], scratch: &mut Scratch) -> bool {
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
    forward_columns(job, &plan, me, x);
    job.done(me, 1);
    if !job.wait_all(me, 1) {
        return false;
    }
    for s in group(plan.shards, plan.workers, me) {
        rest_shard(job, &plan, s, rest, scratch);
    }
    job.done(me, 2);
    if !job.wait_all(me, 2) {
        return false;
    }
    update_columns(job, &plan, me, x);
    job.done(me, 3);
    prefetch(job, &plan, me);
    true
}

/// Helper `me`'s rows of the mini-batch: gathered by itself from the shared images where the
/// lead gave them (the lead's 200 KB of rows read across the cores cost as much as they save),
/// from the next batch it gathered at the end of the last step when that is this one;
/// otherwise the lead's rows.
///
/// # Safety
/// See [`helper_part`].
unsafe fn own_rows<'a>(job: &'a ColumnJob, plan: &Plan, me: usize) -> &'a [f32] {
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

/// The next mini-batch's rows, when the lead said which (while the lead finishes the step).
///
/// # Safety
/// See [`helper_part`]; after this helper's phase 3 (its buffers are its own again).
unsafe fn prefetch(job: &ColumnJob, plan: &Plan, me: usize) {
    let Some(source) = &*job.source.get() else { return };
    if plan.next.is_null() || plan.next_len == 0 {
        return;
    }
    let next = std::slice::from_raw_parts(plan.next, plan.next_len);
    let own = &mut *job.own[me].get();
    own.next_x.resize(next.len() * plan.input, 0.0);
    source.pixels.fill(next, source.scaling, &mut own.next_x);
    own.next_for.clear();
    own.next_for.extend_from_slice(next);
}

/// Starts helpers on a column job: each of the `job.workers() − 1` helpers runs
/// [`helper_part`] with its worker number (1, 2, …); `lost(w, why)` for each one that could not
/// be started (its part is then computed by the lead).
pub trait ColumnHelpers {
    fn start_columns(&mut self, job: &Arc<ColumnJob>, lost: &mut dyn FnMut(usize, String));
}

/// Where the helpers gather their own rows of a step's batch: the rows of `source` that the
/// batch holds (`indices`, as the lead gathered them) and those the next batch will hold.
pub struct Gathering<'a> {
    pub source: SharedRows,
    pub indices: &'a [usize],
    pub next: &'a [usize],
}

/// The lead's side of column steps, kept between steps.
#[derive(Default)]
pub struct Columns {
    job: Option<Arc<ColumnJob>>,
    scratch: Scratch,
}

/// A copy (a trainer's checkpoint) starts with buffers of its own.
impl Clone for Columns {
    fn clone(&self) -> Self {
        Columns::default()
    }
}

impl Columns {
    /// One step of `model` on `batch` split in `shards`, its first layer split over `workers`
    /// (the helpers' count + 1; see [`unsplittable`], which the caller checked): the gradient
    /// left in the model's gradients and the update made, as `optim::apply` after the sharded
    /// step's tree would make it. Returns the loss, the correct count (class targets) and, when
    /// a helper failed part-way, why (its part was then computed here: the same bits).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        model: &mut Sequential,
        optimizer: &mut dyn Optimizer,
        loss: Loss,
        batch: &Batch,
        shards: usize,
        hyper: &Hyper,
        helpers: &mut dyn ColumnHelpers,
        workers: usize,
        gathering: Option<Gathering>,
    ) -> Result<((f32, u32), Option<String>), String> {
        if !self.job.as_ref().is_some_and(|j| j.workers == workers) {
            self.job = Some(Arc::new(ColumnJob::new(workers)));
        }
        let job = self.job.clone().expect("just set");
        let n = batch.shape[0];
        optimizer.begin_step();
        let mut plan = Plan { workers, n, shards, loss, hyper: *hyper, ..Plan::default() };
        plan.x = batch.x.as_ptr();
        (plan.input, plan.out) = {
            let dense = model.layers[0].as_any().downcast_ref::<Dense>().ok_or("the first layer is not a dense layer")?;
            (dense.inputs, dense.outputs)
        };
        if batch.x.len() < n * plan.input {
            return Err("the batch is smaller than its shape".into());
        }
        if let Some(c) = batch.classes {
            (plan.classes, plan.classes_len) = (c.as_ptr(), c.len());
        }
        (plan.values, plan.values_len) = (batch.values.as_ptr(), batch.values.len());
        {
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
        // SAFETY: no helper is in a step of this job (each finished its last before the last
        // step returned, or failed), so the lead alone touches its cells now.
        unsafe {
            let params = &mut *job.rest_params.get();
            params.clear();
            for layer in &mut model.layers[1..] {
                layer.visit_params(&mut |_, _, w, _| params.extend_from_slice(tensor::slice(w)));
            }
            plan.rest_len = params.len();
            // The helpers' rows: their own, gathered as the lead's were, when the rows are known.
            let gathering = gathering.filter(|g| g.indices.len() == n);
            if let Some(g) = &gathering {
                (plan.indices, plan.indices_len) = (g.indices.as_ptr(), g.indices.len());
                (plan.next, plan.next_len) = (g.next.as_ptr(), g.next.len());
            }
            *job.source.get() = gathering.map(|g| g.source);
            let dz = &mut *job.dz.get();
            dz.resize(n * plan.out, 0.0);
            (*job.rest_leaves.get()).resize(shards * plan.rest_len, 0.0);
            let results = &mut *job.results.get();
            results.clear();
            results.resize(shards, None);
            *job.plan.get() = plan;
        }
        for w in 0..workers {
            job.progress[w].store(0, Ordering::Relaxed);
            job.failed[w].store(false, Ordering::Relaxed);
        }
        let mut failure = None;
        helpers.start_columns(&job, &mut |w, why| {
            // Its part is computed here.
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
            // The helpers stop at their next barrier (and say so); wait until none is writing.
            for w in 1..workers {
                while job.progress[w].load(Ordering::Acquire) < 3 && !job.failed[w].load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            }
            return Err("the training step failed on this worker".into());
        }
        // SAFETY: every helper is done (or failed and its part was done here).
        let out = unsafe { self.finish(&job, &plan, model, optimizer) };
        Ok((out, failure))
    }

    /// # Safety
    /// See [`Columns::step`].
    unsafe fn lead_phases(&mut self, job: &ColumnJob, plan: &Plan, rest: &mut [Box<dyn Layer>], failure: &mut Option<String>) {
        let mut note = |w: usize| {
            failure.get_or_insert_with(|| format!("training thread {} failed during a step", w + 1));
        };
        let x = std::slice::from_raw_parts(plan.x, plan.n * plan.input);
        forward_columns(job, plan, 0, x);
        job.done(0, 1);
        while let Some(w) = job.wait_or_failed(1) {
            note(w);
            forward_columns(job, plan, w, x);
            job.done(w, 1);
        }
        // Last to first: shard 0's activations stay in the layers for the lab to read.
        for s in group(plan.shards, plan.workers, 0).rev() {
            rest_shard(job, plan, s, rest, &mut self.scratch);
        }
        job.done(0, 2);
        let mut others = false;
        while let Some(w) = job.wait_or_failed(2) {
            note(w);
            for s in group(plan.shards, plan.workers, w) {
                rest_shard(job, plan, s, rest, &mut self.scratch);
            }
            job.done(w, 2);
            others = true;
        }
        if others && plan.shards > 0 {
            // Shard 0 again, so that its activations are the ones left in the layers (its
            // results are the same bits).
            rest_shard(job, plan, 0, rest, &mut self.scratch);
        }
        update_columns(job, plan, 0, x);
        job.done(0, 3);
        while let Some(w) = job.wait_or_failed(3) {
            note(w);
            update_columns(job, plan, w, x);
            job.done(w, 3);
        }
    }

    /// The rest's tree and update, the first layer's kept rows, the loss's tree.
    ///
    /// # Safety
    /// After every worker's phase 3.
    unsafe fn finish(&mut self, job: &ColumnJob, plan: &Plan, model: &mut Sequential, optimizer: &mut dyn Optimizer) -> (f32, u32) {
        let results = &*job.results.get();
        let leaves = &mut *job.rest_leaves.get();
        let width = width(plan.shards);
        let mut present = [false; crate::parallel::MAX_SHARDS];
        for (p, r) in present.iter_mut().zip(results) {
            *p = r.is_some();
        }
        let root = rest_tree(0, width, &present[..plan.shards], leaves, plan.rest_len);
        let (h, mut at) = (&plan.hyper, 0);
        let mut index = 2;
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
            for u in 0..plan.workers {
                let cols = columns(plan.out, plan.workers, u);
                let z = &*job.z[u].get();
                let cw = cols.len();
                for (r, row) in rows.clone().enumerate() {
                    y[r * plan.out + cols.start..r * plan.out + cols.end].copy_from_slice(&z[row * cw..(row + 1) * cw]);
                }
            }
        }
        loss_tree(0, width, results).unwrap_or((0.0, 0))
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
