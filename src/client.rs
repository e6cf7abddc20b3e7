//! The UI's side of the worker: spawns it, sends commands, and turns its messages into signals.
//! Messages are kept in a one-slot mailbox and published once per animation frame, so the UI
//! draws only the latest snapshot however fast they arrive.

use crate::fatal;
use crate::pacing::ChartPacing;
use crate::protocol::{decode, encode, Command, Message, Placement};
use crate::share;
use engine::lab::snapshot::StepRecord;
use engine::lab::timeline::{ForkSpec, TimelineView};
use engine::lab::{Backend, LabCommand, LabConfig, LabParams, LabReply, Notice, Snapshot, Speed, WorkerCount};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker};

/// Whole-dataset losses at one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPoint {
    pub step: u64,
    pub train_loss: f32,
    pub test_loss: f32,
}

/// Keeps the loss chart light: once the history is long, every other point is dropped.
const MAX_HISTORY: usize = 4000;

/// Everything a lab page reads and does. `Copy`: every field is a reactive handle.
#[derive(Clone, Copy)]
pub struct LabState {
    pub config: RwSignal<LabConfig>,
    pub snapshot: RwSignal<Option<Snapshot>>,
    pub running: RwSignal<bool>,
    pub ready: RwSignal<bool>,
    pub history: RwSignal<Vec<HistoryPoint>>,
    /// Per-step records (mini-batch loss, gradient norms) streamed by the trainer.
    pub records: RwSignal<Vec<StepRecord>>,
    pub notices: RwSignal<Vec<Notice>>,
    /// Controls hidden by the link (`<control>_hide=true`), kept in shared links.
    pub hidden_controls: RwSignal<Vec<String>>,
    /// Why training last stopped by itself (stop step reached, divergence…).
    pub status: RwSignal<Option<String>>,
    /// Data being fetched by the worker: (what, bytes so far, bytes in all).
    pub loading: RwSignal<Option<(String, f64, f64)>>,
    /// The latest answer to a lab's own command (an export, draw-a-digit's probabilities…).
    pub reply: RwSignal<Option<LabReply>>,
    /// Steps per frame (kept in the link and remembered by the browser).
    pub speed: RwSignal<Speed>,
    /// Where the link asks the steps to run (kept in the link when not `auto`).
    pub backend: RwSignal<Backend>,
    /// Where they run now, from the latest snapshot.
    pub placement: RwSignal<Placement>,
    /// How many workers train (kept in the link when not `auto`).
    pub workers: RwSignal<WorkerCount>,
    /// The worker has a GPU path (the GPU worker: the browser offers WebGPU and the lab can use it).
    pub gpu_worker: RwSignal<bool>,
    /// Time travel: the checkpoints kept and the fork (its records are in `branch`).
    pub timeline: RwSignal<TimelineView>,
    /// Branch B's `(step, mini-batch loss)` since the fork.
    pub branch: RwSignal<Vec<(u64, f32)>>,
    /// The fork kept in the link (`fork=…&branch=…`): the one trained, or the link's, still ahead.
    pub fork: RwSignal<Option<ForkSpec>>,
    /// The backprop view's latest trace (or why there is none), while its panel is open.
    pub vjp: RwSignal<Option<Result<engine::lab::vjp::VjpView, String>>>,
    /// The worker's wasm memory in bytes, from its latest snapshot.
    pub worker_memory: RwSignal<f64>,
    /// Optimiser steps per second actually trained, measured between snapshots.
    pub rate: RwSignal<Option<f64>>,
    /// (time in ms, step) of the snapshot the rate was last measured from.
    rate_mark: StoredValue<Option<(f64, u64)>, LocalStorage>,
    worker: StoredValue<Option<Worker>, LocalStorage>,
    mailbox: StoredValue<Option<Message>, LocalStorage>,
    /// Chart draws waiting for a frame, by chart (a newer draw of a chart replaces its older one).
    draws: StoredValue<Vec<(&'static str, Box<dyn FnOnce()>)>, LocalStorage>,
    /// When each chart was last drawn (ms, `performance.now()`).
    drawn_at: StoredValue<Vec<(&'static str, f64)>, LocalStorage>,
    /// How often charts are redrawn while training runs (see `pacing`).
    pacing: StoredValue<ChartPacing, LocalStorage>,
    /// When the latest snapshot was published (ms).
    published_at: StoredValue<f64, LocalStorage>,
}

impl LabState {
    /// A lab page's state. `speed`: the link's, else the one this browser last chose, else the
    /// slow first-visit default.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: LabConfig,
        notices: Vec<Notice>,
        hidden_controls: Vec<String>,
        speed: Option<Speed>,
        backend: Backend,
        fork: Option<ForkSpec>,
        workers: WorkerCount,
    ) -> Self {
        let speed = speed.or_else(|| storage_get(SPEED_KEY).and_then(|s| Speed::parse(&s))).unwrap_or_default();
        let state = LabState {
            backend: RwSignal::new(backend),
            placement: RwSignal::new(Placement::default()),
            workers: RwSignal::new(workers),
            gpu_worker: RwSignal::new(false),
            speed: RwSignal::new(speed),
            rate: RwSignal::new(None),
            worker_memory: RwSignal::new(0.0),
            vjp: RwSignal::new(None),
            timeline: RwSignal::new(TimelineView::default()),
            branch: RwSignal::new(Vec::new()),
            fork: RwSignal::new(fork),
            rate_mark: StoredValue::new_local(None),
            hidden_controls: RwSignal::new(hidden_controls),
            config: RwSignal::new(config),
            snapshot: RwSignal::new(None),
            running: RwSignal::new(false),
            ready: RwSignal::new(false),
            history: RwSignal::new(Vec::new()),
            records: RwSignal::new(Vec::new()),
            notices: RwSignal::new(notices),
            status: RwSignal::new(None),
            loading: RwSignal::new(None),
            reply: RwSignal::new(None),
            worker: StoredValue::new_local(None),
            mailbox: StoredValue::new_local(None),
            draws: StoredValue::new_local(Vec::new()),
            drawn_at: StoredValue::new_local(Vec::new()),
            pacing: StoredValue::new_local(ChartPacing::default()),
            published_at: StoredValue::new_local(f64::NEG_INFINITY),
        };
        state.spawn_worker();
        state.sync_url();
        frame_loop(state);
        state
    }

    fn spawn_worker(self) {
        // Labs whose networks can run on the GPU get the GPU worker where the browser has WebGPU
        // (it trains on the CPU too, so a backend switch keeps the session); others the CPU
        // worker, which is the page's own wasm started in worker mode (one download).
        let gpu = self.config.with_untracked(|c| engine::lab::accelerates(c)) && browser_has_webgpu();
        self.gpu_worker.set(gpu);
        let worker = match new_worker(gpu) {
            Ok(w) => w,
            Err(e) => {
                fatal::show(&format!("Could not start the training worker: {e:?}"));
                return;
            }
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match decode::<Message>(event.data()) {
                Ok(Message::Ready) => {
                    self.ready.set(true);
                    let query = self.config.with_untracked(|c| c.to_query());
                    let backend = self.backend.get_untracked();
                    let mut query = if backend == Backend::Auto { query } else { format!("{query}&backend={}", backend.key()) };
                    if let Some(f) = self.fork.get_untracked() {
                        query.push_str(&format!("&{}", f.query()));
                    }
                    query.push_str(&format!("&workers={}", self.workers.get_untracked().key()));
                    self.send(Command::Start { query });
                    self.send(Command::Speed { steps_per_frame: self.speed.get_untracked().steps_per_frame() });
                }
                Ok(Message::Error { message }) => fatal::show(&message),
                Ok(Message::Config { query }) => {
                    let parsed = engine::lab::parse_link(&query);
                    self.config.set(parsed.config);
                    self.sync_url();
                    self.history.set(Vec::new());
                    self.records.set(Vec::new());
                }
                Ok(Message::BenchDone { .. } | Message::BenchSideBySideDone { .. } | Message::GpuUnavailable { .. }) => {} // only the benchmark page asks for these
                Ok(Message::Exported { filename, text }) => {
                    let mime = if filename.ends_with(".json") { "application/json" } else { "text/x-python" };
                    crate::share::download(&filename, &text, mime)
                }
                Ok(Message::Loading { what, loaded, total }) => self.loading.set(Some((what, loaded, total))),
                Ok(Message::LoadFailed { message }) => {
                    self.loading.set(None);
                    self.status.set(Some(message));
                }
                Ok(Message::Lab { reply }) => self.reply.set(Some(reply)),
                Ok(Message::Traced { result }) => self.vjp.set(Some(result)),
                Ok(Message::Rejected { key, message }) => self.notices.update(|n| n.push(Notice { key, message })),
                Ok(Message::Applied { reset, query, .. }) => {
                    if reset {
                        self.history.set(Vec::new());
                        self.records.set(Vec::new());
                        self.status.set(Some("the network was rebuilt from its seed — press Play".into()));
                    }
                    // The worker's config is the truth (a change may have moved other keys).
                    if self.config.with_untracked(|c| c.to_query()) != query {
                        self.config.set(engine::lab::parse_link(&query).config);
                        self.sync_url();
                    }
                }
                Ok(Message::Rewound { step }) => {
                    // A snapshot of the abandoned future must not be drawn.
                    self.mailbox.set_value(None);
                    self.records.update(|r| r.retain(|p| p.step <= step));
                    self.history.update(|h| h.retain(|p| p.step <= step));
                    self.branch.set(Vec::new());
                }
                Ok(Message::KeptBranch { query }) => {
                    self.mailbox.set_value(None);
                    let at = self.timeline.with_untracked(|t| t.branch.as_ref().map_or(0, |b| b.spec.at));
                    let b = self.branch.get_untracked();
                    self.records.update(|r| {
                        r.retain(|p| p.step <= at);
                        r.extend(b.iter().filter(|p| p.0 > at).map(|&(step, loss)| StepRecord { step, loss, accuracy: None, grads: Vec::new() }));
                    });
                    self.history.update(|h| h.retain(|p| p.step <= at));
                    self.branch.set(Vec::new());
                    self.config.set(engine::lab::parse_link(&query).config);
                    self.fork.set(None);
                    self.sync_url();
                }
                Ok(Message::Snapshot { mut snapshot, running, reason, memory, placement, mut timeline }) => {
                    self.worker_memory.set(memory);
                    if self.placement.with_untracked(|p| *p != placement) {
                        self.placement.set(placement.clone());
                    }
                    // Only the latest snapshot is drawn, but no step record may be lost.
                    self.mailbox.update_value(|slot| {
                        if let Some(Message::Snapshot { snapshot: older, timeline: older_timeline, .. }) = slot.take() {
                            let newer = std::mem::take(&mut snapshot.records);
                            snapshot.records = older.records;
                            snapshot.records.extend(newer);
                            if let (Some(old), Some(new)) = (older_timeline.branch, timeline.branch.as_mut()) {
                                if old.spec == new.spec {
                                    let newer = std::mem::take(&mut new.records);
                                    new.records = old.records;
                                    new.records.extend(newer);
                                }
                            }
                        }
                        *slot = Some(Message::Snapshot { snapshot, running, reason, memory, placement, timeline });
                    });
                }
                Err(e) => web_sys::console::warn_1(&format!("unreadable worker message: {e}").into()),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget(); // the worker lives as long as the page
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            // A script that could not load (offline before a first visit cached it) fires a plain
            // Event with no message, not an ErrorEvent.
            let message = js_sys::Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
                .unwrap_or_else(|| "its script could not be loaded (offline, or the server stopped)".to_string());
            fatal::show(&fatal::worker_failed(&message, &self.config.with_untracked(|c| c.to_query())));
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        self.worker.set_value(Some(worker));
        self.install_debug_hook();
    }

    /// `window.deeplyDebug.panicWorker()` (see `fatal::install_debug_hooks`).
    fn install_debug_hook(self) {
        let Some(debug) = web_sys::window().and_then(|w| js_sys::Reflect::get(&w, &"deeplyDebug".into()).ok()) else {
            return;
        };
        let panic_worker = Closure::<dyn Fn()>::new(move || self.send(Command::Panic));
        let _ = js_sys::Reflect::set(&debug, &"panicWorker".into(), panic_worker.as_ref());
        panic_worker.forget();
        let kill_worker = Closure::<dyn Fn()>::new(move || self.send(Command::KillWorker));
        let _ = js_sys::Reflect::set(&debug, &"killWorker".into(), kill_worker.as_ref());
        kill_worker.forget();
        let switch_copies = Closure::<dyn Fn()>::new(move || self.send(Command::SwitchCopies));
        let _ = js_sys::Reflect::set(&debug, &"switchCopies".into(), switch_copies.as_ref());
        switch_copies.forget();
        // The workers' copies through a shared wasm memory, checked bit for bit on this page.
        let copy_check = Closure::<dyn Fn() -> String>::new(|| crate::shared_copy::check().unwrap_or_else(|why| why));
        let _ = js_sys::Reflect::set(&debug, &"sharedCopyCheck".into(), copy_check.as_ref());
        copy_check.forget();
    }

    pub fn send(&self, command: Command) {
        self.worker.with_value(|w| {
            if let Some(w) = w {
                let _ = w.post_message(&encode(&command));
            }
        });
    }

    /// Draws chart `key` in an upcoming frame. Charts queue here instead of drawing when a snapshot
    /// arrives, and each frame draws them for at most a few milliseconds: four charts redrawn in
    /// one frame would drop it.
    pub fn draw_soon(&self, key: &'static str, draw: impl FnOnce() + 'static) {
        self.draws.update_value(|d| {
            d.retain(|(k, _)| *k != key);
            d.push((key, Box::new(draw)));
        });
    }

    /// Runs queued chart draws, the longest-waiting chart first, until `budget_ms` have passed (at least one). While
    /// training runs on a machine that drops frames, only one chart is drawn per frame, and a
    /// chart at most once per the pacing's interval (its newest draw waits meanwhile).
    fn run_draws(self, budget_ms: f64) {
        let now = || web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0);
        let start = now();
        let running = self.running.get_untracked();
        self.pacing.update_value(|p| if running { p.frame(start) } else { p.pause() });
        let paced = running && !self.pacing.with_value(|p| p.at_full_pace());
        let interval = if paced { self.pacing.with_value(|p| p.interval()) } else { 0.0 };
        let drawn_at = |key: &str| self.drawn_at.with_value(|d| d.iter().find(|(k, _)| *k == key).map_or(f64::NEG_INFINITY, |e| e.1));
        loop {
            // The due chart that has waited longest.
            let next = self
                .draws
                .try_update_value(|d| {
                    let due = d.iter().enumerate().filter(|(_, (k, _))| start - drawn_at(k) >= interval);
                    due.min_by(|a, b| drawn_at(a.1 .0).total_cmp(&drawn_at(b.1 .0))).map(|(i, _)| i).map(|i| d.remove(i))
                })
                .flatten();
            let Some((key, draw)) = next else { break };
            draw();
            self.drawn_at.update_value(|d| match d.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = start,
                None => d.push((key, start)),
            });
            if paced || now() - start >= budget_ms {
                break;
            }
        }
    }

    /// Sends a lab's own command.
    pub fn command(&self, command: LabCommand) {
        self.send(Command::Lab { command });
    }

    /// The lab's config, typed (`None` on another lab's page).
    pub fn config_as<C: LabParams>(&self) -> Option<C> {
        self.config.with(|c| c.get::<C>().cloned())
    }

    /// Publishes the latest snapshot (called once per animation frame).
    fn publish(self) {
        // On a machine that drops frames while training, the page updates at most once per
        // the pacing's publish interval (`ChartPacing::publish_interval`): the newest snapshot
        // waits, merged.
        let now = web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0);
        let paced = self.running.get_untracked() && !self.pacing.with_value(|p| p.at_full_pace());
        if paced && now - self.published_at.get_value() < self.pacing.with_value(|p| p.publish_interval()) {
            return;
        }
        let Some(Message::Snapshot { snapshot, running, reason, mut timeline, .. }) = self.mailbox.try_update_value(|m| m.take()).flatten() else {
            return;
        };
        self.published_at.set_value(now);
        self.publish_timeline(&mut timeline);
        let mut snapshot = snapshot;
        let point = HistoryPoint { step: snapshot.step, train_loss: snapshot.train_loss, test_loss: snapshot.test_loss };
        let restarted = self.history.with_untracked(|h| h.last().is_some_and(|last| last.step > point.step)) || point.step == 0;
        let fresh = std::mem::take(&mut snapshot.records);
        self.records.update(|r| {
            if restarted {
                r.clear();
            }
            r.extend(fresh);
            if r.len() > MAX_HISTORY {
                let kept: Vec<StepRecord> = r.iter().step_by(2).cloned().collect();
                *r = kept;
            }
        });
        self.history.update(|h| {
            if restarted {
                h.clear();
            }
            if h.last().is_none_or(|last| last.step < point.step) || h.is_empty() {
                h.push(point);
            }
            if h.len() > MAX_HISTORY {
                let kept: Vec<HistoryPoint> = h.iter().step_by(2).cloned().collect();
                *h = kept;
            }
        });
        if reason.is_some() || running {
            self.status.set(reason);
        }
        if self.loading.with_untracked(|l| l.is_some()) {
            self.loading.set(None);
        }
        self.measure_rate(snapshot.step, running);
        self.running.set(running);
        self.snapshot.set(Some(*snapshot));
    }

    /// Keeps branch B's records, the fork in the link, and the checkpoints for the scrubber.
    fn publish_timeline(self, timeline: &mut TimelineView) {
        match timeline.branch.as_mut() {
            Some(b) => {
                let fresh = std::mem::take(&mut b.records);
                self.branch.update(|r| {
                    r.extend(fresh);
                    if r.len() > MAX_HISTORY {
                        let kept: Vec<(u64, f32)> = r.iter().step_by(2).cloned().collect();
                        *r = kept;
                    }
                });
            }
            None if self.branch.with_untracked(|r| !r.is_empty()) => self.branch.set(Vec::new()),
            None => {}
        }
        let fork = timeline.branch.as_ref().map(|b| b.spec.clone()).or_else(|| timeline.pending.clone());
        if self.fork.with_untracked(|f| *f != fork) {
            self.fork.set(fork);
            self.sync_url();
        }
        if self.timeline.with_untracked(|t| t != timeline) {
            self.timeline.set(std::mem::take(timeline));
        }
    }

    /// Back to the checkpoint at `step`.
    pub fn rewind(&self, step: u64) {
        self.send(Command::Rewind { step });
    }

    /// Forks at a checkpoint with one value changed in branch B.
    pub fn fork_at(&self, spec: ForkSpec) {
        self.send(Command::Fork { spec });
    }

    /// Ends the fork, keeping B (or A).
    pub fn keep(&self, b: bool) {
        self.send(Command::Keep { b });
    }

    /// Sets the speed: remembered by this browser, kept in the link, sent to the worker.
    pub fn set_speed(&self, speed: Speed) {
        self.speed.set(speed);
        storage_set(SPEED_KEY, speed.key());
        self.sync_url();
        self.send(Command::Speed { steps_per_frame: speed.steps_per_frame() });
    }

    /// Where the steps run: kept in the link, sent to the worker (a switch keeps the weights).
    pub fn set_backend(&self, backend: Backend) {
        self.backend.set(backend);
        self.sync_url();
        self.send(Command::Backend { backend });
    }

    /// How many workers train: kept in the link, sent to the worker (the steps stay the same bits).
    pub fn set_workers(&self, workers: WorkerCount) {
        self.workers.set(workers);
        self.sync_url();
        self.send(Command::Workers { workers });
    }

    /// Steps per second actually trained, from snapshots at least half a second apart.
    fn measure_rate(&self, step: u64, running: bool) {
        let now = web_sys::window().and_then(|w| w.performance()).map(|p| p.now()).unwrap_or(0.0);
        if !running {
            self.rate_mark.set_value(None);
            return;
        }
        match self.rate_mark.get_value() {
            Some((t, s)) if now - t >= 500.0 && step >= s => {
                self.rate.set(Some((step - s) as f64 * 1000.0 / (now - t)));
                self.rate_mark.set_value(Some((now, step)));
            }
            Some((_, s)) if step >= s => {}
            _ => self.rate_mark.set_value(Some((now, step))),
        }
    }

    /// The share-link query: the config, the speed, then any `_hide` keys.
    pub fn query(&self) -> String {
        let mut q = self.config.with(|c| c.to_query());
        q.push_str(&format!("&speed={}", self.speed.with(|s| s.key())));
        let backend = self.backend.get();
        if backend != Backend::Auto {
            q.push_str(&format!("&backend={}", backend.key()));
        }
        let workers = self.workers.get();
        if workers != WorkerCount::Auto {
            q.push_str(&format!("&workers={}", workers.key()));
        }
        if let Some(f) = self.fork.get() {
            q.push_str(&format!("&{}", f.query()));
        }
        self.hidden_controls.with(|h| h.iter().for_each(|k| q.push_str(&format!("&{k}_hide=true"))));
        q
    }

    /// Writes the current config into the address bar.
    pub fn sync_url(&self) {
        share::replace_query(&untrack(|| self.query()));
    }

    /// Whether the link hid a control.
    pub fn hidden(&self, key: &str) -> bool {
        self.hidden_controls.with(|h| h.iter().any(|k| k == key))
    }

    /// The current value of a link key, as text.
    pub fn value_of(&self, key: &str) -> String {
        self.config.with(|c| c.pairs().into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default())
    }

    /// Changes one config value (validated like a link value) and tells the worker.
    pub fn set_value(&self, key: &str, value: &str) {
        let next = self.config.with_untracked(|c| c.with_value(key, value));
        match next {
            Ok(c) => {
                // An accepted value clears the notices about its key (shown next to its field).
                self.notices.update(|n| n.retain(|x| x.key != key));
                self.config.set(c);
                self.sync_url();
                self.send(Command::Set { key: key.into(), value: value.into() });
            }
            Err(notice) => {
                self.notices.update(|n| n.push(notice));
                self.config.update(|_| {}); // re-render the control with the kept value
            }
        }
    }

    pub fn toggle_play(&self) {
        if self.running.get_untracked() {
            self.send(Command::Pause);
        } else {
            self.status.set(None);
            self.send(Command::Play);
        }
    }

    pub fn step_once(&self) {
        self.send(Command::Step);
    }

    /// Applies a diagnosis' one-click fix.
    pub fn apply_fix(&self, fix: &engine::lab::diagnose::Fix) {
        self.set_value(&fix.key, &fix.value);
        if fix.reset {
            self.reset();
        }
        self.status.set(Some(format!("applied: {}", fix.label)));
    }

    pub fn reset(&self) {
        self.status.set(None);
        self.history.set(Vec::new());
        self.records.set(Vec::new());
        self.send(Command::Reset);
    }
}

/// `navigator.gpu` exists (WebGPU may still have no adapter: the worker finds out).
fn browser_has_webgpu() -> bool {
    web_sys::window().and_then(|w| js_sys::Reflect::get(&w.navigator(), &"gpu".into()).ok()).is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// Where this browser remembers the chosen speed.
const SPEED_KEY: &str = "deeply.speed";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// A remembered value (none where storage is off).
pub fn storage_get(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Remembers a value (silently not, where storage is off).
pub fn storage_set(key: &str, value: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

/// Chart drawing per frame, in ms (a frame is 16.7 ms).
const DRAW_BUDGET_MS: f64 = 6.0;

fn frame_loop(state: LabState) {
    request_animation_frame(move || {
        state.publish();
        state.run_draws(DRAW_BUDGET_MS);
        frame_loop(state);
    });
}

/// A training worker: `worker_main.js`, a module worker that starts the page's own wasm (one
/// download, cached), whose `main` sees no window and runs the trainer (`src/main.rs`) — with
/// WebGPU when the worker is named [`crate::GPU_WORKER_NAME`] (the GPU worker), without otherwise.
pub fn new_worker(gpu: bool) -> Result<Worker, JsValue> {
    let options = web_sys::WorkerOptions::new();
    options.set_type(web_sys::WorkerType::Module);
    if gpu {
        options.set_name(crate::GPU_WORKER_NAME);
    }
    Worker::new_with_options("./worker_main.js", &options)
}
