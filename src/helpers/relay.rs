//! Split steps through the shared buffer (see `engine::split_layer::SplitRelay`): the first
//! layer's rows of W are dealt between the lead and its helpers, each helper keeping its rows,
//! their gradient and their optimiser state in its own memory from step to step. What travels:
//! the helpers' columns of the batch and the rows of Z block by block (the lead's partial sums,
//! then each helper's in turn), ∂Z once, and each helper's mirror of its rows after its update.
//!
//! Where things lie: the batch (its rows, `input` wide, only the helpers' columns written) in
//! rows copy 0; Z (n × out) then ∂Z in rows copy 1; a helper's mirrors in its answer places:
//! W in place `slot` (0 or 1: each step writes the other, so the rows a step started from stay
//! whole until it ends), the optimiser's state in places 2–5, ∂W in place 6. Control words:
//! the lead's in the last helper block ([`LEAD`]), each worker's progress through Z there too.

use super::{Clock, Shared, WorkerHelpers, DONE, GROUP, KIND, MAX_WORKERS, READY, ROWS, SEQ, SHAPE, SHARDS, STATUS, WORKERS};
use engine::layer::Layer;
use engine::optim::{Hyper, Rule};
use engine::parallel::MAX_SHARDS;
use engine::sequential::Sequential;
use engine::split_layer::{part_rows, Part, RelayStep, SplitRelay, FORWARD_BLOCK, MAX_SPLIT_WORKERS};
use std::ops::Range;

/// The header's KIND of a split step.
pub(super) const SPLIT: i32 = 3;
/// The lead's control block (no helper has it: at most `MAX_WORKERS − 1` helpers).
const LEAD: usize = MAX_WORKERS - 1;
const OUT: u32 = 0;
const FLAGS: u32 = 1; // 1: helpers take their rows from the mirror of the rows a step starts from; 2: mirror ∂W
const SLOT: u32 = 2; // the mirror this step writes (0 or 1)
const DZ: u32 = 3; // the step whose ∂Z is written
const HYPER: u32 = 4; // lr, momentum, l2, l1 (bits)
const RULE: u32 = 8; // 6 words
const FORWARD: u32 = 16; // blocks of Z each worker has added its terms to (one word a worker)
const _: () = assert!(FORWARD + MAX_SPLIT_WORKERS as u32 <= super::BLOCK);
/// Places of a helper's mirrors.
const W_PLACE: usize = 0;
const STATE_PLACE: usize = 2;
const DW_PLACE: usize = 6;
const INIT: i32 = 1;
const GRADS: i32 = 2;

fn lead(field: u32) -> u32 {
    Shared::block(LEAD, field)
}

/// The lead's side, kept between steps.
#[derive(Default)]
pub(super) struct Lead {
    /// The helpers of the step under way or last made, by worker number − 1.
    active: Vec<usize>,
    workers: usize,
    n: usize,
    input: usize,
    out: usize,
    states: usize,
    seq: i32,
    /// The mirror holding the rows as they were after the last finished step.
    mirror: usize,
    grads: bool,
    failure: Option<String>,
    /// The helpers and worker count whose rows were sent in the current buffer (None: none).
    pub(super) primed: Option<(Vec<usize>, usize)>,
    /// The buffer the last step's mirrors are in (kept when a new one is shared before they
    /// are gathered).
    mirrors: Option<Shared>,
}

impl WorkerHelpers {
    fn relay_shared(&self) -> Option<Shared> {
        self.shared.clone()
    }

    /// Spins until control word `at` holds at least `need` (the step's helpers alive) or the
    /// deadline passes: then the first helper short of it is lost.
    fn relay_wait(&mut self, at: &dyn Fn(usize) -> u32, need: &dyn Fn(usize) -> i32, upto: usize) -> bool {
        let Some(shared) = self.relay_shared() else { return false };
        let deadline = self.clock.now() + self.deadline_ms;
        let mut spins = 0u32;
        loop {
            let short = (1..=upto).find(|&v| shared.get(at(v)) < need(v));
            let Some(v) = short else { return true };
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 {
                let h = self.relay.active[v - 1];
                // A helper's status counts with its answer to this step (one that gave up on an
                // earlier step may still be writing its own).
                let gave_up = shared.get(Shared::block(h, DONE)) == self.relay.seq && shared.get(Shared::block(h, STATUS)) == 1;
                let crashed = self.crashed.borrow().get(h).copied().unwrap_or(false) || gave_up;
                if crashed || self.clock.now() > deadline {
                    let why = if crashed { "failed during a step" } else { "stopped answering" };
                    self.lose(h, why);
                    self.relay.failure.get_or_insert(format!("worker {} {why}", h + 2));
                    return false;
                }
            }
        }
    }

    fn mirror_at(&self, shared: &Shared, h: usize, place: usize) -> u32 {
        shared.layout.grads_at(h, place)
    }
}

impl SplitRelay for WorkerHelpers {
    fn ready(&mut self, model: &mut Sequential, n: usize, (input, out): (usize, usize), workers: usize) -> Option<bool> {
        let crashed: Vec<usize> = self.crashed.borrow().iter().enumerate().filter(|(_, c)| **c).map(|(h, _)| h).collect();
        for h in crashed {
            self.lose(h, "crashed");
        }
        let x = (n * input).max(2 * n * out);
        let mut grads = 0;
        model.visit_params(&mut |_, _, w, _| grads += w.len());
        let needs = super::Layout { params: super::weights_len(model), grads, x, y: n, helpers: self.workers.len(), slots: 2 };
        let fits = self
            .shared
            .as_ref()
            .is_some_and(|s| (s.layout.params, s.layout.grads) == (needs.params, needs.grads) && s.layout.x >= needs.x && s.layout.y >= needs.y);
        if !fits {
            // Room for twice the batch (a helper's mirrors lie in its answer places, each as
            // long as every weight). Not ready until the helpers have the new buffer.
            let _ = self.share(super::Layout { x: x * 2, y: n * 2, ..needs });
            return None;
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
        let live: Vec<usize> = (0..self.workers.len()).filter(|&h| self.alive[h]).take(workers - 1).collect();
        if !ready || live.len() + 1 != workers {
            return None;
        }
        // Rows were sent to these helpers, for this deal, in this buffer.
        Some(self.relay.primed.as_ref() != Some(&(live, workers)))
    }

    fn begin(&mut self, step: &RelayStep) {
        let shared = self.shared.clone().expect("ready");
        if super::KILL.with(|k| k.take()) {
            if let Some(h) = self.alive.iter().position(|a| *a) {
                self.workers[h].terminate();
            }
        }
        let live: Vec<usize> = (0..self.workers.len()).filter(|&h| self.alive[h]).take(step.workers - 1).collect();
        let r = &mut self.relay;
        r.mirrors = Some(shared.clone());
        if step.init.is_some() {
            r.primed = Some((live.clone(), step.workers));
        }
        (r.workers, r.n, r.input, r.out, r.states, r.grads) = (step.workers, step.n, step.input, step.out, step.rule.states(), step.grads);
        r.active = live;
        let cur = 1 - r.mirror;
        if let Some((w, state)) = step.init {
            // The rows each helper starts from, where a step starts from them.
            for (i, &h) in r.active.iter().enumerate() {
                let rows = part_rows(step.input, step.workers, i + 1);
                let span = rows.start * step.out..rows.end * step.out;
                shared.copy_out(shared.layout.grads_at(h, W_PLACE + r.mirror) + span.start as u32, &w[span.clone()]);
                for (j, s) in state.iter().enumerate().take(r.states) {
                    shared.copy_out(shared.layout.grads_at(h, STATE_PLACE + 2 * r.mirror + j) + span.start as u32, &s[span.clone()]);
                }
            }
        }
        shared.set(ROWS, step.n as i32);
        shared.set(SHAPE, step.n as i32);
        shared.set(SHAPE + 1, step.input as i32);
        shared.set(SHARDS, step.shards as i32);
        shared.set(WORKERS, step.workers as i32);
        shared.set(KIND, SPLIT);
        shared.set(lead(OUT), step.out as i32);
        shared.set(lead(FLAGS), if step.init.is_some() { INIT } else { 0 } | if step.grads { GRADS } else { 0 });
        shared.set(lead(SLOT), cur as i32);
        let h = &step.hyper;
        for (i, v) in [h.lr, h.momentum, h.l2, h.l1].iter().enumerate() {
            shared.set(lead(HYPER + i as u32), v.to_bits() as i32);
        }
        for (i, w) in step.rule.to_words().iter().enumerate() {
            shared.set(lead(RULE + i as u32), *w as i32);
        }
        for v in 0..MAX_SPLIT_WORKERS {
            shared.set(lead(FORWARD + v as u32), 0);
        }
        for h in 0..self.workers.len() {
            shared.set(Shared::block(h, GROUP), 0);
        }
        for (i, &h) in r.active.iter().enumerate() {
            shared.set(Shared::block(h, GROUP), i as i32 + 1);
        }
        r.seq = super::next_seq(self.seq);
        self.seq = r.seq;
        shared.set(SEQ, r.seq);
        super::ring(&shared);
    }

    fn put_block(&mut self, i: usize, rows: Range<usize>, x: &[f32], z: &[f32]) {
        let Some(shared) = self.relay_shared() else { return };
        let (input, out) = (self.relay.input, self.relay.out);
        // The helpers' columns of each row: one run from the first helper's first column.
        let from = part_rows(input, self.relay.workers, 1).start;
        let base = shared.layout.x_at(0);
        for (j, r) in rows.clone().enumerate() {
            shared.copy_out(base + (r * input + from) as u32, &x[j * input + from..(j + 1) * input]);
        }
        shared.copy_out(shared.layout.x_at(1) + (rows.start * out) as u32, z);
        shared.set(lead(FORWARD), i as i32 + 1);
    }

    fn get_rows(&mut self, rows: Range<usize>, z: &mut [f32]) -> bool {
        let blocks = rows.end.div_ceil(FORWARD_BLOCK) as i32;
        let last = self.relay.workers - 1;
        // Every helper's progress (each follows the one before): the first short of it is the one lost.
        if !self.relay_wait(&|v| lead(FORWARD + v as u32), &|_| blocks, last) {
            return false;
        }
        let Some(shared) = self.relay_shared() else { return false };
        shared.copy_in(shared.layout.x_at(1) + (rows.start * self.relay.out) as u32, z);
        true
    }

    fn put_dz(&mut self, dz: &[f32]) {
        let Some(shared) = self.relay_shared() else { return };
        shared.copy_out(shared.layout.x_at(1) + (self.relay.n * self.relay.out) as u32, dz);
        shared.set(lead(DZ), self.relay.seq);
    }

    fn wait_done(&mut self) -> bool {
        let seq = self.relay.seq;
        let active = self.relay.active.clone();
        let ok = self.relay_wait(&|v| Shared::block(active[v - 1], DONE), &|_| seq, active.len());
        let Some(shared) = self.relay_shared() else { return false };
        if ok && active.iter().any(|&h| shared.get(Shared::block(h, STATUS)) != 0) {
            let h = active.iter().copied().find(|&h| shared.get(Shared::block(h, STATUS)) != 0).expect("found");
            self.lose(h, "failed during a step");
            self.relay.failure.get_or_insert(format!("worker {} failed during a step", h + 2));
            return false;
        }
        if ok {
            self.relay.mirror = 1 - self.relay.mirror;
        }
        ok
    }

    fn restore(&mut self, w: &mut [f32], state: [&mut [f32]; 2]) {
        let Some(shared) = self.relay.mirrors.clone() else { return };
        let r = &self.relay;
        let [s0, s1] = state;
        for (i, &h) in r.active.iter().enumerate() {
            let rows = part_rows(r.input, r.workers, i + 1);
            read_rows(&shared, self.mirror_at(&shared, h, W_PLACE + r.mirror), &rows, r.out, w);
            for (j, s) in [&mut *s0, &mut *s1].into_iter().enumerate().take(r.states) {
                read_rows(&shared, self.mirror_at(&shared, h, STATE_PLACE + 2 * r.mirror + j), &rows, r.out, s);
            }
        }
    }

    fn gather(&mut self, w: &mut [f32], dw: &mut [f32], state: [&mut [f32]; 2]) {
        self.restore(w, state);
        let Some(shared) = self.relay.mirrors.clone() else { return };
        let r = &self.relay;
        if r.grads {
            for (i, &h) in r.active.iter().enumerate() {
                read_rows(&shared, self.mirror_at(&shared, h, DW_PLACE), &part_rows(r.input, r.workers, i + 1), r.out, dw);
            }
        }
    }

    fn failure(&mut self) -> Option<String> {
        self.relay.failure.take()
    }
}

/// Rows `rows` (each `out` wide) of a full-size tensor at `at` into `to`.
fn read_rows(shared: &Shared, at: u32, rows: &Range<usize>, out: usize, to: &mut [f32]) {
    let span = rows.start * out..rows.end * out;
    if to.len() >= span.end {
        shared.copy_in(at + span.start as u32, &mut to[span]);
    }
}

/// A helper's side, kept between steps: its rows and buffers.
#[derive(Default)]
pub(super) struct Side {
    part: Part,
    x: Vec<f32>,
    z: Vec<f32>,
    dz: Vec<f32>,
}

impl Side {
    /// Helper `h`'s part of split step `seq`; false: it could not be done (an unreadable job, or
    /// the lead stopped: the lead does it).
    pub(super) fn answer(&mut self, shared: &Shared, h: usize, seq: i32, clock: &Clock) -> bool {
        let v = shared.get(Shared::block(h, GROUP)).max(0) as usize;
        let g = |i: u32| shared.get(i).max(0) as usize;
        let (workers, n, shards, input, out) = (g(WORKERS), g(ROWS), g(SHARDS), g(SHAPE + 1), g(lead(OUT)));
        let layout = shared.layout;
        if v == 0 {
            return true;
        }
        let fits = v < workers && workers <= MAX_SPLIT_WORKERS && (1..=MAX_SHARDS).contains(&shards);
        if !fits || n * input > layout.x || 2 * n * out > layout.x || input * out > layout.grads {
            return false;
        }
        let words: [u32; 6] = std::array::from_fn(|i| shared.get(lead(RULE + i as u32)) as u32);
        let Some(rule) = Rule::from_words(words) else { return false };
        let f = |i: u32| f32::from_bits(shared.get(lead(HYPER + i)) as u32);
        let hyper = Hyper { lr: f(0), momentum: f(1), l2: f(2), l1: f(3), clip: 0.0 };
        let (flags, cur) = (shared.get(lead(FLAGS)), shared.get(lead(SLOT)).clamp(0, 1) as usize);
        let rows = part_rows(input, workers, v);
        let (w, _, [s0, s1]) = self.part.tensors(input, out);
        if flags & INIT != 0 {
            read_rows(shared, layout.grads_at(h, W_PLACE + 1 - cur), &rows, out, w);
            for (j, s) in [s0, s1].into_iter().enumerate().take(rule.states()) {
                read_rows(shared, layout.grads_at(h, STATE_PLACE + 2 * (1 - cur) + j), &rows, out, s);
            }
        }
        self.x.resize(n * input, 0.0);
        self.z.resize(FORWARD_BLOCK * out, 0.0);
        let deadline = clock.now() + 10_000.0;
        let wait = |at: u32, need: i32| -> bool {
            let mut spins = 0u32;
            while shared.get(at) < need {
                spins = spins.wrapping_add(1);
                if (spins % 256 == 0 && clock.now() > deadline) || shared.get(SEQ) != seq {
                    return false;
                }
            }
            true
        };
        for i in 0..n.div_ceil(FORWARD_BLOCK) {
            if !wait(lead(FORWARD + v as u32 - 1), i as i32 + 1) {
                return false;
            }
            let block = i * FORWARD_BLOCK..((i + 1) * FORWARD_BLOCK).min(n);
            for r in block.clone() {
                let at = r * input + rows.start;
                shared.copy_in(layout.x_at(0) + at as u32, &mut self.x[at..at + rows.len()]);
            }
            let z = &mut self.z[..block.len() * out];
            let at = layout.x_at(1) + (block.start * out) as u32;
            shared.copy_in(at, z);
            self.part.forward(workers, v, input, out, block, &self.x, z);
            shared.copy_out(at, z);
            shared.set(lead(FORWARD + v as u32), i as i32 + 1);
        }
        if !wait(lead(DZ), seq) {
            return false;
        }
        self.dz.resize(n * out, 0.0);
        shared.copy_in(layout.x_at(1) + (n * out) as u32, &mut self.dz);
        self.part.update((workers, v), (n, input, out, shards), &self.x, &self.dz, rule, &hyper);
        // The mirrors: the rows after this step, in the copy the step writes.
        let (w, dw, [s0, s1]) = self.part.tensors(input, out);
        let span = (rows.start * out) as u32;
        let (a, b) = (rows.start * out, rows.end * out);
        shared.copy_out(layout.grads_at(h, W_PLACE + cur) + span, &w[a..b]);
        for (j, s) in [s0, s1].into_iter().enumerate().take(rule.states()) {
            shared.copy_out(layout.grads_at(h, STATE_PLACE + 2 * cur + j) + span, &s[a..b]);
        }
        if flags & GRADS != 0 {
            shared.copy_out(layout.grads_at(h, DW_PLACE) + span, &dw[a..b]);
        }
        true
    }
}
