//! The training loop shared by every lab: mini-batches from a reshuffled order, forward, loss,
//! backward, clipping and the optimiser step — with reusable buffers, so a step allocates nothing
//! once the batch size is settled.

use super::accel::{Accelerator, MAX_AHEAD};
use super::snapshot::{LayerSnapshot, ParamSnapshot, StepRecord};
use super::watched::Watched;
use crate::data::{Dataset, Source, Targets};
use crate::layer::Layer;
use crate::loss::{Loss, Target};
use crate::optim::{self, Hyper, Optimizer, OptimizerKind, Schedule};
use crate::parallel::{self, Helpers, ShardJob};
use crate::rng::Rng;
use crate::sequential::Sequential;
use crate::stats::{lane_sum, TensorStats};
use crate::tensor::{self, Mode, Tensor};
use std::sync::Arc;

const RECORDS_PER_OCTAVE: u64 = 1000;

/// The trainer's accelerator. A clone of a trainer (a time-travel checkpoint, taken in sync)
/// trains on the CPU: a device's queue and moments belong to one run.
struct Slot(Option<Box<dyn Accelerator>>);

impl Clone for Slot {
    fn clone(&self) -> Self {
        Slot(None)
    }
}

/// The helpers computing other workers' shards; a clone (a checkpoint) has none: the session
/// that runs it attaches its own.
#[derive(Default)]
struct HelperSlot(Option<Box<dyn Helpers>>);

impl Clone for HelperSlot {
    fn clone(&self) -> Self {
        HelperSlot(None)
    }
}

/// A step whose helpers were given their shards at the end of the step before (see
/// [`Trainer::train_step_ahead`]): what it was started from, to check that nothing changed.
/// A clone (a checkpoint) has none: its helpers are not those computing it.
#[derive(Default)]
struct Ahead(Option<Started>);

impl Clone for Ahead {
    fn clone(&self) -> Self {
        Ahead(None)
    }
}

/// This worker's sums of replicated steps that helpers may still be reading; a clone (a
/// checkpoint) has none: they are its original's.
#[derive(Default)]
struct SharedOwn(Vec<parallel::SharedSums>);

impl Clone for SharedOwn {
    fn clone(&self) -> Self {
        SharedOwn::default()
    }
}

#[derive(Clone, Copy, PartialEq)]
struct Started {
    step: u64,
    epoch: u64,
    cursor: usize,
    batch_size: usize,
    data_len: usize,
    /// Workers computing it (this one included).
    workers: usize,
    /// The model's [`Watched::version`] once it was handed out.
    version: (u64, u64),
}

#[derive(Clone)]
pub struct Trainer {
    /// The network (counting mutable borrows: see [`Watched`]).
    pub model: Watched,
    /// Private: replicating helpers hold a copy of its state (see [`Trainer::reset_optimizer`]).
    optimizer: Box<dyn Optimizer>,
    pub optimizer_kind: OptimizerKind,
    pub hyper: Hyper,
    /// The learning rate follows this schedule over steps (period `schedule_period`).
    pub schedule: Schedule,
    pub schedule_period: u64,
    pub loss: Loss,
    pub batch_size: usize,
    pub step: u64,
    pub epoch: u64,
    pub last_loss: f32,
    /// The global gradient norm of the last step before clipping, when clipping is on.
    pub last_pre_clip_norm: Option<f32>,
    /// The hyper-parameters of the last step (with the scheduled learning rate).
    last_hyper: Hyper,
    /// Row indices of the last mini-batch (to highlight it).
    pub last_batch: Vec<usize>,
    /// Step records not yet handed to a snapshot.
    pub records: Vec<StepRecord>,
    /// Record every this many steps; doubles every `RECORDS_PER_OCTAVE` records, so a long
    /// run keeps a bounded, evenly spread history.
    record_every: u64,
    shuffle: Rng,
    order: Vec<usize>,
    cursor: usize,
    batch_x: Tensor,
    batch_y: Tensor,
    batch_classes: Vec<usize>,
    /// Real steps of a batch of padded sequences (empty for other data).
    batch_mask: Vec<bool>,
    dout: Tensor,
    /// Where the steps run when not here (the GPU); `None`: on this CPU.
    accel: Slot,
    /// The step count the model's weights belong to (behind `step` while an accelerator works).
    synced_step: u64,
    /// The step count when the accelerator was attached (it counts its steps from 0).
    accel_base: u64,
    /// The accelerator must be rebuilt (batch size or optimiser changed) before the next step.
    rebuild: bool,
    /// Why the accelerator was dropped, until the driver reports it.
    failure: Option<String>,
    /// Sum and count of the losses read back since [`Trainer::take_synced_losses`].
    synced_losses: (f64, u64),
    /// The step this trainer started from (0, or a saved run's): no loss is known before it.
    resumed_at: u64,
    /// How mini-batches split into canonical micro-shards (see [`crate::parallel`]).
    sharding: parallel::Sharding,
    /// Why this trainer's steps run as one piece, when its model says (see
    /// [`Trainer::why_single`]).
    whole: Option<&'static str>,
    /// Rows of the last mini-batch's first micro-shard: the rows whose activations and gradients
    /// the layers keep after a step (all of the batch's when it trained as one piece).
    first_shard_rows: usize,
    helpers: HelperSlot,
    /// Helpers started (some may have been lost since).
    helpers_started: usize,
    /// Why a helper's shards were computed here instead, until the driver reports it.
    helper_failure: Option<String>,
    /// Workers the last step ran on (1: here alone).
    last_workers: usize,
    /// Correct predictions in the last mini-batch (class targets, on this CPU).
    last_right: Option<u32>,
    scratch: parallel::Scratch,
    /// Reused between steps: tree nodes, gradient buffers, the helpers' last job.
    parts: Vec<parallel::NodeSum>,
    spare: Vec<Vec<f32>>,
    job: Option<Arc<ShardJob>>,
    /// The next mini-batch, gathered early for a step started ahead.
    ahead: Ahead,
    next_x: Tensor,
    next_y: Tensor,
    next_classes: Vec<usize>,
    next_mask: Vec<bool>,
    /// The next mini-batch is of padded sequences (`next_mask` says which steps are real).
    next_masked: bool,
    /// `next_*` hold the mini-batch after this one, gathered while the helpers finished (and
    /// given to [`Helpers::stage`]).
    next_gathered: bool,
    /// The model's [`Watched::version`] when the helpers were last given its weights
    /// ([`Helpers::after_update`]): while it stands, the helpers hold them.
    published: Option<(u64, u64)>,
    /// The model's [`Watched::version`] whose weights, and the optimiser's state with them,
    /// replicating helpers ([`Helpers::replicates`]) hold: after a replicated step that every
    /// helper finished. While it stands, a job carries no weights.
    replicas: Option<(u64, u64)>,
    /// This worker's sums of the last replicated step, shared with the helpers until they
    /// have finished it: then their buffers come back.
    shared_own: SharedOwn,
    /// The step being made was replicated by every helper (its update makes `replicas`).
    replicated_step: bool,
    /// The step's update was made with its gradient's last addition (see
    /// [`parallel::finish_into_with`]).
    applied: bool,
    /// Rows of `batch_x` gathered here: all, unless helpers gathered theirs themselves from
    /// `rows_source` ([`Helpers::gathers_rows`]); the rest are filled in when the batch is read
    /// ([`Trainer::batch_x`]) or computed here.
    batch_filled: usize,
    /// The same for `next_x`.
    next_filled: usize,
    rows_source: Option<parallel::SharedRows>,
    /// The lead's side of steps with the first layer split between workers ([`crate::split_layer`]).
    split: crate::split_layer::SplitStep,
    /// The step being made was a split step (nothing is started ahead of the next one).
    split_step: bool,
    /// Relayed split steps: the helpers hold rows of the first layer (see [`Trainer::gather`]).
    relayed: Relayed,
}

/// What relayed split steps ([`crate::split_layer::SplitRelay`]) leave with the helpers: the
/// model's version and the worker count whose first layer they hold rows of (later steps send
/// none while these stand), and whether the model lacks their rows of the last step (gathered
/// before anything reads it). A copy (a checkpoint, taken after a gather) holds none.
#[derive(Default)]
struct Relayed {
    held: Option<((u64, u64), usize)>,
    outside: bool,
}

impl Clone for Relayed {
    fn clone(&self) -> Self {
        Relayed::default()
    }
}

/// The rows of a mini-batch of `rows` from `data` that this worker gathers itself, and where the
/// helpers gather the rest: the helpers' rows are theirs to gather when they can
/// ([`Helpers::gathers_rows`]) and `data` shares its rows ([`Source::shared_rows`]).
fn own_rows(h: Option<&dyn Helpers>, sharding: parallel::Sharding, data: &dyn Source, rows: usize) -> (usize, Option<parallel::SharedRows>) {
    let Some(h) = h.filter(|h| h.count() > 0 && h.wants_copies() && h.gathers_rows()) else { return (rows, None) };
    let Some(shared) = data.shared_rows() else { return (rows, None) };
    let m = sharding.shards(rows);
    if m < 2 {
        return (rows, None);
    }
    (parallel::shard_rows(rows, m, parallel::group(m, h.count() + 1, 1).start).start, Some(shared))
}

/// The helpers' rows of `model`'s first layer (W, ∂W) and of `optimizer`'s state for W, from
/// the relay's mirrors of the last step.
fn gather_into(relay: &mut dyn crate::split_layer::SplitRelay, model: &mut crate::sequential::Sequential, optimizer: &mut dyn Optimizer) {
    let mut first = true;
    model.layers[0].visit_params(&mut |_, _, w, g| {
        if std::mem::take(&mut first) {
            let (_, state) = optimizer.split(0, w.len());
            relay.gather(tensor::slice_mut(w), tensor::slice_mut(g), state);
        }
    });
}

/// Fills rows `from..` of the mini-batch `x` (rows `indices` of `source`).
fn fill_rest(x: &mut Tensor, from: usize, indices: &[usize], source: &parallel::SharedRows) {
    let n = x.shape().first().copied().unwrap_or(0);
    let per_row = x.len() / n.max(1);
    if from < n && indices.len() == n {
        source.pixels.fill(&indices[from..], source.scaling, &mut tensor::slice_mut(x)[from * per_row..]);
    }
}

/// Hands `helpers` their shards of the mini-batch `(x, y, classes)` split in `m`, reusing the
/// last job's buffers when every helper has let go of it; returns the workers computing it (1:
/// the helpers are not ready, this one computes every shard). `vouched`: what the caller knows
/// of the weights and the batch.
fn dispatch(
    h: &mut dyn Helpers,
    last: &mut Option<Arc<ShardJob>>,
    model: &mut Sequential,
    loss: Loss,
    (x, y, classes, mask): (&Tensor, &Tensor, Option<&[usize]>, Option<&[bool]>),
    m: usize,
    vouched: parallel::Vouched,
    (optimizer, replicas_hold): (&(dyn Optimizer + 'static), bool),
    rows: Option<(&parallel::SharedRows, &[usize])>,
) -> Result<usize, String> {
    let n = x.shape()[0];
    let mut job = last.take().and_then(|j| Arc::try_unwrap(j).ok()).unwrap_or_else(|| ShardJob {
        params: Vec::new(),
        x: Vec::new(),
        shape: Vec::new(),
        targets: parallel::Targets::Classes(Vec::new()),
        loss,
        shards: m,
        workers: 1,
        stream: false,
        replicated: false,
        optimizer: None,
        rows: None,
        indices: Vec::new(),
    });
    let stream = h.streaming();
    job.replicated = h.replicates();
    job.optimizer = None;
    if h.wants_copies() {
        if job.replicated && replicas_hold {
            // The helpers hold these weights (and the optimiser's state) from the last step.
            job.params.clear();
        } else {
            // Overwritten in place (when cleared first, W2's 400 KB were zeroed before every copy).
            parallel::read_params_for_job(model, &mut job.params, stream);
            if job.replicated {
                job.optimizer = Some(parallel::OptimizerState(dyn_clone::clone_box(optimizer)));
            }
        }
        match rows.filter(|(_, indices)| h.gathers_rows() && indices.len() == n) {
            Some((source, indices)) => {
                // The helpers gather their rows themselves: none written here.
                job.rows = Some(source.clone());
                job.indices.clear();
                job.indices.extend_from_slice(indices);
                job.x.clear();
            }
            None => {
                // Only the helpers' rows (from group 1's first shard on): the caller's group is
                // computed from `x` itself, and a helper reads only its own rows. The rest of
                // `job.x` is stale.
                job.rows = None;
                let x = tensor::slice(x);
                let from = parallel::shard_rows(n, m, parallel::group(m, h.count() + 1, 1).start).start * (x.len() / n.max(1));
                job.x.resize(x.len(), 0.0);
                if stream {
                    crate::lanes::copy_streaming(&mut job.x[from..], &x[from..]);
                } else {
                    crate::lanes::copy(&mut job.x[from..], &x[from..]);
                }
            }
        }
    } else {
        job.params.clear();
        job.x.clear();
        job.rows = None;
    }
    job.shape.clear();
    job.shape.extend_from_slice(x.shape());
    job.targets = match (classes, mask) {
        (Some(classes), Some(mask)) => {
            // The last job's buffers, refilled (a step allocates nothing once warm).
            let (mut c, mut k) = match std::mem::replace(&mut job.targets, parallel::Targets::Classes(Vec::new())) {
                parallel::Targets::Masked { classes, mask } => (classes, mask),
                _ => (Vec::new(), Vec::new()),
            };
            c.clear();
            c.extend_from_slice(classes);
            k.clear();
            k.extend_from_slice(mask);
            parallel::Targets::Masked { classes: c, mask: k }
        }
        (Some(classes), None) => {
            let mut c = match std::mem::replace(&mut job.targets, parallel::Targets::Classes(Vec::new())) {
                parallel::Targets::Classes(c) => c,
                _ => Vec::new(),
            };
            c.clear();
            c.extend_from_slice(classes);
            parallel::Targets::Classes(c)
        }
        (None, _) => parallel::Targets::Values { values: tensor::slice(y).to_vec(), cols: y.len() / n.max(1) },
    };
    (job.loss, job.shards, job.workers, job.stream) = (loss, m, h.count() + 1, stream);
    let job = Arc::new(job);
    let batch = parallel::Batch { x: tensor::slice(x), shape: x.shape(), classes, values: tensor::slice(y), mask };
    let sent = h.dispatch_vouched(&job, model, &batch, vouched);
    let result = sent.map(|sent| if sent { job.workers } else { 1 });
    *last = Some(job);
    result
}

impl Trainer {
    pub fn new(model: Sequential, kind: OptimizerKind, hyper: Hyper, loss: Loss, batch_size: usize, n: usize, shuffle: Rng) -> Self {
        let mut t = Trainer {
            model: Watched::new(model),
            optimizer: kind.build(),
            optimizer_kind: kind,
            hyper,
            schedule: Schedule::Constant,
            schedule_period: 1000,
            loss,
            batch_size,
            step: 0,
            epoch: 0,
            last_loss: f32::NAN,
            last_pre_clip_norm: None,
            last_hyper: hyper,
            last_batch: Vec::new(),
            records: Vec::new(),
            record_every: 1,
            shuffle,
            order: (0..n).collect(),
            cursor: 0,
            batch_x: tensor::zeros(&[0]),
            batch_y: tensor::zeros(&[0]),
            batch_classes: Vec::new(),
            batch_mask: Vec::new(),
            dout: tensor::zeros(&[0]),
            accel: Slot(None),
            synced_step: 0,
            accel_base: 0,
            rebuild: false,
            failure: None,
            synced_losses: (0.0, 0),
            resumed_at: 0,
            sharding: parallel::Sharding::Count(1),
            whole: None,
            first_shard_rows: 0,
            helpers: HelperSlot(None),
            helpers_started: 0,
            helper_failure: None,
            last_workers: 1,
            last_right: None,
            scratch: parallel::Scratch::default(),
            parts: Vec::new(),
            spare: Vec::new(),
            job: None,
            ahead: Ahead(None),
            next_x: tensor::zeros(&[0]),
            next_y: tensor::zeros(&[0]),
            next_classes: Vec::new(),
            next_mask: Vec::new(),
            next_masked: false,
            next_gathered: false,
            published: None,
            replicas: None,
            shared_own: SharedOwn::default(),
            replicated_step: false,
            applied: false,
            batch_filled: 0,
            next_filled: 0,
            rows_source: None,
            split: crate::split_layer::SplitStep::default(),
            split_step: false,
            relayed: Relayed::default(),
        };
        t.shuffle.shuffle(&mut t.order);
        t
    }

    /// Applies optimiser settings changed mid-run (the optimiser's state starts fresh only when
    /// its kind changes).
    pub fn apply(&mut self, t: &super::params::Training) {
        self.hyper = t.hyper;
        self.batch_size = t.batch_size;
        self.set_optimizer(t.optimizer);
        self.schedule = t.schedule;
        self.schedule_period = t.period;
    }

    /// Records every `every` steps from now on (it still doubles as records accumulate).
    pub fn set_record_every(&mut self, every: u64) {
        self.record_every = every.max(1);
    }

    /// The inputs of the last mini-batch (the rows helpers gathered for themselves are filled
    /// in here first).
    pub fn batch_x(&mut self) -> &Tensor {
        let n = self.batch_x.shape().first().copied().unwrap_or(0);
        if self.batch_filled < n {
            if let Some(source) = &self.rows_source {
                fill_rest(&mut self.batch_x, self.batch_filled, &self.last_batch, source);
            }
            self.batch_filled = n;
        }
        &self.batch_x
    }

    /// The last mini-batch's inputs when every row of it was gathered here (None: call
    /// [`Trainer::batch_x`]).
    pub fn gathered_batch_x(&self) -> Option<&Tensor> {
        (self.batch_filled >= self.batch_x.shape().first().copied().unwrap_or(0)).then_some(&self.batch_x)
    }

    /// Rows in the last mini-batch.
    pub fn batch_rows(&self) -> usize {
        self.batch_x.shape().first().copied().unwrap_or(0)
    }

    /// The targets of the last mini-batch (regression, binary labels).
    pub fn batch_y(&self) -> &Tensor {
        &self.batch_y
    }

    /// The classes of the last mini-batch (classification).
    pub fn batch_classes(&self) -> &[usize] {
        &self.batch_classes
    }

    /// How many rows of the last mini-batch the model classified right as it stepped (the
    /// training accuracy; counted shard by shard when the batch is split, since no single
    /// shard's output covers it). None: value targets, padded sequences, or on an accelerator.
    pub fn batch_right(&self) -> Option<u32> {
        self.last_right
    }

    /// Swaps the optimiser (its state starts fresh) without touching the weights.
    pub fn set_optimizer(&mut self, kind: OptimizerKind) {
        if kind != self.optimizer_kind {
            self.optimizer_kind = kind;
            self.reset_optimizer();
        }
    }

    /// A fresh optimiser of the same kind (its state starts again; the weights stay).
    pub fn reset_optimizer(&mut self) {
        // A step started ahead would be updated by the helpers with the old state.
        self.settle();
        self.optimizer = self.optimizer_kind.build();
        // Replicating and relaying helpers hold the old state: the next job carries the new.
        self.replicas = None;
        self.relayed.held = None;
    }

    /// One optimiser step on the next mini-batch; returns its loss. The last batch of an epoch
    /// may be smaller; then the order is reshuffled.
    pub fn train_step(&mut self, data: &dyn Source) -> f32 {
        self.train_step_ahead(data, false)
    }

    /// [`Trainer::train_step`]; with `more`, the caller says the next call follows with the same
    /// `data` and changes nothing in between but reading (recording the step, drawing): the
    /// helpers are then given the next step's shards at once, and compute them while the caller
    /// records this step. The next call checks that the step, the order, the batch size and the
    /// weights are still those it was started from, and otherwise waits for the helpers, drops
    /// their answers and starts again — the same bits either way.
    pub fn train_step_ahead(&mut self, data: &dyn Source, more: bool) -> f32 {
        if self.accel.0.is_some() && !self.may_submit() {
            // The device is far enough ahead, or must be rebuilt: this step waits.
            return self.last_loss;
        }
        let n = self.order.len();
        let bs = self.batch_size.clamp(1, n);
        let end = (self.cursor + bs).min(n);
        let started = self.take_ahead(bs, data.len());
        self.next_gathered = false;
        let masked = if started.is_some() {
            // Gathered when the step was started.
            std::mem::swap(&mut self.batch_x, &mut self.next_x);
            std::mem::swap(&mut self.batch_y, &mut self.next_y);
            std::mem::swap(&mut self.batch_classes, &mut self.next_classes);
            std::mem::swap(&mut self.batch_mask, &mut self.next_mask);
            self.batch_filled = self.next_filled;
            self.next_masked
        } else {
            data.gather(&self.order[self.cursor..end], &mut self.batch_x, &mut self.batch_y, &mut self.batch_classes);
            self.batch_filled = end - self.cursor;
            data.mask(&self.order[self.cursor..end], &mut self.batch_mask)
        };
        self.last_batch.clear();
        self.last_batch.extend_from_slice(&self.order[self.cursor..end]);
        self.cursor = end;
        if self.cursor == n {
            self.cursor = 0;
            self.epoch += 1;
            self.shuffle.shuffle(&mut self.order);
        }
        self.last_right = None;
        if self.accel.0.is_some() {
            let hyper = Hyper { lr: self.current_lr(), ..self.hyper };
            let accel = self.accel.0.as_mut().expect("checked");
            match accel.submit(tensor::slice(&self.batch_x), &self.batch_classes, &hyper) {
                Ok(()) => {
                    self.last_hyper = hyper;
                    self.step += 1;
                    return self.last_loss;
                }
                Err(why) => self.fail(why),
            }
        }
        let rows = self.batch_x.shape()[0];
        let shards = self.sharding.shards(rows);
        self.first_shard_rows = if shards > 1 { parallel::shard_rows(rows, shards, 0).len() } else { rows };
        // The update's settings: replicating helpers are sent them with the step's sums.
        let hyper = Hyper { lr: self.current_lr(), ..self.hyper };
        self.split_step = false;
        let split = (shards > 1).then(|| self.split_gradient(data, masked, shards, started, hyper, more)).flatten();
        if split.is_none() {
            // The helpers' rows of the last relayed step, before another kind of step.
            self.gather();
        }
        let loss = if let Some(loss) = split {
            loss
        } else if shards > 1 {
            self.sharded_gradient(data, masked, shards, started, more, hyper)
        } else {
            self.last_workers = 1;
            // The gradients are written by `backward_fresh` (no zeroing pass first).
            let out = self.model.forward(&self.batch_x, Mode::Train);
            let target = if masked {
                Target::Masked { classes: &self.batch_classes, mask: &self.batch_mask }
            } else if data.has_classes() {
                Target::Classes(&self.batch_classes)
            } else {
                Target::Values(&self.batch_y)
            };
            if !masked && data.has_classes() {
                self.last_right = Some(parallel::count_right(out, &self.batch_classes));
            }
            let loss = self.loss.value_and_grad(out, target, &mut self.dout);
            self.model.backward_fresh(&self.dout);
            loss
        };
        let replicated = std::mem::take(&mut self.replicated_step);
        // Helpers that take the weights as they are made: the update is made there, part by part.
        let (model, optimizer) = (&mut self.model, &mut self.optimizer);
        let applied = std::mem::take(&mut self.applied);
        let handed = !applied
            && self.last_workers > 1
            && !replicated
            && self.helpers.0.as_mut().is_some_and(|h| h.update_and_publish(&mut *model, optimizer.as_mut(), &hyper));
        if applied {
            // Made with the tree's last addition (no clipping: no norm before it).
            self.last_pre_clip_norm = None;
        } else if handed {
            self.last_pre_clip_norm = None;
            self.published = Some(self.model.version());
        } else {
            self.last_pre_clip_norm = optim::apply(&mut *self.model, self.optimizer.as_mut(), &hyper);
        }
        self.replicas = replicated.then(|| self.model.version());
        if self.last_workers > 1 && !handed && !self.split_step {
            if let Some(h) = self.helpers.0.as_mut() {
                // Helpers only read the model (see `Helpers`): not counted as a change.
                h.after_update(self.model.reading());
                self.published = Some(self.model.version());
            }
        }
        self.last_hyper = hyper;
        self.step += 1;
        self.last_loss = loss;
        if more && self.last_workers > 1 && !self.split_step {
            self.start_ahead(data);
        }
        if !more {
            // The caller may read the model now.
            self.gather();
        }
        if self.step % self.record_every == 0 {
            self.record();
        }
        loss
    }

    /// Gathers the next mini-batch and hands the helpers their shards of it (see
    /// [`Trainer::train_step_ahead`]).
    fn start_ahead(&mut self, data: &dyn Source) {
        let n = self.order.len();
        let bs = self.batch_size.clamp(1, n);
        let end = (self.cursor + bs).min(n);
        let rows = &self.order[self.cursor..end];
        let staged = std::mem::take(&mut self.next_gathered);
        let (own, shared) = own_rows(self.helpers.0.as_deref(), self.sharding, data, rows.len());
        if !staged {
            self.next_masked = data.mask(rows, &mut self.next_mask);
            data.gather_first(rows, own, &mut self.next_x, &mut self.next_y, &mut self.next_classes);
            self.next_filled = own;
        }
        if shared.is_some() {
            self.rows_source = shared.clone();
        }
        let m = self.sharding.shards(rows.len());
        let Some(mut h) = self.helpers.0.take() else { return };
        let classes = data.has_classes().then_some(&self.next_classes[..]);
        let mask = self.next_masked.then_some(&self.next_mask[..]);
        let vouched = parallel::Vouched { weights: self.published == Some(self.model.version()), batch: staged };
        let replicas = (&*self.optimizer, self.replicas == Some(self.model.version()));
        let gathers = shared.as_ref().map(|s| (s, rows));
        match dispatch(h.as_mut(), &mut self.job, self.model.reading(), self.loss, (&self.next_x, &self.next_y, classes, mask), m, vouched, replicas, gathers) {
            Ok(workers) if workers > 1 => {
                let version = self.model.version();
                let started = Started { step: self.step, epoch: self.epoch, cursor: self.cursor, batch_size: bs, data_len: data.len(), workers, version };
                self.ahead = Ahead(Some(started));
                self.helpers = HelperSlot(Some(h));
            }
            Ok(_) => self.helpers = HelperSlot(Some(h)),
            Err(why) => self.helper_failure = Some(format!("{why}: training continues on this worker alone (the same steps, slower)")),
        }
    }

    /// The step started ahead, if this is still it: the same step, order position, batch size,
    /// data size and weights. Otherwise its helpers' answers are awaited and dropped.
    fn take_ahead(&mut self, batch_size: usize, data_len: usize) -> Option<usize> {
        let started = self.ahead.0.take()?;
        let same = started
            == Started { step: self.step, epoch: self.epoch, cursor: self.cursor, batch_size, data_len, workers: started.workers, version: started.version };
        // The same network, not lent out mutably since it was handed out: the weights are those
        // (no comparison).
        let untouched = self.model.version() == started.version;
        let job = self.job.clone();
        let Some(h) = self.helpers.0.as_mut() else { return None };
        if same && self.accel.0.is_none() && job.as_ref().is_some_and(|j| untouched || h.dispatched_with(j, self.model.reading())) {
            return Some(started.workers);
        }
        self.drain(started.workers);
        None
    }

    /// Waits for the helpers' answers to a step started ahead that is not taken, and drops them.
    fn drain(&mut self, workers: usize) {
        let Some(h) = self.helpers.0.as_mut() else { return };
        // Replicating helpers make no update for it (no-op otherwise).
        h.exchange(None);
        for g in 1..workers {
            match h.collect_shared(g - 1) {
                Ok(sums) => {
                    if let Ok(sums) = Arc::try_unwrap(sums) {
                        sums.into_iter().for_each(|s| h.recycle(s.grads));
                    }
                }
                Err(why) => self.helper_failure = Some(format!("{why}: its shards are computed here (the same steps, slower)")),
            }
        }
    }

    /// Waits out a step started ahead (before the model, the data or the helpers change other
    /// than through a step).
    pub fn settle(&mut self) {
        if let Some(started) = self.ahead.0.take() {
            self.drain(started.workers);
        }
        self.gather();
    }

    /// Makes the model whole after relayed split steps: the helpers' rows of the first layer's
    /// W, ∂W and optimiser state copied in (see [`crate::split_layer::SplitRelay`]). Called
    /// before anything reads the model; nothing to do otherwise.
    pub fn gather(&mut self) {
        if !std::mem::take(&mut self.relayed.outside) {
            return;
        }
        match self.helpers.0.as_mut().and_then(|h| h.relay()) {
            Some(relay) => gather_into(relay, self.model.reading(), self.optimizer.as_mut()),
            // Cannot happen (helpers are dropped only after a gather): the rows are lost.
            None => self.relayed.held = None,
        }
    }

    /// Splits every mini-batch into `shards` canonical micro-shards from now on (1: one pass);
    /// part of what a run computes, whatever the number of workers.
    pub fn set_shards(&mut self, shards: usize) {
        self.sharding = parallel::Sharding::Count(shards);
    }

    /// Splits mini-batches as `sharding` says when the model can be split (see
    /// [`parallel::unshardable`]); otherwise one pass, and the reason.
    pub fn shard_if_possible(&mut self, sharding: parallel::Sharding) -> Option<&'static str> {
        let why = parallel::unshardable(&self.model);
        self.sharding = if why.is_none() { sharding } else { parallel::Sharding::Count(1) };
        self.whole = why;
        why
    }

    /// Why the steps run on one worker whatever the number asked, if they do: the lab's or the
    /// model's reason, or a mini-batch too small to split at its current size.
    pub fn why_single(&self) -> Option<String> {
        if self.shards() > 1 {
            return None;
        }
        Some(match (self.whole, self.sharding) {
            (Some(why), _) => why.to_string(),
            (None, parallel::Sharding::Rows(rows)) => {
                format!("a mini-batch of {} is too small to pay for a second worker: from {} examples it splits in shards of {rows}", self.batch_size, 2 * rows)
            }
            (None, parallel::Sharding::Count(_)) => "this lab's networks are small: one worker trains them fastest".to_string(),
        })
    }

    /// Rows of the last mini-batch's first micro-shard, whose activations and gradients the
    /// layers keep (what a lab reads from them after a step): the whole batch when unsplit.
    pub fn first_shard_rows(&self) -> usize {
        self.first_shard_rows
    }

    /// Micro-shards of a full mini-batch at the current batch size.
    pub fn shards(&self) -> usize {
        self.sharding.shards(self.batch_size.clamp(1, self.order.len().max(1)))
    }

    /// Lets `helpers` compute other workers' shards (None: all here). Steps give the same bits.
    pub fn set_helpers(&mut self, helpers: Option<Box<dyn Helpers>>) {
        // The rows the helpers going away hold, first.
        self.gather();
        self.relayed.held = None;
        // A step started ahead belongs to the helpers going away, and the weights they were given.
        self.ahead = Ahead(None);
        self.published = None;
        self.replicas = None;
        self.helpers_started = helpers.as_ref().map_or(0, |h| h.count());
        self.helpers = HelperSlot(helpers);
    }

    /// The model fingerprint the helpers were built for and how many were started (a lost one
    /// is not started again), when helpers are attached.
    pub fn helpers_key(&self) -> Option<(u64, usize)> {
        self.helpers.0.as_ref().map(|h| (h.fingerprint(), self.helpers_started))
    }

    /// Workers the last step ran on (this one included).
    pub fn last_workers(&self) -> usize {
        self.last_workers
    }

    /// Whether the last step split the first layer between the workers ([`crate::split_layer`])
    /// rather than the mini-batch alone.
    pub fn last_step_split(&self) -> bool {
        self.split_step
    }

    /// Why a helper's share was computed here instead (once).
    pub fn take_helper_failure(&mut self) -> Option<String> {
        self.helper_failure.take()
    }

    /// The step with the model's first layer split between this worker and the helpers (see
    /// [`crate::split_layer`]): the gradient left in the model's gradients and the update made,
    /// the bits of the sharded step. Threads share the model; relaying helpers (the browser's
    /// workers) keep their rows (see [`Trainer::gather`]). None: the helpers or the model cannot
    /// (or a step was started ahead for the sharded step), and nothing was changed.
    fn split_gradient(&mut self, data: &dyn Source, masked: bool, m: usize, started: Option<usize>, hyper: Hyper, more: bool) -> Option<f32> {
        let n = self.batch_x.shape()[0];
        if started.is_some() || self.batch_filled < n {
            return None;
        }
        let h = self.helpers.0.as_mut()?;
        let workers = (h.count() + 1).min(m).min(parallel::MAX_WORKERS);
        if workers < 2 || crate::split_layer::unsplittable(&self.model, self.batch_x.shape(), workers, &hyper, masked).is_some() {
            return None;
        }
        let classes = data.has_classes();
        let batch = parallel::Batch {
            x: tensor::slice(&self.batch_x),
            shape: self.batch_x.shape(),
            classes: classes.then_some(&self.batch_classes[..]),
            values: tensor::slice(&self.batch_y),
            mask: None,
        };
        // Threads only natively: without this the app's wasm carries their step's code for nothing.
        let threads = if cfg!(target_arch = "wasm32") { None } else { h.split() };
        let relayed = threads.is_none();
        let ((loss, right), failure) = if let Some(helpers) = threads {
            // The helpers gather their own rows (the next batch's too, while this worker records).
            let end = (self.cursor + self.batch_size.clamp(1, self.order.len())).min(self.order.len());
            let gathering =
                data.shared_rows().map(|source| crate::split_layer::Gathering { source, indices: &self.last_batch, next: &self.order[self.cursor..end] });
            match self.split.step(&mut self.model, self.optimizer.as_mut(), self.loss, &batch, m, &hyper, helpers, workers, gathering) {
                Ok(out) => out,
                // A failure of this worker's own part (a bug): not to be hidden by a retry.
                Err(why) => panic!("{why}"),
            }
        } else {
            let relay = h.relay()?;
            let width = self.model.layers[0].as_any().downcast_ref::<crate::ops::dense::Dense>().map(|d| (d.inputs, d.outputs))?;
            // Helpers that started over or changed say so: they are sent rows then, too.
            let fresh = relay.ready(self.model.reading(), n, width, workers)?;
            let version = self.model.version();
            let init = fresh || self.relayed.held != Some((version, workers));
            if init && std::mem::take(&mut self.relayed.outside) {
                // The rows sent are the model's: the helpers' of the last step first.
                gather_into(relay, self.model.reading(), self.optimizer.as_mut());
            }
            // The helpers mirror their rows of ∂W when the model will be read after this step.
            let grads = !more || (self.step + 1) % self.record_every == 0;
            let step = (self.loss, &batch, m, &hyper);
            match self.split.relay(&mut self.model, self.optimizer.as_mut(), step, relay, workers, init, grads) {
                Ok((out, failed)) => {
                    // After a failure every row is here; otherwise the helpers hold theirs, as
                    // the model's version after this step (its borrow above counted).
                    self.relayed.outside = !failed;
                    self.relayed.held = (!failed).then_some((self.model.version(), workers));
                    (out, failed.then(|| relay.failure().unwrap_or_else(|| "a helper failed".into())))
                }
                Err(why) => panic!("{why}"),
            }
        };
        if let Some(why) = failure {
            // Computed here, the same bits. Threads: the next steps run here alone. Relaying
            // helpers left the lost one out: the rest go on (what they say names how many).
            let note = if relayed { self.helpers.0.as_mut().and_then(|h| h.take_note()) } else { None };
            self.helper_failure = Some(
                note.unwrap_or_else(|| format!("{why}: its part was computed here, and training continues on this worker alone (the same steps, slower)")),
            );
            if !relayed {
                self.helpers = HelperSlot(None);
            }
        }
        // The helpers' replicas no longer hold the model (their first layer is not its own).
        self.replicas = None;
        self.published = None;
        self.applied = true;
        self.split_step = true;
        self.last_workers = workers;
        self.last_right = classes.then_some(right);
        Some(loss)
    }

    /// The mini-batch's gradient as the tree sum of its micro-shards' (see [`crate::parallel`]),
    /// left in the model's gradients; returns the loss.
    fn sharded_gradient(&mut self, data: &dyn Source, masked: bool, m: usize, started: Option<usize>, more: bool, hyper: Hyper) -> f32 {
        let classes = data.has_classes();
        let next = more.then_some(data);
        let width = parallel::width(m);
        let n = self.batch_x.shape()[0];
        let mut helpers = self.helpers.0.take();
        let mut workers = started.unwrap_or(1);
        let batch = parallel::Batch {
            x: tensor::slice(&self.batch_x),
            shape: self.batch_x.shape(),
            classes: if classes { Some(&self.batch_classes) } else { None },
            values: tensor::slice(&self.batch_y),
            mask: masked.then_some(&self.batch_mask[..]),
        };
        if let Some(h) = helpers.as_mut().filter(|h| started.is_none() && h.count() > 0) {
            let c = classes.then_some(&self.batch_classes[..]);
            let mask = masked.then_some(&self.batch_mask[..]);
            // Not the staged batch (a step started ahead would have been taken).
            let vouched = parallel::Vouched { weights: self.published == Some(self.model.version()), batch: false };
            let replicas = (&*self.optimizer, self.replicas == Some(self.model.version()));
            // Every row is here; the helpers still gather theirs (no copy for them).
            let shared = own_rows(Some(&**h), self.sharding, data, n).1;
            let gathers = shared.as_ref().map(|s| (s, &self.last_batch[..]));
            match dispatch(h.as_mut(), &mut self.job, self.model.reading(), self.loss, (&self.batch_x, &self.batch_y, c, mask), m, vouched, replicas, gathers) {
                Ok(w) => workers = w,
                Err(why) => {
                    self.helper_failure = Some(format!("{why}: training continues on this worker alone (the same steps, slower)"));
                    helpers = None;
                }
            }
        }
        let mut total = 0;
        self.model.visit_params(&mut |_, _, w, _| total += w.len());
        let mut parts = std::mem::take(&mut self.parts);
        // The last replicated steps' sums, once the helpers have let go of them (usually by
        // now: they finish a step alongside this worker; one still finishing is kept for later).
        let mut i = 0;
        while i < self.shared_own.0.len() {
            if Arc::strong_count(&self.shared_own.0[i]) > 1 && self.shared_own.0.len() <= 4 {
                i += 1;
                continue;
            }
            if let Ok(mut own) = Arc::try_unwrap(self.shared_own.0.swap_remove(i)) {
                self.spare.extend(own.drain(..).map(|p| p.grads));
                if parts.capacity() == 0 {
                    parts = own;
                }
            }
        }
        parts.clear();
        let replicated = workers > 1 && helpers.is_some() && self.job.as_ref().is_some_and(|j| j.replicated);
        let mut shared = Vec::new();
        // This worker's sums are read by the others too: written as the helpers write theirs.
        self.scratch.set_streamed(replicated && self.job.as_ref().is_some_and(|j| j.stream));
        // Last to first: shard 0 goes through the model last, and its activations stay in the
        // layers for the lab to read (the same rows on any number of workers; see `node_sum`).
        // (A cover has at most 2·log₂ 16 nodes: an array, no allocation per step.)
        let mut own = [(0, 0); 2 * parallel::MAX_SHARDS];
        let mut count = 0;
        for node in parallel::cover(parallel::group(m, workers, 0), width) {
            if node == (0, width) && width >= 2 {
                // The whole tree here: its two halves, which the finish adds straight into the
                // model's gradients (the same left + right), not a root copied in afterwards.
                own[count] = (0, width / 2);
                own[count + 1] = (width / 2, width);
                count += 2;
                continue;
            }
            own[count] = node;
            count += 1;
        }
        // Buffers this worker keeps (more, from helpers, go back to them at the step's end).
        let mut keep = width.trailing_zeros() as usize + 2;
        if replicated {
            // The pool for a helper still finishing the last step with this worker's sums of it
            // (see `parallel::pool_for`): filled at the first replicated step, not when one lags.
            keep = parallel::pool_for(count, m);
            let held = self.shared_own.0.iter().map(|s| s.len()).sum();
            parallel::top_up(&mut self.spare, held, keep, self.model.reading());
        }
        for &node in own[..count].iter().rev() {
            parts.extend(parallel::node_sum(&mut self.model, self.loss, &batch, m, node, &mut self.scratch, &mut self.spare));
        }
        if let Some(data) = next.filter(|_| workers > 1) {
            // While the helpers finish: the next mini-batch, for the step started after this one.
            let end = (self.cursor + self.batch_size.clamp(1, self.order.len())).min(self.order.len());
            let rows = &self.order[self.cursor..end];
            self.next_masked = data.mask(rows, &mut self.next_mask);
            let (own, shared) = own_rows(helpers.as_deref(), self.sharding, data, rows.len());
            data.gather_first(rows, own, &mut self.next_x, &mut self.next_y, &mut self.next_classes);
            self.next_filled = own;
            if shared.is_some() {
                self.rows_source = shared;
            }
            self.next_gathered = true;
            if let Some(h) = helpers.as_mut() {
                let next = parallel::Batch {
                    x: tensor::slice(&self.next_x),
                    shape: self.next_x.shape(),
                    classes: data.has_classes().then_some(&self.next_classes[..]),
                    values: tensor::slice(&self.next_y),
                    mask: self.next_masked.then_some(&self.next_mask[..]),
                };
                h.stage(&next, self.sharding.shards(rows.len()));
            }
        }
        let mut computed_others = false;
        // The root's loss and correct count, when a helper's answer went straight into it.
        let mut rooted = None;
        if let Some(h) = helpers.as_mut().filter(|_| workers > 1) {
            for g in 1..workers {
                // The nodes with a non-empty shard under them (a helper sends no empty node).
                let expected: Vec<(usize, usize)> = parallel::cover(parallel::group(m, workers, g), width)
                    .filter(|&(lo, hi)| (lo..hi.min(m)).any(|s| !parallel::shard_rows(n, m, s).is_empty()))
                    .collect();
                // Two workers, each with half of the tree: the helper's half added to this one's
                // as it arrives, straight into the model's gradients.
                let halves = !replicated && workers == 2 && width >= 2 && parts.len() == 1 && (parts[0].lo, parts[0].hi) == (0, width / 2);
                let added = match expected[..] {
                    [node] if halves && node == (width / 2, width) => h.collect_added(g - 1, node, &parts[0], self.model.reading()),
                    _ => None,
                };
                if let Some(Ok((loss, right))) = added {
                    rooted = Some((parts[0].loss + loss, parts[0].right + right));
                    continue;
                }
                let answer = match added {
                    Some(Err(why)) => Err(why),
                    _ => h.collect_shared(g - 1),
                };
                let answer = answer.and_then(|sums| {
                    let nodes: Vec<(usize, usize)> = sums.iter().map(|r| (r.lo, r.hi)).collect();
                    if nodes != expected {
                        Err(format!("worker {} answered for shards {nodes:?}, not {expected:?}", g + 1))
                    } else if let Some(bad) = sums.iter().find(|r| r.grads.len() != total) {
                        Err(format!("worker {} answered with {} gradients, not {total}", g + 1, bad.grads.len()))
                    } else {
                        Ok(sums)
                    }
                });
                match answer {
                    Ok(sums) if replicated => shared.push(sums),
                    Ok(sums) => parts.extend(Arc::try_unwrap(sums).unwrap_or_else(|kept| kept.as_ref().clone())),
                    Err(why) => {
                        self.helper_failure = Some(format!("{why}: its shards were computed here (the same steps, slower)"));
                        // Its rows, when it was to gather them itself.
                        let mut full = None;
                        if self.batch_filled < n {
                            let mut x = self.batch_x.clone();
                            if let Some(source) = &self.rows_source {
                                fill_rest(&mut x, self.batch_filled, &self.last_batch, source);
                            }
                            full = Some(x);
                        }
                        let batch = match &full {
                            Some(x) => parallel::Batch { x: tensor::slice(x), ..batch },
                            None => parallel::Batch { ..batch },
                        };
                        for node in expected {
                            parts.extend(parallel::node_sum(&mut self.model, self.loss, &batch, m, node, &mut self.scratch, &mut self.spare));
                        }
                        computed_others = true;
                    }
                }
            }
        }
        if computed_others {
            // Another worker's shards went through the model after shard 0: run shard 0 again
            // so that its activations are the ones left in the layers (its gradient is not used:
            // the tree's sum is written over it).
            let rows = parallel::shard_rows(n, m, 0);
            if !rows.is_empty() {
                parallel::shard_gradient(&mut self.model, self.loss, &batch, rows, &mut self.scratch);
            }
        }
        let (loss, right) = if replicated {
            // Every worker finishes the tree from everyone's sums and makes the update: the
            // helpers now, alongside this one (or none, when a helper failed: then the next
            // job carries the weights).
            let own = Arc::new(parts);
            let h = helpers.as_mut().expect("replicated");
            h.exchange((!computed_others).then(|| (std::iter::once(own.clone()).chain(shared.iter().cloned()).collect(), hyper)));
            let all: Vec<&parallel::NodeSum> = own.iter().chain(shared.iter().flat_map(|s| s.iter())).collect();
            let update = Some((self.optimizer.as_mut() as &mut dyn optim::Optimizer, &hyper));
            let (out, applied) =
                parallel::finish_shared_with(&mut self.model, width, &all, &mut self.spare, update).expect("a mini-batch has rows, its sums checked");
            drop(all);
            drop(shared);
            self.shared_own.0.push(own);
            self.replicated_step = !computed_others;
            self.applied = applied;
            out
        } else if let Some(out) = rooted.filter(|_| !computed_others) {
            // The root is in the model's gradients already.
            self.spare.extend(parts.drain(..).map(|p| p.grads));
            self.parts = parts;
            out
        } else {
            // One worker: the update is made in the root's pass. (Helpers that are sent the
            // weights as they are made take the update part by part instead.)
            let update = (workers == 1).then_some((self.optimizer.as_mut() as &mut dyn optim::Optimizer, &hyper));
            let (out, applied) = parallel::finish_into_with(&mut self.model, width, &mut parts, &mut self.spare, update).expect("a mini-batch has rows");
            self.parts = parts;
            self.applied = applied;
            out
        };
        // Buffers that came from helpers go back to them.
        if let Some(h) = helpers.as_mut().filter(|_| workers > 1) {
            while self.spare.len() > keep {
                h.recycle(self.spare.pop().expect("non-empty"));
            }
        }
        if let Some(note) = helpers.as_mut().and_then(|h| h.take_note()) {
            self.helper_failure = Some(note);
        }
        self.helpers = HelperSlot(helpers);
        self.last_workers = workers;
        // Counted for whole rows of class targets (padded sequences have a loss per step only).
        self.last_right = (classes && !masked).then_some(right);
        loss
    }

    /// Hands the steps to `accel` from now on (built from this model: same weights). The CPU
    /// optimiser's state is not carried over; the device's starts fresh.
    pub fn attach(&mut self, accel: Box<dyn Accelerator>) {
        self.settle();
        self.accel = Slot(Some(accel));
        self.synced_step = self.step;
        self.accel_base = self.step;
        self.rebuild = false;
    }

    /// Trains on the CPU again from the model as it is (call [`Trainer::sync`] until
    /// [`Trainer::in_sync`] first, to keep every step's weights). The optimiser's state starts
    /// fresh: the device's momentum or Adam moments stay on the device.
    pub fn detach(&mut self) {
        if self.accel.0.take().is_some() {
            self.reset_optimizer();
        }
        self.synced_step = self.step;
        self.rebuild = false;
    }

    /// The accelerator's name while one trains.
    pub fn accelerator_name(&self) -> Option<String> {
        self.accel.0.as_ref().map(|a| a.name())
    }

    /// The model holds the weights of every step taken.
    pub fn in_sync(&self) -> bool {
        self.accel.0.is_none() || self.synced_step == self.step
    }

    /// Steps run on an accelerator.
    pub fn accelerated(&self) -> bool {
        self.accel.0.is_some()
    }

    /// Continues a saved run: its counters (the weights are restored by the caller).
    pub fn resume_at(&mut self, step: u64, epoch: u64) {
        (self.step, self.epoch, self.synced_step, self.resumed_at) = (step, epoch, step, step);
    }

    /// A mini-batch loss has been computed here (not just restored counters).
    pub fn has_loss(&self) -> bool {
        self.known_steps() > self.resumed_at
    }

    /// The steps whose results (loss, weights) are known here.
    pub fn known_steps(&self) -> u64 {
        if self.accel.0.is_some() {
            self.synced_step
        } else {
            self.step
        }
    }

    /// The accelerator was built for another batch size or optimiser: the driver builds a new
    /// one (after the model is in sync); no step is taken meanwhile.
    pub fn needs_rebuild(&self) -> bool {
        self.rebuild
    }

    /// Steps are held back: the device is far ahead, or a rebuild is due.
    pub fn waiting(&mut self) -> bool {
        self.accel.0.is_some() && !self.may_submit()
    }

    /// Sum and count of the losses read back since the last call.
    pub fn take_synced_losses(&mut self) -> (f64, u64) {
        std::mem::take(&mut self.synced_losses)
    }

    /// Why the accelerator was dropped (once): the run goes on on the CPU.
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    fn may_submit(&mut self) -> bool {
        let bs = self.batch_size.clamp(1, self.order.len().max(1));
        let (kind, hyper) = (self.optimizer_kind, self.hyper);
        let Some(accel) = self.accel.0.as_mut() else { return true };
        if !accel.fits(bs, kind, &hyper) {
            self.rebuild = true;
        }
        !self.rebuild && accel.ahead() < MAX_AHEAD
    }

    fn fail(&mut self, why: String) {
        let name = self.accelerator_name().unwrap_or_default();
        let from = self.synced_step;
        self.detach();
        self.failure = Some(format!("{name} failed ({why}): training continues on the CPU from the weights of step {from}"));
    }

    /// Takes what the accelerator has finished: the model's weights and gradients, the losses of
    /// the steps since the last sync (recorded as the CPU records them). `wait`: block until it
    /// has (native drivers). Without an accelerator, nothing to do.
    pub fn sync(&mut self, wait: bool) -> Result<(), String> {
        self.gather();
        let Some(accel) = self.accel.0.as_mut() else { return Ok(()) };
        match accel.sync(&mut self.model, wait) {
            Ok(None) => Ok(()),
            Ok(Some(synced)) => {
                let base = self.accel_base;
                self.synced_step = base + synced.step;
                for (step, loss) in synced.losses {
                    let step = base + step;
                    self.last_loss = loss;
                    self.synced_losses = (self.synced_losses.0 + loss as f64, self.synced_losses.1 + 1);
                    if step % self.record_every == 0 {
                        let saved = std::mem::replace(&mut self.step, step);
                        self.record();
                        self.step = saved;
                    }
                }
                // (Records of earlier steps carry the synced gradients: the only ones read back.)
                Ok(())
            }
            Err(why) => {
                self.fail(why.clone());
                Err(why)
            }
        }
    }

    fn record(&mut self) {
        self.gather();
        // One allocation per record: sized like the previous record's.
        let mut grads = Vec::with_capacity(self.records.last().map_or(16, |r| r.grads.len()));
        self.model.reading().visit_params(&mut |_, _, _, g| grads.push(lane_sum(tensor::slice(g), |v| v as f64 * v as f64).sqrt() as f32));
        let accuracy = self.last_right.filter(|_| !self.batch_classes.is_empty()).map(|r| r as f32 / self.batch_classes.len() as f32);
        self.records.push(StepRecord { step: self.step, loss: self.last_loss, accuracy, grads });
        if self.step >= RECORDS_PER_OCTAVE * self.record_every {
            self.record_every *= 2;
        }
        // A driver that never takes snapshots (a long CLI run) must not grow this forever.
        if self.records.len() > 4 * RECORDS_PER_OCTAVE as usize {
            self.records.drain(..RECORDS_PER_OCTAVE as usize);
        }
    }

    /// The global norm of the last step's gradients (as applied: after L1/L2 and clipping).
    pub fn grad_norm(&mut self) -> f32 {
        self.gather();
        optim::grad_norm(self.model.reading())
    }

    /// The update:data ratio `‖Δw‖ / ‖w‖` of the last step, per parameter tensor.
    pub fn ratios(&mut self) -> Vec<f32> {
        self.gather();
        let mut out = Vec::new();
        if self.accel.0.is_some() {
            // The update is made on the device and never read back: unknown, not zero.
            self.model.reading().visit_params(&mut |_, _, _, _| out.push(f32::NAN));
            return out;
        }
        let norms = optim::update_norms(self.model.reading(), self.optimizer.as_ref(), &self.last_hyper);
        self.model.reading().visit_params(&mut |_, _, w, _| {
            let wn = lane_sum(tensor::slice(w), |v| v as f64 * v as f64).sqrt();
            let dn = norms.get(out.len()).copied().unwrap_or(0.0) as f64;
            out.push(if wn > 0.0 { (dn / wn) as f32 } else { 0.0 });
        });
        out
    }

    /// The update:data ratios of the weight tensors only (not biases), in model order.
    pub fn weight_ratios(&mut self) -> Vec<f32> {
        let ratios = self.ratios();
        let mut kinds = Vec::new();
        self.model.reading().visit_params(&mut |_, kind, _, _| kinds.push(kind));
        ratios.into_iter().zip(kinds).filter(|(_, k)| *k == crate::layer::ParamKind::Weight).map(|(r, _)| r).collect()
    }

    /// The share of the current epoch's examples used so far.
    pub fn epoch_progress(&self) -> f32 {
        self.cursor as f32 / self.order.len().max(1) as f32
    }

    /// Steps in one epoch at the current batch size (the last batch may be smaller).
    pub fn steps_per_epoch(&self) -> u64 {
        self.order.len().div_ceil(self.batch_size.clamp(1, self.order.len().max(1))) as u64
    }

    /// The learning rate the next step uses.
    pub fn current_lr(&self) -> f32 {
        self.schedule.lr(self.hyper.lr, self.step, self.schedule_period)
    }

    /// Loss over a whole dataset in evaluation mode (leaves each layer's output on that data).
    pub fn evaluate(&mut self, data: &Dataset) -> f32 {
        let out = self.model.forward(&data.x, Mode::Eval);
        let target = match &data.y {
            Targets::Values(t) => Target::Values(t),
            Targets::Classes(c) => Target::Classes(c),
        };
        self.loss.value(out, target)
    }

    /// Per-layer statistics: a layer with parameters, merged with the parameter-free layers
    /// (activations) that follow it. Call after `evaluate` so activations cover a whole dataset.
    pub fn layer_snapshots(&mut self) -> Vec<LayerSnapshot> {
        let mut groups: Vec<LayerSnapshot> = Vec::new();
        let mut index = 0usize;
        let ratios = self.ratios();
        for layer in self.model.layers.iter_mut() {
            let mut params = Vec::new();
            layer.visit_params(&mut |name, _, w, g| {
                params.push(ParamSnapshot {
                    name: name.to_string(),
                    value: TensorStats::of(tensor::slice(w)),
                    grad: TensorStats::of(tensor::slice(g)),
                    update_ratio: ratios.get(index).copied().unwrap_or(0.0),
                });
                index += 1;
            });
            let activations = TensorStats::of(tensor::slice(layer.output()));
            if !params.is_empty() || groups.is_empty() {
                groups.push(LayerSnapshot { name: layer.name(), params, activations });
            } else {
                let g = groups.last_mut().expect("non-empty");
                g.name = format!("{} + {}", g.name, layer.name());
                g.activations = activations;
            }
        }
        groups
    }

    /// True when a parameter holds NaN or ±∞.
    /// About the bytes a copy of this trainer holds: the model's tensors, the optimiser's state
    /// (up to two values per weight: Adam's moments), the mini-batch buffers and the order.
    pub fn heap_bytes(&mut self) -> usize {
        let mut weights = 0;
        self.model.visit_params(&mut |_, _, w, _| weights += w.len());
        let slots = match self.optimizer_kind {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Adam => 2,
            _ => 1,
        };
        let batch = self.batch_x.len() + self.batch_y.len() + self.dout.len();
        self.model.heap_bytes() + (slots * weights + batch + self.order.len() * 2) * std::mem::size_of::<f32>()
    }

    pub fn params_non_finite(&mut self) -> bool {
        let mut bad = false;
        self.model.visit_params(&mut |_, _, w, _| bad |= tensor::slice(w).iter().any(|v| !v.is_finite()));
        bad
    }
}
