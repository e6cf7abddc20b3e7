//! Lab 4's config: a character-level RNN that reads a surname one character at a time and
//! classifies its language (many:1). The network: one-hot characters → vanilla RNN (tanh,
//! `hidden` units) → its last state → dense → the classes, softmax cross-entropy (= log-softmax +
//! NLL). `W_hh` starts from `init` scaled by `gain` (small: gradients vanish through time; large:
//! they explode), `W_xh` Xavier, biases 0.

use crate::data::names::{self, MAX_LEN};
use crate::data::play;
use crate::init::Init;
use crate::lab::budget::{self, Cost};
use crate::lab::params::{LabParams, Notice, Training};
use crate::ops::{Dense, Rnn, RnnImpl};
use crate::optim::{Hyper, OptimizerKind, Schedule};
use crate::rng::Rng;
use crate::sequential::Sequential;
use serde::{Deserialize, Serialize};

pub const MAX_HIDDEN: usize = 512;
/// Random sequences for the W4 benchmark: length, symbols, classes, count.
pub const RANDOM_SHAPE: (usize, usize, usize, usize) = (10, 57, 18, 20_000);

/// The data the classifier reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RnnData {
    /// Surnames by origin, 17 languages (shipped).
    #[default]
    Names,
    /// Random sequences of 10 of 57 symbols in 18 classes (the W4 benchmark's shape).
    Random,
    /// US baby names of 2018 (shipped; the generation task).
    Baby,
    /// Tiny Shakespeare, eight plays as one stream of characters (shipped; generation).
    #[serde(rename = "shakespeare")]
    Play,
}

impl RnnData {
    pub const ALL: [RnnData; 4] = [RnnData::Names, RnnData::Random, RnnData::Baby, RnnData::Play];

    pub fn label(self) -> &'static str {
        match self {
            RnnData::Names => "surnames → 17 languages",
            RnnData::Random => "random sequences (benchmark W4)",
            RnnData::Baby => "US baby names 2018 (generate)",
            RnnData::Play => "tiny Shakespeare (generate)",
        }
    }
}

/// What the network learns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// many:1 — a name in, its language out.
    #[default]
    Classify,
    /// many:many — every next character (a language model), then sampling new names.
    Generate,
    /// 1:1 — the next character from the current one alone (no recurrence: a bigram model as a
    /// network), sampled like `generate`.
    Bigram,
    /// 1:many — a surname given its language: the language is the first input symbol.
    Language,
}

impl Task {
    pub const ALL: [Task; 4] = [Task::Classify, Task::Generate, Task::Bigram, Task::Language];

    pub fn label(self) -> &'static str {
        match self {
            Task::Classify => "classify (many:1)",
            Task::Generate => "generate (many:many)",
            Task::Bigram => "next character only (1:1)",
            Task::Language => "a surname given a language (1:many)",
        }
    }
}

/// How the RNN layer runs over a mini-batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loop {
    /// Each time step for the whole batch as matrix products.
    #[default]
    Batched,
    /// One name at a time, one character at a time.
    Loop,
}

impl Loop {
    pub fn label(self) -> &'static str {
        match self {
            Loop::Batched => "batched (matrix products)",
            Loop::Loop => "one name at a time (loops)",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RnnConfig {
    pub task: Task,
    pub data: RnnData,
    pub hidden: usize,
    /// `W_hh`'s initialisation (normal: `N(0, 1/hidden)`), times `gain`.
    pub init: Init,
    pub gain: f32,
    pub opt: OptimizerKind,
    pub lr: f32,
    pub mom: f32,
    pub l2: f32,
    pub bs: usize,
    /// Clip the global gradient norm to this (0: off).
    pub clip: f32,
    /// Learning-rate schedule over `period` steps (step: halve every period; cosine: anneal).
    pub sched: Schedule,
    pub period: u64,
    /// Truncated BPTT: the gradient reaches back this many characters (0: all of them).
    pub truncate: usize,
    /// Which implementation trains the RNN layer.
    pub run: Loop,
    /// Race the loop against the batched layer on the current mini-batch about once a second.
    pub race: bool,
    /// Steps between evaluations of the validation and test names (and at every epoch's end).
    pub eval: u64,
    /// Pause when the validation accuracy has not improved for this many epochs (0: off).
    pub patience: u64,
    /// The name typed into the probe.
    pub name: String,
    /// The hidden unit the probe name is coloured by.
    pub unit: usize,
    /// Generation: the sampling temperature, the priming prefix, and how many names to show.
    pub temp: f32,
    pub prime: String,
    pub samples: usize,
    /// 1:many: the language whose surnames are sampled.
    pub lang: String,
    /// Pause after this many epochs (0: never).
    pub epochs: u64,
    pub seed: u64,
    /// Pause at this step (0: never).
    pub stop: u64,
}

impl Default for RnnConfig {
    /// The classifier: hidden 128, batches of 32, W_hh ~ N(0, 1/hidden) × 0.5, Adam at 0.002
    /// annealed by a cosine over 20 epochs (13,800 steps of the shipped split), 20 epochs.
    fn default() -> Self {
        RnnConfig {
            task: Task::Classify,
            data: RnnData::Names,
            hidden: 128,
            init: Init::Normal,
            // Measured over 30 epochs (seed 1): gain 0.5 peaks at 63.6 % test accuracy, 1.0 at
            // 61.7 %, 0.3 at 63.2 %, 0.7 at 62.5 %.
            gain: 0.5,
            opt: OptimizerKind::Adam,
            // Measured (seed 1, best validation epoch): constant 0.001 63.6 % test accuracy,
            // cosine 0.001 over 30 epochs 63.8 %, cosine 0.002 over 20 epochs 64.3 %.
            lr: 0.002,
            mom: 0.9,
            l2: 0.0,
            bs: 32,
            clip: 0.0,
            sched: Schedule::Cosine,
            period: 13_800,
            truncate: 0,
            run: Loop::Batched,
            race: true,
            eval: 200,
            patience: 0,
            name: "Kowalski".into(),
            unit: 0,
            temp: 1.0,
            prime: String::new(),
            samples: 10,
            lang: "Italian".into(),
            epochs: 20,
            seed: 1,
            stop: 0,
        }
    }
}

impl RnnConfig {
    /// The generation task's starting point: baby names, Adam 0.002 annealed by a cosine over
    /// 20 epochs (16,140 steps of the 80 % split; dev loss 2.033, constant 0.001: 2.058).
    pub fn generate() -> RnnConfig {
        RnnConfig { task: Task::Generate, data: RnnData::Baby, name: "emma".into(), period: 16_140, race: false, eval: 300, ..RnnConfig::default() }
    }

    /// Tiny Shakespeare: the same network over 24-character windows of the plays (38,614
    /// training windows: 1,207 steps of 32 per epoch), annealed over 10 epochs, passages sampled
    /// at temperature 0.8 from a speaker's name.
    pub fn shakespeare() -> RnnConfig {
        RnnConfig { data: RnnData::Play, period: 12_070, epochs: 10, eval: 400, samples: 2, temp: 0.8, prime: "MENENIUS:".into(), ..RnnConfig::generate() }
    }

    pub fn vocab(&self) -> usize {
        if self.task == Task::Language {
            // The characters, then one start symbol per language.
            return names::VOCAB + names::LANGUAGES.len();
        }
        match self.data {
            RnnData::Names | RnnData::Baby => names::VOCAB,
            RnnData::Play => play::VOCAB,
            RnnData::Random => RANDOM_SHAPE.1,
        }
    }

    /// What a generating network predicts: the characters of its text (never a start symbol).
    pub fn gen_outputs(&self) -> usize {
        if self.data == RnnData::Play {
            play::VOCAB
        } else {
            names::VOCAB
        }
    }

    pub fn hyper(&self) -> Hyper {
        Hyper { lr: self.lr, momentum: self.mom, l2: self.l2, l1: 0.0, clip: self.clip }
    }

    pub fn param_count(&self, classes: usize) -> usize {
        let h = self.hidden;
        self.vocab() * h + h * h + h + h * classes + classes
    }

    /// Forward FLOPs and activations of one sequence of the longest length.
    pub fn per_sequence(&self) -> (f64, f64) {
        let (h, t) = (self.hidden as f64, MAX_LEN as f64);
        (t * (2.0 * h * h + 2.0 * h) + 2.0 * h * 64.0, t * h * 2.0)
    }

    pub fn cost(&self) -> Cost {
        let (forward, activations) = self.per_sequence();
        let batch = self.bs as f64;
        let params = self.param_count(64) as f64;
        Cost {
            step_flops: Cost::TRAIN_FACTOR * forward * batch + 10.0 * params,
            snapshot_flops: 9.0 * forward * MAX_LEN as f64 + 4.0 * params + 2.0 * (self.hidden as f64).powi(3) * 6.0,
            bytes: budget::parameter_bytes(params) + 4.0 * activations * (3.0 * batch + 1000.0),
        }
    }

    /// The network: the RNN (its last state, or every state to generate) and the dense output
    /// layer (applied at every step to generate). Taps: `rnn`, `output`.
    pub fn build_model(&self, classes: usize, rng: &mut Rng) -> Sequential {
        let mut rnn = Rnn::new(self.vocab(), self.hidden, self.init, self.gain, rng);
        rnn.all_steps = self.task != Task::Classify;
        // Generation predicts characters (never a start symbol).
        let classes = if self.task == Task::Classify { classes } else { self.gen_outputs() };
        rnn.recurrent = self.task != Task::Bigram;
        rnn.truncate = self.truncate;
        rnn.implementation = self.implementation();
        let mut b = Sequential::builder();
        b.push(rnn).tap("rnn");
        b.push(Dense::new(self.hidden, classes, Init::Xavier, 0.0, rng)).tap("output");
        b.build()
    }

    pub fn implementation(&self) -> RnnImpl {
        match self.run {
            Loop::Batched => RnnImpl::Batched,
            Loop::Loop => RnnImpl::Loop,
        }
    }
}

fn notice(key: &str, message: impl Into<String>) -> Notice {
    Notice { key: key.into(), message: message.into() }
}

impl LabParams for RnnConfig {
    const LAB: &'static str = "rnn";
    const LIVE: &'static [&'static str] =
        &["lr", "mom", "l2", "bs", "opt", "clip", "eval", "patience", "name", "unit", "epochs", "stop", "race", "temp", "prime", "samples", "lang"];
    const STOP_KEYS: &'static [&'static str] = &["stop", "epochs", "patience"];

    fn seed(&self) -> u64 {
        self.seed
    }

    fn stop(&self) -> u64 {
        self.stop
    }

    fn training(&self) -> Training {
        Training { hyper: self.hyper(), batch_size: self.bs, optimizer: self.opt, schedule: self.sched, period: self.period }
    }

    /// `task=generate` starts from the generation recipe (baby names, or Shakespeare's).
    fn base(pairs: &mut Vec<(String, String)>, _notices: &mut Vec<Notice>) -> Self {
        let last = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let task = last("task");
        if task.as_deref() == Some("generate") && last("data").as_deref() == Some("shakespeare") {
            RnnConfig::shakespeare()
        } else if task.as_deref() == Some("generate") {
            RnnConfig::generate()
        } else if task.as_deref() == Some("bigram") {
            RnnConfig { task: Task::Bigram, ..RnnConfig::generate() }
        } else if task.as_deref() == Some("language") {
            // 23,080 training surnames: 722 steps of 32 per epoch, annealed over 20 epochs.
            RnnConfig { task: Task::Language, data: RnnData::Names, name: "Kowalski".into(), period: 14_440, ..RnnConfig::generate() }
        } else {
            RnnConfig::default()
        }
    }

    fn check(&self) -> Result<(), Notice> {
        match (self.task, self.data) {
            (Task::Generate | Task::Bigram, RnnData::Baby | RnnData::Play)
            | (Task::Classify, RnnData::Names | RnnData::Random)
            | (Task::Language, RnnData::Names) => {}
            (Task::Language, _) => return Err(notice("data", "a surname given a language trains on data=names")),
            (Task::Generate | Task::Bigram, _) => return Err(notice("data", "generation trains on data=baby or data=shakespeare")),
            (Task::Classify, _) => return Err(notice("data", "classification trains on data=names (or random)")),
        }
        if !(self.temp.is_finite() && (0.05..=5.0).contains(&self.temp)) {
            return Err(notice("temp", "temp must be a temperature from 0.05 to 5"));
        }
        if self.prime.chars().count() > 20 {
            return Err(notice("prime", "prime: at most 20 characters"));
        }
        if !names::LANGUAGES.contains(&self.lang.as_str()) {
            return Err(notice("lang", format!("lang must be one of {}", names::LANGUAGES.join(", "))));
        }
        if !(1..=50).contains(&self.samples) {
            return Err(notice("samples", "samples must be from 1 to 50"));
        }
        if !(1..=MAX_HIDDEN).contains(&self.hidden) {
            return Err(notice("hidden", format!("hidden must be from 1 to {MAX_HIDDEN} units")));
        }
        if self.init == Init::Uniform {
            return Err(notice("init", "W_hh takes xavier, he, normal or zeros (uniform [0, 1) has no negative weights)"));
        }
        // A smaller gain makes W_hh subnormal floats, which x86 multiplies several times slower.
        if !(self.gain.is_finite() && (1e-3..=20.0).contains(&self.gain)) {
            return Err(notice("gain", "gain must be a number in [0.001, 20]"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0) {
            return Err(notice("lr", "lr must be a number in (0, 10]"));
        }
        if !(self.mom.is_finite() && (0.0..1.0).contains(&self.mom)) {
            return Err(notice("mom", "mom must be a number in [0, 1)"));
        }
        if !(self.l2.is_finite() && (0.0..=1.0).contains(&self.l2)) {
            return Err(notice("l2", "l2 must be a number in [0, 1]"));
        }
        if !(1..=1024).contains(&self.bs) {
            return Err(notice("bs", "bs must be a whole number from 1 to 1024"));
        }
        if !(self.clip.is_finite() && (0.0..=1e6).contains(&self.clip)) {
            return Err(notice("clip", "clip must be 0 (off) or a positive gradient norm"));
        }
        if self.truncate > MAX_LEN {
            return Err(notice("truncate", format!("truncate must be from 0 (full BPTT) to {MAX_LEN} characters")));
        }
        if !(1..=10_000_000).contains(&self.period) {
            return Err(notice("period", "period must be a whole number of steps from 1 to 10,000,000"));
        }
        if !(10..=1_000_000).contains(&self.eval) {
            return Err(notice("eval", "eval must be a number of steps from 10 to 1,000,000"));
        }
        if self.patience > 1000 || self.epochs > 1000 {
            return Err(notice(if self.patience > 1000 { "patience" } else { "epochs" }, "at most 1000 epochs"));
        }
        if self.name.chars().count() > 100 {
            return Err(notice("name", "a name of at most 100 characters (it is cut at 24)"));
        }
        if self.unit >= self.hidden {
            return Err(notice("unit", format!("unit must be from 0 to {}", self.hidden - 1)));
        }
        let blame = if self.bs > 32 && (RnnConfig { bs: 32, ..self.clone() }).cost().check(["", "", ""]).is_ok() { "bs" } else { "hidden" };
        self.cost().check([blame, "hidden", blame])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use crate::tensor::{self, Mode};

    #[test]
    fn the_classifier_reads_characters_and_scores_classes() {
        let c = RnnConfig::default();
        assert!(c.check().is_ok());
        let mut m = c.build_model(17, &mut Rng::new(1));
        let out = m.forward(&tensor::zeros(&[3, 7, names::VOCAB]), Mode::Eval);
        assert_eq!(out.shape(), &[3, 17]);
        assert_eq!(c.param_count(17), 59 * 128 + 128 * 128 + 128 + 128 * 17 + 17);
        let key = |c: RnnConfig| c.check().unwrap_err().key;
        assert_eq!(key(RnnConfig { hidden: 0, ..RnnConfig::default() }), "hidden");
        assert_eq!(key(RnnConfig { clip: f32::NAN, ..RnnConfig::default() }), "clip");
        // A subnormal W_hh would slow every step several times: refused.
        assert_eq!(key(RnnConfig { gain: 1e-40, ..RnnConfig::default() }), "gain");
        assert!(RnnConfig { gain: 1e-3, ..RnnConfig::default() }.check().is_ok());
        assert_eq!(key(RnnConfig { name: "x".repeat(101), ..RnnConfig::default() }), "name");
        assert_eq!(key(RnnConfig { unit: 128, ..RnnConfig::default() }), "unit");
        assert_eq!(key(RnnConfig { hidden: 128, bs: 1024, ..RnnConfig::default() }), "bs");
        assert_eq!(key(RnnConfig { hidden: 512, bs: 1024, ..RnnConfig::default() }), "hidden");
    }
}
