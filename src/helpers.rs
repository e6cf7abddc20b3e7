//! Training on several workers in the browser: the lead training worker starts helper workers
//! (the same wasm), each with a replica of the model, and shares one `SharedArrayBuffer` with
//! them. A step: the lead writes the mini-batch into it, bumps a sequence number and wakes them
//! (`Atomics.notify`); each helper computes the tree sums of its shards and writes them back; the
//! lead waits (`Atomics.wait`, with a deadline) and finishes the tree (`engine::parallel`: the
//! same bits for any number of workers). Within a run of steps the next job goes out at once:
//! right after its update the lead writes the weights under a sequence lock and rings, then (a
//! step started ahead, `Trainer::train_step_ahead`) rings the next job, whose rows it already
//! wrote while it waited for the helpers (the inputs have two slots, by job parity); the lead
//! records the step while the helpers compute. A job names the weights it needs; the lead
//! rewrites them first when the model changed otherwise (a rewind, an opened run), and a helper
//! holding others reads them again. The weights and the answers go in pieces, each followed by how
//! far the write has come, so the other side copies each piece as soon as it is written; a helper
//! waiting for its next job copies its rows of it as soon as the lead has staged them.
//!
//! Why shared memory rather than `postMessage`: the engine's step is synchronous, and a message
//! is only delivered when the receiving worker returns to its event loop — a step would be cut in
//! two tasks, and each hop costs a task switch plus a copy of the weights. With the buffer, the
//! helpers wake in microseconds and the step stays one call. It needs a cross-origin-isolated page
//! (COOP/COEP headers: the serve command and the test server send them); without it the page
//! trains on one worker and says why.
//!
//! A helper that stops answering (killed, crashed, stuck) misses its deadline: its shards are
//! computed by the lead (the same bits), it is dropped, and the run goes on with the rest.

mod relay;

use crate::shared_copy::{self, Copier};
use engine::lab::{parse_link, replicas, LabConfig};
use engine::layer::Layer;
use engine::loss::Loss;
use engine::optim::{self, Hyper, Optimizer};
use engine::parallel::{self, cover, group, width, Batch, Helpers, NodeSum, ShardJob, Targets, Vouched, MAX_WORKERS};
use engine::sequential::Sequential;
use js_sys::{Atomics, Float32Array, Int32Array, Object, Reflect, SharedArrayBuffer, WebAssembly};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent, Worker, WorkerOptions, WorkerType};

/// Control words (i32): the job's header, then one block per helper.
const SEQ: u32 = 0;
const ROWS: u32 = 1;
const RANK: u32 = 2;
const SHAPE: u32 = 3; // 6 dims
const KIND: u32 = 9; // 0 classes, 1 values, 2 padded sequences (classes, then the mask as 0/1)
const COLS: u32 = 10;
const SHARDS: u32 = 11;
const WORKERS: u32 = 12;
const LOSS: u32 = 13;
/// The weights' sequence number: odd while the lead writes them, even once written.
const WSEQ: u32 = 14;
/// Bumped (and notified) whenever there is something for the helpers: weights or a job.
const BELL: u32 = 15;
/// The weights (their WSEQ) that the current job is computed with.
const JOB_WSEQ: u32 = 16;
/// The copy of the weights that WSEQ names (see [`Layout::slots`]).
const WSLOT: u32 = 17;
/// The copy of the rows and targets the current job reads.
const JOB_SLOT: u32 = 18;
/// How the current job's answers turn over their places: 0 not at all (node k in place k),
/// otherwise over this many far places (see [`Layout::place`]).
const RING: u32 = 19;
/// How far the weights write under way has come: it has written everything before this float of
/// the weights region (see [`write_pieces`]).
const WPROG: u32 = 20;
/// The helpers' rows of a next batch written early ([`Helpers::stage`]): their number (odd while
/// written, even once written) and their copy; and the number whose rows the current job uses
/// (0: its rows were written with it). A helper with nothing to do copies the staged rows before
/// the job comes (see [`Helper::pre_read`]).
const STAGE: u32 = 21;
const STAGE_SLOT: u32 = 22;
const JOB_STAGE: u32 = 23;
const BLOCKS: u32 = 32;
const BLOCK: u32 = 32;
// In a helper's block:
const DONE: u32 = 0; // the last sequence number answered
const STATUS: u32 = 1; // 0 ok, 1 failed
const NODES: u32 = 2; // count, then lo/hi pairs from NODE_LIST
const NODE_LIST: u32 = 3;
const GROUP: u32 = 20; // the group this helper computes in the current job (0: none)
const READY: u32 = 21; // 1 replica built, -1 no replica matches
const RIGHTS: u32 = 22; // each node's correct predictions (MAX_NODES of them)
const ASEQ: u32 = 30; // the sequence number whose answer is being written (see `write_pieces`)
const APROG: u32 = 31; // how far that answer has come: floats of its gradients written, node after node
const CONTROL_INTS: u32 = BLOCKS + BLOCK * MAX_WORKERS as u32;
/// How long a helper that has just answered keeps polling for the next job before it sleeps.
/// Measured in Chromium on 2-core VMs (2026-12-03, alternating builds): W2 on 2 workers 6–8 %
/// faster with 1 ms than sleeping at once (three runs, 13 of 19 rounds: the job usually comes
/// within it, and waking costs more); W3, whose helpers idle 1.3–2.5 ms a step, within the
/// noise; 3 ms slower for W3. Bounded, so a paused run's helpers sleep.
const SPIN_MS: f64 = 1.0;
/// The most tree nodes one helper answers with.
const MAX_NODES: usize = 8;
// A helper's block holds its node list and its counts of correct predictions.
const _: () = assert!(NODE_LIST + 2 * MAX_NODES as u32 <= GROUP && RIGHTS + MAX_NODES as u32 <= ASEQ && APROG < BLOCK);
/// Floats a piece: the weights and the answers are written in pieces, each followed by how far
/// the write has come, so that the other worker copies piece i while piece i + 1 is written — a
/// copy across costs one piece after the write instead of a second whole pass (W2: 400 KB, ~15 µs
/// each way where lines move fast, ~25 through far copies).
const PIECE: usize = 16 * 1024;
/// The loss functions by code (the header's LOSS).
const LOSSES: [Loss; 5] = [Loss::Mse, Loss::L1, Loss::Bce, Loss::Softmax, Loss::Nll];

/// Floats in a 64-byte line: every region, every tensor of the weights and every answer starts
/// on one. V8 copies between a `SharedArrayBuffer` and wasm memory eight bytes at a time only
/// when both sides are 8-byte aligned alike, and byte by byte otherwise: 400 KB in ~140 µs
/// instead of ~20 (Node 20, this VM). Answers once began one float after a line (the loss came
/// first), so both the helper's write and the lead's read of every answer went byte by byte.
const LINE: usize = 16;
const _: () = assert!((CONTROL_INTS as usize * 4) % (LINE * 4) == 0);

/// `n` floats rounded up to whole lines.
fn lined(n: usize) -> usize {
    n.div_ceil(LINE) * LINE
}

/// Visits the weight tensors of `model` with where each lies in the buffer: on its own lines.
fn visit_placed(model: &mut Sequential, f: &mut dyn FnMut(u32, &mut engine::tensor::Tensor)) {
    let mut at = 0;
    model.visit_params(&mut |_, _, w, _| {
        f(at as u32, w);
        at += lined(w.len());
    });
}

/// Floats the weights of `model` take in the buffer.
fn weights_len(model: &mut Sequential) -> usize {
    let mut len = 0;
    visit_placed(model, &mut |at, w| len = at as usize + lined(w.len()));
    len
}

/// Sizes of the float regions: weights (`params`: each tensor on its own lines), inputs and
/// targets, and each helper's answers (`grads`: the gradients, flattened, of one answer).
///
/// Each region is kept in `slots` copies. *Near*: one copy of the weights, two of the rows (by the
/// job's parity: the next job's rows are written while a helper still reads this one's), answer k
/// in place k — each worker writes again where the other has just read. *Far*: the copies in
/// turn, so that a line is written again only after many others. A store to a line that another
/// core has read waits until that core gives it up, and on these VMs how long that takes swings
/// with where the host runs the vCPUs: writing W2's 400 KB for the other worker took ~15 µs in
/// some minutes and ~170 µs in others, and two workers trained at ~105,000 or ~70,000 examples/s
/// accordingly (forty-fourth sitting, `scripts/bench-crosscore.mjs`). Far copies cost a trip to
/// memory (~25 µs a write, ~25 a read, whatever the minute): the lead chooses near or far by timing
/// steps, as native threads choose how to copy ([`parallel::CopyChooser`]).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    params: usize,
    grads: usize,
    x: usize,
    y: usize,
    helpers: usize,
    /// Copies of the weights, rows and targets: 2 near ones, then the far ones (none when the
    /// budget leaves fewer than [`MIN_FAR`]).
    slots: usize,
}

/// The most far copies, and the fewest worth having: 16 (~20 MB for W2) were as slow as one in
/// the probe; 64 were fast in every minute.
const MAX_FAR: usize = 64;
const MIN_FAR: usize = 24;
/// The most floats the far copies may add to the buffer (64 MB).
const FAR_BUDGET: usize = 16 << 20;

impl Layout {
    /// The far copies `layout` affords within [`FAR_BUDGET`] (0: none).
    fn far_slots(params: usize, grads: usize, x: usize, y: usize, helpers: usize) -> usize {
        let per = lined(params) + lined(x) + lined(y) + helpers * lined(grads + 1);
        let far = (FAR_BUDGET / per.max(1)).min(MAX_FAR);
        if far >= MIN_FAR {
            far
        } else {
            0
        }
    }
    /// Far copies (0: none).
    fn far(&self) -> usize {
        self.slots.saturating_sub(2)
    }
    /// Answer places of each helper: [`MAX_NODES`] near ones, then the far ones.
    fn places(&self) -> usize {
        MAX_NODES + self.far()
    }
    /// Copy `slot` of the weights (0 near, 2.. far).
    fn weights_at(&self, slot: usize) -> u32 {
        (slot.min(self.slots - 1) * lined(self.params)) as u32
    }
    /// The inputs in copy `slot` (0 and 1 near, 2.. far).
    fn x_at(&self, slot: usize) -> u32 {
        (self.slots * lined(self.params) + slot.min(self.slots - 1) * lined(self.x)) as u32
    }
    /// The targets in copy `slot`.
    fn y_at(&self, slot: usize) -> u32 {
        (self.slots * (lined(self.params) + lined(self.x)) + slot.min(self.slots - 1) * lined(self.y)) as u32
    }
    /// The gradients in answer place `k` of helper `h`.
    fn grads_at(&self, h: usize, k: usize) -> u32 {
        (self.slots * (lined(self.params) + lined(self.x) + lined(self.y)) + (h * self.places() + k.min(self.places() - 1)) * lined(self.grads + 1)) as u32
    }
    /// Job `seq`'s rows copy: near by parity, far in turn over the far copies.
    fn job_slot(&self, seq: i32, far: bool) -> usize {
        if far && self.far() >= 2 {
            2 + seq.rem_euclid(self.far() as i32) as usize
        } else {
            seq.rem_euclid(2) as usize
        }
    }
    /// The place of node `k` of a job's `nodes`: k (`ring` 0), or each job's nodes after the
    /// last job's round the `ring` far places.
    fn place(seq: i32, nodes: usize, k: usize, ring: usize) -> usize {
        if ring == 0 {
            return k;
        }
        MAX_NODES + ((seq.max(0) as u64 * nodes as u64 + k as u64) % ring as u64) as usize
    }
    /// Its loss, after the gradients.
    fn loss_at(&self, h: usize, k: usize) -> u32 {
        self.grads_at(h, k) + self.grads as u32
    }
    fn floats(&self) -> usize {
        self.slots * (lined(self.params) + lined(self.x) + lined(self.y)) + self.helpers * self.places() * lined(self.grads + 1)
    }
    fn to_js(self) -> js_sys::Array {
        [self.params, self.grads, self.x, self.y, self.helpers, self.slots].iter().map(|&v| JsValue::from(v as f64)).collect()
    }
    fn from_js(v: &JsValue) -> Option<Layout> {
        let a: js_sys::Array = v.clone().dyn_into().ok()?;
        let n = |i: u32| a.get(i).as_f64().filter(|v| *v >= 0.0 && *v < 1e9).map(|v| v as usize);
        let slots = n(5)?;
        if !(2..=2 + MAX_FAR).contains(&slots) {
            return None;
        }
        Some(Layout { params: n(0)?, grads: n(1)?, x: n(2)?, y: n(3)?, helpers: n(4)?.min(MAX_WORKERS), slots })
    }
}

/// The shared buffer as the two views the protocol uses, and the copier into and out of it when
/// it is a shared wasm memory (see [`crate::shared_copy`]).
#[derive(Clone)]
struct Shared {
    buffer: SharedArrayBuffer,
    memory: Option<WebAssembly::Memory>,
    copier: Option<Copier>,
    ints: Int32Array,
    floats: Float32Array,
    layout: Layout,
}

impl Shared {
    fn new(layout: Layout) -> Result<Shared, String> {
        let bytes = CONTROL_INTS as usize * 4 + layout.floats() * 4;
        if bytes > 1 << 30 {
            return Err(format!("the workers would share {} MB: too much", bytes >> 20));
        }
        Ok(match shared_copy::shared_memory(bytes) {
            Some(memory) => Shared::over(memory.buffer().unchecked_into(), layout, Some(memory)),
            None => Shared::over(SharedArrayBuffer::new(bytes as u32), layout, None),
        })
    }

    fn over(buffer: SharedArrayBuffer, layout: Layout, memory: Option<WebAssembly::Memory>) -> Shared {
        let ints = Int32Array::new_with_byte_offset_and_length(&buffer, 0, CONTROL_INTS);
        let floats = Float32Array::new_with_byte_offset_and_length(&buffer, CONTROL_INTS * 4, layout.floats() as u32);
        let copier = memory.as_ref().and_then(shared_copy::copier);
        Shared { buffer, memory, copier, ints, floats, layout }
    }

    /// The byte of the shared memory where float `at` of the float region lies.
    fn byte(at: u32) -> u32 {
        CONTROL_INTS * 4 + at * 4
    }

    /// The floats from `at` = `values`.
    fn copy_out(&self, at: u32, values: &[f32]) {
        match &self.copier {
            Some(c) => c.write(Shared::byte(at), values),
            None => self.floats.subarray(at, at + values.len() as u32).copy_from(values),
        }
    }

    /// `out` = the floats from `at`.
    fn copy_in(&self, at: u32, out: &mut [f32]) {
        match &self.copier {
            Some(c) => c.read(Shared::byte(at), out),
            None => self.floats.subarray(at, at + out.len() as u32).copy_to(out),
        }
    }

    /// `out[i] = a[i] + s[i]`, `s` the floats from `at` (the bits of `lanes::add_to`); `piece`
    /// holds them on the way when there is no copier.
    fn add_in(&self, at: u32, out: &mut [f32], a: &[f32], piece: &mut Vec<f32>) {
        match &self.copier {
            Some(c) => c.add(Shared::byte(at), out, a),
            None => {
                piece.resize(out.len(), 0.0);
                self.copy_in(at, piece);
                engine::lanes::add_to(out, a, piece);
            }
        }
    }

    fn get(&self, i: u32) -> i32 {
        Atomics::load(&self.ints, i).unwrap_or(0)
    }

    fn set(&self, i: u32, v: i32) {
        let _ = Atomics::store(&self.ints, i, v);
    }

    fn block(h: usize, field: u32) -> u32 {
        BLOCKS + BLOCK * h as u32 + field
    }

    fn write(&self, at: u32, values: &[f32]) {
        self.copy_out(at, values);
    }

    fn read(&self, at: u32, out: &mut Vec<f32>, n: usize) {
        out.resize(n, 0.0);
        self.copy_in(at, out);
    }

    /// Writes `values` at `at` in pieces of [`PIECE`], storing `done + ` the floats written so
    /// far in control word `progress` after each: a reader copies a piece once `progress` has
    /// passed its end ([`Shared::await_progress`]).
    fn write_pieces(&self, at: u32, values: &[f32], progress: u32, done: usize) {
        for (i, piece) in values.chunks(PIECE).enumerate() {
            let from = (i * PIECE) as u32;
            self.copy_out(at + from, piece);
            self.set(progress, (done + i * PIECE + piece.len()) as i32);
        }
    }

    /// Copies `out.len()` floats from `at`, each piece once control word `progress` says it is
    /// written (`done` counts what came before `at`), while `live()` — the write is still the one
    /// followed — and until `deadline` (ms of `clock`). False: stopped, `out` partly copied.
    fn read_pieces(&self, at: u32, out: &mut [f32], (progress, done): (u32, usize), live: &dyn Fn() -> bool, clock: &Clock, deadline: f64) -> bool {
        for (i, piece) in out.chunks_mut(PIECE).enumerate() {
            let from = i * PIECE;
            if !self.await_progress(progress, done + from + piece.len(), live, clock, deadline) {
                return false;
            }
            self.copy_in(at + from as u32, piece);
        }
        true
    }

    /// Spins until control word `progress` holds at least `need`. Read before `live()`: a value
    /// seen while the write is still the one followed is that write's (the writer resets it
    /// before announcing a write).
    fn await_progress(&self, progress: u32, need: usize, live: &dyn Fn() -> bool, clock: &Clock, deadline: f64) -> bool {
        loop {
            let got = self.get(progress).max(0) as usize;
            if !live() {
                return false;
            }
            if got >= need {
                return true;
            }
            if clock.now() > deadline {
                return false;
            }
        }
    }
}

thread_local! {
    /// `deeplyDebug.killWorker()` asked to kill a helper (test hook; the lead worker's thread).
    static KILL: Cell<bool> = const { Cell::new(false) };
    /// `deeplyDebug.switchCopies()` asked for near and far copies in turn (test hook).
    static SWITCH: Cell<bool> = const { Cell::new(false) };
}

/// Kills the first live helper at the next step, without telling the run: as a crash would.
pub fn kill_one_at_next_step() {
    KILL.with(|k| k.set(true));
}

/// Near and far copies in turn, a job each, instead of as timed (see [`Layout`]; a test hook).
pub fn switch_copies_every_job() {
    SWITCH.with(|s| s.set(true));
}

/// Whether this page may share memory between workers (cross-origin isolated).
pub fn isolated() -> bool {
    Reflect::get(&js_sys::global(), &"crossOriginIsolated".into()).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

/// The lead worker's side: helper workers for one model.
pub struct WorkerHelpers {
    workers: Vec<Worker>,
    /// Helpers still in the run (a lost one is terminated and left out).
    alive: Vec<bool>,
    /// Set by a helper's `onerror` (it crashed): left out from the next step.
    crashed: Rc<RefCell<Vec<bool>>>,
    /// Set when a helper said it listens (its `Ready`): a message before that would be lost.
    listening: Rc<RefCell<Vec<bool>>>,
    /// Helpers told about the current buffer.
    told: Vec<bool>,
    shared: Option<Shared>,
    /// Helpers taking part in the dispatched job, by group (group g = `active[g - 1]`).
    active: Vec<usize>,
    seq: i32,
    fingerprint: u64,
    query: String,
    /// How long the lead waits for a helper (ms), from the step times seen.
    deadline_ms: f64,
    note: Option<String>,
    spare: Vec<Vec<f32>>,
    /// The last weights written to the buffer (even; 0: none), and their copy.
    wseq: i32,
    wslot: usize,
    /// Far copies written so far (the next one goes in turn after them).
    far_written: usize,
    /// Whether far copies are in use (see [`Layout`]), as the chooser says; the current job's
    /// answer ring (0: near).
    far: bool,
    ring: usize,
    chooser: parallel::CopyChooser,
    last_dispatch: Option<f64>,
    /// Helpers' rows of a next batch written early: the job's sequence number (0: none), where
    /// they start and their copy (the job that follows uses them only when its caller vouches
    /// that its batch is the one staged).
    staged: (i32, usize, usize),
    /// The number of the rows staged last (even; see [`STAGE`]).
    stage_id: i32,
    /// The buffer's weights read back, to compare with the model's when nothing vouches for them.
    readback: Vec<f32>,
    /// A piece of an answer on its way into the root (see `collect_added_inner`).
    piece: Vec<f32>,
    /// Where each weight tensor lies in the buffer (see `update_and_publish_inner`).
    placed: Vec<u32>,
    /// Split steps' state (see [`relay`]).
    relay: relay::Lead,
    clock: Clock,
    _on_error: Vec<Closure<dyn FnMut(web_sys::ErrorEvent)>>,
    _on_message: Vec<Closure<dyn FnMut(MessageEvent)>>,
}

// SAFETY: wasm32 without threads: the lead worker's wasm runs on one thread, so these JS
// handles never cross threads (`Helpers: Send` is for the native helper threads).
unsafe impl Send for WorkerHelpers {}

impl WorkerHelpers {
    /// Starts `count` helper workers for `model`, a network of the run `config` describes.
    pub fn start(model: &Sequential, count: usize, config: &LabConfig) -> Result<WorkerHelpers, String> {
        if !isolated() {
            return Err("training on several workers needs a cross-origin-isolated page (COOP/COEP headers, as the serve command sends)".into());
        }
        let mut model = model.clone();
        let fingerprint = parallel::fingerprint(&mut model);
        let crashed = Rc::new(RefCell::new(vec![false; count]));
        let listening = Rc::new(RefCell::new(vec![false; count]));
        let mut workers = Vec::new();
        let mut on_error = Vec::new();
        let mut on_message = Vec::new();
        for h in 0..count.min(MAX_WORKERS - 1) {
            let options = WorkerOptions::new();
            options.set_type(WorkerType::Module);
            let worker = Worker::new_with_options("./worker_main.js", &options).map_err(|_| format!("could not start worker {}", h + 2))?;
            let crashed = crashed.clone();
            let closure = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |_| {
                if let Some(c) = crashed.borrow_mut().get_mut(h) {
                    *c = true;
                }
            });
            worker.set_onerror(Some(closure.as_ref().unchecked_ref()));
            on_error.push(closure);
            let listening = listening.clone();
            let closure = Closure::<dyn FnMut(MessageEvent)>::new(move |_| {
                if let Some(l) = listening.borrow_mut().get_mut(h) {
                    *l = true;
                }
            });
            worker.set_onmessage(Some(closure.as_ref().unchecked_ref()));
            on_message.push(closure);
            workers.push(worker);
        }
        Ok(WorkerHelpers {
            alive: vec![true; workers.len()],
            told: vec![false; workers.len()],
            workers,
            crashed,
            listening,
            shared: None,
            active: Vec::new(),
            seq: 0,
            fingerprint,
            query: config.to_query(),
            deadline_ms: 2_000.0,
            note: None,
            spare: Vec::new(),
            wseq: 0,
            wslot: 0,
            far_written: 0,
            far: false,
            ring: 0,
            chooser: parallel::CopyChooser::default(),
            last_dispatch: None,
            staged: (0, 0, 0),
            stage_id: 0,
            readback: Vec::new(),
            piece: Vec::new(),
            placed: Vec::new(),
            relay: relay::Lead::default(),
            clock: Clock::new(),
            _on_error: on_error,
            _on_message: on_message,
        })
    }

    /// A new buffer for `layout`; each helper hears of it once it listens.
    fn share(&mut self, layout: Layout) -> Result<(), String> {
        self.shared = Some(Shared::new(layout)?);
        // Helpers start over on a new buffer: they hold no rows of split steps.
        self.relay.primed = None;
        self.wseq = 0;
        self.staged.0 = 0;
        self.stage_id = 0;
        self.far_written = 0;
        self.told.iter_mut().for_each(|t| *t = false);
        self.tell();
        Ok(())
    }

    /// Sends the buffer to the helpers that listen and have not had it (they build their
    /// replicas and say when they are ready).
    fn tell(&mut self) {
        let Some(shared) = self.shared.clone() else { return };
        for h in 0..self.workers.len() {
            if self.told[h] || !self.alive[h] || !self.listening.borrow().get(h).copied().unwrap_or(false) {
                continue;
            }
            let init = Object::new();
            let fields: [(&str, JsValue); 6] = [
                ("buffer", shared.buffer.clone().into()),
                ("memory", shared.memory.clone().map_or(JsValue::UNDEFINED, JsValue::from)),
                ("layout", shared.layout.to_js().into()),
                ("index", (h as f64).into()),
                ("query", self.query.clone().into()),
                ("fingerprint", self.fingerprint.to_string().into()),
            ];
            for (k, v) in fields {
                let _ = Reflect::set(&init, &k.into(), &v);
            }
            let message = Object::new();
            let _ = Reflect::set(&message, &"deeplyHelper".into(), &init);
            match self.workers[h].post_message(&message) {
                Ok(()) => self.told[h] = true,
                Err(_) => self.lose(h, "could not be reached"),
            }
        }
    }

    /// Writes `model`'s weights into the buffer under the sequence lock and rings the bell;
    /// returns their sequence number (0: there is no buffer for them).
    fn publish(&mut self, model: &mut Sequential) -> i32 {
        let Some(shared) = self.shared.clone() else { return 0 };
        if weights_len(model) != shared.layout.params {
            return 0;
        }
        let (next, slot) = self.next_weights(&shared);
        write_weights(&shared, model, next, slot);
        (self.wseq, self.wslot) = (next, slot);
        next
    }

    /// The number (even) and the copy of the next weights written.
    fn next_weights(&mut self, shared: &Shared) -> (i32, usize) {
        // Odd while writing: a helper copying meanwhile sees the number change and discards.
        let next = match self.wseq.max(0) + 2 {
            n if n > 0x3fff_fff0 => 2,
            n => n,
        };
        let slot = if self.far && shared.layout.far() > 0 {
            self.far_written = (self.far_written + 1) % shared.layout.far();
            2 + self.far_written
        } else {
            0
        };
        (next, slot)
    }

    /// Whether the model holds the weights last written (bit for bit), read back from the buffer
    /// (only when nothing vouches for them: the trainer knows unless its model was lent out).
    fn holds_written(&mut self, model: &mut Sequential) -> bool {
        let Some(shared) = self.shared.clone() else { return false };
        if self.wseq <= 0 || weights_len(model) != shared.layout.params {
            return false;
        }
        let mut same = true;
        let back = &mut self.readback;
        let base = shared.layout.weights_at(self.wslot);
        visit_placed(model, &mut |at, w| {
            let w = engine::tensor::slice(w);
            if same {
                shared.read(base + at, back, w.len());
                same = engine::lanes::same_bits(back, w);
            }
        });
        same
    }

    fn lose(&mut self, h: usize, why: &str) {
        if self.alive[h] {
            self.alive[h] = false;
            self.workers[h].terminate();
            let left = self.alive.iter().filter(|a| **a).count() + 1;
            self.note = Some(format!("worker {} {why}: training continues on {left} worker{}", h + 2, if left == 1 { "" } else { "s" }));
        }
    }
}

impl Drop for WorkerHelpers {
    fn drop(&mut self) {
        self.workers.iter().for_each(|w| w.terminate());
    }
}

impl WorkerHelpers {
    fn dispatch_inner(&mut self, job: &std::sync::Arc<ShardJob>, model: &mut Sequential, batch: &Batch, vouched: Vouched) -> Result<bool, String> {
        if KILL.with(|k| k.take()) {
            if let Some(h) = self.alive.iter().position(|a| *a) {
                self.workers[h].terminate();
            }
        }
        let crashed: Vec<usize> = self.crashed.borrow().iter().enumerate().filter(|(_, c)| **c).map(|(h, _)| h).collect();
        for h in crashed {
            self.lose(h, "crashed");
        }
        let rows = job.shape.first().copied().unwrap_or(0).max(1);
        let (y, kind, cols) = match &job.targets {
            Targets::Classes(c) => (c.iter().map(|&v| v as f32).collect::<Vec<f32>>(), 0, 1),
            Targets::Values { values, cols } => (values.clone(), 1, *cols),
            // `cols` classes per row (one per time step), then as many mask entries.
            Targets::Masked { classes, mask } => {
                (classes.iter().map(|&v| v as f32).chain(mask.iter().map(|&m| f32::from(u8::from(m)))).collect(), 2, classes.len() / rows)
            }
        };
        let mut grads = 0;
        model.visit_params(&mut |_, _, w, _| grads += w.len());
        let needs = Layout { params: weights_len(model), grads, x: batch.x.len(), y: y.len(), helpers: self.workers.len(), slots: 2 };
        let fits = self
            .shared
            .as_ref()
            .is_some_and(|s| (s.layout.params, s.layout.grads) == (needs.params, needs.grads) && s.layout.x >= needs.x && s.layout.y >= needs.y);
        if !fits {
            // Room for twice the batch: a larger batch later need not start the helpers over.
            let (x, y) = (needs.x * 2, needs.y * 2);
            let slots = 2 + Layout::far_slots(needs.params, needs.grads, x, y, needs.helpers);
            self.share(Layout { x, y, slots, ..needs })?;
            return Ok(false);
        }
        self.tell();
        let shared = self.shared.clone().expect("checked");
        let mut ready = true;
        for h in 0..self.workers.len() {
            match shared.get(Shared::block(h, READY)) {
                -1 => self.lose(h, "could not build the network"),
                1 => {}
                _ if self.alive[h] => ready = false,
                _ => {}
            }
        }
        let live: Vec<usize> = (0..self.workers.len()).filter(|&h| self.alive[h]).collect();
        if !ready || live.is_empty() || job.shape.len() > 6 || job.workers != live.len() + 1 {
            return Ok(false);
        }
        // Near or far copies for this job (and the weights written after its update), timed.
        let now = self.clock.now();
        if let Some(last) = self.last_dispatch.replace(now) {
            self.chooser.step((now - last) / 1000.0);
        }
        let far = if SWITCH.with(|s| s.get()) { !self.far } else { self.chooser.streamed() };
        self.far = far && shared.layout.far() > 0;
        // The weights written after the last update, when the caller vouches that the model
        // still holds them; otherwise written again (as fast as comparing them).
        let wseq = if vouched.weights && self.wseq > 0 { self.wseq } else { self.publish(model) };
        if wseq == 0 {
            return Ok(false);
        }
        shared.set(JOB_WSEQ, wseq);
        // Only the helpers' rows (the lead's group comes first): each reads just its own. They
        // may have been written already, while the helpers computed the step before.
        let seq = next_seq(self.seq);
        let from = helpers_from(batch.x.len(), job.shape[0], job.shards, job.workers);
        let staged = vouched.batch && (self.staged.0, self.staged.1) == (seq, from);
        let slot = if staged { self.staged.2 } else { shared.layout.job_slot(seq, self.far) };
        self.staged.0 = 0;
        if !staged {
            shared.write(shared.layout.x_at(slot) + from as u32, &batch.x[from..]);
        }
        // Rows a helper may already hold: the staged ones, untouched since (a job written here
        // names none).
        shared.set(JOB_STAGE, if staged { self.stage_id } else { 0 });
        shared.write(shared.layout.y_at(slot), &y);
        shared.set(JOB_SLOT, slot as i32);
        self.ring = if self.far { shared.layout.far() } else { 0 };
        shared.set(RING, self.ring as i32);
        shared.set(ROWS, job.shape[0] as i32);
        shared.set(RANK, job.shape.len() as i32);
        for (i, d) in job.shape.iter().enumerate() {
            shared.set(SHAPE + i as u32, *d as i32);
        }
        shared.set(KIND, kind);
        shared.set(COLS, cols as i32);
        shared.set(SHARDS, job.shards as i32);
        shared.set(WORKERS, job.workers as i32);
        shared.set(LOSS, LOSSES.iter().position(|l| *l == job.loss).unwrap_or(0) as i32);
        for h in 0..self.workers.len() {
            shared.set(Shared::block(h, GROUP), 0);
        }
        for (g, &h) in live.iter().enumerate() {
            shared.set(Shared::block(h, GROUP), g as i32 + 1);
        }
        self.active = live;
        self.seq = seq;
        shared.set(SEQ, self.seq);
        ring(&shared);
        Ok(true)
    }

    fn collect_inner(&mut self, g: usize) -> Result<Vec<NodeSum>, String> {
        let h = *self.active.get(g).ok_or("no such worker")?;
        let shared = self.shared.clone().ok_or("no shared buffer")?;
        let deadline = self.clock.now() + self.deadline_ms;
        let following = self.await_answer(h, &shared)?;
        // A helper announces its answer after its node list, which stays until its next job.
        let nodes = (shared.get(Shared::block(h, NODES)).max(0) as usize).min(MAX_NODES);
        let p = shared.layout.grads;
        let mut out = Vec::with_capacity(nodes);
        let seq = self.seq;
        let live = || shared.get(Shared::block(h, ASEQ)) == seq;
        for k in 0..nodes {
            let lo = shared.get(Shared::block(h, NODE_LIST + 2 * k as u32)) as usize;
            let hi = shared.get(Shared::block(h, NODE_LIST + 2 * k as u32 + 1)) as usize;
            let place = Layout::place(self.seq, nodes, k, self.ring);
            let mut grads = self.spare.pop().unwrap_or_default();
            if following {
                grads.resize(p, 0.0);
                if !shared.read_pieces(shared.layout.grads_at(h, place), &mut grads, (Shared::block(h, APROG), k * p), &live, &self.clock, deadline) {
                    self.spare.push(grads);
                    return Err(self.stopped(h));
                }
            } else {
                shared.read(shared.layout.grads_at(h, place), &mut grads, p);
            }
            out.push(NodeSum { lo, hi, loss: 0.0, right: 0, grads });
        }
        if following {
            if let Err(why) = self.await_done(h, &shared, deadline) {
                self.spare.extend(out.into_iter().map(|n| n.grads));
                return Err(why);
            }
        }
        for (k, node) in out.iter_mut().enumerate() {
            let place = Layout::place(self.seq, nodes, k, self.ring);
            node.loss = shared.floats.get_index(shared.layout.loss_at(h, place));
            node.right = shared.get(Shared::block(h, RIGHTS + k as u32)).max(0) as u32;
        }
        // Generous: the first steps of a fresh helper run before its wasm is optimised.
        self.deadline_ms = (self.deadline_ms * 0.9).max(1_000.0);
        Ok(out)
    }

    /// Waits for helper `h`'s answer to the job under way: done (false) or being written (true:
    /// then followed piece by piece); an error when it failed or missed its deadline.
    fn await_answer(&mut self, h: usize, shared: &Shared) -> Result<bool, String> {
        let done = Shared::block(h, DONE);
        let start = self.clock.now();
        let following = loop {
            let seen = shared.get(done);
            if seen == self.seq {
                break false;
            }
            if shared.get(Shared::block(h, ASEQ)) == self.seq {
                break true;
            }
            let waited = self.clock.now() - start;
            let left = self.deadline_ms - waited;
            if left <= 0.0 {
                return Err(self.stopped(h));
            }
            // Spin the first milliseconds (the answer usually comes within them; waking from
            // Atomics.wait costs more), then sleep in slices.
            if waited >= 2.0 {
                let _ = Atomics::wait_with_timeout(&shared.ints, done, seen, left.min(50.0));
            }
        };
        if !following && shared.get(Shared::block(h, STATUS)) != 0 {
            self.lose(h, "failed");
            return Err(format!("worker {} failed", h + 2));
        }
        Ok(following)
    }

    /// Once helper `h`'s gradients are copied while written: waits for its losses and counts,
    /// which come last, then the answer is done.
    fn await_done(&mut self, h: usize, shared: &Shared, deadline: f64) -> Result<(), String> {
        let seq = self.seq;
        while shared.get(Shared::block(h, DONE)) != seq {
            if shared.get(Shared::block(h, ASEQ)) != seq || self.clock.now() > deadline {
                return Err(self.stopped(h));
            }
        }
        if shared.get(Shared::block(h, STATUS)) != 0 {
            self.lose(h, "failed");
            return Err(format!("worker {} failed", h + 2));
        }
        Ok(())
    }

    /// [`Helpers::collect_added`]: helper `g`'s one node added to `left` into `model`'s
    /// gradients a piece at a time, each piece as soon as it is written (through a piece-sized
    /// buffer that stays in the cache, not a whole copy of the answer first).
    fn collect_added_inner(&mut self, g: usize, expected: (usize, usize), left: &NodeSum, model: &mut Sequential) -> Result<(f32, u32), String> {
        let h = *self.active.get(g).ok_or("no such worker")?;
        let shared = self.shared.clone().ok_or("no shared buffer")?;
        let deadline = self.clock.now() + self.deadline_ms;
        let following = self.await_answer(h, &shared)?;
        let nodes = shared.get(Shared::block(h, NODES));
        let node = (shared.get(Shared::block(h, NODE_LIST)), shared.get(Shared::block(h, NODE_LIST + 1)));
        if nodes != 1 || node != (expected.0 as i32, expected.1 as i32) {
            return Err(format!("worker {} answered for other shards than {expected:?}", g + 2));
        }
        let seq = self.seq;
        let place = Layout::place(seq, 1, 0, self.ring);
        let at = shared.layout.grads_at(h, place);
        let live = || shared.get(Shared::block(h, ASEQ)) == seq;
        let mut piece = std::mem::take(&mut self.piece);
        let (mut from, mut ok) = (0, true);
        model.visit_params(&mut |_, _, _, grads| {
            let grads = engine::tensor::slice_mut(grads);
            let end = from + grads.len();
            // The answer's pieces (from its start), cut where this tensor begins and ends.
            let mut a = from;
            while ok && a < end {
                let b = ((a / PIECE + 1) * PIECE).min(end);
                ok = !following || shared.await_progress(Shared::block(h, APROG), b, &live, &self.clock, deadline);
                if ok {
                    shared.add_in(at + a as u32, &mut grads[a - from..b - from], &left.grads[a..b], &mut piece);
                }
                a = b;
            }
            from = end;
        });
        self.piece = piece;
        if !ok {
            return Err(self.stopped(h));
        }
        if following {
            self.await_done(h, &shared, deadline)?;
        }
        let loss = shared.floats.get_index(shared.layout.loss_at(h, place));
        let right = shared.get(Shared::block(h, RIGHTS)).max(0) as u32;
        self.deadline_ms = (self.deadline_ms * 0.9).max(1_000.0);
        Ok((loss, right))
    }

    /// [`Helpers::update_and_publish`]: the update made a piece at a time, each piece written
    /// into the buffer as soon as it is made (a helper follows the pieces as they come).
    fn update_and_publish_inner(&mut self, model: &mut Sequential, optimizer: &mut dyn Optimizer, hyper: &Hyper) -> bool {
        let Some(shared) = self.shared.clone() else { return false };
        if hyper.clip > 0.0 || !self.alive.iter().any(|a| *a) || weights_len(model) != shared.layout.params {
            return false;
        }
        let mut placed = std::mem::take(&mut self.placed);
        placed.clear();
        visit_placed(model, &mut |at, _| placed.push(at));
        let (next, slot) = self.next_weights(&shared);
        // As `write_weights`: the progress, the odd number, then the copy named.
        shared.set(WPROG, 0);
        shared.set(WSEQ, next - 1);
        shared.set(WSLOT, slot as i32);
        ring(&shared);
        let base = shared.layout.weights_at(slot);
        let done = optim::apply_in_parts(model, optimizer, hyper, PIECE, &mut |index, from, w| {
            let at = placed[index] + from as u32;
            shared.copy_out(base + at, w);
            shared.set(WPROG, (at + w.len() as u32) as i32);
        });
        self.placed = placed;
        debug_assert!(done, "no clipping: checked");
        shared.set(WSEQ, next);
        ring(&shared);
        (self.wseq, self.wslot) = (next, slot);
        true
    }

    /// Helper `h` missed its deadline: dropped from the run.
    fn stopped(&mut self, h: usize) -> String {
        self.lose(h, "stopped answering");
        format!("worker {} stopped answering", h + 2)
    }
}

impl Helpers for WorkerHelpers {
    fn count(&self) -> usize {
        self.alive.iter().filter(|a| **a).count()
    }

    fn dispatch(&mut self, job: &std::sync::Arc<ShardJob>, model: &mut Sequential, batch: &Batch) -> Result<bool, String> {
        self.dispatch_inner(job, model, batch, Vouched::default())
    }

    fn dispatch_vouched(&mut self, job: &std::sync::Arc<ShardJob>, model: &mut Sequential, batch: &Batch, vouched: Vouched) -> Result<bool, String> {
        self.dispatch_inner(job, model, batch, vouched)
    }

    fn wants_copies(&self) -> bool {
        // The weights and the helpers' rows go from the model and the batch straight into the
        // shared buffer.
        false
    }

    fn after_update(&mut self, model: &mut Sequential) {
        if self.alive.iter().any(|a| *a) {
            self.publish(model);
        }
    }

    fn stage(&mut self, batch: &Batch, shards: usize) {
        let Some(shared) = self.shared.as_ref() else { return };
        let rows = batch.shape.first().copied().unwrap_or(0);
        let workers = self.alive.iter().filter(|a| **a).count() + 1;
        if rows == 0 || workers < 2 || batch.x.len() > shared.layout.x {
            return;
        }
        let seq = next_seq(self.seq);
        let from = helpers_from(batch.x.len(), rows, shards, workers);
        // Another copy than the job under way's: no helper reads it now.
        let slot = shared.layout.job_slot(seq, self.far);
        self.stage_id = write_staged(shared, slot, from, &batch.x[from..], self.stage_id);
        self.staged = (seq, from, slot);
    }

    fn dispatched_with(&mut self, _job: &ShardJob, model: &mut Sequential) -> bool {
        // A job is computed with the weights last written (a dispatch writes them first when the
        // model no longer holds them).
        self.holds_written(model)
    }

    fn collect(&mut self, g: usize) -> Result<Vec<NodeSum>, String> {
        self.collect_inner(g)
    }

    fn collect_added(&mut self, g: usize, expected: (usize, usize), left: &NodeSum, model: &mut Sequential) -> Option<Result<(f32, u32), String>> {
        let grads = self.shared.as_ref()?.layout.grads;
        let mut total = 0;
        model.visit_params(&mut |_, _, _, g| total += g.len());
        (left.grads.len() == grads && total == grads).then(|| self.collect_added_inner(g, expected, left, model))
    }

    fn update_and_publish(&mut self, model: &mut Sequential, optimizer: &mut dyn Optimizer, hyper: &Hyper) -> bool {
        self.update_and_publish_inner(model, optimizer, hyper)
    }

    fn recycle(&mut self, buffer: Vec<f32>) {
        if self.spare.len() < 4 * MAX_NODES {
            self.spare.push(buffer);
        }
    }

    fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }

    fn relay(&mut self) -> Option<&mut dyn engine::split_layer::SplitRelay> {
        // Through the copier only: rows of Z go back and forth a block at a time.
        self.shared.as_ref().is_none_or(|s| s.copier.is_some()).then_some(self)
    }
}

/// A helper worker's side: answers jobs from the shared buffer until the lead terminates it.
/// `init` is the `deeplyHelper` message; a later one (a bigger buffer) replaces the loop.
pub fn serve(scope: DedicatedWorkerGlobalScope, init: JsValue, generation: Rc<Cell<u32>>) {
    let get = |k: &str| Reflect::get(&init, &k.into()).unwrap_or(JsValue::UNDEFINED);
    let (Some(layout), Ok(buffer)) = (Layout::from_js(&get("layout")), get("buffer").dyn_into::<SharedArrayBuffer>()) else {
        web_sys::console::error_1(&"helper: an unreadable start message".into());
        return;
    };
    let h = get("index").as_f64().unwrap_or(-1.0);
    if !(0.0..layout.helpers as f64).contains(&h) {
        return;
    }
    let h = h as usize;
    let shared = Shared::over(buffer, layout, get("memory").dyn_into::<WebAssembly::Memory>().ok());
    let query = get("query").as_string().unwrap_or_default();
    let fingerprint = get("fingerprint").as_string().unwrap_or_default();
    let replica = replicas(&parse_link(&query).config).find_map(|mut m| (parallel::fingerprint(&mut m).to_string() == fingerprint).then_some(m));
    let Some(mut replica) = replica else {
        shared.set(Shared::block(h, READY), -1);
        return;
    };
    shared.set(Shared::block(h, READY), 1);
    let mine = generation.get().wrapping_add(1);
    generation.set(mine);
    let mut state = Helper {
        job: None,
        scratch: parallel::Scratch::default(),
        spare: Vec::new(),
        seen: shared.get(SEQ),
        weights: 0,
        tried: 0,
        span: (0, 0, 0),
        pre: (0, 0, 0, 0),
        side: relay::Side::default(),
        clock: Clock::new(),
    };
    wasm_bindgen_futures::spawn_local(async move {
        let clock = Clock::new();
        let mut idle_since = clock.now();
        loop {
            // Wait for weights or a job; every 50 ms without either, let the event loop run (a
            // new buffer may have been sent: then this loop ends).
            let bell = shared.get(BELL);
            let wseq = shared.get(WSEQ);
            if wseq > 0 && wseq % 2 == 1 && wseq + 1 != state.tried {
                // New weights being written: copy each piece as it comes.
                state.tried = wseq + 1;
                state.weights = if follow_weights(&shared, &mut replica, wseq, &clock) { wseq + 1 } else { 0 };
            } else if let Some(stage) = state.fresh_stage(&shared) {
                // Nothing else to do: the next job's rows, if the lead has staged them.
                state.pre_read(&shared, stage);
            } else if wseq > 0 && wseq % 2 == 0 && wseq != state.tried {
                // New weights: copy them now, while the lead prepares the job.
                state.tried = wseq;
                let slot = shared.get(WSLOT).max(0) as usize;
                state.weights = if read_weights(&shared, &mut replica, slot) && shared.get(WSEQ) == wseq { wseq } else { 0 };
            }
            let seq = shared.get(SEQ);
            if seq == state.seen && clock.now() - idle_since < SPIN_MS {
                continue;
            }
            if seq == state.seen {
                // Then sleep. (Earlier sittings measured polling through all of the lead's
                // serial part cost W2 ~7 %; since the optimisers run in SIMD lanes that part is
                // shorter, and a bounded poll pays: see SPIN_MS.)
                if Atomics::wait_with_timeout(&shared.ints, BELL, bell, 50.0).ok().and_then(|r| r.as_string()).as_deref() == Some("timed-out") {
                    yield_now(&scope).await;
                    if generation.get() != mine {
                        return;
                    }
                }
                continue;
            }
            state.seen = seq;
            state.answer(&shared, h, &mut replica);
            let _ = Atomics::notify(&shared.ints, Shared::block(h, DONE));
            idle_since = clock.now();
        }
    });
}

struct Helper {
    job: Option<ShardJob>,
    scratch: parallel::Scratch,
    spare: Vec<Vec<f32>>,
    seen: i32,
    /// The weights the replica holds (their WSEQ; 0: unknown) and the last ones tried.
    weights: i32,
    tried: i32,
    /// The last job's rows: its batch's floats and this helper's part of them.
    span: (usize, usize, usize),
    /// Staged rows copied into the job's buffer before the job came: their number (0: none) and
    /// the span they were copied for.
    pre: (i32, usize, usize, usize),
    /// Its rows of split steps' first layer (see [`relay`]).
    side: relay::Side,
    clock: Clock,
}

impl Helper {
    /// The number of rows staged and not yet copied or tried, when there are: written whole, and
    /// a job has shown where this helper's part lies.
    fn fresh_stage(&self, shared: &Shared) -> Option<i32> {
        let stage = shared.get(STAGE);
        (stage > 0 && stage % 2 == 0 && stage != self.pre.0 && self.span.2 > self.span.1 && self.job.is_some()).then_some(stage)
    }

    /// Copies this helper's part of the staged rows `stage` into the job's buffer, assuming the
    /// next job splits its batch as the last did; the job uses them only if it names `stage` and
    /// that span ([`uses_pre_read`]).
    fn pre_read(&mut self, shared: &Shared, stage: i32) {
        let (len, a, b) = self.span;
        self.pre = (stage, 0, 0, 0);
        let Some(job) = self.job.as_mut().filter(|j| j.x.len() == len) else { return };
        let slot = shared.get(STAGE_SLOT).max(0) as usize;
        let at = shared.layout.x_at(slot);
        shared.copy_in(at + a as u32, &mut job.x[a..b]);
        // Still those rows (a new stage makes the number odd before it names its copy).
        if shared.get(STAGE) == stage {
            self.pre = (stage, len, a, b);
        }
    }

    /// Makes the replica hold the job's weights: already copied, or read now (the lead does not
    /// write weights while a job runs).
    fn take_weights(&mut self, shared: &Shared, replica: &mut Sequential) -> bool {
        let wanted = shared.get(JOB_WSEQ);
        if wanted > 0 && wanted == self.weights {
            return true;
        }
        // The lead writes no weights while a job runs: WSLOT is the job's weights' copy.
        let ok = read_weights(shared, replica, shared.get(WSLOT).max(0) as usize);
        self.weights = if ok { wanted } else { 0 };
        ok
    }

    fn answer(&mut self, shared: &Shared, h: usize, replica: &mut Sequential) {
        if shared.get(KIND) == relay::SPLIT {
            let ok = self.side.answer(shared, h, self.seen, &self.clock);
            shared.set(Shared::block(h, STATUS), if ok { 0 } else { 1 });
            shared.set(Shared::block(h, DONE), self.seen);
            return;
        }
        let g = shared.get(Shared::block(h, GROUP));
        let rank = shared.get(RANK).clamp(0, 6) as u32;
        let shape: Vec<usize> = (0..rank).map(|i| shared.get(SHAPE + i).max(0) as usize).collect();
        let rows = shared.get(ROWS).max(0) as usize;
        let cols = shared.get(COLS).max(1) as usize;
        let layout = shared.layout;
        let x_len = shape.iter().product::<usize>();
        let kind = shared.get(KIND);
        let y_len = match kind {
            0 => rows,
            1 => rows * cols,
            _ => 2 * rows * cols,
        };
        let ok = g > 0 && !shape.is_empty() && shape[0] == rows && x_len <= layout.x && y_len <= layout.y;
        let slot = shared.get(JOB_SLOT).max(0) as usize;
        let ring = (shared.get(RING).max(0) as usize).min(layout.far());
        let result = if ok {
            let mut job = self.job.take().unwrap_or(ShardJob {
                params: Vec::new(),
                x: Vec::new(),
                shape: Vec::new(),
                targets: Targets::Classes(Vec::new()),
                loss: Loss::Softmax,
                shards: 1,
                workers: 1,
                stream: false,
                // A browser worker gets the weights with each job (see `Helpers::replicates`).
                replicated: false,
                optimizer: None,
                // Its rows come in the shared buffer (see `Helpers::gathers_rows`).
                rows: None,
                indices: Vec::new(),
            });
            // Only this helper's rows of the batch are read (the others stay stale, unused).
            let shards = (shared.get(SHARDS).max(1) as usize).min(parallel::MAX_SHARDS);
            let workers = (shared.get(WORKERS).max(1) as usize).min(MAX_WORKERS);
            let mine = group(shards, workers, g as usize);
            let per_row = x_len / rows.max(1);
            job.x.resize(x_len, 0.0);
            let pre = std::mem::take(&mut self.pre);
            if !mine.is_empty() {
                let first = parallel::shard_rows(rows, shards, mine.start).start;
                let last = parallel::shard_rows(rows, shards, mine.end - 1).end;
                let (a, b) = (first * per_row, last * per_row);
                if !uses_pre_read(pre, shared.get(JOB_STAGE), (x_len, a, b)) {
                    shared.copy_in(layout.x_at(slot) + a as u32, &mut job.x[a..b]);
                }
                self.span = (x_len, a, b);
            }
            // Not read again before this job's answer (a stage for the next may come meanwhile).
            self.pre.0 = shared.get(STAGE);
            job.shape = shape;
            let mut y = Vec::new();
            shared.read(layout.y_at(slot), &mut y, y_len);
            job.targets = match kind {
                0 => Targets::Classes(y.iter().map(|&v| v as usize).collect()),
                1 => Targets::Values { values: y, cols },
                _ => {
                    let (classes, mask) = y.split_at(rows * cols);
                    Targets::Masked { classes: classes.iter().map(|&v| v as usize).collect(), mask: mask.iter().map(|&m| m != 0.0).collect() }
                }
            };
            job.loss = LOSSES[(shared.get(LOSS).max(0) as usize).min(LOSSES.len() - 1)];
            (job.shards, job.workers) = (shards, workers);
            // One pair of micro-shards (two workers): its sum written straight into the answer's
            // place as it is made.
            if let Some(node) = parallel::group_pair(&job, g as usize).filter(|_| shared.copier.is_some()) {
                if self.take_weights(shared, replica) && self.answer_pair(shared, h, replica, &job, (g as usize, node), ring) {
                    self.job = Some(job);
                    return;
                }
            }
            let nodes = cover(mine, width(job.shards)).count();
            let result = if nodes > MAX_NODES {
                Err("too many nodes".to_string())
            } else if !self.take_weights(shared, replica) {
                Err("the replica's parameters do not match the model's".to_string())
            } else {
                parallel::group_sums(replica, &job, g as usize, &mut self.scratch, &mut self.spare)
            };
            self.job = Some(job);
            result
        } else {
            Err("an unreadable job".to_string())
        };
        // An answer of another size would not fit its place (the replica matches the model's
        // fingerprint, so this is a bug, reported as a failed helper rather than written).
        let result = result.and_then(|sums| match sums.iter().all(|s| s.grads.len() == layout.grads) {
            true => Ok(sums),
            false => Err("an answer of the wrong size".to_string()),
        });
        match result {
            Ok(sums) => {
                // The node list, then the answer announced: the lead copies each piece of the
                // gradients as soon as it is written.
                for (k, s) in sums.iter().enumerate() {
                    shared.set(Shared::block(h, NODE_LIST + 2 * k as u32), s.lo as i32);
                    shared.set(Shared::block(h, NODE_LIST + 2 * k as u32 + 1), s.hi as i32);
                }
                shared.set(Shared::block(h, NODES), sums.len() as i32);
                shared.set(Shared::block(h, APROG), 0);
                shared.set(Shared::block(h, ASEQ), self.seen);
                for (k, s) in sums.iter().enumerate() {
                    let place = Layout::place(self.seen, sums.len(), k, ring);
                    shared.write_pieces(layout.grads_at(h, place), &s.grads, Shared::block(h, APROG), k * layout.grads);
                    shared.floats.set_index(layout.loss_at(h, place), s.loss);
                    shared.set(Shared::block(h, RIGHTS + k as u32), s.right as i32);
                }
                shared.set(Shared::block(h, STATUS), 0);
                self.spare.extend(sums.into_iter().map(|s| s.grads));
            }
            Err(_) => shared.set(Shared::block(h, STATUS), 1),
        }
        shared.set(Shared::block(h, DONE), self.seen);
    }
}

impl Helper {
    /// The answer of a group that is one pair of micro-shards (see `parallel::group_pair`),
    /// announced first and written as it is made: each tensor's sum of the two leaves goes
    /// straight from the replica into the answer's place a piece at a time (`Copier::write_sum`,
    /// the bits of the pair's sum), and the lead adds each piece as soon as it is written. False:
    /// not answered this way (sizes that do not fit), nothing written.
    fn answer_pair(
        &mut self,
        shared: &Shared,
        h: usize,
        replica: &mut Sequential,
        job: &ShardJob,
        (g, (lo, hi)): (usize, (usize, usize)),
        ring: usize,
    ) -> bool {
        let layout = shared.layout;
        let mut total = 0;
        replica.visit_params(&mut |_, _, w, _| total += w.len());
        let Some(copier) = shared.copier.as_ref().filter(|_| total == layout.grads) else { return false };
        let place = Layout::place(self.seen, 1, 0, ring);
        let at = layout.grads_at(h, place);
        shared.set(Shared::block(h, NODE_LIST), lo as i32);
        shared.set(Shared::block(h, NODE_LIST + 1), hi as i32);
        shared.set(Shared::block(h, NODES), 1);
        shared.set(Shared::block(h, APROG), 0);
        shared.set(Shared::block(h, ASEQ), self.seen);
        let summed = parallel::group_pair_into(replica, job, g, &mut self.scratch, &mut |from, right, left| {
            let mut a = 0;
            while a < right.len() {
                let b = (a + PIECE).min(right.len());
                copier.write_sum(Shared::byte(at + (from + a) as u32), &right[a..b], &left[a..b]);
                shared.set(Shared::block(h, APROG), (from + b) as i32);
                a = b;
            }
        });
        match summed {
            Some((loss, right)) => {
                shared.floats.set_index(layout.loss_at(h, place), loss);
                shared.set(Shared::block(h, RIGHTS), right as i32);
                shared.set(Shared::block(h, STATUS), 0);
            }
            // Announced and not a pair after all (a bug): reported as a failed helper.
            None => shared.set(Shared::block(h, STATUS), 1),
        }
        shared.set(Shared::block(h, DONE), self.seen);
        true
    }
}

/// Copies copy `slot` of the weights from the buffer straight into the replica's tensors; false
/// when the sizes differ.
fn read_weights(shared: &Shared, replica: &mut Sequential, slot: usize) -> bool {
    if weights_len(replica) != shared.layout.params {
        return false;
    }
    let base = shared.layout.weights_at(slot);
    visit_placed(replica, &mut |at, w| {
        shared.copy_in(base + at, engine::tensor::slice_mut(w));
    });
    true
}

/// Writes `model`'s weights into copy `slot` as number `next` (even): odd while written, each
/// piece followed by how far the write has come.
fn write_weights(shared: &Shared, model: &mut Sequential, next: i32, slot: usize) {
    // The progress first (a helper that sees the odd number follows the pieces as they come),
    // the slot after the number (a helper copying the last weights sees the number change).
    shared.set(WPROG, 0);
    shared.set(WSEQ, next - 1);
    shared.set(WSLOT, slot as i32);
    ring(shared);
    let base = shared.layout.weights_at(slot);
    visit_placed(model, &mut |at, w| shared.write_pieces(base + at, engine::tensor::slice(w), WPROG, at as usize));
    shared.set(WSEQ, next);
    ring(shared);
}

/// Writes the helpers' rows of a next batch (`rows`, from float `from` of it) into copy `slot`,
/// numbered after `last`; returns their number.
fn write_staged(shared: &Shared, slot: usize, from: usize, rows: &[f32], last: i32) -> i32 {
    let id = match last.max(0) + 2 {
        n if n > 0x3fff_fff0 => 2,
        n => n,
    };
    // Odd first, then the copy: a helper copying the last rows sees the number change.
    shared.set(STAGE, id - 1);
    shared.set(STAGE_SLOT, slot as i32);
    shared.write(shared.layout.x_at(slot) + from as u32, rows);
    shared.set(STAGE, id);
    id
}

/// Whether a job naming the staged rows `job_stage` (0: none) and reading `span` (its batch's
/// floats, this helper's part) can use the rows copied before it came (`pre`).
fn uses_pre_read(pre: (i32, usize, usize, usize), job_stage: i32, (len, a, b): (usize, usize, usize)) -> bool {
    job_stage != 0 && pre == (job_stage, len, a, b)
}

/// Copies the weights that the lead is writing (`s`, odd: under way) into the replica, each piece
/// as soon as it is written; false when another write begins, the sizes differ or the lead
/// stalls (the replica is then read whole when a job needs it).
fn follow_weights(shared: &Shared, replica: &mut Sequential, s: i32, clock: &Clock) -> bool {
    if weights_len(replica) != shared.layout.params {
        return false;
    }
    // Generous: a lead writes W2's weights in well under a millisecond.
    let deadline = clock.now() + 20.0;
    let live = || matches!(shared.get(WSEQ), q if q == s || q == s + 1);
    let mut base = None;
    let mut ok = true;
    visit_placed(replica, &mut |at, w| {
        let w = engine::tensor::slice_mut(w);
        // The copy is named once the first piece is written (it is set before any).
        if ok && base.is_none() {
            ok = shared.await_progress(WPROG, (at as usize + w.len().min(PIECE)).max(1), &live, clock, deadline);
            base = Some(shared.layout.weights_at(shared.get(WSLOT).max(0) as usize));
        }
        if ok {
            ok = shared.read_pieces(base.expect("named") + at, w, (WPROG, at as usize), &live, clock, deadline);
        }
    });
    // Still this write (or it has ended): no piece was overwritten while copied.
    ok && live()
}

/// Milliseconds from `performance.now()`: `Date.now()` ticks in whole milliseconds, too coarse to
/// time the lead's 2 ms spin for an answer.
struct Clock(Option<web_sys::Performance>);

impl Clock {
    fn new() -> Clock {
        Clock(js_sys::global().dyn_into::<web_sys::WorkerGlobalScope>().ok().and_then(|s| s.performance()))
    }

    fn now(&self) -> f64 {
        self.0.as_ref().map_or_else(js_sys::Date::now, |p| p.now())
    }
}

/// The sequence number of the job after `seq` (never 0: a helper starts having seen 0).
fn next_seq(seq: i32) -> i32 {
    seq.wrapping_add(1).max(1)
}

/// Where the helpers' rows start in a batch of `len` floats and `rows` rows: the lead's group
/// (the first) is not sent.
fn helpers_from(len: usize, rows: usize, shards: usize, workers: usize) -> usize {
    let first = parallel::shard_rows(rows, shards, group(shards, workers, 1).start).start;
    first * (len / rows.max(1))
}

/// Tells the helpers there is something new (weights or a job): they wait on the bell.
fn ring(shared: &Shared) {
    let _ = Atomics::add(&shared.ints, BELL, 1);
    let _ = Atomics::notify(&shared.ints, BELL);
}

/// Lets the event loop run once (a message may be waiting).
async fn yield_now(scope: &DedicatedWorkerGlobalScope) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The `deeplyHelper` start message inside a worker's message, if it is one.
pub fn helper_init(event: &MessageEvent) -> Option<JsValue> {
    let data = event.data();
    if !data.is_object() {
        return None;
    }
    Reflect::get(&data, &"deeplyHelper".into()).ok().filter(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Every copy between the buffer and wasm memory starts on a line (see [`LINE`]), and no
    /// region overlaps the next, whatever the sizes: odd ones included.
    #[wasm_bindgen_test]
    fn every_region_and_tensor_starts_on_a_line() {
        use engine::{init::Init, ops::Dense, rng::Rng};
        let mut rng = Rng::new(1);
        let mut model = Sequential::new(vec![Box::new(Dense::new(3, 5, Init::He, 0.0, &mut rng)), Box::new(Dense::new(5, 3, Init::He, 0.0, &mut rng))]);
        let mut places = Vec::new();
        visit_placed(&mut model, &mut |at, w| places.push((at as usize, w.len())));
        assert!(places.iter().any(|(_, n)| n % 2 == 1), "odd tensors: {places:?}");
        for pair in places.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{places:?}");
        }
        let params = weights_len(&mut model);
        assert!(places.iter().all(|&(at, n)| at % LINE == 0 && at + n <= params), "{places:?}");
        let far = Layout::far_slots(params, 101_771, 2 * 64 * 785, 129, 3);
        assert!(far >= MIN_FAR, "W2-sized regions afford far copies: {far}");
        let layouts = [
            Layout { params, grads: 101_771, x: 2 * 64 * 785, y: 129, helpers: 3, slots: 2 + far },
            Layout { params, grads: 101_771, x: 2 * 64 * 785, y: 129, helpers: 3, slots: 2 },
            Layout { params: 17, grads: 1, x: 1, y: 1, helpers: 2, slots: 2 + MAX_FAR },
        ];
        for layout in layouts {
            let mut regions = Vec::new();
            for slot in 0..layout.slots {
                regions.push((layout.weights_at(slot) as usize, layout.weights_at(slot) as usize + layout.params));
                regions.push((layout.x_at(slot) as usize, layout.x_at(slot) as usize + layout.x));
                regions.push((layout.y_at(slot) as usize, layout.y_at(slot) as usize + layout.y));
            }
            for h in 0..layout.helpers {
                for k in 0..layout.places() {
                    assert_eq!(layout.loss_at(h, k) as usize, layout.grads_at(h, k) as usize + layout.grads);
                    regions.push((layout.grads_at(h, k) as usize, layout.loss_at(h, k) as usize + 1));
                }
            }
            assert!(regions.iter().all(|&(s, _)| s % LINE == 0), "{layout:?}");
            regions.sort_unstable();
            assert_eq!(regions[0].0, 0, "{layout:?}");
            for pair in regions.windows(2) {
                assert!(pair[0].1 <= pair[1].0, "{layout:?}: {:?} overlaps {:?}", pair[0], pair[1]);
            }
            assert!(regions.last().expect("regions").1 <= layout.floats(), "{layout:?}");
            assert_eq!(Layout::from_js(&layout.to_js().into()), Some(layout));
        }
        // A layout from a message with no room for the near copies, or too many, is refused.
        let bad = Layout { slots: 1, ..layouts[1] };
        assert_eq!(Layout::from_js(&bad.to_js().into()), None);
        let bad = Layout { slots: 3 + MAX_FAR, ..layouts[1] };
        assert_eq!(Layout::from_js(&bad.to_js().into()), None);
        // Beyond the budget: no far copies.
        assert_eq!(Layout::far_slots(FAR_BUDGET, 1, 1, 1, 1), 0);
    }

    /// The copy a job writes its rows in is never the one the job before reads (near, far, or
    /// one of each), far copies go round all of them, and a job's nodes never share a place.
    #[wasm_bindgen_test]
    fn a_job_never_writes_where_the_job_under_way_reads() {
        let layout = Layout { params: 100, grads: 100, x: 64, y: 8, helpers: 1, slots: 2 + MIN_FAR };
        for seq in 1..200 {
            for (now, next) in [(false, false), (false, true), (true, false), (true, true)] {
                assert_ne!(layout.job_slot(seq, now), layout.job_slot(seq + 1, next), "job {seq}: {now} then {next}");
            }
            assert!(layout.job_slot(seq, false) < 2 && layout.job_slot(seq, true) >= 2);
        }
        let far: std::collections::BTreeSet<usize> = (1..=MIN_FAR as i32).map(|seq| layout.job_slot(seq, true)).collect();
        assert_eq!(far.len(), MIN_FAR, "far copies in turn: {far:?}");
        let near = Layout { slots: 2, ..layout };
        assert!((1..10).all(|seq| near.job_slot(seq, true) < 2), "no far copies: near ones");
        for nodes in 1..=MAX_NODES {
            for seq in [1, 2, 1_000_000, i32::MAX] {
                for ring in [0, layout.far()] {
                    let mut places: Vec<usize> = (0..nodes).map(|k| Layout::place(seq, nodes, k, ring)).collect();
                    assert!(places.iter().all(|&p| p < layout.places()), "{places:?}");
                    places.sort_unstable();
                    places.dedup();
                    assert_eq!(places.len(), nodes, "job {seq}, {nodes} nodes, ring {ring}");
                }
            }
        }
        // One node a job (W2 on 2 workers): far, a place comes round every `far` jobs.
        let ring = layout.far();
        let first = Layout::place(7, 1, 0, ring);
        assert!((8..7 + ring as i32).all(|seq| Layout::place(seq, 1, 0, ring) != first));
        assert_eq!(Layout::place(7 + ring as i32, 1, 0, ring), first);
    }

    /// Pieces come through whole and in order; a reader stops (false) when the writer stalls or
    /// another write begins, and copies nothing past the progress it saw.
    #[wasm_bindgen_test]
    fn pieces_are_copied_only_once_written() {
        let layout = Layout { params: 64, grads: 2 * PIECE + 123, x: 16, y: 16, helpers: 1, slots: 2 };
        let shared = Shared::new(layout).expect("buffer");
        let clock = Clock::new();
        let values: Vec<f32> = (0..layout.grads).map(|i| i as f32 * 0.5 - 7.0).collect();
        let (at, word) = (layout.grads_at(0, 1), Shared::block(0, APROG));
        shared.write_pieces(at, &values, word, 5);
        assert_eq!(shared.get(word) as usize, 5 + values.len(), "the progress counts every float, after `done`");
        let mut out = vec![0.0; values.len()];
        assert!(shared.read_pieces(at, &mut out, (word, 5), &|| true, &clock, clock.now() + 1_000.0));
        assert_eq!(out, values);
        // A writer stalled after its first piece: the reader copies that piece and gives up.
        shared.set(word, 5 + PIECE as i32);
        let mut out = vec![0.0; values.len()];
        assert!(!shared.read_pieces(at, &mut out, (word, 5), &|| true, &clock, clock.now() + 5.0));
        assert_eq!(out[..PIECE], values[..PIECE]);
        assert!(out[PIECE..].iter().all(|&v| v == 0.0), "nothing past the progress seen");
        // Another write under way: stopped at once, whatever the progress says.
        shared.set(word, (5 + values.len()) as i32);
        assert!(!shared.read_pieces(at, &mut out, (word, 5), &|| false, &clock, clock.now() + 1_000.0));
    }

    /// A helper following the lead's write of the weights gets them bit for bit; a write that
    /// another one replaces, or a replica of another size, is refused.
    #[wasm_bindgen_test]
    fn a_helper_following_the_weights_gets_them_exactly() {
        use engine::{init::Init, ops::Dense, rng::Rng};
        let net = |seed| {
            let mut rng = Rng::new(seed);
            Sequential::new(vec![Box::new(Dense::new(300, 70, Init::He, 0.0, &mut rng)), Box::new(Dense::new(70, 3, Init::He, 0.0, &mut rng))])
        };
        let (mut model, mut replica) = (net(1), net(2));
        let params = weights_len(&mut model);
        assert!(params > PIECE, "the first tensor comes in several pieces");
        let shared = Shared::new(Layout { params, grads: 1, x: 1, y: 1, helpers: 1, slots: 2 + MIN_FAR }).expect("buffer");
        let clock = Clock::new();
        let weights = |m: &mut Sequential| {
            let mut all = Vec::new();
            m.visit_params(&mut |_, _, w, _| all.extend_from_slice(engine::tensor::slice(w)));
            all
        };
        for (next, slot) in [(2, 0), (4, 5), (6, 2 + MIN_FAR - 1)] {
            write_weights(&shared, &mut model, next, slot);
            // As a helper that saw the odd number would (here the write has already ended).
            replica = net(next as u64 + 10);
            assert!(follow_weights(&shared, &mut replica, next - 1, &clock), "write {next} in copy {slot}");
            assert_eq!(
                weights(&mut replica).iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                weights(&mut model).iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        // Write 6 has been replaced by write 8: following 6 is refused.
        write_weights(&shared, &mut model, 8, 3);
        assert!(!follow_weights(&shared, &mut replica, 5, &clock));
        // A write announced but stalled before its first piece: refused at the deadline.
        shared.set(WPROG, 0);
        shared.set(WSEQ, 9);
        assert!(!follow_weights(&shared, &mut replica, 9, &clock));
        // Another network's replica.
        let mut rng = Rng::new(3);
        let mut other = Sequential::new(vec![Box::new(Dense::new(3, 2, Init::He, 0.0, &mut rng))]);
        shared.set(WSEQ, 10);
        assert!(!follow_weights(&shared, &mut other, 9, &clock));
    }

    /// A helper copies the staged rows of the next job while it waits, and the job uses them
    /// only when it names that stage and splits its batch as the copy assumed.
    #[wasm_bindgen_test]
    fn staged_rows_are_used_only_by_the_job_that_names_them() {
        let layout = Layout { params: 16, grads: 16, x: 640, y: 64, helpers: 1, slots: 2 };
        let shared = Shared::new(layout).expect("buffer");
        let job = ShardJob {
            params: Vec::new(),
            x: vec![0.0; 640],
            shape: vec![64, 10],
            targets: Targets::Classes(Vec::new()),
            loss: Loss::Softmax,
            shards: 4,
            workers: 2,
            stream: false,
            replicated: false,
            optimizer: None,
            rows: None,
            indices: Vec::new(),
        };
        let span = (640, 320, 640);
        let mut helper = Helper {
            job: Some(job),
            scratch: parallel::Scratch::default(),
            spare: Vec::new(),
            seen: 0,
            weights: 0,
            tried: 0,
            span,
            pre: (0, 0, 0, 0),
            side: relay::Side::default(),
            clock: Clock::new(),
        };
        assert_eq!(helper.fresh_stage(&shared), None, "nothing staged yet");
        let rows: Vec<f32> = (0..320).map(|i| i as f32 + 0.25).collect();
        let id = write_staged(&shared, 1, 320, &rows, 0);
        assert_eq!(helper.fresh_stage(&shared), Some(id));
        helper.pre_read(&shared, id);
        assert_eq!(helper.job.as_ref().expect("job").x[320..], rows[..]);
        assert_eq!(helper.fresh_stage(&shared), None, "copied once");
        assert!(uses_pre_read(helper.pre, id, span));
        assert!(!uses_pre_read(helper.pre, 0, span), "a job whose rows were written with it");
        assert!(!uses_pre_read(helper.pre, id + 2, span), "a job naming later rows");
        assert!(!uses_pre_read(helper.pre, id, (640, 160, 640)), "a batch split otherwise");
        // Rows staged again while a copy of the last ones was under way: that copy is not used.
        let later = write_staged(&shared, 0, 320, &rows, id);
        helper.pre_read(&shared, id);
        assert!(!uses_pre_read(helper.pre, id, span) && !uses_pre_read(helper.pre, later, span));
        // A helper that has not seen a job yet copies nothing.
        helper.span = (0, 0, 0);
        assert_eq!(helper.fresh_stage(&shared), None);
    }
}
