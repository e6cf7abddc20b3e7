//! Time travel: checkpoints over a run, going back to one and continuing, and forks (A/B).
//!
//! A checkpoint is a copy of the whole session ([`LabSession::checkpoint`]: weights, the
//! optimiser's moments, the data order, every random stream), so continuing from one takes the
//! same steps bit for bit as the run did. They are kept in a ring bounded in number and memory;
//! when it is full every other checkpoint goes and the spacing doubles, so a long run keeps
//! evenly spread ones. A fork copies a checkpoint and changes one live value (learning rate,
//! batch size, …) in the copy: both branches then draw the same mini-batches (their data order
//! and random streams are the same copies), so their curves differ by that value alone.
//! A share link can point at a fork: `fork=500&branch=lr:0.1` forks at step 500 with lr = 0.1.

use super::snapshot::StepRecord;
use super::{LabConfig, LabSession, Notice};
use serde::{Deserialize, Serialize};

/// The most memory the checkpoints of one run may hold (estimated per checkpoint by
/// [`LabSession::checkpoint_bytes`]).
pub const MAX_BYTES: usize = 64_000_000;
/// The most checkpoints kept.
pub const MAX_CHECKPOINTS: usize = 40;
/// Steps between checkpoints at the start of a run (doubles each time the ring is thinned).
pub const FIRST_EVERY: u64 = 25;
/// The latest step a link may fork at.
pub const MAX_FORK_STEP: u64 = 100_000_000;

/// A fork: at step `at`, branch B sets `key` to `value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForkSpec {
    pub at: u64,
    pub key: String,
    pub value: String,
}

impl ForkSpec {
    /// Reads `fork=STEP` and `branch=KEY:VALUE` from a link for `config`, checking that the step
    /// is a number in range and that the key is one of the lab's live keys with a valid value.
    pub fn parse(config: &LabConfig, fork: Option<&str>, branch: Option<&str>) -> Result<Option<ForkSpec>, Notice> {
        let (fork, branch) = match (fork, branch) {
            (None, None) => return Ok(None),
            (Some(_), None) => return Err(Notice::new("branch", "fork= needs branch=KEY:VALUE (what branch B changes), e.g. branch=lr:0.1")),
            (None, Some(_)) => return Err(Notice::new("fork", "branch= needs fork=STEP (the step where branch B starts), e.g. fork=500")),
            (Some(f), Some(b)) => (f, b),
        };
        let at = fork
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&s| (1..=MAX_FORK_STEP).contains(&s))
            .ok_or_else(|| Notice::new("fork", format!("fork=\"{}\" is not a step from 1 to {MAX_FORK_STEP}", super::params::clip(fork))))?;
        let Some((key, value)) = branch.split_once(':') else {
            return Err(Notice::new("branch", format!("branch=\"{}\" is not KEY:VALUE, e.g. lr:0.1", super::params::clip(branch))));
        };
        let spec = ForkSpec { at, key: key.trim().to_string(), value: value.trim().to_string() };
        spec.check(config)?;
        Ok(Some(spec))
    }

    /// The key must change a run without rebuilding it, and the value must be valid.
    pub fn check(&self, config: &LabConfig) -> Result<(), Notice> {
        let live = config.live_keys();
        if !live.contains(&self.key.as_str()) {
            return Err(Notice::new(
                "branch",
                format!(
                    "a fork changes a value that keeps the network ({}); \"{}\" rebuilds it",
                    live.iter().filter(|k| **k != "stop").copied().collect::<Vec<_>>().join(", "),
                    super::params::clip(&self.key)
                ),
            ));
        }
        config.with_value(&self.key, &self.value).map(|_| ()).map_err(|n| Notice::new("branch", n.message))
    }

    /// The link's part for this fork, `fork=…&branch=…` (encoded).
    pub fn query(&self) -> String {
        serde_urlencoded::to_string(self.pairs()).expect("plain pairs")
    }

    /// The link's pairs for this fork.
    pub fn pairs(&self) -> [(String, String); 2] {
        [("fork".into(), self.at.to_string()), ("branch".into(), format!("{}:{}", self.key, self.value))]
    }
}

/// What the page shows of the timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelineView {
    /// The steps of the checkpoints kept, oldest first.
    pub checkpoints: Vec<u64>,
    /// Their estimated memory, and the cap.
    pub bytes: u64,
    pub cap: u64,
    /// Why no checkpoints are taken now (a run on the GPU, a network too large).
    pub off: Option<String>,
    /// A link's fork, not reached yet.
    pub pending: Option<ForkSpec>,
    pub branch: Option<BranchView>,
}

/// Branch B of a fork: its step, last mini-batch loss and the records since the last view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BranchView {
    pub spec: ForkSpec,
    pub step: u64,
    pub loss: f32,
    pub diverged: bool,
    pub records: Vec<(u64, f32)>,
}

struct Checkpoint {
    step: u64,
    bytes: usize,
    session: Box<dyn LabSession>,
}

struct Branch {
    spec: ForkSpec,
    session: Box<dyn LabSession>,
    diverged: bool,
}

/// The checkpoints of one run and its fork, beside the run's session (which the driver keeps).
pub struct Timeline {
    ring: Vec<Checkpoint>,
    /// Checkpoints thinned out of the ring, freed one at a time just before the next copy is
    /// made: a copy of the same shapes then takes exactly the memory freed. Freed at once, their
    /// holes were taken by the page's small allocations first and every later copy grew the
    /// worker's memory (wasm memory never shrinks: +15–30 MB per thinning, measured). The ring
    /// and the spares together never hold more than the ring held before it was thinned.
    spare: Vec<Checkpoint>,
    every: u64,
    off: Option<String>,
    pending: Option<ForkSpec>,
    branch: Option<Branch>,
}

impl Timeline {
    /// A timeline for `session` (a checkpoint of its current step), with a link's fork to make
    /// when the run reaches it.
    pub fn new(session: &mut dyn LabSession, pending: Option<ForkSpec>) -> Timeline {
        let mut t = Timeline { ring: Vec::new(), spare: Vec::new(), every: FIRST_EVERY, off: None, pending, branch: None };
        t.keep(session);
        t
    }

    /// The run was rebuilt or replaced: everything kept belonged to the old one. A link's fork
    /// still waits when the new run is before its step.
    pub fn reset(&mut self, session: &mut dyn LabSession) {
        let pending = self.pending.take().filter(|p| p.at > session.steps() && p.check(&session.config()).is_ok());
        *self = Timeline::new(session, pending);
    }

    /// How many steps the run may take before the timeline must see it (a checkpoint or the
    /// link's fork is due).
    pub fn room(&self, steps: u64) -> u64 {
        let next = self.ring.last().map_or(steps, |c| c.step) + self.every;
        let mut room = next.saturating_sub(steps).max(1);
        if let Some(p) = self.pending.as_ref().filter(|p| p.at > steps) {
            room = room.min(p.at - steps);
        }
        room
    }

    /// After the run took steps: keeps a checkpoint when one is due, makes the link's fork when
    /// the run is at its step, and brings branch B to the run's step. Err: why the link's fork
    /// could not be made (it is dropped).
    pub fn advance(&mut self, session: &mut dyn LabSession) -> Result<(), Notice> {
        let steps = session.steps();
        if self.ring.last().is_none_or(|c| steps >= c.step + self.every) {
            self.keep(session);
        }
        if self.pending.as_ref().is_some_and(|p| p.at <= steps) {
            let spec = self.pending.take().expect("checked");
            if spec.at != steps {
                return Err(Notice::new("fork", format!("the run passed step {} before it could fork", spec.at)));
            }
            self.keep_at(session);
            let b = self.branch_at(session, &spec).map_err(|m| Notice::new("branch", m))?;
            self.branch = Some(Branch { spec, session: b, diverged: false });
        }
        if let Some(b) = self.branch.as_mut().filter(|b| !b.diverged) {
            // A lab may spend a call on other work (a chunk of its test evaluation): a few calls.
            for _ in 0..8 {
                let behind = steps.saturating_sub(b.session.steps());
                if behind == 0 {
                    break;
                }
                b.session.step(behind);
            }
            b.diverged = b.session.diverged();
        }
        Ok(())
    }

    /// Goes back to the checkpoint at `step`: the run to continue from (the caller replaces
    /// its session with it). Later checkpoints and any fork are dropped.
    pub fn rewind(&mut self, step: u64) -> Result<Box<dyn LabSession>, String> {
        let i = self.find(step)?;
        let mut session = self.ring[i].session.checkpoint()?;
        // The page has these steps' records already.
        let _ = session.take_records();
        self.spare.extend(self.ring.drain(i + 1..));
        self.branch = None;
        self.pending = None;
        Ok(session)
    }

    /// Forks at the checkpoint `spec.at`: returns branch A (the run to continue, as
    /// [`Timeline::rewind`]) and trains branch B beside it from now on.
    pub fn fork(&mut self, spec: ForkSpec) -> Result<Box<dyn LabSession>, String> {
        let i = self.find(spec.at)?;
        spec.check(&self.ring[i].session.config()).map_err(|n| n.message)?;
        let session = self.rewind(spec.at)?;
        let mut base = self.ring[i].session.checkpoint()?;
        let b = self.branch_at(base.as_mut(), &spec)?;
        self.branch = Some(Branch { spec, session: b, diverged: false });
        Ok(session)
    }

    /// Keeps branch B as the run (A is dropped): returns it, with the checkpoints up to the fork.
    pub fn keep_branch(&mut self) -> Option<Box<dyn LabSession>> {
        let b = self.branch.take()?;
        self.ring.retain(|c| c.step <= b.spec.at);
        Some(b.session)
    }

    /// Drops branch B (the run goes on as A).
    pub fn drop_branch(&mut self) {
        self.branch = None;
    }

    /// The fork being trained, if any.
    pub fn forked(&self) -> Option<&ForkSpec> {
        self.branch.as_ref().map(|b| &b.spec)
    }

    /// The view for the page; takes branch B's new records.
    pub fn view(&mut self) -> TimelineView {
        let branch = self.branch.as_mut().map(|b| BranchView {
            spec: b.spec.clone(),
            step: b.session.steps(),
            loss: b.session.last_loss(),
            diverged: b.diverged,
            records: b.session.take_records().iter().map(|r: &StepRecord| (r.step, r.loss)).collect(),
        });
        TimelineView {
            checkpoints: self.ring.iter().map(|c| c.step).collect(),
            bytes: self.ring.iter().map(|c| c.bytes as u64).sum(),
            cap: MAX_BYTES as u64,
            off: self.off.clone(),
            pending: self.pending.clone(),
            branch,
        }
    }

    /// The bytes the checkpoints hold, those kept and the spares waiting to be reused.
    pub fn held_bytes(&self) -> usize {
        self.ring.iter().chain(&self.spare).map(|c| c.bytes).sum()
    }

    /// A copy of `base` with the fork's value set (a live change: the same batches follow).
    fn branch_at(&self, base: &mut dyn LabSession, spec: &ForkSpec) -> Result<Box<dyn LabSession>, String> {
        let mut b = base.checkpoint()?;
        let _ = b.take_records();
        match b.set(&spec.key, &spec.value)? {
            super::Applied::Live => Ok(b),
            super::Applied::Reset => Err(format!("changing {} rebuilds the network: a fork keeps it", spec.key)),
        }
    }

    fn find(&self, step: u64) -> Result<usize, String> {
        self.ring.iter().position(|c| c.step == step).ok_or_else(|| {
            let kept: Vec<String> = self.ring.iter().map(|c| c.step.to_string()).collect();
            format!("no checkpoint at step {step} (kept: {})", kept.join(", "))
        })
    }

    /// A checkpoint at the run's current step, unless one is there.
    fn keep_at(&mut self, session: &mut dyn LabSession) {
        if self.ring.last().is_none_or(|c| c.step != session.steps()) {
            self.keep(session);
        }
    }

    fn keep(&mut self, session: &mut dyn LabSession) {
        let bytes = session.checkpoint_bytes();
        if bytes > MAX_BYTES / 4 {
            self.off = Some(format!(
                "this network's checkpoints would take {:.0} MB each; time travel keeps at most {} MB",
                bytes as f64 / 1e6,
                MAX_BYTES / 1_000_000
            ));
            return;
        }
        drop(self.spare.pop());
        match session.checkpoint() {
            Ok(copy) => {
                self.off = None;
                let step = session.steps();
                self.ring.retain(|c| c.step < step);
                self.ring.push(Checkpoint { step, bytes, session: copy });
            }
            Err(why) => self.off = Some(why),
        }
        // Full: every other checkpoint goes (the first stays), and the spacing doubles.
        while self.ring.len() > MAX_CHECKPOINTS || self.ring.iter().map(|c| c.bytes).sum::<usize>() > MAX_BYTES {
            for (i, c) in std::mem::replace(&mut self.ring, Vec::with_capacity(MAX_CHECKPOINTS + 1)).into_iter().enumerate() {
                if i % 2 == 0 {
                    self.ring.push(c);
                } else {
                    self.spare.push(c);
                }
            }
            self.every *= 2;
        }
    }
}
