//! Benchmark workloads, run the same way natively (`deeply bench`) and in the browser's worker
//! (`?lab=bench&workload=…`): the training loop alone, no snapshots, timed by the caller's clock.

use super::{build_with, needs_images, parse_link, LabSession};
use crate::data::images::{Assets, ImageSet};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// A 2-8-8-1 tanh MLP, mini-batches of 10, SGD, squared error (TensorFlow Playground's shape).
    W1,
    /// The seed's MLP 784-128-10 ReLU on MNIST without batch norm, mini-batches of 64, SGD
    /// (items = examples).
    W2,
    /// W2 with a batch-norm layer before each ReLU.
    W2bn,
    /// LeNet-5 on MNIST, mini-batches of 64, Adam, im2col convolutions (items = examples).
    W3,
    /// A vanilla RNN, hidden 128, on sequences of 10 one-hot symbols of 57 into 18 classes,
    /// mini-batches of 32, Adam (items = sequences).
    W4,
}

/// Every workload, by name.
pub const WORKLOADS: &str = "w1, w2, w2bn, w3, w4";

impl Workload {
    pub fn parse(name: &str) -> Option<Workload> {
        match name {
            "w1" => Some(Workload::W1),
            "w2" => Some(Workload::W2),
            "w2bn" => Some(Workload::W2bn),
            "w3" => Some(Workload::W3),
            "w4" => Some(Workload::W4),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "w1",
            Workload::W2 => "w2",
            Workload::W2bn => "w2bn",
            Workload::W3 => "w3",
            Workload::W4 => "w4",
        }
    }

    /// The share link of the workload.
    pub fn link(self) -> &'static str {
        match self {
            Workload::W1 => "lab=playground&data=circle&x=true&y=true&sinx=false&siny=false&hidden=8,8&act=tanh&loss=mse&opt=sgd&lr=0.03&bs=10&seed=1",
            Workload::W2 => "lab=batchnorm&nets=plain&hidden=128&act=relu&init=he&opt=sgd&lr=0.1&bs=64&eval=1000000&epochs=0&seed=1",
            Workload::W2bn => "lab=batchnorm&nets=bn&hidden=128&act=relu&init=he&opt=sgd&lr=0.1&bs=64&eval=1000000&epochs=0&seed=1",
            Workload::W3 => "lab=cnn&model=lenet5&bs=64&conv=im2col&race=false&eval=1000000&seed=1",
            Workload::W4 => "lab=rnn&data=random&hidden=128&opt=adam&lr=0.001&bs=32&race=false&eval=1000000&epochs=0&seed=1",
        }
    }

    /// The workload in a sentence, for the benchmark page.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::W1 => "TensorFlow Playground's shape: a 2-8-8-1 tanh MLP on the circle data, mini-batches of 10, SGD, squared error.",
            Workload::W2 => "The Batch Norm lab's plain net: an MLP 784-128-10 (ReLU) on MNIST, mini-batches of 64, SGD.",
            Workload::W2bn => "W2 with batch norm before the ReLU (it trains on one worker: batch norm needs the whole mini-batch).",
            Workload::W3 => "LeNet-5 on MNIST (two convolutions as im2col + GEMM, three dense layers), mini-batches of 64, Adam.",
            Workload::W4 => "A vanilla RNN (hidden 128) on sequences of 10 one-hot symbols of 57 into 18 classes, mini-batches of 32, Adam.",
        }
    }

    /// What an item is: W1 counts steps, W4 sequences, the others training examples.
    pub fn item(self) -> &'static str {
        match self {
            Workload::W1 => "steps",
            Workload::W4 => "sequences",
            _ => "examples",
        }
    }

    /// What one item is (steps for W1, training examples for W3).
    pub fn items_per_step(self) -> f64 {
        match self {
            Workload::W1 => 1.0,
            Workload::W2 | Workload::W2bn | Workload::W3 => 64.0,
            Workload::W4 => 32.0,
        }
    }

    /// The image data the workload trains on (load it before `run`).
    pub fn needs_images(self) -> Option<ImageSet> {
        needs_images(&parse_link(self.link()).config)
    }

    pub fn session(self, assets: &Assets) -> Result<Box<dyn LabSession>, String> {
        build_with(&parse_link(self.link()).config, assets)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub workload: String,
    pub items_per_s: f64,
    pub ms_per_step: f64,
    pub backend: String,
    pub steps: u64,
    /// Workers the steps ran on (see [`crate::parallel`]).
    #[serde(default = "one")]
    pub workers: usize,
}

fn one() -> usize {
    1
}

/// Warms up until the speed stops rising (see [`time`]), then trains in chunks until `seconds`
/// of training have been timed on `now_ms`'s clock.
pub fn run(workload: Workload, seconds: f64, backend: &str, assets: &Assets, now_ms: &mut dyn FnMut() -> f64) -> Result<BenchResult, String> {
    run_batch(workload, None, seconds, backend, assets, now_ms)
}

/// [`run`] with mini-batches of `batch` rows instead of the workload's (W2, W2bn, W3, W4).
pub fn run_batch(
    workload: Workload,
    batch: Option<usize>,
    seconds: f64,
    backend: &str,
    assets: &Assets,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<BenchResult, String> {
    run_on(workload, batch, (1, None), seconds, backend, assets, now_ms)
}

/// [`run_batch`] on `workers` workers, helpers built by `make` (W2 and W3 split their batches;
/// the others train on one).
pub fn run_on(
    workload: Workload,
    batch: Option<usize>,
    workers: (usize, Option<super::HelperFactory>),
    seconds: f64,
    backend: &str,
    assets: &Assets,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<BenchResult, String> {
    let (mut session, items) = prepare(workload, batch, seconds, assets)?;
    session.set_workers(workers.0, workers.1);
    time(workload, session.as_mut(), items, seconds, backend, now_ms)
}

/// The workload's session (checked), and the items one step counts.
pub fn prepare(workload: Workload, batch: Option<usize>, seconds: f64, assets: &Assets) -> Result<Timed, String> {
    if !(seconds.is_finite() && (0.001..=600.0).contains(&seconds)) {
        return Err(format!("a benchmark runs from 0.001 to 600 seconds, not {seconds}"));
    }
    let items_per_step = match batch {
        Some(_) if workload == Workload::W1 => return Err("W1's batch is part of the workload (10)".into()),
        Some(b) if !(1..=1024).contains(&b) => return Err(format!("a batch of 1 to 1024 rows, not {b}")),
        Some(b) => b as f64,
        None => workload.items_per_step(),
    };
    // The workload's own `bs` replaced (a key given twice is refused below, with a notice).
    let link = match batch {
        Some(b) => {
            workload.link().split('&').map(|pair| if pair.starts_with("bs=") { format!("bs={b}") } else { pair.to_string() }).collect::<Vec<_>>().join("&")
        }
        None => workload.link().to_string(),
    };
    let parsed = parse_link(&link);
    if let Some(n) = parsed.notices.first() {
        return Err(format!("{}: {}", n.key, n.message));
    }
    Ok((build_with(&parsed.config, assets)?, items_per_step))
}

/// Warms up in windows of a quarter of the time until the speed stops rising (see [`warmed`]),
/// then trains `session` in chunks until `seconds` of training have been timed.
///
/// Only chunks that took all their steps are timed: at an epoch's end the RNN lab evaluates its
/// 5,000 validation and test sequences over 5 calls that take no step, and counting each as a
/// chunk of steps overstated W4 (4 s natively: 2,448 steps counted, 2,126 taken; the figure ~3 %
/// high, the evaluations' time offsetting most of it). The workers reported are those that ran
/// most of the timed steps: an epoch's last, smaller batch may run on one.
pub fn time(
    workload: Workload,
    session: &mut dyn LabSession,
    items_per_step: f64,
    seconds: f64,
    backend: &str,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<BenchResult, String> {
    warm_up(workload, session, seconds, now_ms);
    measure(workload, session, items_per_step, seconds, backend, now_ms)
}

/// [`time`] after the warm-up: chunks of steps (see [`Meter`]) until `seconds` of chunks that
/// took all their steps.
fn measure(
    workload: Workload,
    session: &mut dyn LabSession,
    items_per_step: f64,
    seconds: f64,
    backend: &str,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<BenchResult, String> {
    let mut meter = Meter::new(workload, seconds);
    let give_up = now_ms() + meter.patience();
    loop {
        meter.chunk(session, now_ms);
        if meter.done() {
            return Ok(meter.result(workload, items_per_step, backend));
        }
        if now_ms() > give_up {
            return Err(meter.stalled(workload));
        }
    }
}

/// [`run_on`] for several worker counts in the same minutes: one session per count (the same
/// workload), each warmed up, then stepped in turn a chunk (~50 ms) at a time until each has
/// `seconds` timed. Separate runs meet a drifting machine (a VM whose vCPUs slow for seconds at a
/// time) at different moments, and their ratio swings with it; chunks in turn meet it alike.
/// One result per count, in `counts`' order.
#[allow(clippy::too_many_arguments)]
pub fn run_interleaved(
    workload: Workload,
    batch: Option<usize>,
    counts: &[usize],
    make: Option<super::HelperFactory>,
    seconds: f64,
    backend: &str,
    assets: &Assets,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<Vec<BenchResult>, String> {
    let mut runs = prepare_side_by_side(workload, batch, counts, seconds, assets)?;
    for ((session, _), &n) in runs.iter_mut().zip(counts) {
        session.set_workers(n, make.clone());
    }
    time_side_by_side(workload, &mut runs, seconds, backend, now_ms)
}

/// A benchmark session and the items one of its steps counts.
pub type Timed = (Box<dyn LabSession>, f64);

/// The sessions [`run_interleaved`] times, one per count (checked), each with the items a step
/// counts; the caller gives each its workers. (The browser's helpers start between turns of the
/// event loop, so its bench page waits for them before [`time_side_by_side`].)
pub fn prepare_side_by_side(workload: Workload, batch: Option<usize>, counts: &[usize], seconds: f64, assets: &Assets) -> Result<Vec<Timed>, String> {
    if counts.is_empty() || counts.len() > MAX_INTERLEAVED {
        return Err(format!("from 1 to {MAX_INTERLEAVED} worker counts side by side, not {}", counts.len()));
    }
    if let Some(bad) = counts.iter().find(|&&n| !(1..=crate::parallel::MAX_WORKERS).contains(&n)) {
        return Err(format!("{bad} workers: from 1 to {}", crate::parallel::MAX_WORKERS));
    }
    counts.iter().map(|_| prepare(workload, batch, seconds, assets)).collect()
}

/// Warms up each of `runs` in turn, then steps them in turn a chunk at a time until each has
/// `seconds` timed (see [`run_interleaved`]). One result per run, in order.
pub fn time_side_by_side(
    workload: Workload,
    runs: &mut [Timed],
    seconds: f64,
    backend: &str,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<Vec<BenchResult>, String> {
    for (session, _) in runs.iter_mut() {
        warm_up(workload, session.as_mut(), seconds, now_ms);
    }
    let mut meters: Vec<Meter> = runs.iter().map(|_| Meter::new(workload, seconds)).collect();
    let give_up = now_ms() + meters.iter().map(Meter::patience).sum::<f64>();
    while meters.iter().any(|m| !m.done()) {
        for ((session, _), meter) in runs.iter_mut().zip(meters.iter_mut()).filter(|(_, m)| !m.done()) {
            meter.chunk(session.as_mut(), now_ms);
        }
        if let Some(meter) = meters.iter().find(|m| !m.done()).filter(|_| now_ms() > give_up) {
            return Err(meter.stalled(workload));
        }
    }
    Ok(runs.iter().zip(&meters).map(|((_, items), meter)| meter.result(workload, *items, backend)).collect())
}

/// A bench link's `workers=1,2`: the counts to run side by side, each `auto` or 1 to 16
/// (`auto` resolved for `cores` logical cores), at most [`MAX_INTERLEAVED`] of them; or what is
/// wrong with the value, named.
pub fn parse_counts(value: &str, cores: usize) -> Result<Vec<usize>, String> {
    let shown: String = value.chars().take(40).collect();
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.len() > MAX_INTERLEAVED {
        return Err(format!("workers=\"{shown}\": at most {MAX_INTERLEAVED} counts side by side"));
    }
    items
        .iter()
        .map(|item| {
            super::WorkerCount::parse(item).map(|c| c.resolve(cores)).ok_or_else(|| {
                format!("workers=\"{shown}\": \"{}\" is not auto or 1 to {}", item.chars().take(12).collect::<String>(), crate::parallel::MAX_WORKERS)
            })
        })
        .collect()
}

/// Counts as a link writes them: `1,2`.
pub fn join_counts(counts: &[usize]) -> String {
    counts.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// The most worker counts [`run_interleaved`] takes at once.
pub const MAX_INTERLEAVED: usize = 8;

/// The warm-up of [`time`]: windows of a quarter of the time until the speed stops rising.
fn warm_up(workload: Workload, session: &mut dyn LabSession, seconds: f64, now_ms: &mut dyn FnMut() -> f64) {
    let first = first_chunk(workload);
    session.step(2 * first);
    let mut speeds = Vec::new();
    while !warmed(&speeds) {
        let (start, before) = (now_ms(), session.steps());
        let until = start + seconds * 250.0;
        while now_ms() < until {
            session.step(first);
        }
        speeds.push((session.steps() - before) as f64 / (now_ms() - start).max(1e-3));
    }
}

/// Steps in the first chunk (W1's steps are ~3 µs).
fn first_chunk(workload: Workload) -> u64 {
    if workload == Workload::W1 {
        1_000
    } else {
        2
    }
}

/// The most warm-up windows (each a quarter of the timed seconds).
const WARM_WINDOWS: usize = 10;

/// Whether the warm-up is over, from its windows' speeds so far (steps per ms): when the last
/// window was no more than 3 % faster than the one before, or after [`WARM_WINDOWS`]. In
/// Chromium a worker's wasm runs slower until V8 has optimised it, and longer so when every core
/// trains: W2 on 2 workers (0.5 s windows, three runs, 2026-12-04) began at 23–41 K examples/s
/// and reached its 50–55 K after 2–5 s; on one worker 25 K rising to 35 K over ~3 s. A fixed
/// warm-up of a quarter of the time (1 s of a 4 s run) timed part of that climb, more of it on
/// 2 workers, and the two-worker figure swung from 1.15× to 1.66× the one-worker figure between
/// rounds.
fn warmed(speeds: &[f64]) -> bool {
    match speeds {
        [.., before, last] => *last <= 1.03 * before || speeds.len() >= WARM_WINDOWS,
        _ => false,
    }
}

/// The timing after the warm-up: chunks of steps, doubled until one takes 50 ms, until `budget`
/// ms of chunks that took all their steps.
struct Meter {
    budget: f64,
    timed: f64,
    steps: u64,
    chunk: u64,
    /// Timed steps by the workers they ran on.
    on: [u64; crate::parallel::MAX_WORKERS + 1],
}

impl Meter {
    fn new(workload: Workload, seconds: f64) -> Meter {
        Meter { budget: seconds * 1000.0, timed: 0.0, steps: 0, chunk: first_chunk(workload), on: [0; crate::parallel::MAX_WORKERS + 1] }
    }

    /// How long the chunks may take in all before the run is given up (steps that keep
    /// stopping: an evaluation every call?).
    fn patience(&self) -> f64 {
        4.0 * self.budget + 10_000.0
    }

    fn chunk(&mut self, session: &mut dyn LabSession, now_ms: &mut dyn FnMut() -> f64) {
        let before = session.steps();
        let t = now_ms();
        session.step(self.chunk);
        let done = now_ms();
        if session.steps() == before + self.chunk {
            self.timed += done - t;
            self.steps += self.chunk;
            self.on[session.workers().training.min(crate::parallel::MAX_WORKERS)] += self.chunk;
            if self.timed < 50.0 {
                self.chunk *= 2;
            }
        }
    }

    fn done(&self) -> bool {
        self.timed >= self.budget && self.steps > 0
    }

    fn result(&self, workload: Workload, items_per_step: f64, backend: &str) -> BenchResult {
        let ms_per_step = self.timed / self.steps.max(1) as f64;
        let workers = (1..self.on.len()).max_by_key(|&w| (self.on[w], w)).unwrap_or(1);
        BenchResult {
            workload: workload.name().into(),
            items_per_s: items_per_step * 1000.0 / ms_per_step,
            ms_per_step,
            backend: backend.into(),
            steps: self.steps,
            workers,
        }
    }

    fn stalled(&self, workload: Workload) -> String {
        format!("{} timed {:.0} of {:.0} ms of training steps: its steps kept stopping (an evaluation every call?)", workload.name(), self.timed, self.budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_lasts_while_the_speed_rises_and_no_longer_than_its_windows() {
        assert!(!warmed(&[]));
        assert!(!warmed(&[30.0]), "two windows at least");
        assert!(!warmed(&[23.0, 29.0]));
        assert!(!warmed(&[23.0, 29.0, 37.0, 45.0]));
        assert!(warmed(&[23.0, 29.0, 37.0, 45.0, 46.0]), "within 3 %");
        assert!(warmed(&[23.0, 29.0, 37.0, 33.0]), "slower");
        let climbing: Vec<f64> = (0..WARM_WINDOWS).map(|k| 10.0 * 1.1f64.powi(k as i32)).collect();
        assert!(!warmed(&climbing[..WARM_WINDOWS - 1]));
        assert!(warmed(&climbing), "at most {WARM_WINDOWS} windows");
    }

    #[test]
    fn worker_counts_side_by_side_give_one_result_each_and_refuse_what_makes_no_sense() {
        let mut t = 0.0;
        let mut clock = || {
            t += 5.0;
            t
        };
        let r = run_interleaved(Workload::W1, None, &[1, 3], None, 0.01, "test", &Assets::default(), &mut clock).unwrap();
        assert_eq!(r.len(), 2);
        for one in &r {
            assert_eq!((one.workload.as_str(), one.workers), ("w1", 1), "W1 trains on one worker");
            assert!(one.steps >= 1000 && one.items_per_s > 0.0, "{one:?}");
        }
        for bad in [&[][..], &[0], &[17], &[1; MAX_INTERLEAVED + 1]] {
            assert!(run_interleaved(Workload::W1, None, bad, None, 0.01, "test", &Assets::default(), &mut clock).is_err(), "{bad:?}");
        }
        assert!(run_interleaved(Workload::W1, None, &[1, 2], None, f64::NAN, "test", &Assets::default(), &mut clock).is_err());
    }

    #[test]
    fn a_links_list_of_worker_counts_is_parsed_or_refused_by_name() {
        assert_eq!(parse_counts("1,2", 2), Ok(vec![1, 2]));
        assert_eq!(parse_counts(" 2 , 1 ", 2), Ok(vec![2, 1]));
        assert_eq!(parse_counts("1,auto", 8), Ok(vec![1, 7]));
        assert_eq!(parse_counts("auto", 1), Ok(vec![1]));
        assert_eq!(join_counts(&[1, 2, 4]), "1,2,4");
        for (bad, says) in
            [("1,0", "\"0\""), ("1,17", "\"17\""), ("1,,2", "\"\""), ("1,NaN", "\"NaN\""), ("1,-2", "\"-2\""), ("1,2,3,4,5,6,7,8,9", "at most 8")]
        {
            let e = parse_counts(bad, 2).unwrap_err();
            assert!(e.starts_with(&format!("workers=\"{bad}\"")) && e.contains(says), "{bad}: {e}");
        }
        // A huge value is named in part, never echoed whole.
        let long = "1,".repeat(3) + &"9".repeat(10_000);
        assert!(parse_counts(&long, 2).unwrap_err().len() < 200);
    }

    #[test]
    fn w1_is_the_2_8_8_1_tanh_network_and_runs() {
        let mut s = Workload::W1.session(&Assets::default()).unwrap();
        let snap = s.snapshot();
        let shapes: Vec<&str> = snap.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(shapes, ["dense 2→8 + tanh", "dense 8→8 + tanh", "dense 8→1 + tanh"]);
        let mut t = 0.0;
        let r = run(Workload::W1, 0.01, "test", &Assets::default(), &mut || {
            t += 5.0;
            t
        })
        .unwrap();
        assert_eq!(r.workload, "w1");
        assert!(r.steps >= 1000 && r.items_per_s > 0.0);
        assert!(Workload::parse("w9").is_none());
        assert_eq!(Workload::W3.needs_images(), Some(ImageSet::Mnist));
        assert!(Workload::W3.session(&Assets::default()).is_err(), "W3 needs MNIST loaded");
        for w in [Workload::W2, Workload::W2bn] {
            assert_eq!(Workload::parse(w.name()), Some(w));
            assert_eq!(w.needs_images(), Some(ImageSet::Mnist));
            assert!(parse_link(w.link()).notices.is_empty(), "{:?}", parse_link(w.link()).notices);
        }
        // A duration that would never end is refused, not looped on.
        for bad in [f64::NAN, f64::INFINITY, -1.0, 1e9] {
            assert!(run(Workload::W1, bad, "test", &Assets::default(), &mut || 0.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_batch_override_is_checked_and_counts_its_rows() {
        let mut t = 0.0;
        let mut clock = || {
            t += 5.0;
            t
        };
        let a = Assets::default();
        assert!(run_batch(Workload::W1, Some(20), 0.01, "test", &a, &mut clock).unwrap_err().contains("W1"));
        assert!(run_batch(Workload::W4, Some(0), 0.01, "test", &a, &mut clock).unwrap_err().contains("1 to 1024"));
        let r = run_batch(Workload::W4, Some(8), 0.01, "test", &a, &mut clock).unwrap();
        assert!((r.items_per_s - 8.0 * 1000.0 / r.ms_per_step).abs() < 1e-6, "{r:?}");
    }

    #[test]
    fn only_calls_that_trained_are_counted_not_those_an_evaluation_takes() {
        // W4 in batches of 128: an epoch is 117 steps, and its end evaluates 5,000 sequences in
        // 5 calls that take no step. Each call of the clock advances it 25 ms, so every chunk
        // "takes" 25 ms and a second of them is ~158 steps: an epoch's end falls inside.
        let (mut s, items) = prepare(Workload::W4, Some(128), 1.0, &Assets::default()).unwrap();
        let before = s.steps();
        let mut t = 0.0;
        let r = measure(Workload::W4, s.as_mut(), items, 1.0, "test", &mut || {
            t += 25.0;
            t
        })
        .unwrap();
        assert!(s.epochs() >= 1, "the run evaluated at an epoch's end");
        assert!(r.steps < s.steps() - before, "counted {} steps, the session took {}", r.steps, s.steps() - before);
        assert!((r.items_per_s - 128.0 * 1000.0 / r.ms_per_step).abs() < 1e-6, "{r:?}");
        assert_eq!(r.workers, 1);
    }
}
