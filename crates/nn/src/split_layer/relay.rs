//! The split step with helpers that share no memory with the lead (the browser's workers): each
//! helper keeps its rows of W, of ∂W and of the optimiser's state in its own memory from step to
//! step, and only rows of Z and ∂Z travel (~100 KB a step for W2, where the data-parallel step
//! moves ~800 KB of gradients).
//!
//! ```text
//! lead (worker 0)                         helper v (1, 2, …)
//! block i: Z_i = b + X_i,K0·W_K0  ──────▶ Z_i += X_i,Kv·W_Kv  ──▶ (the next worker, or the lead)
//! shards 1, 2, …, 0: the rest, ∂Z        (waits)
//! ∂Z  ──────────────────────────────────▶ ∂W_Kv = tree of X_s,Kvᵀ·∂Z_s; its update; a mirror
//! ∂W_K0, ∂b, their update; the rest's      of its rows of W and state (and ∂W when asked)
//! ```
//!
//! The numbers are the split step's ([`super`]), so the sharded step's: the same bits for any
//! number of workers. The lead's model holds the helpers' rows only when gathered
//! ([`SplitRelay::gather`], from the mirrors): the trainer gathers before anything reads it.
//! A helper that fails is reported; the lead then restores every helper's rows as they were at
//! the step's start (their previous mirrors: each step writes the other copy) and does their
//! part itself, with the same bits.
use super::{finish_parts, forward_block, rest_shard, rows_of, update_rows, Own, Plan, SplitJob, SplitStep, FORWARD_BLOCK};
use crate::layer::Layer;
use crate::loss::Loss;
use crate::ops::dense::Dense;
use crate::ops::gemm::gemm_strided;
use crate::optim::{Hyper, Optimizer, Rule};
use crate::parallel::{shard_rows, Batch, MAX_SHARDS};
use crate::sequential::Sequential;
use std::ops::Range;
use std::sync::Arc;

/// What a relayed step tells its helpers.
pub struct RelayStep<'a> {
    /// Workers, the lead included (helper v owns [`rows_of`]`(input, workers, v)`).
    pub workers: usize,
    pub n: usize,
    pub input: usize,
    pub out: usize,
    pub shards: usize,
    pub hyper: Hyper,
    pub rule: Rule,
    /// The first layer's W and its optimiser state (as long as W, or empty), when the helpers
    /// must take their rows from them: they hold none, or others than the model's.
    pub init: Option<(&'a [f32], [&'a [f32]; 2])>,
    /// Whether the helpers mirror their rows of ∂W too (the model is read after the step).
    pub grads: bool,
}

/// The lead's link to helpers that share no memory with it. Every wait has a deadline: a
/// helper that misses it is reported ([`SplitRelay::failure`]) and left out from then on.
pub trait SplitRelay {
    /// Whether helpers are ready for a step of this model on `n` rows over `workers`, its first
    /// layer `width` (inputs, outputs) wide (None: not
    /// yet, nothing started; the caller takes its step otherwise), and whether they must be sent
    /// their rows whatever the caller knows (they hold none: new workers, a new buffer).
    fn ready(&mut self, model: &mut Sequential, n: usize, width: (usize, usize), workers: usize) -> Option<bool>;
    /// Starts the helpers on a step.
    fn begin(&mut self, step: &RelayStep);
    /// Block `i` (rows `rows`): the batch's rows (`input` wide) and the lead's partial sums of Z.
    fn put_block(&mut self, i: usize, rows: Range<usize>, x: &[f32], z: &[f32]);
    /// Rows `rows` of Z with every worker's terms, into `z`; false: a helper failed.
    fn get_rows(&mut self, rows: Range<usize>, z: &mut [f32]) -> bool;
    /// ∂Z, every row.
    fn put_dz(&mut self, dz: &[f32]);
    /// Waits until every helper has made its update and mirrored its rows; false: one failed.
    fn wait_done(&mut self) -> bool;
    /// Every helper's rows of W and of the optimiser's state as they were when this step began,
    /// into `w` and `state` (after a failure).
    fn restore(&mut self, w: &mut [f32], state: [&mut [f32]; 2]);
    /// After a finished step: every helper's rows of W, of the state, and of ∂W if the step
    /// asked for them.
    fn gather(&mut self, w: &mut [f32], dw: &mut [f32], state: [&mut [f32]; 2]);
    /// Why a helper failed, once.
    fn failure(&mut self) -> Option<String>;
}

/// A relayed helper's rows: W, ∂W and the optimiser's state, full size (only its rows used), and
/// its buffers.
#[derive(Default)]
pub struct Part {
    w: Vec<f32>,
    dw: Vec<f32>,
    state: [Vec<f32>; 2],
    own: Own,
}

impl Part {
    /// W, ∂W and the two state tensors, each `input × out` (row r of W at `r * out`).
    pub fn tensors(&mut self, input: usize, out: usize) -> (&mut [f32], &mut [f32], [&mut [f32]; 2]) {
        let len = input * out;
        let [s0, s1] = &mut self.state;
        for t in [&mut self.w, &mut self.dw, &mut *s0, &mut *s1] {
            t.resize(len, 0.0);
        }
        (&mut self.w, &mut self.dw, [s0, s1])
    }

    /// Worker `v`'s terms of rows `rows` of Z: `z += X[rows, K_v]·W[K_v, :]` (`x` holds the
    /// batch's rows, `input` wide; only columns K_v are read).
    pub fn forward(&self, workers: usize, v: usize, input: usize, out: usize, rows: Range<usize>, x: &[f32], z: &mut [f32]) {
        let k = rows_of(input, workers, v);
        assert!(self.w.len() >= input * out && x.len() >= rows.end * input && z.len() >= rows.len() * out);
        gemm_strided(rows.len(), k.len(), out, &x[rows.start * input + k.start..], input, &self.w[k.start * out..], out, z, out, true);
    }

    /// Worker `v`'s rows of ∂W (the tree of the shards' leaves) and their update.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        (workers, v): (usize, usize),
        (n, input, out, shards): (usize, usize, usize, usize),
        x: &[f32],
        dz: &[f32],
        rule: Rule,
        hyper: &Hyper,
    ) {
        assert!(v > 0 && v < workers && shards <= MAX_SHARDS && x.len() >= n * input && dz.len() >= n * out && self.w.len() >= input * out);
        let full = |s: &mut Vec<f32>| if s.len() == input * out && rule.states() > 0 { s.as_mut_ptr() } else { std::ptr::null_mut() };
        let w_state = [full(&mut self.state[0]), if rule.states() > 1 { full(&mut self.state[1]) } else { std::ptr::null_mut() }];
        let plan = Plan {
            workers,
            n,
            input,
            out,
            shards,
            x: x.as_ptr(),
            w: self.w.as_mut_ptr(),
            dw: self.dw.as_mut_ptr(),
            rule,
            w_state,
            hyper: *hyper,
            dz: dz.as_ptr() as *mut f32,
            ..Plan::default()
        };
        // SAFETY: the plan's pointers are this part's own buffers and the caller's slices, sized
        // as asserted; worker v ≠ 0 touches neither b nor the job's buffers.
        unsafe { update_rows(&mut self.own, &plan, v, x) }
    }
}

impl SplitStep {
    /// One step of `model` on `batch` split in `shards`, its first layer split over `workers`
    /// with relayed helpers (see the module notes; [`super::unsplittable`] checked and
    /// [`SplitRelay::ready`] asked by the caller). `init`: the helpers must take their rows from
    /// the model (which must then hold them all). Returns the loss, the correct count and whether
    /// a helper failed (its part was done here: the same bits; the model then holds every row).
    /// Err: the step does not fit a split step.
    #[allow(clippy::too_many_arguments)]
    pub fn relay(
        &mut self,
        model: &mut Sequential,
        optimizer: &mut dyn Optimizer,
        (loss, batch, shards, hyper): (Loss, &Batch, usize, &Hyper),
        relay: &mut dyn SplitRelay,
        workers: usize,
        init: bool,
        grads: bool,
    ) -> Result<((f32, u32), bool), String> {
        let n = batch.shape[0];
        let (input, out) = match model.layers[0].as_any().downcast_ref::<Dense>() {
            Some(dense) => (dense.inputs, dense.outputs),
            None => return Err("the first layer is not a dense layer".into()),
        };
        if batch.x.len() < n * input || shards == 0 || shards > MAX_SHARDS || !(2..=super::MAX_SPLIT_WORKERS).contains(&workers) {
            return Err("the batch, its shards or the workers do not fit a split step".into());
        }
        if !self.job.as_ref().is_some_and(|j| j.workers == workers) {
            self.job = Some(Arc::new(SplitJob::new(workers)));
        }
        let job = self.job.clone().expect("just set");
        optimizer.begin_step();
        let mut plan = Plan { workers, n, input, out, shards, loss, hyper: *hyper, x: batch.x.as_ptr(), ..Plan::default() };
        super::plan_batch(&mut plan, batch);
        super::plan_first_layer(&mut plan, model, optimizer);
        // SAFETY: this worker alone reaches the job's cells (relayed helpers have none of them).
        unsafe { super::plan_buffers(&job, &mut plan, model) };
        let len = input * out;
        // SAFETY: the plan's W and state are the model's and the optimiser's, `len` long (or null).
        let view = |p: *mut f32| if p.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(p, len) } };
        let step = RelayStep {
            workers,
            n,
            input,
            out,
            shards,
            hyper: *hyper,
            rule: plan.rule,
            init: init.then(|| (view(plan.w), [view(plan.w_state[0]), view(plan.w_state[1])])),
            grads,
        };
        relay.begin(&step);
        // SAFETY: as above; from here the first layer's tensors are reached through the plan.
        let failed = unsafe { self.relay_phases(&job, &plan, &mut model.layers[1..], relay) };
        // SAFETY: every worker's part is done (here, for a failed helper).
        let out = unsafe { finish_parts(&job, &plan, model, optimizer) };
        Ok((out, failed))
    }

    /// Phases 1–3 on the lead; returns whether a helper failed (its part was then done here).
    ///
    /// # Safety
    /// The plan's pointers are live and sized as it says, and reached by this worker alone.
    unsafe fn relay_phases(&mut self, job: &SplitJob, plan: &Plan, rest: &mut [Box<dyn Layer>], relay: &mut dyn SplitRelay) -> bool {
        let (n, input, out, last) = (plan.n, plan.input, plan.out, plan.workers - 1);
        let x = std::slice::from_raw_parts(plan.x, n * input);
        for i in 0..plan.blocks() {
            forward_block(plan, 0, i, x, false);
            let rows = i * FORWARD_BLOCK..((i + 1) * FORWARD_BLOCK).min(n);
            let z = std::slice::from_raw_parts(plan.z.add(rows.start * out), rows.len() * out);
            relay.put_block(i, rows.clone(), &x[rows.start * input..rows.end * input], z);
        }
        let mut failed = false;
        // Every helper's rows as at the step's start, in the model (once, after a failure).
        let restore = |relay: &mut dyn SplitRelay| {
            let len = input * out;
            let state = |p: *mut f32| if p.is_null() { &mut [][..] } else { std::slice::from_raw_parts_mut(p, len) };
            relay.restore(std::slice::from_raw_parts_mut(plan.w, len), [state(plan.w_state[0]), state(plan.w_state[1])]);
        };
        // Rows of Z read back so far (from 0).
        let mut have = 0;
        // Shard 0 last: its activations stay in the layers for the lab to read.
        for s in (1..plan.shards).chain(0..1) {
            let rows = shard_rows(n, plan.shards, s);
            if rows.end > have {
                let z = std::slice::from_raw_parts_mut(plan.z.add(have * out), (rows.end - have) * out);
                if !failed && !relay.get_rows(have..rows.end, z) {
                    failed = true;
                    restore(relay);
                }
                if failed {
                    // Z's remaining blocks from b, through every worker's rows.
                    for i in have / FORWARD_BLOCK..plan.blocks_for(&rows) {
                        forward_block(plan, last, i, x, true);
                    }
                }
                have = rows.end;
            }
            rest_shard(plan, s, rest, &mut self.scratch);
        }
        let own = &mut *job.own[0].get();
        if !failed {
            relay.put_dz(std::slice::from_raw_parts(plan.dz, n * out));
        }
        update_rows(own, plan, 0, x);
        if !failed && !relay.wait_done() {
            failed = true;
            restore(relay);
        }
        if failed {
            for v in 1..plan.workers {
                update_rows(own, plan, v, x);
            }
        }
        failed
    }
}

/// Helper `v`'s rows of the first layer: what [`Part`] holds.
pub fn part_rows(input: usize, workers: usize, v: usize) -> Range<usize> {
    rows_of(input, workers, v)
}
