//! Data-parallel training with the same bits for any number of workers.
//!
//! ```text
//! a mini-batch of n rows → M canonical micro-shards, shard s = rows [s·n/M, (s+1)·n/M)
//! g_s = ∇ of (n_s/n)·L_s        (L_s: the shard's mean loss; forward + backward on its rows alone)
//! g   = the sum over a fixed binary tree of the shards (P = M rounded up to a power of two):
//!       sum[lo, hi) = sum[lo, mid) + sum[mid, hi)      mid = (lo + hi)/2, a leaf is g_lo
//!       (an empty or missing shard is absent: a + absent = a)
//!       e.g. M = 8: ((g₀+g₁) + (g₂+g₃)) + ((g₄+g₅) + (g₆+g₇))
//! loss = the same tree over ℓ_s = (n_s/n)·L_s
//! right = the same tree over the shards' correct predictions (class targets: argmax = class)
//! ```
//! M belongs to the run (its lab fixes it), not to the machine: W workers split the shards into
//! W contiguous groups, worker 0 (this one) taking the first. A worker sums its group's aligned
//! subtrees itself and sends those sums (with 2 workers and M = 8: one vector each); this worker
//! finishes the tree. Every node is the same computation wherever it runs, so 1, 2 or 3 workers
//! give bit-identical steps. With M = 1 the step is the plain one (share 1: exact).
//!
//! Native threads replicate the update (an all-reduce, [`Helpers::replicates`]): every worker
//! finishes the same tree from everyone's sums and applies the same update to its replica with
//! its copy of the optimiser's state, so the weights leave this worker only when they changed
//! other than by a step. Browser workers get the weights with each job instead.
//!
//! Helpers are only ever a shortcut: a helper that is not ready, dies or answers late has its
//! shards computed here instead, which gives the same bits — so a lost worker costs time, never
//! the run.

use crate::layer::Layer;
use crate::loss::{Loss, Target};
use crate::ops::{BatchNorm, Conv2d, Dropout, Rnn};
use crate::optim::{self, Hyper, Optimizer};
use crate::sequential::Sequential;
use crate::tensor::{self, Mode, Tensor};
use std::ops::Range;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// How a trainer splits its mini-batches: a part of what the run computes, never of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharding {
    /// `M` micro-shards per batch (1: one pass).
    Count(usize),
    /// As many micro-shards as batches of this many rows make (at most [`MAX_SHARDS`]).
    Rows(usize),
}

impl Sharding {
    /// Micro-shards for a mini-batch of `n` rows.
    pub fn shards(self, n: usize) -> usize {
        match self {
            Sharding::Count(m) => m.max(1),
            Sharding::Rows(rows) => n.div_ceil(rows.max(1)).clamp(1, MAX_SHARDS),
        }
    }
}

/// The labs that split (the CNN lab, the Batch Norm lab's plain net) use shards of 16 rows: a
/// batch of 64 makes 4 (even over 1, 2 or 4 workers), 256 make 16. Measured natively on W2
/// (784-128-10, batch 64), one worker: 4 shards 68,200 examples/s, 8 shards 63,700, 16 shards
/// 49,600 (smaller products); LeNet-5 runs 4 shards as fast as one pass.
pub const LAB_SHARDING: Sharding = Sharding::Rows(16);

/// The most micro-shards a batch is split into.
pub const MAX_SHARDS: usize = 16;

/// The most workers a run splits over (the link's `workers=16`).
pub const MAX_WORKERS: usize = 16;

/// Rows of shard `s` of `shards` in a batch of `n`.
pub fn shard_rows(n: usize, shards: usize, s: usize) -> Range<usize> {
    s * n / shards..(s + 1) * n / shards
}

/// Shards of worker `g` of `workers` (contiguous; worker 0 takes the first).
pub fn group(shards: usize, workers: usize, g: usize) -> Range<usize> {
    g * shards / workers..(g + 1) * shards / workers
}

/// Why `model` must train as one piece, if it must: batch norm's statistics and dropout's masks
/// belong to the whole batch. (A recurrent net splits: each sequence is its own computation, and
/// a loss over padded sequences gives each shard its share of the real steps.)
pub fn unshardable(model: &Sequential) -> Option<&'static str> {
    if model.layers_of::<BatchNorm>().next().is_some() {
        Some("batch norm needs the statistics of the whole mini-batch")
    } else if model.layers_of::<Dropout>().next().is_some() {
        Some("dropout draws its masks for the whole mini-batch from one stream")
    } else {
        None
    }
}

/// What identifies a model's computation: layer names, parameter sizes and the implementations
/// chosen (a replica built for another one would compute other bits).
pub fn fingerprint(model: &mut Sequential) -> u64 {
    // FNV-1a: tiny, and the same on every target (a helper in another worker compares it).
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| bytes.iter().for_each(|&b| h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    for layer in &model.layers {
        eat(layer.name().as_bytes());
        if let Some(c) = layer.as_any().downcast_ref::<Conv2d>() {
            eat(&[c.implementation as u8, 0xff]);
        }
        // What a recurrent layer computes beyond its sizes (the RNN lab changes some mid-run).
        if let Some(r) = layer.as_any().downcast_ref::<Rnn>() {
            eat(&[r.implementation as u8, r.all_steps as u8, r.recurrent as u8, 0xfe]);
            eat(&(r.truncate as u64).to_le_bytes());
        }
    }
    model.visit_params(&mut |name, _, w, _| {
        eat(name.as_bytes());
        eat(&(w.len() as u64).to_le_bytes());
    });
    h
}

/// The targets of a mini-batch, whole.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    Classes(Vec<usize>),
    /// Row-major `(n, cols)` values.
    Values {
        values: Vec<f32>,
        cols: usize,
    },
    /// Padded sequences: `cols` classes per row (one per time step, batch-major) and whether each
    /// is real; the loss is the mean over the real ones of the whole batch.
    Masked {
        classes: Vec<usize>,
        mask: Vec<bool>,
    },
}

/// 8-bit images that helper threads read their own rows from ([`ShardJob::rows`]), shared with
/// the caller: the caller then gathers only its own rows of each mini-batch, and writes none
/// for the helpers (W2's lead had gathered 64 images and copied 32 of them for the helper, on
/// its serial path).
pub trait PixelRows: Send + Sync {
    /// Fills `out` with the images `indices`, one after another, each pixel `p` standardised as
    /// [`crate::math::PixelTable`] does with `scaling` (the same bits as the caller's gather).
    fn fill(&self, indices: &[usize], scaling: (f32, f32), out: &mut [f32]);
}

/// A [`PixelRows`] and the scaling its mini-batches are gathered with.
#[derive(Clone)]
pub struct SharedRows {
    pub pixels: Arc<dyn PixelRows>,
    pub scaling: (f32, f32),
}

impl std::fmt::Debug for SharedRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedRows {{ scaling: {:?} }}", self.scaling)
    }
}

/// One step's work for the helpers: the weights, the mini-batch and how it is split.
#[derive(Clone, Debug)]
pub struct ShardJob {
    pub params: Vec<f32>,
    /// The mini-batch, row-major, and its shape `(n, …)`.
    pub x: Vec<f32>,
    pub shape: Vec<usize>,
    pub targets: Targets,
    pub loss: Loss,
    pub shards: usize,
    pub workers: usize,
    /// The helpers write their answers with streamed stores (see [`Copies`]).
    pub stream: bool,
    /// The helpers make the step's update on their replicas too ([`Helpers::replicates`]): each
    /// waits for the step's [`Helpers::exchange`] after answering.
    pub replicated: bool,
    /// With `replicated`: the optimiser's state the replicas take with `params` (None: they hold
    /// the model's weights and state already, and `params` is empty).
    pub optimizer: Option<OptimizerState>,
    /// Where the helpers gather their rows of the mini-batch themselves (`x` is then empty):
    /// rows `indices` of it ([`Helpers::gathers_rows`]).
    pub rows: Option<SharedRows>,
    /// The mini-batch's rows in `rows`, in order (one per row of `shape[0]`).
    pub indices: Vec<usize>,
}

/// An optimiser's state for replicating helpers (see [`ShardJob::optimizer`]).
#[derive(Clone)]
pub struct OptimizerState(pub Box<dyn Optimizer>);

impl std::fmt::Debug for OptimizerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OptimizerState")
    }
}

/// One worker's node sums of a step, shared read-only by every worker of a replicated step.
pub type SharedSums = Arc<Vec<NodeSum>>;

/// A replicated step's end: every worker's node sums (the caller's first) and the update every
/// replica makes with them. None: the step is dropped, no replica is updated.
pub type Exchange = Option<(Vec<SharedSums>, Hyper)>;

/// The sum over tree node `[lo, hi)` of the shards: their share of the loss and their gradient
/// (every parameter, flattened in model order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSum {
    pub lo: usize,
    pub hi: usize,
    pub loss: f32,
    /// Rows whose output's argmax is their class (class targets; 0 for value targets): the
    /// mini-batch's training accuracy, which no single shard's output can give.
    pub right: u32,
    pub grads: Vec<f32>,
}

impl NodeSum {
    /// `self + right` (the tree's one way of adding), returning `right`'s buffer for reuse.
    fn add(&mut self, right: NodeSum) -> Vec<f32> {
        crate::lanes::add_assign(&mut self.grads, &right.grads);
        self.loss += right.loss;
        self.right += right.right;
        self.hi = right.hi;
        right.grads
    }
}

/// The tree's width: `shards` rounded up to a power of two.
pub fn width(shards: usize) -> usize {
    shards.max(1).next_power_of_two()
}

/// The maximal aligned tree nodes that exactly cover shards `range` (a tree of `width` leaves).
pub fn cover(range: Range<usize>, width: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut lo = range.start;
    std::iter::from_fn(move || {
        if lo >= range.end {
            return None;
        }
        // The biggest power of two that `lo` is aligned to and that fits.
        let mut size = if lo == 0 { width } else { 1 << lo.trailing_zeros() };
        while lo + size > range.end {
            size /= 2;
        }
        lo += size;
        Some((lo - size, lo))
    })
}

/// Node `[lo, hi)` from its halves' sums (either may be absent); `spare` takes a freed buffer.
#[inline(never)]
fn join(lo: usize, hi: usize, left: Option<NodeSum>, right: Option<NodeSum>, spare: &mut Vec<Vec<f32>>) -> Option<NodeSum> {
    let mut node = match (left, right) {
        (Some(mut a), Some(b)) => {
            spare.push(a.add(b));
            a
        }
        (a, b) => a.or(b)?,
    };
    (node.lo, node.hi) = (lo, hi);
    Some(node)
}

/// Finishes the tree over `[lo, hi)` from the node sums in `parts` (each used once); `spare`
/// takes the buffers freed. None: every shard under the node is empty.
#[inline(never)]
pub fn assemble(lo: usize, hi: usize, parts: &mut Vec<NodeSum>, spare: &mut Vec<Vec<f32>>) -> Option<NodeSum> {
    if let Some(i) = parts.iter().position(|p| p.lo == lo && p.hi == hi) {
        return Some(parts.swap_remove(i));
    }
    if hi - lo <= 1 {
        return None;
    }
    let mid = (lo + hi) / 2;
    let left = assemble(lo, mid, parts, spare);
    let right = assemble(mid, hi, parts, spare);
    join(lo, hi, left, right, spare)
}

/// [`assemble`] of the whole tree (`width` leaves), the root written straight into `model`'s
/// gradients — its last addition stores there, one pass over the gradients fewer than adding
/// and then copying; the same bits. Returns the root's loss and correct predictions (None: no
/// shard has rows).
pub fn finish_into(model: &mut Sequential, width: usize, parts: &mut Vec<NodeSum>, spare: &mut Vec<Vec<f32>>) -> Option<(f32, u32)> {
    finish_into_with(model, width, parts, spare, None).map(|(out, _)| out)
}

/// The step's update, when the tree's last addition may make it in the same pass.
pub type Update<'a> = Option<(&'a mut dyn Optimizer, &'a Hyper)>;

/// Elements a root's addition and update take at a time ([`optim::apply_sum`]): the four runs
/// (both halves, the gradient, the weights) fit in the nearest cache.
const ROOT_PART: usize = 1024;

/// The root `a + b` into `model`'s gradients, and the update with it where `update` is given and
/// [`optim::apply_sum`] can make it; whether it was made.
fn root_into(model: &mut Sequential, a: &[f32], b: &[f32], update: Update) -> bool {
    if let Some((opt, h)) = update {
        if optim::apply_sum(model, opt, h, a, b, ROOT_PART) {
            return true;
        }
    }
    let mut at = 0;
    model.visit_params(&mut |_, _, _, g| {
        let n = g.len();
        crate::lanes::add_to(tensor::slice_mut(g), &a[at..at + n], &b[at..at + n]);
        at += n;
    });
    false
}

/// [`finish_into`], making `update` in the root's pass where it can (see [`root_into`]): also
/// says whether it did (otherwise the caller applies it).
#[inline(never)]
pub fn finish_into_with(
    model: &mut Sequential,
    width: usize,
    parts: &mut Vec<NodeSum>,
    spare: &mut Vec<Vec<f32>>,
    update: Update,
) -> Option<((f32, u32), bool)> {
    let whole = |model: &mut Sequential, p: NodeSum, spare: &mut Vec<Vec<f32>>| {
        write_grads(model, &p.grads);
        spare.push(p.grads);
        Some(((p.loss, p.right), false))
    };
    if let Some(i) = parts.iter().position(|p| p.lo == 0 && p.hi == width) {
        let p = parts.swap_remove(i);
        return whole(model, p, spare);
    }
    if width <= 1 {
        return None;
    }
    let left = assemble(0, width / 2, parts, spare);
    let right = assemble(width / 2, width, parts, spare);
    let (a, b) = match (left, right) {
        (Some(a), Some(b)) => (a, b),
        (a, b) => return whole(model, a.or(b)?, spare),
    };
    let applied = root_into(model, &a.grads, &b.grads, update);
    let out = (a.loss + b.loss, a.right + b.right);
    spare.push(a.grads);
    spare.push(b.grads);
    Some((out, applied))
}

/// A tree node while a replicated step is finished: a worker's sum as shared, or one built here.
enum Built<'a> {
    Shared(&'a NodeSum),
    Own(NodeSum),
}

impl Built<'_> {
    fn sum(&self) -> &NodeSum {
        match self {
            Built::Shared(p) => p,
            Built::Own(p) => p,
        }
    }

    fn recycle(self, spare: &mut Vec<Vec<f32>>) {
        if let Built::Own(p) = self {
            spare.push(p.grads);
        }
    }
}

/// [`assemble`] without changing `parts`: node `[lo, hi)` is a part, or its halves' sum in a
/// buffer from `spare` (`a + b` as [`NodeSum::add`] makes it: the same bits).
fn build<'a>(lo: usize, hi: usize, parts: &[&'a NodeSum], spare: &mut Vec<Vec<f32>>) -> Option<Built<'a>> {
    if let Some(p) = parts.iter().find(|p| p.lo == lo && p.hi == hi) {
        return Some(Built::Shared(p));
    }
    if hi - lo <= 1 {
        return None;
    }
    let mid = (lo + hi) / 2;
    let left = build(lo, mid, parts, spare);
    let right = build(mid, hi, parts, spare);
    match (left, right) {
        (Some(a), Some(b)) => {
            let (x, y) = (a.sum(), b.sum());
            let mut grads = spare.pop().unwrap_or_default();
            grads.resize(x.grads.len(), 0.0);
            crate::lanes::add_to(&mut grads, &x.grads, &y.grads);
            let node = NodeSum { lo, hi, loss: x.loss + y.loss, right: x.right + y.right, grads };
            a.recycle(spare);
            b.recycle(spare);
            Some(Built::Own(node))
        }
        (a, b) => a.or(b),
    }
}

/// [`finish_into`] from node sums shared read-only (a replicated step: every worker finishes
/// the tree itself from all workers' sums); the same bits. New nodes are built in `spare`'s
/// buffers, which get them back. None: no shard has rows, or a sum is not as long as the
/// model's gradients.
pub fn finish_shared(model: &mut Sequential, width: usize, parts: &[&NodeSum], spare: &mut Vec<Vec<f32>>) -> Option<(f32, u32)> {
    finish_shared_with(model, width, parts, spare, None).map(|(out, _)| out)
}

/// [`finish_shared`], making `update` in the root's pass where it can (see [`root_into`]): also
/// says whether it did.
#[inline(never)]
pub fn finish_shared_with(model: &mut Sequential, width: usize, parts: &[&NodeSum], spare: &mut Vec<Vec<f32>>, update: Update) -> Option<((f32, u32), bool)> {
    let mut total = 0;
    model.visit_params(&mut |_, _, w, _| total += w.len());
    if parts.iter().any(|p| p.grads.len() != total) {
        return None;
    }
    let whole = |model: &mut Sequential, p: Built, spare: &mut Vec<Vec<f32>>| {
        let out = (p.sum().loss, p.sum().right);
        write_grads(model, &p.sum().grads);
        p.recycle(spare);
        Some((out, false))
    };
    if let Some(p) = parts.iter().find(|p| p.lo == 0 && p.hi == width) {
        return whole(model, Built::Shared(p), spare);
    }
    if width <= 1 {
        return None;
    }
    let left = build(0, width / 2, parts, spare);
    let right = build(width / 2, width, parts, spare);
    let (a, b) = match (left, right) {
        (Some(a), Some(b)) => (a, b),
        (a, b) => return whole(model, a.or(b)?, spare),
    };
    let (x, y) = (a.sum(), b.sum());
    let applied = root_into(model, &x.grads, &y.grads, update);
    let out = (x.loss + y.loss, x.right + y.right);
    a.recycle(spare);
    b.recycle(spare);
    Some((out, applied))
}

/// What a caller of [`Helpers::dispatch_vouched`] knows for certain (the engine's trainer counts
/// every mutable borrow of its model), so that the helpers need not compare copies to learn it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vouched {
    /// The model holds the weights it was given to the last [`Helpers::after_update`] with.
    pub weights: bool,
    /// The batch is the one given to the last [`Helpers::stage`], unchanged.
    pub batch: bool,
}

/// Workers that compute groups 1.. of a step's shards (group 0 is the caller's). They only read
/// the model they are given (the engine's trainer does not count those borrows as changes).
pub trait Helpers: Send {
    /// How many helpers (the run trains on this many workers plus one).
    fn count(&self) -> usize;
    /// Starts a step: each helper computes its group of `job`'s shards of `batch`, with `model`'s
    /// weights (`job.params` and `job.x` hold copies when [`Helpers::wants_copies`]).
    /// `Ok(false)`: not now (browser workers still starting): the caller computes every shard,
    /// the same bits.
    fn dispatch(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String>;
    /// Whether `job.params` and `job.x` must hold the weights and the mini-batch (false: the
    /// helpers take them from the model and the batch that `dispatch` is given).
    fn wants_copies(&self) -> bool {
        true
    }
    /// Whether the helpers gather their own rows when a job names them ([`ShardJob::rows`]):
    /// the caller's batch then needs only the caller's rows (and `job.x` none).
    fn gathers_rows(&self) -> bool {
        false
    }
    /// The step's update has been made: helpers may take the new weights now, while the caller
    /// prepares the next step (`dispatch` still checks that they are the model's).
    fn after_update(&mut self, _model: &mut Sequential) {}
    /// These helpers as threads that can take split steps ([`crate::split_layer`]), if they can.
    fn split(&mut self) -> Option<&mut dyn crate::split_layer::SplitHelpers> {
        None
    }
    /// These helpers as workers that share no memory with the caller and take split steps by
    /// relay ([`crate::split_layer::SplitRelay`]), if they can.
    fn relay(&mut self) -> Option<&mut dyn crate::split_layer::SplitRelay> {
        None
    }
    /// [`Helpers::dispatch`] with what the caller vouches for, which need not be checked again.
    fn dispatch_vouched(&mut self, job: &Arc<ShardJob>, model: &mut Sequential, batch: &Batch, _vouched: Vouched) -> Result<bool, String> {
        self.dispatch(job, model, batch)
    }
    /// The next step's mini-batch (split in `shards`), while the helpers compute this one:
    /// helpers that can take their rows early do (the browser's shared buffer); the next
    /// `dispatch` still checks they are its batch's.
    fn stage(&mut self, _batch: &Batch, _shards: usize) {}
    /// Whether `job`, the one dispatched last, is computed with `model`'s weights as they are now
    /// (a step started ahead is used only then). By default: the job's copies of the weights
    /// are the model's, bit for bit. (The engine's trainer asks only when its model was lent out
    /// mutably since the job was dispatched: otherwise no weight can have changed.)
    fn dispatched_with(&mut self, job: &ShardJob, model: &mut Sequential) -> bool {
        same_bits(&job.params, model)
    }
    /// The node sums of helper `h` (0-based) for the dispatched step, or why there are none
    /// (its shards are then computed by the caller).
    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String>;
    /// Whether the next job's copies (`job.params`, `job.x`, the helpers' answers) are streamed
    /// past the cache ([`crate::lanes::copy_streaming`]); the bits are the same either way.
    fn streaming(&mut self) -> bool {
        false
    }
    /// Whether the helpers keep their replicas' weights and optimiser state from step to step
    /// and make every update themselves — an all-reduce: once they hold the model's weights, a
    /// job carries none, and the step's end reaches them as every worker's sums
    /// ([`Helpers::exchange`]), which they finish and apply in the same order as the caller.
    fn replicates(&self) -> bool {
        false
    }
    /// Ends the replicated job dispatched last (once per such job, before the next dispatch):
    /// every worker's node sums and the update, or None to drop the step (its answers are
    /// still collected).
    fn exchange(&mut self, _step: Exchange) {}
    /// [`Helpers::collect`], the sums shared (a replicating helper keeps them for its update).
    fn collect_shared(&mut self, h: usize) -> Result<SharedSums, String> {
        self.collect(h).map(Arc::new)
    }
    /// Helper `h`'s answer when it is the one node `expected`, the right half of a tree whose
    /// left half is `left` (the caller's): its gradient added to `left`'s straight into `model`'s
    /// gradients as it arrives (`left + answer`, the tree's one way of adding: the bits of
    /// collecting it and then [`finish_into`]), not copied whole first. Returns the answer's
    /// loss and correct predictions. None: not done this way, nothing taken (call
    /// [`Helpers::collect`]). On an error the gradients are partly written (the caller computes
    /// the helper's shards and finishes the tree, which writes them all).
    fn collect_added(&mut self, _h: usize, _expected: (usize, usize), _left: &NodeSum, _model: &mut Sequential) -> Option<Result<(f32, u32), String>> {
        None
    }
    /// Makes the step's update (the bits of [`optim::apply`]) and hands the weights to the
    /// helpers part by part as they are made, instead of in [`Helpers::after_update`] once all
    /// are. False: not done, nothing changed (the caller updates, then calls `after_update`).
    fn update_and_publish(&mut self, _model: &mut Sequential, _optimizer: &mut dyn Optimizer, _hyper: &Hyper) -> bool {
        false
    }
    /// Hands a result's buffer back for reuse.
    fn recycle(&mut self, _buffer: Vec<f32>) {}
    /// The model the helpers were built for.
    fn fingerprint(&self) -> u64;
    /// Something the learner should know (a worker lost, the rest training on), once.
    fn take_note(&mut self) -> Option<String> {
        None
    }
}

/// Whether `copy` holds `model`'s weights (in parameter order), bit for bit.
pub fn same_bits(copy: &[f32], model: &mut Sequential) -> bool {
    let mut at = 0;
    let mut same = true;
    model.visit_params(&mut |_, _, w, _| {
        let w = tensor::slice(w);
        same = same && copy.get(at..at + w.len()).is_some_and(|c| crate::lanes::same_bits(c, w));
        at += w.len();
    });
    same && at == copy.len()
}

/// Reused buffers for computing shards one by one.
#[derive(Clone, Default)]
pub struct Scratch {
    x: Tensor,
    y: Tensor,
    classes: Vec<usize>,
    dout: Tensor,
    /// The node sums sent to other workers are written with streamed stores (see [`Copies`]).
    stream: bool,
    /// A pair's right leaf, moved out of the model (one tensor per parameter) while the left one
    /// is computed (see `node_sum`).
    leaf: Vec<Tensor>,
    /// A helper's rows of the mini-batch when it gathers them itself ([`ShardJob::rows`]).
    rows: Vec<f32>,
}

impl Scratch {
    /// Whether the node sums computed with this scratch are written with streamed stores: a
    /// replicated step's sums are read by every other worker (see [`Copies`]).
    pub fn set_streamed(&mut self, stream: bool) {
        self.stream = stream;
    }

    /// The input [`layers_gradient`] reads, resized to `shape`, to be filled.
    pub fn input(&mut self, shape: &[usize]) -> &mut [f32] {
        tensor::resize(&mut self.x, shape);
        tensor::slice_mut(&mut self.x)
    }
}

/// The batch as the shard computation reads it.
pub struct Batch<'a> {
    pub x: &'a [f32],
    pub shape: &'a [usize],
    pub classes: Option<&'a [usize]>,
    pub values: &'a [f32],
    /// Padded sequences: which of `classes` (equally many per row) are real.
    pub mask: Option<&'a [bool]>,
}

/// Rows of `out` (one row of scores per example) whose largest score is at their class.
pub fn count_right(out: &Tensor, classes: &[usize]) -> u32 {
    let k = out.len() / classes.len().max(1);
    if k == 0 || out.len() != k * classes.len() {
        return 0;
    }
    tensor::slice(out).chunks(k).zip(classes).filter(|(row, &c)| tensor::argmax(row) == c).count() as u32
}

/// The gradient of shard `rows` of the batch, left in `model`'s gradients (zeroed first); returns
/// the shard's share of the loss and its correct predictions (class targets).
#[inline(never)]
pub fn shard_gradient(model: &mut Sequential, loss: Loss, batch: &Batch, rows: Range<usize>, s: &mut Scratch) -> (f32, u32) {
    let n = batch.shape[0];
    let per_row = batch.x.len() / n.max(1);
    let mut shape = [0usize; 8];
    let rank = batch.shape.len().min(8);
    shape[..rank].copy_from_slice(&batch.shape[..rank]);
    shape[0] = rows.len();
    tensor::resize(&mut s.x, &shape[..rank]);
    crate::lanes::copy(tensor::slice_mut(&mut s.x), &batch.x[rows.start * per_row..rows.end * per_row]);
    layers_gradient(&mut model.layers, loss, batch, rows, s)
}

/// [`shard_gradient`] through `layers` (a model's, in order, or the layers after its first)
/// from their input for the shard's rows, already in `s.x`: the same computation, so the same
/// bits. `layers[0]` computes its input's gradient only where it is set to.
pub fn layers_gradient(layers: &mut [Box<dyn Layer>], loss: Loss, batch: &Batch, rows: Range<usize>, s: &mut Scratch) -> (f32, u32) {
    let n = batch.shape[0];
    // The gradients are written by `backward_fresh` (no zeroing pass first).
    let out = chain_forward(layers, &s.x);
    if let (Some(c), Some(mask)) = (batch.classes, batch.mask) {
        // Padded sequences: a shard's share is its real steps over the batch's, its loss the mean
        // over its own (so the tree sums the batch's mean over every real step).
        let per = c.len() / n.max(1);
        let (a, b) = (rows.start * per, rows.end * per);
        s.classes.clear();
        s.classes.extend_from_slice(&c[a..b]);
        let (mine, all) = (mask[a..b].iter().filter(|&&m| m).count(), mask.iter().filter(|&&m| m).count());
        if mine == 0 {
            // Nothing real to learn from: zero gradients, no loss.
            layers.iter_mut().for_each(|l| l.zero_grad());
            return (0.0, 0);
        }
        let value = loss.value_and_grad(out, Target::Masked { classes: &s.classes, mask: &mask[a..b] }, &mut s.dout);
        let share = mine as f32 / all as f32;
        if share != 1.0 {
            tensor::slice_mut(&mut s.dout).iter_mut().for_each(|d| *d *= share);
        }
        chain_backward_fresh(layers, &s.dout);
        return (value * share, 0);
    }
    let target = if let Some(c) = batch.classes {
        s.classes.clear();
        s.classes.extend_from_slice(&c[rows.clone()]);
        Target::Classes(&s.classes)
    } else {
        let cols = batch.values.len() / n.max(1);
        tensor::resize(&mut s.y, &[rows.len(), cols]);
        crate::lanes::copy(tensor::slice_mut(&mut s.y), &batch.values[rows.start * cols..rows.end * cols]);
        Target::Values(&s.y)
    };
    let right = if batch.classes.is_some() { count_right(out, &s.classes) } else { 0 };
    let value = loss.value_and_grad(out, target, &mut s.dout);
    let share = rows.len() as f32 / n as f32;
    if share != 1.0 {
        tensor::slice_mut(&mut s.dout).iter_mut().for_each(|d| *d *= share);
    }
    chain_backward_fresh(layers, &s.dout);
    (value * share, right)
}

/// `layers` applied in order to `x` in training mode (what [`Sequential`]'s forward does).
fn chain_forward<'a>(layers: &'a mut [Box<dyn Layer>], x: &Tensor) -> &'a Tensor {
    layers[0].forward(x, Mode::Train);
    for i in 1..layers.len() {
        let (done, rest) = layers.split_at_mut(i);
        rest[0].forward(done[i - 1].output(), Mode::Train);
    }
    layers[layers.len() - 1].output()
}

/// Back through `layers` from `dy`, each layer's gradients written fresh (as [`Sequential`]'s).
fn chain_backward_fresh(layers: &mut [Box<dyn Layer>], dy: &Tensor) {
    let last = layers.len() - 1;
    layers[last].backward_fresh(dy);
    for i in (0..last).rev() {
        let (lower, upper) = layers.split_at_mut(i + 1);
        lower[i].backward_fresh(upper[0].input_grad());
    }
}

/// Copies the model's gradients into `out` (resized to fit), in parameter order.
#[inline(never)]
pub fn read_grads(model: &mut Sequential, out: &mut Vec<f32>) {
    read_each(model, out, |_, g| g, false);
}

/// `out` = the model's weights or gradients (`pick(w, g)` says which), flattened in parameter
/// order, resized to fit. Copied with [`crate::lanes::copy`]: `memcpy` is slow between some
/// pairs of addresses.
fn read_each(model: &mut Sequential, out: &mut Vec<f32>, pick: for<'a> fn(&'a Tensor, &'a Tensor) -> &'a Tensor, stream: bool) {
    let mut total = 0;
    model.visit_params(&mut |_, _, w, g| total += pick(w, g).len());
    out.resize(total, 0.0);
    let mut at = 0;
    model.visit_params(&mut |_, _, w, g| {
        let v = tensor::slice(pick(w, g));
        if stream {
            crate::lanes::copy_streaming(&mut out[at..at + v.len()], v);
        } else {
            crate::lanes::copy(&mut out[at..at + v.len()], v);
        }
        at += v.len();
    });
}

/// Writes `grads` (in parameter order) into the model's gradients.
#[inline(never)]
pub fn write_grads(model: &mut Sequential, grads: &[f32]) {
    let mut at = 0;
    model.visit_params(&mut |_, _, _, g| {
        let n = g.len();
        crate::lanes::copy(tensor::slice_mut(g), &grads[at..at + n]);
        at += n;
    });
}

/// The model's weights, flattened in parameter order.
#[inline(never)]
pub fn read_params(model: &mut Sequential, out: &mut Vec<f32>) {
    read_each(model, out, |w, _| w, false);
}

/// [`read_params`] into a job's buffer, streamed past the cache when `stream` (see [`Copies`]).
#[inline(never)]
pub fn read_params_for_job(model: &mut Sequential, out: &mut Vec<f32>, stream: bool) {
    read_each(model, out, |w, _| w, stream);
}

/// Sets the model's weights from `params` (as [`read_params`] wrote them); false when the sizes
/// do not match.
#[inline(never)]
pub fn write_params(model: &mut Sequential, params: &[f32]) -> bool {
    let mut total = 0;
    model.visit_params(&mut |_, _, w, _| total += w.len());
    if total != params.len() {
        return false;
    }
    let mut at = 0;
    model.visit_params(&mut |_, _, w, _| {
        let n = w.len();
        crate::lanes::copy(tensor::slice_mut(w), &params[at..at + n]);
        at += n;
    });
    true
}

/// The sums of tree node `[lo, hi)` of `batch`'s shards, computed here on `model` (depth
/// first: at most log₂ M + 1 buffers at once, taken from `spare`).
///
/// The right half is computed before the left, so shard `lo` is the last one through `model`:
/// its layers keep that shard's activations and gradients. The lead worker's group always starts
/// at shard 0, so what a lab reads from its layers after a step (the Batch Norm lab's
/// histograms, its dead-unit count) is shard 0's on any number of workers. Each sum still adds
/// left + right: IEEE addition is commutative, so the order of computing changes no bit.
#[allow(clippy::too_many_arguments)]
pub fn node_sum(
    model: &mut Sequential,
    loss: Loss,
    batch: &Batch,
    shards: usize,
    (lo, hi): (usize, usize),
    scratch: &mut Scratch,
    spare: &mut Vec<Vec<f32>>,
) -> Option<NodeSum> {
    if lo >= shards {
        return None;
    }
    if hi - lo == 1 {
        let rows = shard_rows(batch.shape[0], shards, lo);
        if rows.is_empty() {
            return None;
        }
        let (value, right) = shard_gradient(model, loss, batch, rows, scratch);
        let mut grads = spare.pop().unwrap_or_default();
        read_each(model, &mut grads, |_, g| g, scratch.stream);
        return Some(NodeSum { lo, hi, loss: value, right, grads });
    }
    let mid = (lo + hi) / 2;
    if hi - lo == 2 && hi <= shards {
        let (left_rows, right_rows) = (shard_rows(batch.shape[0], shards, lo), shard_rows(batch.shape[0], shards, mid));
        if !left_rows.is_empty() && !right_rows.is_empty() {
            // The sum written once — streamed when other threads read it (plain stores to lines
            // they hold would be a second pass).
            let mut total = 0;
            model.visit_params(&mut |_, _, _, g| total += g.len());
            let mut grads = spare.pop().unwrap_or_default();
            grads.resize(total, 0.0);
            let stream = scratch.stream;
            let (loss, right) = pair_into(model, loss, batch, (left_rows, right_rows), scratch, &mut |at, right, left| {
                let out = &mut grads[at..at + right.len()];
                if stream {
                    crate::lanes::add_to_streaming(out, right, left);
                } else {
                    crate::lanes::add_to(out, right, left);
                }
            });
            return Some(NodeSum { lo, hi, loss, right, grads });
        }
    }
    // The halves are this node's own: only what is sent is streamed (the joins below read them).
    let stream = std::mem::replace(&mut scratch.stream, false);
    let node = halves(model, loss, batch, shards, (lo, mid, hi), scratch, spare);
    scratch.stream = stream;
    node
}

/// A pair of non-empty leaves: the right one's gradients are moved out of the model (its tensors
/// swapped with this scratch's, no copy) while the left one's are computed into the tensors
/// swapped in; then `out(at, right, left)` is handed each tensor of both (`at`: where it starts,
/// the parameters laid end to end), whose sum `right + left`, element by element, is the pair's
/// (the bits of adding the left leaf into a copy of the right). Returns its loss and correct count.
fn pair_into(
    model: &mut Sequential,
    loss: Loss,
    batch: &Batch,
    (left_rows, right_rows): (std::ops::Range<usize>, std::ops::Range<usize>),
    scratch: &mut Scratch,
    out: &mut dyn FnMut(usize, &[f32], &[f32]),
) -> (f32, u32) {
    let (right_loss, right_right) = shard_gradient(model, loss, batch, right_rows, scratch);
    let mut i = 0;
    model.visit_params(&mut |_, _, _, g| {
        if scratch.leaf.len() == i {
            scratch.leaf.push(Tensor::default());
        }
        if !tensor::same(scratch.leaf[i].shape(), g.shape()) {
            // First use (or a new shape): the left leaf's backward writes every value.
            scratch.leaf[i] = g.clone();
        }
        std::mem::swap(g, &mut scratch.leaf[i]);
        i += 1;
    });
    let (left_loss, left_right) = shard_gradient(model, loss, batch, left_rows, scratch);
    let (mut at, mut i) = (0, 0);
    model.visit_params(&mut |_, _, _, g| {
        out(at, tensor::slice(&scratch.leaf[i]), tensor::slice(g));
        at += g.len();
        i += 1;
    });
    (right_loss + left_loss, right_right + left_right)
}

/// The one node of group `g`'s answer when it is a pair of non-empty leaves and the job carries
/// its rows (no gathering): then [`group_pair_into`] computes it.
pub fn group_pair(job: &ShardJob, g: usize) -> Option<(usize, usize)> {
    let mut nodes = cover(group(job.shards, job.workers, g), width(job.shards));
    let (lo, hi) = nodes.next()?;
    let n = job.shape.first().copied().unwrap_or(0);
    let pair = nodes.next().is_none() && hi == lo + 2 && hi <= job.shards && job.rows.is_none();
    (pair && !shard_rows(n, job.shards, lo).is_empty() && !shard_rows(n, job.shards, lo + 1).is_empty()).then_some((lo, hi))
}

/// [`group_sums`] of a group whose answer is one pair ([`group_pair`]; None otherwise, nothing
/// computed): its gradients handed to `out(at, right, left)` tensor by tensor instead of summed
/// into a buffer (the sum is `right + left`, element by element: see `pair_into`), so that a
/// browser helper writes the sum straight where the lead reads it. Returns its loss and correct
/// count.
pub fn group_pair_into(
    replica: &mut Sequential,
    job: &ShardJob,
    g: usize,
    scratch: &mut Scratch,
    out: &mut dyn FnMut(usize, &[f32], &[f32]),
) -> Option<(f32, u32)> {
    let (lo, _) = group_pair(job, g)?;
    let (classes, values, mask) = match &job.targets {
        Targets::Classes(c) => (Some(c.as_slice()), &[][..], None),
        Targets::Values { values, .. } => (None, values.as_slice(), None),
        Targets::Masked { classes, mask } => (Some(classes.as_slice()), &[][..], Some(mask.as_slice())),
    };
    let batch = Batch { x: &job.x, shape: &job.shape, classes, values, mask };
    let n = job.shape[0];
    Some(pair_into(replica, job.loss, &batch, (shard_rows(n, job.shards, lo), shard_rows(n, job.shards, lo + 1)), scratch, out))
}

/// [`node_sum`] of `[lo, hi)` from its halves `[lo, mid)` and `[mid, hi)`.
#[allow(clippy::too_many_arguments)]
fn halves(
    model: &mut Sequential,
    loss: Loss,
    batch: &Batch,
    shards: usize,
    (lo, mid, hi): (usize, usize, usize),
    scratch: &mut Scratch,
    spare: &mut Vec<Vec<f32>>,
) -> Option<NodeSum> {
    let right = node_sum(model, loss, batch, shards, (mid, hi), scratch, spare);
    let left_rows = shard_rows(batch.shape[0], shards, lo);
    let right = match right {
        Some(mut b) if mid - lo == 1 && !left_rows.is_empty() => {
            // A leaf on the left is added straight from the model's gradients into the right
            // half's sum: b + a is a + b bit for bit, without copying the leaf out first.
            let (value, right) = shard_gradient(model, loss, batch, left_rows, scratch);
            b.loss += value;
            b.right += right;
            let mut at = 0;
            model.visit_params(&mut |_, _, _, g| {
                crate::lanes::add_assign(&mut b.grads[at..at + g.len()], tensor::slice(g));
                at += g.len();
            });
            (b.lo, b.hi) = (lo, hi);
            return Some(b);
        }
        other => other,
    };
    let left = node_sum(model, loss, batch, shards, (lo, mid), scratch, spare);
    join(lo, hi, left, right, spare)
}

/// A helper's part of a step, on its replica: the node sums covering the shards of group `g`.
#[inline(never)]
pub fn compute_group(replica: &mut Sequential, job: &ShardJob, g: usize, scratch: &mut Scratch, spare: &mut Vec<Vec<f32>>) -> Result<Vec<NodeSum>, String> {
    if !write_params(replica, &job.params) {
        return Err("the replica's parameters do not match the model's".into());
    }
    group_sums(replica, job, g, scratch, spare)
}

/// [`compute_group`] on a replica that already holds the job's weights (`job.params` unread);
/// refuses a job whose rows to gather are not one per row of its batch.
#[inline(never)]
pub fn group_sums(replica: &mut Sequential, job: &ShardJob, g: usize, scratch: &mut Scratch, spare: &mut Vec<Vec<f32>>) -> Result<Vec<NodeSum>, String> {
    let (classes, values, mask) = match &job.targets {
        Targets::Classes(c) => (Some(c.as_slice()), &[][..], None),
        Targets::Values { values, .. } => (None, values.as_slice(), None),
        Targets::Masked { classes, mask } => (Some(classes.as_slice()), &[][..], Some(mask.as_slice())),
    };
    // Rows named by the job are gathered here, this group's only (the others stay stale, unread).
    let mut gathered = std::mem::take(&mut scratch.rows);
    let x = match &job.rows {
        Some(rows) => {
            let n = job.shape.first().copied().unwrap_or(0);
            let per_row = job.shape.iter().skip(1).product::<usize>();
            if job.indices.len() != n {
                scratch.rows = gathered;
                return Err(format!("the job names {} rows for a batch of {n}", job.indices.len()));
            }
            let mine = group(job.shards, job.workers, g);
            let (first, last) = (shard_rows(n, job.shards, mine.start).start, shard_rows(n, job.shards, mine.end).start);
            gathered.resize(n * per_row, 0.0);
            rows.pixels.fill(&job.indices[first..last], rows.scaling, &mut gathered[first * per_row..last * per_row]);
            &gathered[..]
        }
        None => &job.x[..],
    };
    let batch = Batch { x, shape: &job.shape, classes, values, mask };
    scratch.stream = job.stream;
    let mut out = Vec::new();
    for node in cover(group(job.shards, job.workers, g), width(job.shards)) {
        out.extend(node_sum(replica, job.loss, &batch, job.shards, node, scratch, spare));
    }
    scratch.rows = gathered;
    Ok(out)
}

/// How the copies that cross threads are written: the job's weights and rows (by the lead) and
/// the helpers' answers. Either way the same values; only where the lines go differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copies {
    /// Plain stores: the reader fetches the lines from the writer's cache.
    Plain,
    /// Streamed past the cache ([`crate::lanes::copy_streaming`]): no fetch for ownership.
    Streamed,
    /// Whichever the steps run faster with, measured as the run goes ([`CopyChooser`]).
    Chosen,
}

/// Chooses between plain and streamed copies by timing steps: an epoch of steps with one, then
/// with the other, then the faster, trying the other again after a while — 4 epochs, twice as
/// long each time it is still the slower (up to 32), 4 again once it was not. On this project's
/// 2-vCPU VMs plain copies are ~3–8 % faster for W2 on two threads in most seconds, and streamed
/// ones ~1.5× faster in the windows where a store that misses the cache crawls (see
/// [`crate::lanes::copy_streaming`]); those windows come and go within seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyChooser {
    streamed: bool,
    steps: u32,
    /// This epoch's step times: compared by their median, which a stall of a few steps (a page
    /// fault, another process) does not move, where the mean flipped the choice.
    times: [f64; CopyChooser::EPOCH as usize],
    /// The median step of each (plain, streamed) when last measured, and epochs since.
    median: [Option<f64>; 2],
    age: [u32; 2],
    /// Epochs before the other is measured again (0: [`CopyChooser::REVISIT`]).
    wait: u32,
    /// This epoch measures the challenger (the last choice is kept unless it loses).
    revisiting: bool,
}

impl Default for CopyChooser {
    fn default() -> Self {
        CopyChooser { streamed: false, steps: 0, times: [0.0; CopyChooser::EPOCH as usize], median: [None; 2], age: [0; 2], wait: 0, revisiting: false }
    }
}

impl CopyChooser {
    /// Steps per measurement (W2: ~45 ms on two threads; W3: ~0.6 s).
    pub const EPOCH: u32 = 128;
    /// Epochs before the other copies are measured again, at first and after a change.
    pub const REVISIT: u32 = 4;
    /// The longest wait: a quarter epoch in 32¼ runs with the slower copies while nothing
    /// changes (where plain copies crawl, twice as slow: ~1.5 % of the speed).
    pub const LONGEST_WAIT: u32 = 32;
    /// How much faster the other copies must have been to be chosen.
    pub const MARGIN: f64 = 0.03;
    /// A longer time between steps is a pause, a snapshot or another session's turn: not a step.
    pub const LONGEST_S: f64 = 0.02;

    /// Whether the next step's copies are streamed.
    pub fn streamed(&self) -> bool {
        self.streamed
    }

    /// The time from the last step's start to this one's, in seconds.
    pub fn step(&mut self, seconds: f64) {
        if !(seconds > 0.0 && seconds <= Self::LONGEST_S) {
            return;
        }
        self.times[self.steps as usize] = seconds;
        self.steps += 1;
        // Measuring the other again takes a quarter epoch: where plain stores crawl, a step with
        // them takes twice as long, and those steps are the price of noticing a change.
        let epoch = if self.revisiting { Self::EPOCH / 4 } else { Self::EPOCH };
        if self.steps < epoch {
            return;
        }
        let (this, other) = (usize::from(self.streamed), usize::from(!self.streamed));
        let times = &mut self.times[..self.steps as usize];
        self.steps = 0;
        let median = *times.select_nth_unstable_by(times.len() / 2, f64::total_cmp).1;
        self.median[this] = Some(median);
        self.age[this] = 0;
        self.age[other] = self.age[other].saturating_add(1);
        if self.wait == 0 {
            self.wait = Self::REVISIT;
        }
        // Whether to go back to (or over to) the other: a challenger must beat the choice by
        // MARGIN, and the choice is left only for a challenger that did, so that noise between
        // epochs does not flip it.
        let revisited = std::mem::take(&mut self.revisiting);
        let leave = match self.median[other] {
            Some(m) if revisited => median >= m * (1.0 - Self::MARGIN),
            Some(m) => m < median * (1.0 - Self::MARGIN),
            None => false,
        };
        if revisited {
            // The challenger lost again: it waits longer next time.
            self.wait = if leave { (self.wait * 2).min(Self::LONGEST_WAIT) } else { Self::REVISIT };
        }
        match self.median[other] {
            Some(_) if self.age[other] < self.wait => self.streamed ^= leave,
            // Never measured, or long ago: the other, for a quarter epoch.
            _ => {
                self.revisiting = true;
                self.streamed = !self.streamed;
            }
        }
    }
}

/// Gradient buffers a worker of a replicated step needs at most, so that its pool holds them from
/// the first step and none is allocated later (`tests/no_alloc.rs`): its `nodes` sums of this
/// step, the same again for the last step's, which a worker still finishing it may hold while
/// this one starts the next (under load, a thread waits its turn for a core), and the tree's
/// new nodes (one per level of the `shards`' tree, and the two halves at the top).
pub fn pool_for(nodes: usize, shards: usize) -> usize {
    2 * nodes + width(shards).trailing_zeros() as usize + 2
}

/// Adds buffers with room for `model`'s gradients to `spare` until with `held` (this worker's
/// sums still shared) there are `pool`.
pub fn top_up(spare: &mut Vec<Vec<f32>>, held: usize, pool: usize, model: &mut Sequential) {
    if spare.len() + held >= pool {
        return;
    }
    let mut total = 0;
    model.visit_params(&mut |_, _, w, _| total += w.len());
    while spare.len() + held < pool {
        spare.push(Vec::with_capacity(total));
    }
}

/// Helpers as native threads, each with a replica of the model (the CLI's `--threads`).
pub struct ThreadHelpers {
    threads: Vec<HelperThread>,
    fingerprint: u64,
    /// The thread the next recycled buffer goes to (round robin: each sends one or more per step).
    next_spare: usize,
    copies: Copies,
    chooser: CopyChooser,
    last_dispatch: Option<std::time::Instant>,
    /// Jobs are replicated ([`Helpers::replicates`]).
    replicate: bool,
    /// A replicated job was dispatched and its exchange is still to be sent.
    awaiting: bool,
    /// The threads gather their own rows of a job that names them ([`Helpers::gathers_rows`]).
    gather: bool,
    /// The threads take split steps where the model allows ([`Helpers::split`]).
    split_layer: bool,
}

/// The most spare gradient buffers a helper thread keeps: its deepest node sum needs
/// log₂ 16 + 1 at once, and it sends at most 2·log₂ 16 nodes; more would only hold memory.
const HELPER_SPARES: usize = 2 * 4 + 4;

/// What a helper thread is sent: shards of a step, or its part of a column step.
enum Job {
    Shards(Arc<ShardJob>),
    Split(Arc<crate::split_layer::SplitJob>),
}

struct HelperThread {
    jobs: Sender<Job>,
    exchange: Sender<Exchange>,
    results: Receiver<Result<SharedSums, String>>,
    /// Buffers handed back (a step allocates no gradient vectors once warm).
    spare: Sender<Vec<f32>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ThreadHelpers {
    /// `count` threads with replicas of `model` (weights arrive with each job).
    pub fn new(model: &Sequential, count: usize) -> Result<ThreadHelpers, String> {
        let mut model = model.clone();
        let fingerprint = fingerprint(&mut model);
        let mut threads = Vec::new();
        for h in 0..count.min(MAX_WORKERS - 1) {
            let (jobs, job_rx) = channel::<Job>();
            let (exchange, exchange_rx) = channel::<Exchange>();
            let (result_tx, results) = channel();
            let (spare, spare_rx) = channel::<Vec<f32>>();
            let mut replica = Replica { model: model.clone(), optimizer: None, scratch: Scratch::default(), buffers: Vec::new(), shared: Vec::new(), pool: 0 };
            let handle = std::thread::Builder::new()
                .name(format!("deeply-worker-{}", h + 2))
                .spawn(move || {
                    while let Ok(job) = recv_soon(&job_rx) {
                        let job = match job {
                            Job::Shards(job) => job,
                            Job::Split(job) => {
                                crate::split_layer::helper_part(&job, h + 1, &mut replica.model, &mut replica.scratch);
                                // Its first layer is not the model's now: the next replicated
                                // job must carry the weights and the optimiser's state.
                                replica.optimizer = None;
                                continue;
                            }
                        };
                        replica.buffers.extend(spare_rx.try_iter());
                        replica.take_back_shared();
                        replica.buffers.truncate(HELPER_SPARES.max(replica.pool));
                        if !job.replicated {
                            let out = compute_group(&mut replica.model, &job, h + 1, &mut replica.scratch, &mut replica.buffers);
                            // The job's buffers go back to the caller for the next step.
                            drop(job);
                            if result_tx.send(out.map(Arc::new)).is_err() {
                                break;
                            }
                            continue;
                        }
                        let out = replica.compute(&job, h + 1);
                        let width = width(job.shards);
                        drop(job);
                        if result_tx.send(out.clone()).is_err() {
                            break;
                        }
                        match recv_soon(&exchange_rx) {
                            Ok(step) => replica.finish(out.ok(), step, width),
                            Err(_) => break,
                        }
                    }
                })
                .map_err(|e| format!("could not start a training thread: {e}"))?;
            threads.push(HelperThread { jobs, exchange, results, spare, handle: Some(handle) });
        }
        Ok(ThreadHelpers {
            threads,
            fingerprint,
            next_spare: 0,
            copies: Copies::Chosen,
            chooser: CopyChooser::default(),
            last_dispatch: None,
            replicate: true,
            awaiting: false,
            gather: true,
            split_layer: true,
        })
    }

    /// The same helpers, replicating the updates or not (the default: they do).
    pub fn with_replication(mut self, replicate: bool) -> ThreadHelpers {
        self.replicate = replicate;
        self
    }

    /// The same helpers, gathering their own rows of the jobs that name them or not (the
    /// default: they do).
    pub fn with_row_gathering(mut self, gather: bool) -> ThreadHelpers {
        self.gather = gather;
        self
    }

    /// The same helpers, taking split steps ([`crate::split_layer`]) where the model allows or
    /// not (the default: they do; without, every step is data-parallel).
    pub fn with_split_layer(mut self, split: bool) -> ThreadHelpers {
        self.split_layer = split;
        self
    }

    /// The same helpers with `copies` made one way (the default: [`Copies::Chosen`]).
    pub fn with_copies(mut self, copies: Copies) -> ThreadHelpers {
        self.copies = copies;
        self
    }
}

impl Helpers for ThreadHelpers {
    fn count(&self) -> usize {
        self.threads.len()
    }

    fn dispatch(&mut self, job: &Arc<ShardJob>, _model: &mut Sequential, _batch: &Batch) -> Result<bool, String> {
        let now = std::time::Instant::now();
        if let Some(last) = self.last_dispatch.replace(now) {
            self.chooser.step(now.duration_since(last).as_secs_f64());
        }
        if self.awaiting {
            // The last replicated job was never ended (its caller went away): dropped, so
            // that no helper waits for it.
            self.exchange(None);
        }
        for (h, t) in self.threads.iter().enumerate() {
            t.jobs.send(Job::Shards(job.clone())).map_err(|_| format!("training thread {} has stopped", h + 2))?;
        }
        self.awaiting = job.replicated;
        Ok(true)
    }

    fn collect(&mut self, h: usize) -> Result<Vec<NodeSum>, String> {
        // A replicating helper still holds its sums: a copy then (callers of replicated steps
        // use `collect_shared`).
        self.collect_shared(h).map(|sums| Arc::try_unwrap(sums).unwrap_or_else(|kept| kept.as_ref().clone()))
    }

    fn replicates(&self) -> bool {
        self.replicate
    }

    fn gathers_rows(&self) -> bool {
        self.gather
    }

    fn exchange(&mut self, step: Exchange) {
        if !std::mem::take(&mut self.awaiting) {
            return;
        }
        for t in &self.threads {
            // A stopped thread is reported by the next dispatch.
            let _ = t.exchange.send(step.clone());
        }
    }

    fn collect_shared(&mut self, h: usize) -> Result<SharedSums, String> {
        let t = self.threads.get(h).ok_or_else(|| format!("no training thread {}", h + 2))?;
        recv_soon(&t.results).map_err(|_| format!("training thread {} has stopped", h + 2))?
    }

    fn streaming(&mut self) -> bool {
        match self.copies {
            Copies::Plain => false,
            Copies::Streamed => true,
            Copies::Chosen => self.chooser.streamed(),
        }
    }

    fn recycle(&mut self, buffer: Vec<f32>) {
        // Every thread sends buffers away each step, so each must get some back: all to one
        // thread made the others allocate ~400 KB per step and that one hoard them (1.5 GB after
        // 3 s of W2 on 4 threads).
        if self.threads.is_empty() {
            return;
        }
        let t = &self.threads[self.next_spare % self.threads.len()];
        self.next_spare = (self.next_spare + 1) % self.threads.len();
        let _ = t.spare.send(buffer);
    }

    fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn split(&mut self) -> Option<&mut dyn crate::split_layer::SplitHelpers> {
        self.split_layer.then_some(self as &mut dyn crate::split_layer::SplitHelpers)
    }
}

impl crate::split_layer::SplitHelpers for ThreadHelpers {
    fn start_split(&mut self, job: &Arc<crate::split_layer::SplitJob>, lost: &mut dyn FnMut(usize, String)) {
        if self.awaiting {
            // The last replicated job was never ended: dropped, so that no helper waits for it.
            self.exchange(None);
        }
        for w in 1..job.workers() {
            match self.threads.get(w - 1) {
                Some(t) if t.jobs.send(Job::Split(job.clone())).is_ok() => {}
                _ => lost(w, format!("training thread {} has stopped", w + 1)),
            }
        }
    }
}

/// A helper thread's replica of the model and what it keeps between steps.
struct Replica {
    model: Sequential,
    /// The optimiser's state as the caller's (None: not given yet, or lost with a failed step).
    optimizer: Option<Box<dyn Optimizer>>,
    scratch: Scratch,
    buffers: Vec<Vec<f32>>,
    /// The last replicated steps' sums, shared until every worker has finished with them.
    shared: Vec<SharedSums>,
    /// Gradient buffers this helper keeps, in its pool or in sums still shared (see [`pool_for`]).
    pool: usize,
}

impl Replica {
    /// The buffers of the sums every worker has let go of (the caller has by the next job; a
    /// helper may still be finishing the step: its sums are taken back at a later job).
    fn take_back_shared(&mut self) {
        let mut i = 0;
        while i < self.shared.len() {
            if Arc::strong_count(&self.shared[i]) > 1 && self.shared.len() <= 4 {
                i += 1;
                continue;
            }
            if let Ok(sums) = Arc::try_unwrap(self.shared.swap_remove(i)) {
                self.buffers.extend(sums.into_iter().map(|s| s.grads));
            }
        }
    }

    /// Group `g` of a replicated job, on the weights it carries or those the replica holds.
    fn compute(&mut self, job: &ShardJob, g: usize) -> Result<SharedSums, String> {
        if let Some(state) = &job.optimizer {
            if !write_params(&mut self.model, &job.params) {
                self.optimizer = None;
                return Err("the replica's parameters do not match the model's".into());
            }
            self.optimizer = Some(state.0.clone());
        } else if self.optimizer.is_none() {
            return Err("the replica was not given the model's weights".into());
        }
        let nodes = cover(group(job.shards, job.workers, g), width(job.shards)).count();
        self.pool = pool_for(nodes, job.shards);
        let held = self.shared.iter().map(|s| s.len()).sum();
        top_up(&mut self.buffers, held, self.pool, &mut self.model);
        let sums = Arc::new(group_sums(&mut self.model, job, g, &mut self.scratch, &mut self.buffers)?);
        self.shared.push(sums.clone());
        Ok(sums)
    }

    /// The step's end: the same tree and update as the caller's (or none: dropped, or this
    /// helper failed, which the caller knows and answers by sending the weights again).
    fn finish(&mut self, mine: Option<SharedSums>, step: Exchange, width: usize) {
        let Some((all, hyper)) = step.filter(|_| mine.is_some()) else {
            if mine.is_none() {
                self.optimizer = None;
            }
            return;
        };
        let Some(optimizer) = self.optimizer.as_mut() else { return };
        let parts: Vec<&NodeSum> = all.iter().flat_map(|sums| sums.iter()).collect();
        if let Some((_, applied)) = finish_shared_with(&mut self.model, width, &parts, &mut self.buffers, Some((optimizer.as_mut(), &hyper))) {
            if !applied {
                optim::apply(&mut self.model, optimizer.as_mut(), &hyper);
            }
        } else {
            self.optimizer = None;
        }
    }
}

/// Receives, spinning briefly first: steps come every millisecond or so, and waking a sleeping
/// thread costs tens of microseconds each way.
fn recv_soon<T>(rx: &Receiver<T>) -> Result<T, std::sync::mpsc::RecvError> {
    let start = std::time::Instant::now();
    loop {
        match rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(std::sync::mpsc::RecvError),
            Err(std::sync::mpsc::TryRecvError::Empty) if start.elapsed().as_micros() < 200 => std::hint::spin_loop(),
            Err(std::sync::mpsc::TryRecvError::Empty) => return rx.recv(),
        }
    }
}

impl Drop for ThreadHelpers {
    fn drop(&mut self) {
        for t in &mut self.threads {
            // Closing the job channel ends the thread's loop.
            let (dead, _) = channel();
            t.jobs = dead;
            // (A helper waiting for a step's end stops too.)
            let (dead, _) = channel();
            t.exchange = dead;
            if let Some(handle) = t.handle.take() {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `epochs` epochs' worth of steps that take `plain` or `streamed` seconds; the share
    /// of them made with streamed copies.
    fn streamed_share(chooser: &mut CopyChooser, epochs: u32, plain: f64, streamed: f64) -> f64 {
        let steps = epochs * CopyChooser::EPOCH;
        let mut count = 0;
        for _ in 0..steps {
            count += u32::from(chooser.streamed());
            chooser.step(if chooser.streamed() { streamed } else { plain });
        }
        f64::from(count) / f64::from(steps)
    }

    #[test]
    fn the_copy_chooser_settles_on_the_faster_copies_and_follows_a_change() {
        let mut c = CopyChooser::default();
        assert!(!c.streamed(), "plain first");
        // Plain faster (most seconds on the VMs): streamed measured once, then again after 4,
        // 8, 16, then every 32 epochs.
        let share = streamed_share(&mut c, 400, 340e-6, 360e-6);
        assert!((0.005..0.015).contains(&share), "{share} of the steps streamed");
        assert!(!c.streamed());
        // Plain stores crawl: within one wait (≤ 32 epochs) streamed is chosen, and kept.
        streamed_share(&mut c, 34, 700e-6, 360e-6);
        assert!(c.streamed());
        let share = streamed_share(&mut c, 400, 700e-6, 360e-6);
        assert!(share > 0.99, "{share} of the steps streamed");
        // And back within one wait.
        streamed_share(&mut c, 34, 340e-6, 360e-6);
        assert!(!c.streamed());
        // Within the margin, no change.
        streamed_share(&mut c, 100, 340e-6, 335e-6);
        assert!(!c.streamed());
    }

    #[test]
    fn the_copy_chooser_ignores_pauses_and_nonsense_times() {
        let mut c = CopyChooser::default();
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY, 0.5, CopyChooser::LONGEST_S * 1.01] {
            for _ in 0..CopyChooser::EPOCH {
                c.step(t);
            }
        }
        assert_eq!(c, CopyChooser::default());
        // A real step among them counts.
        c.step(1e-3);
        assert_ne!(c, CopyChooser::default());
    }

    #[test]
    fn shards_cover_the_batch_in_order_and_groups_cover_the_shards() {
        for n in [1, 7, 64, 65] {
            for m in [1, 4, 8] {
                let rows: Vec<usize> = (0..m).flat_map(|s| shard_rows(n, m, s)).collect();
                assert_eq!(rows, (0..n).collect::<Vec<_>>(), "n {n} m {m}");
                for w in 1..=5 {
                    let shards: Vec<usize> = (0..w).flat_map(|g| group(m, w, g)).collect();
                    assert_eq!(shards, (0..m).collect::<Vec<_>>(), "m {m} w {w}");
                }
            }
        }
        assert_eq!(shard_rows(64, 4, 1), 16..32);
        assert_eq!([1, 16, 17, 64, 256, 1024].map(|n| LAB_SHARDING.shards(n)), [1, 1, 2, 4, 16, 16]);
        assert_eq!(group(8, 3, 0), 0..2);
    }

    #[test]
    fn covers_are_the_maximal_aligned_subtrees() {
        let c = |r: Range<usize>| cover(r, 8).collect::<Vec<_>>();
        assert_eq!(c(0..8), [(0, 8)]);
        assert_eq!(c(0..4), [(0, 4)]);
        assert_eq!(c(4..8), [(4, 8)]);
        // Three workers over 8 shards: 0..2, 2..5, 5..8.
        assert_eq!(c(0..2), [(0, 2)]);
        assert_eq!(c(2..5), [(2, 4), (4, 5)]);
        assert_eq!(c(5..8), [(5, 6), (6, 8)]);
        assert_eq!(c(0..6), [(0, 4), (4, 6)]);
        assert!(c(3..3).is_empty());
    }

    #[test]
    fn the_tree_adds_in_one_order_whatever_the_pieces() {
        // Values whose sum depends on the order in f32.
        let leaf = |s: usize| NodeSum { lo: s, hi: s + 1, loss: s as f32, right: s as u32, grads: vec![[1e8f32, 1.0, -1e8, 3.5, 1e-3, -2.0, 7.0, 0.1][s]] };
        let whole = |pieces: Vec<NodeSum>| {
            let mut parts = pieces;
            assemble(0, 8, &mut parts, &mut Vec::new()).unwrap()
        };
        let leaves = whole((0..8).map(leaf).collect());
        let expected = ((1e8f32 + 1.0) + (-1e8 + 3.5)) + ((1e-3 + -2.0) + (7.0 + 0.1));
        assert_eq!(leaves.grads[0].to_bits(), expected.to_bits());
        assert_eq!((leaves.lo, leaves.hi, leaves.right), (0, 8, 28));
        // Pre-summed subtrees (as helpers send them) give the same bits.
        let mut left = whole_range(0, 4, &leaf);
        let right = whole_range(4, 8, &leaf);
        left.lo = 0;
        assert_eq!(whole(vec![right, left]).grads[0].to_bits(), expected.to_bits());
    }

    #[test]
    fn finishing_into_the_model_gives_the_bits_of_assembling_then_copying() {
        use crate::init::Init;
        use crate::ops::Dense;
        let mut rng = crate::rng::Rng::new(3);
        let mut model = Sequential::new(vec![Box::new(Dense::new(3, 2, Init::He, 1.0, &mut rng))]);
        let mut total = 0;
        model.visit_params(&mut |_, _, w, _| total += w.len());
        let leaf = |s: usize| NodeSum {
            lo: s,
            hi: s + 1,
            loss: 0.1 * s as f32,
            right: s as u32,
            grads: (0..total).map(|i| [1e8f32, 1.0, -1e8, 3.5, 1e-3, -2.0, 7.0, 0.1][(s + i) % 8] * (i + 1) as f32).collect(),
        };
        for (width, pieces) in
            [(8, vec![(0, 8)]), (8, vec![(0, 4), (4, 8)]), (8, vec![(0, 2), (2, 4), (4, 6), (6, 7)]), (4, vec![(0, 2), (2, 3)]), (2, vec![(0, 1)])]
        {
            let parts = || -> Vec<NodeSum> { pieces.iter().map(|&(lo, hi)| whole_range(lo, hi, &leaf)).collect() };
            let expected = assemble(0, width, &mut parts(), &mut Vec::new()).unwrap();
            let (loss, right) = finish_into(&mut model, width, &mut parts(), &mut Vec::new()).unwrap();
            let mut got = Vec::new();
            read_grads(&mut model, &mut got);
            assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), expected.grads.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{pieces:?}");
            assert_eq!((loss.to_bits(), right), (expected.loss.to_bits(), expected.right), "{pieces:?}");
        }
        assert!(finish_into(&mut model, 4, &mut Vec::new(), &mut Vec::new()).is_none());
    }

    #[test]
    fn a_pair_of_leaves_sums_right_plus_left_and_leaves_shard_lo_in_the_layers() {
        use crate::init::Init;
        use crate::ops::{Activation, ActivationKind, Dense};
        let mut rng = crate::rng::Rng::new(5);
        let mut model = Sequential::new(vec![
            Box::new(Dense::new(4, 6, Init::He, 1.0, &mut rng)),
            Box::new(Activation::new(ActivationKind::Tanh, 0.0)),
            Box::new(Dense::new(6, 3, Init::He, 1.0, &mut rng)),
        ]);
        let classes: Vec<usize> = (0..10).map(|i| i % 3).collect();
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        let mut scratch = Scratch::default();
        // Batch after batch, each way twice: the scratch's tensors, swapped in and out, must
        // never carry one pair's gradients into the next.
        for stream in [false, true, false, true] {
            let x: Vec<f32> = (0..10 * 4).map(|_| rng.normal()).collect();
            let batch = Batch { x: &x, shape: &[10, 4], classes: Some(&classes), values: &[], mask: None };
            // Each of shards 2 and 3 (of 4) on its own, read out of the model.
            let leaf = |s: usize, model: &mut Sequential| {
                let out = shard_gradient(model, Loss::Softmax, &batch, shard_rows(10, 4, s), &mut Scratch::default());
                let mut g = Vec::new();
                read_grads(model, &mut g);
                (out, g)
            };
            let ((left_loss, left_right), left) = leaf(2, &mut model);
            let ((right_loss, right_right), right) = leaf(3, &mut model);
            let sum: Vec<f32> = right.iter().zip(&left).map(|(r, l)| r + l).collect();
            scratch.set_streamed(stream);
            let node = node_sum(&mut model, Loss::Softmax, &batch, 4, (2, 4), &mut scratch, &mut Vec::new()).unwrap();
            assert_eq!((node.lo, node.hi), (2, 4));
            assert_eq!(bits(&node.grads), bits(&sum), "streamed: {stream}");
            assert_eq!((node.loss.to_bits(), node.right), ((right_loss + left_loss).to_bits(), right_right + left_right));
            // The layers hold shard 2's gradients (the last through the model).
            let mut held = Vec::new();
            read_grads(&mut model, &mut held);
            assert_eq!(bits(&held), bits(&left), "streamed: {stream}");
        }
    }

    #[test]
    fn finishing_from_shared_sums_gives_the_same_bits_and_leaves_them_as_they_were() {
        use crate::init::Init;
        use crate::ops::Dense;
        let mut rng = crate::rng::Rng::new(4);
        let mut model = Sequential::new(vec![Box::new(Dense::new(3, 2, Init::He, 1.0, &mut rng))]);
        let mut total = 0;
        model.visit_params(&mut |_, _, w, _| total += w.len());
        let leaf = |s: usize| NodeSum {
            lo: s,
            hi: s + 1,
            loss: 0.3 * s as f32 + 0.01,
            right: 2 * s as u32,
            grads: (0..total).map(|i| [3e7f32, -1.0, 1e-4, -3e7, 0.5, 9.0, -0.25, 1e3][(3 * s + i) % 8] / (i + 1) as f32).collect(),
        };
        // Pieces as 1 to 4 workers send them (the caller's first), uneven and missing shards too.
        for (width, pieces) in [
            (8, vec![(0, 8)]),
            (8, vec![(0, 4), (4, 8)]),
            (8, vec![(0, 2), (2, 3), (3, 4), (4, 6), (6, 7)]),
            (8, vec![(0, 1), (1, 2), (2, 4), (4, 8)]),
            (4, vec![(0, 2), (2, 3)]),
            (4, vec![(0, 1), (1, 2), (2, 3), (3, 4)]),
            (2, vec![(0, 1)]),
        ] {
            let parts = || -> Vec<NodeSum> { pieces.iter().map(|&(lo, hi)| whole_range(lo, hi, &leaf)).collect() };
            finish_into(&mut model, width, &mut parts(), &mut Vec::new()).unwrap();
            let mut expected = Vec::new();
            read_grads(&mut model, &mut expected);
            let expected_out = finish_into(&mut model, width, &mut parts(), &mut Vec::new()).unwrap();
            model.zero_grad();
            let shared = parts();
            let refs: Vec<&NodeSum> = shared.iter().collect();
            let mut spare = Vec::new();
            let out = finish_shared(&mut model, width, &refs, &mut spare).unwrap();
            let mut got = Vec::new();
            read_grads(&mut model, &mut got);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&expected), "{pieces:?}");
            assert_eq!((out.0.to_bits(), out.1), (expected_out.0.to_bits(), expected_out.1), "{pieces:?}");
            assert_eq!(shared, parts(), "{pieces:?}: the shared sums are unchanged");
            // The nodes built on the way are handed back for reuse.
            assert!(spare.iter().all(|b| b.len() == total), "{pieces:?}");
        }
        assert!(finish_shared(&mut model, 4, &[], &mut Vec::new()).is_none());
        // A sum of another length is refused, not read past its end.
        let short = NodeSum { lo: 0, hi: 4, loss: 0.0, right: 0, grads: vec![1.0; total - 1] };
        assert!(finish_shared(&mut model, 4, &[&short], &mut Vec::new()).is_none());
    }

    fn whole_range(lo: usize, hi: usize, leaf: &dyn Fn(usize) -> NodeSum) -> NodeSum {
        let mut parts: Vec<NodeSum> = (lo..hi).map(leaf).collect();
        assemble(lo, hi, &mut parts, &mut Vec::new()).unwrap()
    }
}
