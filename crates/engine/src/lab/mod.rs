//! Labs. Each lab is a folder (`fit/`, `playground/`, `cnn/`) holding its serde config (the URL,
//! the controls, presets and the CLI all read it), its session and its view, and implements
//! [`Lab`]. The one list of labs is in [`registry`]; everything that dispatches on the lab —
//! [`LabConfig`], [`View`], [`LabCommand`], `parse_link`, [`LabConfig::build`] — comes from it.
//!
//! What every lab shares lives in [`Session`]: counters, stop conditions, timing, live keys,
//! "diverged" (one definition) and its diagnosis with a one-click fix.

pub mod accel;
pub mod batchnorm;
pub mod bench;
pub mod budget;
pub mod cnn;
pub mod diagnose;
pub mod evalcopy;
pub mod fit;
pub mod link;
pub mod params;
pub mod playground;
pub mod presets;
pub mod registry;
pub mod rnn;
pub mod saved;
pub mod snapshot;
pub mod space;
pub mod tf_link;
pub mod timeline;
pub mod tours;
pub mod trainer;
pub mod vjp;
pub mod watched;
pub mod workers;

pub use link::{parse_link, Backend, ParsedLink, Speed, WorkerCount};
pub use params::{LabParams, Notice};
pub use registry::{LabCommand, LabConfig, LabReply, Registered, View, LABS};

use crate::data::images::{Assets, ImageSet};
pub use accel::Accelerator;
use diagnose::{Diagnosis, DiagnosisKind, Fix};
use serde::de::DeserializeOwned;
use serde::Serialize;
use snapshot::{LayerSnapshot, Metric};
use std::fmt::Debug;
pub use trainer::Trainer;

/// A snapshot of any lab (its view is the registry's [`View`]).
pub type Snapshot = snapshot::Snapshot<View>;

/// What a change of one config value needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Took effect for the next step (learning rate, momentum, L2, batch size, clipping…).
    Live,
    /// Changes the model or data: the session was rebuilt from the new config and its seed.
    Reset,
}

/// A lab takes no commands of its own.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum NoCommand {}

/// What a lab reports for a snapshot; [`Session`] adds the fields every lab shares.
#[derive(Clone, Debug, Default)]
pub struct Report<V> {
    /// Loss over the training set, evaluation mode (NaN where the lab doesn't measure it).
    pub train_loss: f32,
    pub test_loss: f32,
    pub metrics: Vec<Metric>,
    pub layers: Vec<LayerSnapshot>,
    pub diagnoses: Vec<Diagnosis>,
    pub view: V,
}

/// One lab: its config, view and command types, and how it trains. Implemented once per lab
/// folder and listed once in [`registry`].
pub trait Lab: Sized + Send + Clone + 'static {
    type Config: LabParams + Into<LabConfig>;
    type View: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Into<View>;
    /// Lab-specific commands from the page (the playground's points, the CNN's race…).
    type Command: Clone + Debug + Serialize + DeserializeOwned;
    /// Answers to those commands.
    type Reply: Clone + Debug + Serialize + DeserializeOwned;

    /// The dataset this config trains on; the driver loads it before [`Lab::new`].
    fn needs_images(_config: &Self::Config) -> Option<ImageSet> {
        None
    }
    /// The text dataset this config trains on (loaded like images).
    fn needs_text(_config: &Self::Config) -> Option<crate::data::names::TextSet> {
        None
    }
    /// A session at step 0, with every random stream from the config's seed.
    fn new(config: Self::Config, assets: &Assets) -> Result<Self, String>;
    fn config(&self) -> &Self::Config;
    /// Stores a config whose changed key is live (the trainer already has its settings).
    fn set_config(&mut self, config: Self::Config);
    fn trainer(&self) -> &Trainer;
    fn trainer_mut(&mut self) -> &mut Trainer;
    /// The shape of one input when this lab's steps can run on an accelerator (the GPU), or why
    /// they cannot.
    fn accelerator_input(&self) -> Result<Vec<usize>, String> {
        Err("this lab trains on the CPU: its networks are small or recurrent, and the CPU runs them faster than a round trip to the GPU".into())
    }
    /// Every trained network's trainer, the lead first (the Batch Norm lab has two): what a
    /// saved run holds.
    fn trainers_mut(&mut self) -> Vec<&mut Trainer> {
        vec![self.trainer_mut()]
    }
    /// The last race's mini-batch, once, for an accelerator's lane (the CNN lab's race).
    fn take_race_probe(&mut self) -> Option<accel::RaceProbe> {
        None
    }
    /// Adds an accelerator's lane to the last race.
    fn set_race_lane(&mut self, _lane: accel::RaceLane) {}
    /// Runs up to `n` optimiser steps (a lab may spend a call on other work, such as a chunk of
    /// a test evaluation, and run fewer).
    fn train(&mut self, n: u64);
    /// Applies a validated config in which `key` changed and is not live: usually a rebuild
    /// ([`Applied::Reset`]); a lab may keep the weights and answer [`Applied::Live`].
    fn rebuild(&mut self, key: &str, next: Self::Config) -> Result<Applied, String>;
    /// The lab's part of a snapshot: losses, metrics, layers, diagnoses and its view.
    fn report(&mut self) -> Report<Self::View>;
    /// A reason to pause now (a stop condition of the lab's own is met).
    fn stop_reason(&mut self) -> Option<String> {
        None
    }
    /// An event that pauses the run once, whatever the stop conditions did (the Batch Norm
    /// lab's plain net diverging while the BN net trains on). The lab reports each event once.
    fn pause_reason(&mut self) -> Option<String> {
        None
    }
    /// The training and test sets a PyTorch export embeds (labs whose data the engine makes).
    fn export_data(&self) -> Option<(&crate::data::Dataset, &crate::data::Dataset)> {
        None
    }
    /// The training and test sequences a PyTorch export embeds (the RNN lab).
    fn export_sequences(&self) -> Option<(crate::export::SeqSet, crate::export::SeqSet)> {
        None
    }
    /// The last mini-batch traced layer by layer as vector–Jacobian products (the fit and
    /// playground labs), showing row `example`; or why not.
    fn trace(&self, _example: usize) -> Result<vjp::VjpView, String> {
        Err("the layer-by-layer backprop view is in the fit and playground labs".into())
    }
    /// Why this session can't train at all (e.g. no training data), in words for the learner.
    fn cannot_train(&self) -> Option<String> {
        None
    }
    /// Brings the final metrics up to date (e.g. a pending test evaluation).
    fn finish(&mut self) {}
    /// An evaluation is under way: the next calls of `train` evaluate chunks, taking no step.
    fn evaluating(&self) -> bool {
        false
    }
    /// The shortest time between two snapshots while training, in ms.
    fn snapshot_interval_ms(&self) -> f64 {
        1000.0 / 30.0
    }
    /// Runs one of the lab's own commands; `now_ms` is the driver's clock.
    fn command(&mut self, _command: Self::Command, _now_ms: &mut dyn FnMut() -> f64) -> Result<Option<Self::Reply>, Notice> {
        Err(Notice::new("command", "this lab takes no commands"))
    }
    /// Background work between chunks of training (e.g. the CNN's race), on the driver's
    /// clock. Returns true when it changed what a snapshot shows.
    fn background(&mut self, _now_ms: &mut dyn FnMut() -> f64) -> bool {
        false
    }
}

/// A running lab as the worker and the CLI see it, whatever the lab.
pub trait LabSession: Send {
    /// The current config (including values changed mid-run).
    fn config(&self) -> LabConfig;
    /// Runs `n` optimiser steps; returns the last mini-batch loss.
    fn step(&mut self, n: u64) -> f32;
    /// Optimiser steps taken so far.
    fn steps(&self) -> u64;
    /// The last mini-batch loss (NaN before the first step).
    fn last_loss(&self) -> f32;
    /// Completed passes over the training set.
    fn epochs(&self) -> u64;
    /// The configured step to pause at (0: never).
    fn stop_at(&self) -> u64;
    /// A reason to pause now: a stop condition was met (once; Play trains on past it).
    fn stop_reason(&mut self) -> Option<String>;
    /// The network the run trains (for export; the Batch Norm lab's is its lead net).
    fn model(&self) -> &crate::sequential::Sequential;
    /// The loss or a parameter is NaN or infinite.
    fn diverged(&mut self) -> bool;
    /// Why this session can't train at all (no training data…): Play and the CLI refuse with it.
    fn cannot_train(&self) -> Option<String>;
    /// Sets one config value by its link key, validated like a link value.
    fn set(&mut self, key: &str, value: &str) -> Result<Applied, String>;
    /// Records the measured wall time per step (the engine has no clock on the web).
    fn set_timing(&mut self, ms_per_step: f64);
    /// A plain-data summary of the current state.
    fn snapshot(&mut self) -> Snapshot;
    fn finish(&mut self);
    /// An evaluation is under way: the next `step` calls finish it before taking a step.
    fn evaluating(&self) -> bool;
    fn snapshot_interval_ms(&self) -> f64;
    /// A lab-specific command (refused when it is another lab's).
    fn command(&mut self, command: LabCommand, now_ms: &mut dyn FnMut() -> f64) -> Result<Option<LabReply>, Notice>;
    fn background(&mut self, now_ms: &mut dyn FnMut() -> f64) -> bool;
    /// Hands the training steps to an accelerator that `make` builds from the trainer (its model,
    /// batch size, optimiser) and one input's shape; replaces any accelerator (which must be in
    /// sync: see [`LabSession::sync`]). Err: why this lab or setting can't, the run stays here.
    fn accelerate(&mut self, make: &mut dyn FnMut(&Trainer, &[usize]) -> Result<Box<dyn Accelerator>, String>) -> Result<(), String>;
    /// One input's shape when this lab's steps can run on an accelerator, or why they can't.
    fn accelerator_input(&self) -> Result<Vec<usize>, String>;
    /// Back to the CPU from the model as it is (sync first to keep every step).
    fn decelerate(&mut self);
    /// The accelerator's name while one trains.
    fn accelerator(&self) -> Option<String>;
    /// Takes what the accelerator finished (starting the next readback); `wait` blocks (native).
    /// True when the model holds every step taken.
    fn sync(&mut self, wait: bool) -> bool;
    /// The accelerator must be rebuilt (the batch size or optimiser changed).
    fn needs_rebuild(&self) -> bool;
    /// Why the accelerator was dropped, once; the run continues on the CPU.
    fn accelerator_failure(&mut self) -> Option<String>;
    /// The run as a file (JSON: the link, the counters, every network's weights).
    fn export_run(&mut self) -> Result<String, String>;
    /// Puts a saved run's networks and counters into this session (built from its link).
    fn restore(&mut self, run: &saved::SavedRun) -> Result<(), String>;
    /// The last race's mini-batch (once), for a GPU lane; see [`Lab::take_race_probe`].
    fn take_race_probe(&mut self) -> Option<accel::RaceProbe>;
    fn set_race_lane(&mut self, lane: accel::RaceLane);
    /// A copy of the whole run as it is now — weights, the optimiser's state, the data order,
    /// every random stream, the lab's own state — so continuing the copy takes the same steps bit
    /// for bit (a time-travel checkpoint). Refused while the steps run on an accelerator (its
    /// queue and moments live on the device).
    fn checkpoint(&mut self) -> Result<Box<dyn LabSession>, String>;
    /// About the bytes a checkpoint of this session holds (its networks and their training state;
    /// the datasets are shared, not copied).
    fn checkpoint_bytes(&mut self) -> usize;
    /// Takes the step records no snapshot has reported yet (a fork's branch shows only its curve).
    fn take_records(&mut self) -> Vec<snapshot::StepRecord>;
    /// The last mini-batch as a chain of VJPs (see [`Lab::trace`]).
    fn trace(&self, example: usize) -> Result<vjp::VjpView, String>;
    /// The run as a self-contained PyTorch script (see [`crate::export`]), or why not.
    fn pytorch(&self) -> Result<String, String>;
    /// Trains on `workers` workers from the next step (this one and helpers `make` builds for a
    /// model); the steps are the same bits for any number (see [`crate::parallel`]).
    fn set_workers(&mut self, workers: usize, make: Option<HelperFactory>);
    /// Workers asked for, workers the last step ran on, and why the run trains on one where it
    /// must (batch norm, dropout, recurrent nets).
    fn workers(&self) -> Workers;
    /// Why a worker's share was computed here instead, once.
    fn take_worker_failure(&mut self) -> Option<String>;
}

/// Builds the helpers of a run for one of its models: `(model, how many, the run's config)`.
pub type HelperFactory =
    std::sync::Arc<dyn Fn(&crate::sequential::Sequential, usize, &LabConfig) -> Result<Box<dyn crate::parallel::Helpers>, String> + Send + Sync>;

/// Whether a config's lab splits its mini-batches over workers (the CNN and Batch Norm labs, and
/// the RNN lab from 64 sequences a batch).
pub fn splits(config: &LabConfig) -> bool {
    config.get::<cnn::CnnConfig>().is_some() || config.get::<batchnorm::BnConfig>().is_some() || config.get::<rnn::RnnConfig>().is_some()
}

/// The networks a config trains, built with throwaway weights: what a helper in another worker
/// builds its replica from (it takes the first whose [`crate::parallel::fingerprint`] matches).
/// Built one at a time: the RNN classifier's output size depends on the data (2 to 64 classes,
/// pasted names included), so each size is a candidate.
pub fn replicas(config: &LabConfig) -> Box<dyn Iterator<Item = crate::sequential::Sequential>> {
    let mut rng = crate::rng::Rng::new(1);
    if let Some(c) = config.get::<cnn::CnnConfig>() {
        Box::new(std::iter::once(c.build_model(&mut rng)))
    } else if let Some(c) = config.get::<batchnorm::BnConfig>() {
        Box::new([c.build_model(batchnorm::Net::Plain, &mut rng), c.build_model(batchnorm::Net::Bn, &mut rng)].into_iter())
    } else if let Some(c) = config.get::<rnn::RnnConfig>() {
        let c = c.clone();
        Box::new((crate::data::names::MIN_CLASSES..=crate::data::names::MAX_CLASSES).map(move |k| c.build_model(k, &mut rng)))
    } else {
        Box::new(std::iter::empty())
    }
}

/// How a run's steps are spread over workers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Workers {
    pub requested: usize,
    /// Workers the last step of the lead network ran on.
    pub training: usize,
    /// Micro-shards per mini-batch (1: the network trains as one piece).
    pub shards: usize,
    /// Why the run trains on one worker whatever was asked.
    pub single: Option<String>,
    /// The last step split the first layer between the workers (native threads; see
    /// [`crate::split_layer`]) rather than the mini-batch alone.
    #[serde(default)]
    pub split: bool,
}

/// The machinery every lab shares, around the lab itself.
#[derive(Clone)]
pub struct Session<L: Lab> {
    pub lab: L,
    ms_per_step: f64,
    /// A stop condition has paused the run; Play trains on past it until a stop key changes.
    stop_fired: bool,
    parallel: workers::Parallel,
}

impl<L: Lab> Session<L> {
    pub fn new(lab: L) -> Self {
        Session { lab, ms_per_step: 0.0, stop_fired: false, parallel: workers::Parallel::default() }
    }
}

/// The diagnosis of a run whose loss or weights are no longer finite, with its one-click fix.
pub fn non_finite_diagnosis(lr: f32, loss: f32) -> Diagnosis {
    Diagnosis {
        kind: DiagnosisKind::NonFinite,
        layer: None,
        message: format!(
            "The loss or a weight became NaN or infinite (last mini-batch loss {loss}). The steps were too large: \
             the learning rate is probably too high for these inputs — or the inputs are unnormalised."
        ),
        fix: Some(Fix { label: "Reset with learning rate ÷ 10".into(), key: "lr".into(), value: diagnose::scaled_lr(lr, 0.1), reset: true }),
    }
}

impl<L: Registered> LabSession for Session<L> {
    fn config(&self) -> LabConfig {
        self.lab.config().clone().into()
    }

    fn step(&mut self, n: u64) -> f32 {
        if self.parallel.workers > 1 {
            let config: LabConfig = self.lab.config().clone().into();
            self.parallel.attach(self.lab.trainers_mut(), &config);
        }
        self.lab.train(n);
        // A step started ahead never outlives the call: between calls the model, the data or
        // the helpers may change.
        if self.parallel.workers > 1 {
            self.lab.trainers_mut().into_iter().for_each(|t| t.settle());
        }
        self.lab.trainer().last_loss
    }

    fn steps(&self) -> u64 {
        self.lab.trainer().step
    }

    fn last_loss(&self) -> f32 {
        self.lab.trainer().last_loss
    }

    fn model(&self) -> &crate::sequential::Sequential {
        &self.lab.trainer().model
    }

    fn epochs(&self) -> u64 {
        self.lab.trainer().epoch
    }

    fn stop_at(&self) -> u64 {
        self.lab.config().stop()
    }

    fn stop_reason(&mut self) -> Option<String> {
        if let Some(event) = self.lab.pause_reason() {
            return Some(event);
        }
        if self.stop_fired {
            return None;
        }
        let reason = self.lab.stop_reason();
        self.stop_fired = reason.is_some();
        reason
    }

    fn cannot_train(&self) -> Option<String> {
        self.lab.cannot_train()
    }

    /// One definition for every lab: the last mini-batch loss or any parameter is not finite.
    fn diverged(&mut self) -> bool {
        let t = self.lab.trainer_mut();
        (t.has_loss() && !t.last_loss.is_finite()) || t.params_non_finite()
    }

    fn set(&mut self, key: &str, value: &str) -> Result<Applied, String> {
        let next = params::with_value(self.lab.config(), key, value).map_err(|n| n.message)?;
        let applied = if <L::Config as LabParams>::LIVE.contains(&key) {
            self.lab.trainer_mut().apply(&next.training());
            self.lab.set_config(next);
            Applied::Live
        } else {
            self.lab.rebuild(key, next)?
        };
        if applied == Applied::Reset || <L::Config as LabParams>::STOP_KEYS.contains(&key) {
            self.stop_fired = false;
        }
        Ok(applied)
    }

    fn set_timing(&mut self, ms_per_step: f64) {
        self.ms_per_step = ms_per_step;
    }

    fn snapshot(&mut self) -> Snapshot {
        // Takes an accelerator's finished readback and asks for the next (at display rate).
        let _ = self.lab.trainer_mut().sync(false);
        let report = self.lab.report();
        let diverged = self.diverged();
        let lr = self.lab.config().training().hyper.lr;
        let diagnoses = if diverged { vec![non_finite_diagnosis(lr, self.lab.trainer().last_loss)] } else { report.diagnoses };
        let t = self.lab.trainer_mut();
        let mut metrics = report.metrics;
        if self.ms_per_step > 0.0 {
            let examples = t.batch_size as f64 * 1000.0 / self.ms_per_step;
            metrics.push(Metric { name: "examples_per_s".into(), value: examples as f32 });
        }
        Snapshot {
            lab: <L::Config as LabParams>::LAB.into(),
            step: t.step,
            epoch: t.epoch,
            epoch_progress: t.epoch_progress(),
            steps_per_epoch: t.steps_per_epoch(),
            loss: t.last_loss,
            train_loss: report.train_loss,
            test_loss: report.test_loss,
            metrics,
            grad_norm: t.grad_norm(),
            ms_per_step: self.ms_per_step,
            diverged,
            layers: report.layers,
            records: std::mem::take(&mut t.records),
            diagnoses,
            view: report.view.into(),
        }
    }

    fn finish(&mut self) {
        self.lab.finish()
    }

    fn evaluating(&self) -> bool {
        self.lab.evaluating()
    }

    fn snapshot_interval_ms(&self) -> f64 {
        self.lab.snapshot_interval_ms()
    }

    fn command(&mut self, command: LabCommand, now_ms: &mut dyn FnMut() -> f64) -> Result<Option<LabReply>, Notice> {
        let Some(command) = L::unwrap_command(command) else {
            return Err(Notice::new("command", format!("that command is not for the {} lab", <L::Config as LabParams>::LAB)));
        };
        Ok(self.lab.command(command, now_ms)?.map(L::wrap_reply))
    }

    fn background(&mut self, now_ms: &mut dyn FnMut() -> f64) -> bool {
        self.lab.background(now_ms)
    }

    fn accelerate(&mut self, make: &mut dyn FnMut(&Trainer, &[usize]) -> Result<Box<dyn Accelerator>, String>) -> Result<(), String> {
        let input = self.lab.accelerator_input()?;
        let t = self.lab.trainer_mut();
        if !t.in_sync() {
            return Err("the model is not in sync with the device yet".into());
        }
        let accel = make(t, &input)?;
        t.detach();
        t.attach(accel);
        Ok(())
    }

    fn accelerator_input(&self) -> Result<Vec<usize>, String> {
        self.lab.accelerator_input()
    }

    fn decelerate(&mut self) {
        self.lab.trainer_mut().detach();
    }

    fn accelerator(&self) -> Option<String> {
        self.lab.trainer().accelerator_name()
    }

    fn sync(&mut self, wait: bool) -> bool {
        let t = self.lab.trainer_mut();
        let _ = t.sync(wait);
        t.in_sync()
    }

    fn needs_rebuild(&self) -> bool {
        self.lab.trainer().needs_rebuild()
    }

    fn accelerator_failure(&mut self) -> Option<String> {
        self.lab.trainer_mut().take_failure()
    }

    fn take_race_probe(&mut self) -> Option<accel::RaceProbe> {
        self.lab.take_race_probe()
    }

    fn export_run(&mut self) -> Result<String, String> {
        let config = self.config();
        let counters = (self.lab.trainer().step, self.lab.trainer().epoch);
        saved::SavedRun::of(&config, counters, self.lab.trainers_mut())
    }

    fn restore(&mut self, run: &saved::SavedRun) -> Result<(), String> {
        if self.config().lab() != run.config().lab() {
            return Err(format!("the file is a {} run, not a {} one", run.config().lab(), self.config().lab()));
        }
        run.restore(self.lab.trainers_mut())
    }

    fn set_race_lane(&mut self, lane: accel::RaceLane) {
        self.lab.set_race_lane(lane)
    }

    fn checkpoint(&mut self) -> Result<Box<dyn LabSession>, String> {
        if self.lab.trainers_mut().iter().any(|t| t.accelerated()) {
            return Err("time travel keeps checkpoints of runs on the CPU: switch the backend to CPU".into());
        }
        Ok(Box::new(self.clone()))
    }

    fn checkpoint_bytes(&mut self) -> usize {
        self.lab.trainers_mut().into_iter().map(|t| t.heap_bytes()).sum()
    }

    fn take_records(&mut self) -> Vec<snapshot::StepRecord> {
        std::mem::take(&mut self.lab.trainer_mut().records)
    }

    fn trace(&self, example: usize) -> Result<vjp::VjpView, String> {
        self.lab.trace(example)
    }

    fn pytorch(&self) -> Result<String, String> {
        let config: LabConfig = self.lab.config().clone().into();
        // Refused before the sequences are read back (that takes a moment on big sets).
        crate::export::supported(&config)?;
        let seqs = self.lab.export_sequences();
        crate::export::pytorch_with(&config, &self.lab.trainer().model, self.lab.export_data(), seqs.as_ref().map(|(a, b)| (a, b)))
    }

    fn set_workers(&mut self, workers: usize, make: Option<HelperFactory>) {
        self.parallel.set(workers, make, self.lab.trainers_mut());
    }

    fn workers(&self) -> Workers {
        self.parallel.report(self.lab.trainer())
    }

    fn take_worker_failure(&mut self) -> Option<String> {
        self.parallel.take_failure(self.lab.trainers_mut())
    }
}

/// Builds the session a config describes, for labs that need no loaded data (fit, playground).
/// Panics for a lab that does: use [`build_with`].
pub fn build(config: &LabConfig) -> Box<dyn LabSession> {
    build_with(config, &Assets::default()).expect("this lab needs data: use build_with")
}

/// Builds the session a config describes with the loaded datasets.
pub fn build_with(config: &LabConfig, assets: &Assets) -> Result<Box<dyn LabSession>, String> {
    config.build(assets)
}

/// Whether the config's lab can hand its steps to an accelerator (the GPU).
pub fn accelerates(config: &LabConfig) -> bool {
    config.lab() == "cnn"
}

/// The image dataset a config trains on, if any (the driver loads it first).
pub fn needs_images(config: &LabConfig) -> Option<ImageSet> {
    config.needs_images()
}

/// The text dataset a config trains on, if any (the driver loads it first).
pub fn needs_text(config: &LabConfig) -> Option<crate::data::names::TextSet> {
    config.needs_text()
}
