//! Worker side: the session, the run loop and the command handler.
//!
//! Training runs in chunks of about 12 ms; between chunks the worker yields to its event loop
//! (through a `MessageChannel`, which unlike `setTimeout` has no 4 ms clamp) so that commands
//! arrive promptly. A snapshot goes out at most every 33 ms, and when training pauses. At a paced
//! speed (steps per frame) a chunk is that many steps, and the next one follows a frame later.
//! When the run's workers take every core, chunks are 4 ms apart so the page can still draw.

use crate::protocol::{decode, encode, Command, Message, Placement};
use crate::rate::StepRate;
use engine::data::images::{Assets, ImageSet};
use engine::data::names::TextSet;
use engine::lab::accel::{RaceLane, RaceProbe};
use engine::lab::timeline::Timeline;
use engine::lab::{self, parse_link, Accelerator, Backend, LabCommand, LabSession, Trainer};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageChannel, MessageEvent};

/// Helper workers a side-by-side benchmark may start in all (each a wasm instance of its own).
const MAX_SIDE_BY_SIDE_HELPERS: usize = 16;
const CHUNK_MS: f64 = 12.0;
const SNAPSHOT_MS: f64 = 1000.0 / 30.0;
/// One displayed frame, for paced speeds.
const FRAME_MS: i32 = 16;
/// A rest between chunks when the run's workers take every core.
const REST_MS: i32 = 4;

/// A GPU the worker can hand a lab's steps to. The GPU worker provides one (`gpu_worker.rs`); the
/// CPU worker has none, so wgpu stays out of its binary.
pub trait GpuProvider {
    /// The adapter's name.
    fn name(&self) -> String;
    /// A software renderer (SwiftShader): slower than our CPU path, so `auto` does not pick it.
    fn software(&self) -> bool;
    /// An accelerator for this trainer (its model, batch size, optimiser) and input shape.
    fn make(&self, trainer: &Trainer, input: &[usize]) -> Result<Box<dyn Accelerator>, String>;
    /// The GPU's lane of the CNN race on the mini-batch the CPU lanes raced.
    fn race(&self, probe: RaceProbe) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<RaceLane, String>>>>;
}

/// What to do once the model holds every step the GPU took.
#[derive(Clone, PartialEq)]
enum AfterSync {
    /// Place the session again (a rebuild for a new batch size or optimiser, a backend switch).
    Place,
    /// Just show the settled state (pause, step).
    Show,
    /// The run stopped (its stop step or condition): bring the final metrics up to date on the
    /// settled weights, and say why.
    Finish(String),
}

/// Waiting this long for the GPU to answer counts as a failure (the run goes on on the CPU). A
/// software adapter on a busy machine can take seconds for a few queued steps: be patient.
const SETTLE_TIMEOUT_MS: f64 = 30_000.0;

struct Worker {
    scope: DedicatedWorkerGlobalScope,
    /// This worker, for the tasks it spawns (waiting for the GPU).
    me: Weak<RefCell<Worker>>,
    /// The GPU, or why there is none.
    gpu: Result<Rc<dyn GpuProvider>, String>,
    /// Where the link asks the steps to run.
    backend: Backend,
    /// Why the steps don't run where asked (or why auto chose the CPU).
    backend_note: Option<String>,
    /// Waiting for the GPU's last steps before a switch or a pause: no new steps meanwhile.
    settling: bool,
    /// The GPU's race lane is running.
    race_pending: bool,
    channel: MessageChannel,
    session: Option<Box<dyn LabSession>>,
    /// The session's checkpoints and fork (time travel).
    timeline: Option<Timeline>,
    running: bool,
    tick_pending: bool,
    /// Steps between two reads of the clock, adapted to the measured speed.
    batch: u64,
    /// Time per step of the calls that trained (see `rate`).
    rate: StepRate,
    last_snapshot: f64,
    /// Datasets fetched so far (kept across resets and lab changes).
    assets: Assets,
    /// A dataset is being fetched; commands wait in `queue` meanwhile.
    loading: bool,
    queue: VecDeque<Command>,
    /// Steps per frame at a paced speed (`None`: as fast as possible).
    pace: Option<u64>,
    /// Posts the next tick a frame from now (paced speeds).
    tick_later: js_sys::Function,
    /// How many workers the link asks to train on.
    workers: lab::WorkerCount,
    /// A worker lost, or why several can't train (kept until the count changes).
    workers_note: Option<String>,
}

impl Worker {
    fn now(&self) -> f64 {
        now(&self.scope)
    }

    fn post(&self, message: &Message) {
        let _ = self.scope.post_message(&encode(message));
    }

    fn send_snapshot(&mut self, reason: Option<String>) {
        let now = self.now();
        if let Some(s) = self.session.as_mut() {
            s.set_timing(self.rate.ms_per_step());
            let snapshot = Box::new(s.snapshot());
            self.last_snapshot = now;
            let running = self.running;
            let memory = wasm_memory_bytes();
            if let Some(note) = s.take_worker_failure() {
                self.workers_note = Some(note);
            }
            let placement = Placement { gpu: s.accelerator(), note: self.backend_note.clone(), workers: s.workers(), workers_note: self.workers_note.clone() };
            let mut timeline = self.timeline.as_mut().map(|t| t.view()).unwrap_or_default();
            if s.accelerator().is_some() {
                timeline.off = Some("time travel keeps checkpoints of runs on the CPU: switch the backend to CPU".into());
            }
            self.post(&Message::Snapshot { snapshot, running, reason, memory, placement, timeline });
        }
    }

    fn schedule(&mut self) {
        if self.running && !self.tick_pending {
            self.tick_pending = true;
            if self.pace.is_some() {
                let _ = self.scope.set_timeout_with_callback_and_timeout_and_arguments_0(&self.tick_later, FRAME_MS);
            } else if self.session.as_ref().is_some_and(|s| s.workers().training >= hardware_concurrency().max(2)) {
                // Every core trains (e.g. workers=2 on 2 cores): the page, its compositor and
                // the browser would get no core to draw on. Rest between chunks (a timeout:
                // ≥ 4 ms after a few in a row) so they keep a share — ~25 % fewer steps, ≥ 55 fps.
                let _ = self.scope.set_timeout_with_callback_and_timeout_and_arguments_0(&self.tick_later, REST_MS);
            } else {
                let _ = self.channel.port2().post_message(&JsValue::NULL);
            }
        }
    }

    /// A new timeline for a new session (with a link's fork to make when the run reaches it).
    fn new_timeline(&mut self, pending: Option<engine::lab::timeline::ForkSpec>) {
        self.timeline = self.session.as_mut().map(|s| Timeline::new(s.as_mut(), pending));
    }

    /// The session was rebuilt: its timeline starts again (a link's fork still waits).
    fn reset_timeline(&mut self) {
        match (self.session.as_mut(), self.timeline.as_mut()) {
            (Some(s), Some(t)) => t.reset(s.as_mut()),
            _ => self.new_timeline(None),
        }
    }

    /// After steps outside a tick: a due checkpoint, the link's fork, branch B's steps.
    fn advance_timeline(&mut self) {
        let (Some(s), Some(t)) = (self.session.as_mut(), self.timeline.as_mut()) else { return };
        if s.accelerator().is_none() {
            if let Err(n) = t.advance(s.as_mut()) {
                self.post(&Message::Rejected { key: n.key, message: n.message });
            }
        }
    }

    /// Goes back to a checkpoint (or forks there): the session continues from it, paused.
    fn travel(&mut self, go: impl FnOnce(&mut Timeline) -> Result<Box<dyn LabSession>, String>, step: u64, said: String) {
        if self.session.as_ref().is_some_and(|s| s.accelerator().is_some()) {
            let message = "time travel works on runs on the CPU: switch the backend to CPU first".to_string();
            return self.post(&Message::Rejected { key: "timeline".into(), message });
        }
        let Some(t) = self.timeline.as_mut() else { return };
        match go(t) {
            Ok(session) => {
                self.session = Some(session);
                self.running = false;
                self.recalibrate();
                self.post(&Message::Rewound { step });
                self.send_snapshot(Some(said));
            }
            Err(message) => self.post(&Message::Rejected { key: "timeline".into(), message }),
        }
    }

    /// Gives the session the link's number of workers (a new session starts on one).
    fn place_workers(&mut self) {
        let wanted = self.workers.resolve(hardware_concurrency());
        let Some(s) = self.session.as_mut() else { return };
        if s.workers().requested != wanted {
            s.set_workers(wanted, Some(worker_factory()));
        }
    }

    /// Times a benchmark session on `n` workers: first, between turns of the event loop, steps
    /// until the helper workers have started and train (up to 20 s), then the timed run.
    fn bench(&self, w: engine::lab::bench::Workload, mut session: Box<dyn LabSession>, items: f64, n: usize, seconds: f64) {
        session.set_workers(n, Some(worker_factory()));
        let scope = self.scope.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let start = now(&scope);
            let splits = session.workers().single.is_none();
            while splits && n > 1 && session.workers().training < n && now(&scope) - start < 20_000.0 {
                session.step(1);
                sleep(&scope, 10).await;
            }
            let result = engine::lab::bench::time(w, session.as_mut(), items, seconds, "cpu-wasm-simd128", &mut || now(&scope));
            let _ = scope.post_message(&encode(&Message::BenchDone { result }));
        });
    }

    /// Times benchmark sessions side by side (see `engine::lab::bench::time_side_by_side`), each
    /// on its count of workers, once every session's helpers have started and train (up to 20 s).
    fn bench_side_by_side(&self, w: engine::lab::bench::Workload, mut runs: Vec<engine::lab::bench::Timed>, counts: Vec<usize>, seconds: f64) {
        for ((session, _), &n) in runs.iter_mut().zip(&counts) {
            session.set_workers(n, Some(worker_factory()));
        }
        let scope = self.scope.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let start = now(&scope);
            let waiting = |runs: &[engine::lab::bench::Timed]| {
                runs.iter().zip(&counts).any(|((s, _), &n)| s.workers().single.is_none() && n > 1 && s.workers().training < n)
            };
            while waiting(&runs) && now(&scope) - start < 20_000.0 {
                for (session, _) in runs.iter_mut() {
                    session.step(1);
                }
                sleep(&scope, 10).await;
            }
            let results = engine::lab::bench::time_side_by_side(w, &mut runs, seconds, "cpu-wasm-simd128", &mut || now(&scope));
            let _ = scope.post_message(&encode(&Message::BenchSideBySideDone { results }));
        });
    }

    /// A new or rebuilt session may be far slower per step: measure again from one step.
    fn recalibrate(&mut self) {
        self.batch = 1;
        self.rate.reset();
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Start { query } => {
                let parsed = parse_link(&query);
                match lab::build_with(&parsed.config, &self.assets) {
                    Ok(session) => self.session = Some(session),
                    Err(message) => return self.post(&Message::LoadFailed { message }),
                }
                self.new_timeline(parsed.fork);
                self.backend = parsed.backend;
                self.workers = parsed.workers;
                self.place_workers();
                self.place();
                self.recalibrate();
                self.running = false;
                self.send_snapshot(None);
            }
            Command::Backend { backend } => {
                self.backend = backend;
                if self.session.as_ref().is_some_and(|s| s.accelerator().is_some()) {
                    // Off the GPU, or onto it again: first the steps it has taken.
                    self.settle(AfterSync::Place);
                } else {
                    self.place();
                    self.send_snapshot(None);
                }
            }
            Command::Lab { command } => self.lab_command(command),
            Command::Speed { steps_per_frame } => self.pace = steps_per_frame.map(|k| k.clamp(1, 10_000)),
            Command::Workers { workers } => {
                self.workers = workers;
                self.workers_note = None;
                self.place_workers();
                self.send_snapshot(None);
            }
            Command::Play => {
                // Training that can't start (no data) says why instead of failing on NaN.
                let refusal = self.session.as_ref().and_then(|s| s.cannot_train());
                self.running = self.session.is_some() && refusal.is_none();
                self.schedule();
                self.send_snapshot(refusal);
            }
            Command::Pause => {
                self.running = false;
                self.send_snapshot(Some("paused".into()));
                if self.session.as_ref().is_some_and(|s| s.accelerator().is_some()) {
                    self.settle(AfterSync::Show);
                }
            }
            Command::Step => {
                self.running = false;
                self.place_workers();
                if let Some(s) = self.session.as_mut() {
                    // A pending test evaluation runs first (a call per chunk), then the one step.
                    let before = s.steps();
                    for _ in 0..100 {
                        s.step(1);
                        if s.steps() != before {
                            break;
                        }
                    }
                }
                self.advance_timeline();
                self.send_snapshot(None);
                if self.session.as_ref().is_some_and(|s| s.accelerator().is_some()) {
                    self.settle(AfterSync::Show);
                }
            }
            Command::Reset => {
                if let Some(s) = self.session.as_ref() {
                    match lab::build_with(&s.config(), &self.assets) {
                        Ok(session) => self.session = Some(session),
                        Err(message) => return self.post(&Message::LoadFailed { message }),
                    }
                }
                self.reset_timeline();
                self.place();
                self.recalibrate();
                self.running = false;
                self.send_snapshot(None);
            }
            Command::Bench { workload, seconds, workers, batch } => {
                self.running = false;
                let Some(w) = engine::lab::bench::Workload::parse(&workload) else {
                    let message = format!("unknown workload \"{workload}\" (the workloads: {})", engine::lab::bench::WORKLOADS);
                    return self.post(&Message::BenchDone { result: Err(message) });
                };
                let n = workers.resolve(hardware_concurrency());
                match engine::lab::bench::prepare(w, batch, seconds.min(30.0), &self.assets) {
                    Ok((session, items)) => self.bench(w, session, items, n, seconds.min(30.0)),
                    Err(message) => self.post(&Message::BenchDone { result: Err(message) }),
                }
            }
            Command::BenchSideBySide { workload, seconds, counts, batch } => {
                self.running = false;
                let done = |results| Message::BenchSideBySideDone { results };
                let Some(w) = engine::lab::bench::Workload::parse(&workload) else {
                    let message = format!("unknown workload \"{workload}\" (the workloads: {})", engine::lab::bench::WORKLOADS);
                    return self.post(&done(Err(message)));
                };
                // Every count's helpers are Web Workers of their own, alive together.
                let helpers: usize = counts.iter().map(|n| n.saturating_sub(1)).fold(0, usize::saturating_add);
                if helpers > MAX_SIDE_BY_SIDE_HELPERS {
                    let message = format!(
                        "workers=\"{}\": {helpers} helper workers at once (at most {MAX_SIDE_BY_SIDE_HELPERS})",
                        engine::lab::bench::join_counts(&counts)
                    );
                    return self.post(&done(Err(message)));
                }
                match engine::lab::bench::prepare_side_by_side(w, batch, &counts, seconds.min(30.0), &self.assets) {
                    Ok(runs) => self.bench_side_by_side(w, runs, counts, seconds.min(30.0)),
                    Err(message) => self.post(&done(Err(message))),
                }
            }
            Command::Rewind { step } => self.travel(|t| t.rewind(step), step, format!("back at step {step} — Play continues as the run did, bit for bit")),
            Command::Fork { spec } => {
                let (at, said) = (spec.at, format!("forked at step {}: B has {} = {} — Play trains both on the same batches", spec.at, spec.key, spec.value));
                self.travel(|t| t.fork(spec), at, said)
            }
            Command::Keep { b } => {
                let Some(t) = self.timeline.as_mut() else { return };
                if b {
                    if let Some(session) = t.keep_branch() {
                        let query = session.config().to_query();
                        self.session = Some(session);
                        self.running = false;
                        self.recalibrate();
                        self.post(&Message::KeptBranch { query });
                    }
                } else {
                    t.drop_branch();
                }
                self.send_snapshot(None);
            }
            Command::Panic => panic!("deliberate worker panic (deeplyDebug.panicWorker)"),
            Command::KillWorker => crate::helpers::kill_one_at_next_step(),
            Command::SwitchCopies => crate::helpers::switch_copies_every_job(),
            Command::ExportPytorch => {
                let Some(s) = self.session.as_ref() else { return };
                let config = s.config();
                match s.pytorch() {
                    Ok(text) => self.post(&Message::Exported { filename: format!("deeply-{}-step{}.py", config.lab(), s.steps()), text }),
                    Err(message) => self.post(&Message::Rejected { key: "export".into(), message }),
                }
            }
            Command::Trace { example } => {
                // A GPU run's weights live on the device until synced: trace what the CPU holds.
                let result = match self.session.as_ref() {
                    Some(s) if s.accelerator().is_some() => Err("the steps run on the GPU: the backprop view traces CPU runs".to_string()),
                    Some(s) => s.trace(example),
                    None => Err("no session yet".to_string()),
                };
                self.post(&Message::Traced { result });
            }
            Command::ExportRun => {
                if self.session.as_ref().is_some_and(|s| s.accelerator().is_some()) && !self.session.as_mut().is_some_and(|s| s.sync(false)) {
                    // The GPU's last steps first: the file holds the weights of the step it names.
                    self.post(&Message::Rejected { key: "export".into(), message: "the GPU is still finishing its steps: pause, then export".into() });
                    return;
                }
                let Some(s) = self.session.as_mut() else { return };
                let (lab, steps) = (s.config().lab(), s.steps());
                match s.export_run() {
                    Ok(text) => self.post(&Message::Exported { filename: format!("deeply-{lab}-step{steps}.json"), text }),
                    Err(message) => self.post(&Message::Rejected { key: "export".into(), message }),
                }
            }
            Command::ImportRun { json } => match engine::lab::saved::open(&json, &self.assets) {
                Ok(session) => {
                    self.session = Some(session);
                    self.new_timeline(None);
                    self.running = false;
                    self.recalibrate();
                    self.place();
                    let query = self.session.as_ref().map(|s| s.config().to_query()).unwrap_or_default();
                    self.post(&Message::Config { query });
                    self.send_snapshot(Some("run opened from the file — press Play to train on".into()));
                }
                Err(message) => self.post(&Message::Rejected { key: "import".into(), message }),
            },
            Command::Set { key, value } => {
                let Some(s) = self.session.as_mut() else {
                    return;
                };
                // Another dataset: a new session on the (now loaded) data.
                let next = s.config().with_value(&key, &value).ok();
                if let Some(next) = next.filter(|n| Needed::of(n).is_some() && Needed::of(n) != Needed::of(&s.config())) {
                    match lab::build_with(&next, &self.assets) {
                        Ok(session) => self.session = Some(session),
                        Err(message) => return self.post(&Message::Rejected { key, message }),
                    }
                    self.reset_timeline();
                    self.place();
                    self.running = false;
                    self.recalibrate();
                    let query = next.to_query();
                    self.post(&Message::Applied { key, reset: true, query });
                    return self.send_snapshot(None);
                }
                let result = s.set(&key, &value).map(|applied| (applied, s.config().to_query()));
                match result {
                    Ok((applied, query)) => {
                        let reset = applied == lab::Applied::Reset;
                        if reset {
                            self.running = false;
                            self.recalibrate();
                            self.reset_timeline();
                            self.place();
                        }
                        // `query` is the session's whole config: a change may move other keys
                        // (the CNN's `model` sets every layer), and the page and its link follow.
                        self.post(&Message::Applied { key, reset, query });
                        self.send_snapshot(None);
                    }
                    Err(message) => self.post(&Message::Rejected { key, message }),
                }
            }
        }
    }

    /// A lab's own command. When it changed the config or restarted the run (own points, an
    /// import), the page gets the new link and the run pauses.
    fn lab_command(&mut self, command: LabCommand) {
        let scope = self.scope.clone();
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let (query, steps) = (s.config().to_query(), s.steps());
        match s.command(command, &mut || now(&scope)) {
            Ok(reply) => {
                let changed = s.config().to_query();
                if changed != query || s.steps() < steps {
                    self.running = false;
                    self.recalibrate();
                    self.reset_timeline();
                    self.post(&Message::Config { query: changed });
                }
                if let Some(reply) = reply {
                    self.post(&Message::Lab { reply });
                }
                self.race_on_gpu();
                if !self.running {
                    self.send_snapshot(None);
                }
            }
            Err(n) => self.post(&Message::Rejected { key: n.key, message: n.message }),
        }
    }

    /// One chunk of training.
    fn tick(&mut self) {
        self.tick_pending = false;
        if !self.running || self.settling {
            return;
        }
        self.place_workers();
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let stop = s.stop_at();
        let before = s.steps();
        // The stop step pauses a run that reaches it; Play after it trains on. A paced speed
        // trains its steps for this frame only.
        let limit = if stop > before { stop - before } else { u64::MAX }.min(self.pace.unwrap_or(u64::MAX));
        // Train until the chunk's time is up, reading the clock every `batch` steps. The clock
        // is coarse in workers (≥ 0.1 ms), so the time per step is only estimated from spans
        // of at least 1 ms, and the batch is sized to about 0.5 ms of work.
        let t0 = now(&self.scope);
        let (mut done, mut t1) = (0u64, t0);
        let accelerated = s.accelerator().is_some();
        let mut held = false;
        let mut fork_failed = None;
        while done < limit {
            // Cut where a checkpoint or the link's fork is due (only runs on the CPU keep them).
            let room = self.timeline.as_ref().filter(|_| !accelerated).map_or(u64::MAX, |t| t.room(s.steps()));
            let k = self.batch.min(limit - done).min(room);
            let at = s.steps();
            let evaluating = s.evaluating();
            let loss = s.step(k);
            done += k;
            if let Some(t) = self.timeline.as_mut().filter(|_| !accelerated) {
                if let Err(n) = t.advance(s.as_mut()) {
                    fork_failed = Some(n);
                }
            }
            let call_start = t1;
            t1 = now(&self.scope);
            self.rate.call(t1 - call_start, s.steps().saturating_sub(at), evaluating);
            // On the GPU a call takes no step while the device is far ahead: give the event loop
            // its turn (the GPU's answers arrive there) instead of spinning.
            held = accelerated && s.steps() == at;
            if t1 - t0 >= CHUNK_MS || !loss.is_finite() || held {
                break;
            }
        }
        if let Some(failure) = s.accelerator_failure() {
            self.backend_note = Some(failure);
        }
        if let Some(n) = fork_failed {
            let _ = self.scope.post_message(&encode(&Message::Rejected { key: n.key, message: n.message }));
        }
        if s.needs_rebuild() {
            self.settle(AfterSync::Place);
            return;
        }
        let steps_done = s.steps();
        // Calls that evaluated the test set instead of training are left out of the speed.
        if let Some(per_step) = self.rate.finish_chunk() {
            self.batch = ((0.5 / per_step) as u64).clamp(1, 100_000);
        } else if done == self.batch {
            self.batch = (self.batch * 2).min(100_000);
        }
        if stop > before && steps_done >= stop {
            self.running = false;
            if accelerated {
                return self.settle(AfterSync::Finish(format!("stopped at step {stop}")));
            }
            s.finish();
            self.send_snapshot(Some(format!("stopped at step {stop}")));
            return;
        }
        if self.session.as_mut().is_some_and(|s| s.diverged()) {
            self.running = false;
            self.send_snapshot(Some("paused: the loss or a weight became NaN or infinite".into()));
            return;
        }
        if let Some(reason) = self.session.as_mut().and_then(|s| s.stop_reason()) {
            self.running = false;
            if accelerated {
                return self.settle(AfterSync::Finish(reason));
            }
            if let Some(s) = self.session.as_mut() {
                s.finish();
            }
            self.send_snapshot(Some(reason));
            return;
        }
        let scope = self.scope.clone();
        if let Some(s) = self.session.as_mut() {
            s.background(&mut || now(&scope));
        }
        self.race_on_gpu();
        let interval = self.session.as_ref().map_or(SNAPSHOT_MS, |s| s.snapshot_interval_ms().max(SNAPSHOT_MS));
        if t1 - self.last_snapshot >= interval {
            self.send_snapshot(None);
        }
        if held {
            self.tick_pending = true;
            let _ = self.scope.set_timeout_with_callback_and_timeout_and_arguments_0(&self.tick_later, 1);
        } else {
            self.schedule();
        }
    }

    /// Runs the GPU's lane of the last race, when there is a GPU and it is idle (while it trains,
    /// its queued steps would count in the lane's time: the lane waits for a pause).
    fn race_on_gpu(&mut self) {
        let Ok(gpu) = self.gpu.clone() else { return };
        let Some(s) = self.session.as_mut() else { return };
        if self.race_pending || (self.running && s.accelerator().is_some()) {
            return;
        }
        // A software adapter runs on the same CPU cores as the page: race it only when the run
        // was put on it (its lane is for correctness there, and it would cost the page frames).
        if gpu.software() && s.accelerator().is_none() {
            return;
        }
        let Some(probe) = s.take_race_probe() else { return };
        self.race_pending = true;
        let me = self.me.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let lane = gpu.race(probe).await;
            let Some(worker) = me.upgrade() else { return };
            let mut w = worker.borrow_mut();
            w.race_pending = false;
            match lane {
                Ok(lane) => {
                    if let Some(s) = w.session.as_mut() {
                        s.set_race_lane(lane);
                    }
                    if !w.running {
                        w.send_snapshot(None);
                    }
                }
                Err(why) => web_sys::console::warn_1(&format!("the GPU's race lane failed: {why}").into()),
            }
        });
    }

    /// Hands the session's steps to the GPU or keeps them here, as `backend` asks and the lab and
    /// device allow; `backend_note` says why not where that matters. The model must be in sync.
    fn place(&mut self) {
        let Some(s) = self.session.as_mut() else { return };
        let gpu = self.gpu.as_ref();
        let wants = match self.backend {
            Backend::Cpu => false,
            Backend::Webgpu => true,
            Backend::Auto => gpu.is_ok_and(|g| !g.software()),
        };
        self.backend_note = None;
        if !wants {
            s.decelerate();
            if let (Backend::Auto, Ok(g)) = (self.backend, gpu) {
                if s.accelerator_input().is_ok() {
                    self.backend_note = Some(format!("auto chose the CPU: {} is a software renderer, slower than the CPU here", g.name()));
                }
            }
            return;
        }
        let placed = match (s.accelerator_input(), gpu) {
            (Err(why), _) => Err(why),
            (Ok(_), Err(why)) => Err(format!("WebGPU is not available: {why} — training on the CPU")),
            (Ok(_), Ok(g)) => {
                s.accelerate(&mut |t, input| g.make(t, input)).map_err(|why| format!("WebGPU can't run this network: {why} — training on the CPU"))
            }
        };
        if let Err(why) = placed {
            s.decelerate();
            if self.backend == Backend::Webgpu || s.accelerator_input().is_ok() {
                self.backend_note = Some(why);
            }
        }
    }

    /// Stops taking steps until the model holds every step the GPU took (asking it for a
    /// readback every few ms), then does `then`. A GPU that doesn't answer within
    /// [`SETTLE_TIMEOUT_MS`] is dropped: the run goes on on the CPU from the last weights it sent.
    fn settle(&mut self, then: AfterSync) {
        if self.settling {
            return;
        }
        self.settling = true;
        let (me, scope) = (self.me.clone(), self.scope.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let start = now(&scope);
            loop {
                sleep(&scope, 2).await;
                let Some(worker) = me.upgrade() else { return };
                let mut w = worker.borrow_mut();
                let synced = w.session.as_mut().is_none_or(|s| s.sync(false));
                let late = now(&scope) - start > SETTLE_TIMEOUT_MS;
                if !synced && !late {
                    continue;
                }
                if !synced {
                    if let Some(s) = w.session.as_mut() {
                        s.decelerate();
                    }
                    w.backend = Backend::Cpu;
                    w.backend_note = Some("the GPU did not answer for 30 s — training on the CPU from the last weights it sent".into());
                }
                w.settling = false;
                if let Some(failure) = w.session.as_mut().and_then(|s| s.accelerator_failure()) {
                    w.backend_note = Some(failure);
                }
                let reason = match then {
                    AfterSync::Place => {
                        w.place();
                        None
                    }
                    AfterSync::Show => (!w.running).then(|| "paused".to_string()),
                    AfterSync::Finish(reason) => {
                        if let Some(s) = w.session.as_mut() {
                            s.finish();
                        }
                        Some(reason)
                    }
                };
                w.send_snapshot(reason);
                w.schedule();
                return;
            }
        });
    }
}

/// Resolves after `ms` milliseconds (the worker's event loop runs meanwhile).
async fn sleep(scope: &DedicatedWorkerGlobalScope, ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// What a fetched dataset does to the assets, boxed so both kinds share one type.
type Insert = Box<dyn FnOnce(&mut Assets)>;

fn boxed(f: impl FnOnce(&mut Assets) + 'static) -> Insert {
    Box::new(f)
}

/// A dataset to fetch before a command can run.
#[derive(Clone, Copy, PartialEq)]
enum Needed {
    Images(ImageSet),
    Text(TextSet),
}

impl Needed {
    fn of(config: &engine::lab::LabConfig) -> Option<Needed> {
        lab::needs_images(config).map(Needed::Images).or_else(|| lab::needs_text(config).map(Needed::Text))
    }

    fn label(self) -> &'static str {
        match self {
            Needed::Images(set) => set.label(),
            Needed::Text(set) => set.label(),
        }
    }

    fn loaded(self, assets: &Assets) -> bool {
        match self {
            Needed::Images(set) => assets.get(set).is_some(),
            Needed::Text(set) => assets.text(set).is_some(),
        }
    }
}

/// The dataset a command needs loaded before it can run.
fn data_needed(worker: &Worker, command: &Command) -> Option<Needed> {
    match command {
        Command::Start { query } => Needed::of(&parse_link(query).config),
        Command::Set { key, value } => {
            let next = worker.session.as_ref()?.config().with_value(key, value).ok()?;
            Needed::of(&next)
        }
        Command::Bench { workload, .. } | Command::BenchSideBySide { workload, .. } => {
            let w = engine::lab::bench::Workload::parse(workload)?;
            Needed::of(&parse_link(w.link()).config)
        }
        Command::ImportRun { json } => Needed::of(&engine::lab::saved::SavedRun::parse(json).ok()?.config()),
        _ => None,
    }
    .filter(|set| !set.loaded(&worker.assets))
}

/// Handles a command now, or once the dataset it needs is fetched (reporting progress to the
/// page). While a dataset loads, later commands wait in order behind it — a Play pressed while the
/// lab is starting is queued, never lost.
fn dispatch(worker: &Rc<RefCell<Worker>>, command: Command) {
    let set = {
        let mut w = worker.borrow_mut();
        if w.loading {
            w.queue.push_back(command);
            return;
        }
        match data_needed(&w, &command) {
            None => return w.handle(command),
            Some(set) => {
                w.loading = true;
                set
            }
        }
    };
    let worker = worker.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let scope = worker.borrow().scope.clone();
        let what = set.label().to_string();
        let post = |m: &Message| {
            let _ = scope.post_message(&encode(m));
        };
        post(&Message::Loading { what: what.clone(), loaded: 0.0, total: 0.0 });
        let mut progress = |loaded, total| post(&Message::Loading { what: what.clone(), loaded, total });
        let result = match set {
            Needed::Images(images) => {
                crate::loader::fetch_images(&scope, images, &mut progress).await.map(|pair| move |a: &mut Assets| a.insert(pair)).map(boxed)
            }
            Needed::Text(text) => crate::loader::fetch_text(&scope, text, &mut progress).await.map(|file| move |a: &mut Assets| a.insert_text(file)).map(boxed),
        };
        {
            let mut w = worker.borrow_mut();
            w.loading = false;
            match result {
                Ok(insert) => {
                    insert(&mut w.assets);
                    w.handle(command);
                }
                Err(message) => w.post(&Message::LoadFailed { message: format!("could not load {what}: {message}") }),
            }
        }
        // The commands that arrived meanwhile, in order (one may start another load).
        loop {
            let next = {
                let mut w = worker.borrow_mut();
                if w.loading {
                    break;
                }
                w.queue.pop_front()
            };
            match next {
                Some(c) => dispatch(&worker, c),
                None => break,
            }
        }
    });
}

/// The size of this wasm instance's linear memory.
fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64)
        .unwrap_or(0.0)
}

/// Helper workers for a run's model (see `crate::helpers`).
fn worker_factory() -> lab::HelperFactory {
    std::sync::Arc::new(|model: &engine::sequential::Sequential, count: usize, config: &lab::LabConfig| {
        crate::helpers::WorkerHelpers::start(model, count, config).map(|h| Box::new(h) as Box<dyn engine::parallel::Helpers>)
    })
}

/// The browser's logical cores (`navigator.hardwareConcurrency`; 1 when unknown).
fn hardware_concurrency() -> usize {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let n = scope.navigator().hardware_concurrency();
    if n.is_finite() && n >= 1.0 {
        n as usize
    } else {
        1
    }
}

fn now(scope: &DedicatedWorkerGlobalScope) -> f64 {
    scope.performance().map(|p| p.now()).unwrap_or(0.0)
}

/// Entry point of the worker binary (no GPU).
pub fn run() {
    // The page loads this worker for a GPU-capable lab only when the browser has no WebGPU.
    run_with(Err("this browser offers no WebGPU (navigator.gpu is missing)".into()), Box::new(|_| false));
}

/// The worker, with a GPU or the reason there is none; `intercept` may take a command first
/// (the GPU worker's benchmarks) and returns whether it did.
pub fn run_with(gpu: Result<Rc<dyn GpuProvider>, String>, intercept: Box<dyn Fn(&Command) -> bool>) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    std::panic::set_hook(Box::new({
        let scope = scope.clone();
        move |info| {
            let message = format!("The training worker crashed: {info}");
            web_sys::console::error_1(&message.clone().into());
            let _ = scope.post_message(&encode(&Message::Error { message }));
        }
    }));
    let channel = MessageChannel::new().expect("MessageChannel");
    let worker = Rc::new(RefCell::new(Worker {
        scope: scope.clone(),
        me: Weak::new(),
        gpu,
        backend: Backend::Auto,
        backend_note: None,
        settling: false,
        race_pending: false,
        channel: channel.clone(),
        session: None,
        timeline: None,
        running: false,
        tick_pending: false,
        batch: 1,
        rate: StepRate::default(),
        last_snapshot: 0.0,
        assets: Assets::default(),
        loading: false,
        queue: VecDeque::new(),
        pace: None,
        workers: lab::WorkerCount::Auto,
        workers_note: None,
        tick_later: {
            let port = channel.port2();
            let later = Closure::<dyn FnMut()>::new(move || {
                let _ = port.post_message(&JsValue::NULL);
            });
            let f: js_sys::Function = later.as_ref().unchecked_ref::<js_sys::Function>().clone();
            later.forget(); // lives as long as the worker
            f
        },
    }));

    worker.borrow_mut().me = Rc::downgrade(&worker);
    let on_tick = Closure::<dyn FnMut(MessageEvent)>::new({
        let worker = worker.clone();
        move |_| worker.borrow_mut().tick()
    });
    channel.port1().set_onmessage(Some(on_tick.as_ref().unchecked_ref()));
    on_tick.forget(); // lives as long as the worker

    let generation = Rc::new(std::cell::Cell::new(0u32));
    let on_command = Closure::<dyn FnMut(MessageEvent)>::new({
        let (worker, scope) = (worker.clone(), scope.clone());
        move |event: MessageEvent| match decode::<Command>(event.data()) {
            // A lead worker made this one a helper: it answers shards from the shared buffer.
            _ if crate::helpers::helper_init(&event).is_some() => {
                let init = crate::helpers::helper_init(&event).expect("checked");
                crate::helpers::serve(scope.clone(), init, generation.clone());
            }
            Ok(command) if intercept(&command) => {}
            Ok(command) => dispatch(&worker, command),
            Err(e) => web_sys::console::warn_1(&format!("worker: unreadable command: {e}").into()),
        }
    });
    scope.set_onmessage(Some(on_command.as_ref().unchecked_ref()));
    on_command.forget();

    worker.borrow().post(&Message::Ready);
}
