//! `deeply`: train any lab from a share link, natively, with the same engine as the browser.

use clap::{Parser, Subcommand};
use engine::lab::{self, parse_link, Snapshot};
use serde_json::json;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "deeply", version, about = "Deeply's labs on the command line: train from a share link, natively.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the lab a share link describes and print its progress.
    ///
    /// For the same link the numbers match the browser's bit for bit (the engine uses the same
    /// loops and the same libm maths on both targets).
    Train {
        /// A share link: a full URL, `?query`, `#fragment` or a bare query such as `lab=fit&lr=0.01`.
        #[arg(long)]
        link: String,
        /// Number of optimiser steps.
        #[arg(long, conflicts_with = "epochs", required_unless_present = "epochs")]
        steps: Option<u64>,
        /// Number of epochs (passes over the training set).
        #[arg(long)]
        epochs: Option<u64>,
        /// Report every K steps.
        #[arg(long, default_value_t = 100)]
        every: u64,
        /// One JSON object per line (`step`, `epoch`, `loss`, `train_loss`, `test_loss`, …),
        /// then a final line with `"final": true`.
        #[arg(long)]
        json: bool,
        /// Training threads (default: every core). The CNN lab and the Batch Norm lab's plain
        /// net split each mini-batch into micro-shards of 16 rows (the RNN lab: 32 sequences,
        /// from 64), at most one thread each; the numbers are the same bits for any number of
        /// threads (and equal the browser's with any `workers`).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Train a generation link (`lab=rnn&task=generate&…`) for S steps or E epochs, then print
    /// N sampled names, one per line (at the link's `temp`, from its `prime`).
    Sample {
        #[arg(long)]
        link: String,
        /// How many names.
        #[arg(long, default_value_t = 20)]
        n: usize,
        /// Optimiser steps first (default: 0 — the initial weights).
        #[arg(long, conflicts_with = "epochs")]
        steps: Option<u64>,
        #[arg(long)]
        epochs: Option<u64>,
    },
    /// Benchmark a workload natively: the training loop alone, timed for a few seconds.
    ///
    /// Workloads: `w1` = a 2-8-8-1 tanh MLP with mini-batches of 10 (items = steps);
    /// `w2` = the MLP 784-128-10 ReLU on MNIST, SGD, mini-batches of 64 (items = training examples);
    /// `w2bn` = the same with batch norm; `w3` = LeNet-5 on MNIST with mini-batches of 64;
    /// `w4` = an RNN (hidden 128) on 10-step sequences of 57 symbols, 18 classes, batches of 32.
    /// The same workload runs in the browser's worker at `?lab=bench&workload=w1` (or w2, w2bn, w3, w4).
    Bench {
        /// The workload name (`w1`, `w2`, `w2bn`, `w3` or `w4`).
        workload: String,
        /// Seconds to run.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Print one JSON object: `workload`, `items_per_s`, `ms_per_step`, `backend`, `steps`.
        #[arg(long)]
        json: bool,
        /// `cpu` (the engine) or `gpu` (wgpu on the first adapter: Vulkan, Metal, DX12; the
        /// GPU executor trains MLPs, so `w2` for now). `backend` in the JSON names the adapter.
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Mini-batch rows instead of the workload's own (w2, w2bn, w3, w4).
        #[arg(long)]
        batch: Option<usize>,
        /// Training threads (default: every core). W2, W3 and W4 split each mini-batch into
        /// micro-shards (16 rows; W4 32 sequences, from 64), at most one thread each (a batch of
        /// 64: 4 threads); the steps are the same bits for any number. `"workers"` says how many ran.
        /// A list (`1,2`) runs each count side by side, a chunk (~50 ms) of steps in turn, for
        /// `--seconds` each: one result per count (a JSON array), and each one's speed over the
        /// first's.
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
    },
    /// Write a run as a self-contained PyTorch script (stdout): the same layers and weights (after
    /// S steps or E epochs here; the initial ones by default), data preparation and
    /// hyper-parameters; `python run.py`, or `torchrun --nproc_per_node=N run.py` (DDP).
    /// Every lab (the RNN lab embeds its sequences).
    Export {
        #[arg(long)]
        link: String,
        /// PyTorch (the only format so far).
        #[arg(long)]
        pytorch: bool,
        #[arg(long, conflicts_with = "epochs")]
        steps: Option<u64>,
        #[arg(long)]
        epochs: Option<u64>,
    },
    /// Train S steps, then print the last mini-batch traced as a chain of vector–Jacobian
    /// products (JSON, the page's backprop view): per layer the shapes, rules, norms of x, y, dy,
    /// dx, dW and example E's numbers. The fit and playground labs.
    Vjp {
        #[arg(long)]
        link: String,
        #[arg(long)]
        steps: u64,
        /// The row of the mini-batch to show.
        #[arg(long, default_value_t = 0)]
        example: usize,
    },
    /// Check a share link: print the normalised link and any notices about its keys.
    Link {
        /// The link to check.
        link: String,
    },
}

fn metrics_json(s: &Snapshot) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for metric in &s.metrics {
        m.insert(metric.name.clone(), json!(metric.value));
    }
    m
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { workload, seconds, json, backend, batch, threads } => {
            let Some(w) = engine::lab::bench::Workload::parse(&workload) else {
                eprintln!("unknown workload \"{workload}\" (the workloads: {})", engine::lab::bench::WORKLOADS);
                std::process::exit(2);
            };
            let mut assets = engine::data::images::Assets::default();
            if let Some(set) = w.needs_images() {
                assets = load_images(set);
            }
            let start = Instant::now();
            let mut clock = || start.elapsed().as_secs_f64() * 1e3;
            if threads.len() > 1 {
                if backend != "cpu" {
                    fail("--threads with a list: the cpu backend only");
                }
                let r = engine::lab::bench::run_interleaved(w, batch, &threads, Some(thread_helpers()), seconds, "cpu-native", &assets, &mut clock)
                    .unwrap_or_else(|e| fail(&e));
                if json {
                    println!("{}", serde_json::to_string(&r).expect("plain data"));
                } else {
                    for x in &r {
                        let thread = if x.workers == 1 { "thread" } else { "threads" };
                        let over = x.items_per_s / r[0].items_per_s;
                        println!("{}: {:.0} items/s on {} {thread} ({over:.2}× the first; {} steps)", x.workload, x.items_per_s, x.workers, x.steps);
                    }
                }
                return;
            }
            let r = match backend.as_str() {
                "cpu" => engine::lab::bench::run_on(w, batch, workers(threads.first().copied()), seconds, "cpu-native", &assets, &mut clock),
                "gpu" => gpu::Gpu::new_blocking().and_then(|g| gpu::bench::run(&g, w, batch, seconds, &assets, &mut clock)),
                other => Err(format!("--backend {other}: cpu or gpu")),
            }
            .unwrap_or_else(|e| fail(&e));
            if json {
                println!("{}", serde_json::to_string(&r).expect("plain data"));
            } else {
                println!(
                    "{}: {:.0} items/s ({:.5} ms per step, {} steps, {}, {} thread{})",
                    r.workload,
                    r.items_per_s,
                    r.ms_per_step,
                    r.steps,
                    r.backend,
                    r.workers,
                    if r.workers == 1 { "" } else { "s" }
                );
            }
        }
        Command::Sample { link, n, steps, epochs } => {
            let parsed = parse_link(&link);
            for notice in &parsed.notices {
                eprintln!("notice [{}]: {}", notice.key, notice.message);
            }
            let assets = load_assets(&parsed.config);
            let mut session = lab::build_with(&parsed.config, &assets).unwrap_or_else(|e| fail(&e));
            let mut calls = 0u64;
            while steps.is_some_and(|s| session.steps() < s) || epochs.is_some_and(|e| session.epochs() < e) {
                session.step(1);
                calls += 1;
                if calls > 100_000_000 {
                    fail("training makes no progress");
                }
            }
            let command = engine::lab::LabCommand::Rnn(engine::lab::rnn::RnnCommand::Sample { n });
            match session.command(command, &mut || 0.0) {
                Ok(Some(engine::lab::LabReply::Rnn(engine::lab::rnn::RnnReply::Samples { names }))) => names.iter().for_each(|name| println!("{name}")),
                Ok(_) => fail("no samples"),
                Err(notice) => fail(&format!("{} (use a link with lab=rnn&task=generate)", notice.message)),
            }
        }
        Command::Export { link, pytorch, steps, epochs } => {
            if !pytorch {
                fail("say the format: --pytorch");
            }
            let parsed = parse_link(&link);
            for notice in &parsed.notices {
                eprintln!("notice [{}]: {}", notice.key, notice.message);
            }
            // Refused before any data loads when the lab has no export.
            engine::export::supported(&parsed.config).unwrap_or_else(|e| fail(&e));
            let assets = load_assets(&parsed.config);
            let mut session = lab::build_with(&parsed.config, &assets).unwrap_or_else(|e| fail(&e));
            while steps.is_some_and(|s| session.steps() < s) || epochs.is_some_and(|e| session.epochs() < e) {
                session.step(1);
            }
            print!("{}", session.pytorch().unwrap_or_else(|e| fail(&e)));
        }
        Command::Vjp { link, steps, example } => {
            let parsed = parse_link(&link);
            for notice in &parsed.notices {
                eprintln!("notice [{}]: {}", notice.key, notice.message);
            }
            let mut session = lab::build_with(&parsed.config, &load_assets(&parsed.config)).unwrap_or_else(|e| fail(&e));
            if let Some(why) = session.cannot_train() {
                fail(&format!("this link can't train: {why}"));
            }
            while session.steps() < steps {
                session.step(1);
            }
            let view = session.trace(example).unwrap_or_else(|e| fail(&e));
            println!("{}", serde_json::to_string(&view).expect("plain data"));
        }
        Command::Link { link } => {
            let parsed = parse_link(&link);
            for n in &parsed.notices {
                eprintln!("notice [{}]: {}", n.key, n.message);
            }
            println!("{}", parsed.config.to_query());
        }
        Command::Train { link, steps, epochs, every, json, threads } => {
            let parsed = parse_link(&link);
            for n in &parsed.notices {
                eprintln!("notice [{}]: {}", n.key, n.message);
            }
            let assets = load_assets(&parsed.config);
            let mut session = lab::build_with(&parsed.config, &assets).unwrap_or_else(|e| fail(&e));
            if let Some(why) = session.cannot_train() {
                fail(&format!("this link can't train: {why}"));
            }
            let (n_threads, make) = workers(threads);
            session.set_workers(n_threads, make.clone());
            let every = every.max(1);
            let start = Instant::now();
            // A fork link (`fork=STEP&branch=KEY:VALUE`) trains run A as the link says, then
            // branch B from A's checkpoint at STEP with its one value changed, to the same step.
            let fork = parsed.fork.clone();
            let mut branch: Option<Box<dyn lab::LabSession>> = None;
            let take_branch = |session: &mut Box<dyn lab::LabSession>, branch: &mut Option<Box<dyn lab::LabSession>>| {
                if let Some(f) = fork.as_ref().filter(|f| branch.is_none() && session.steps() == f.at) {
                    let mut b = session.checkpoint().unwrap_or_else(|e| fail(&format!("fork at step {}: {e}", f.at)));
                    let _ = b.take_records();
                    match b.set(&f.key, &f.value) {
                        Ok(lab::Applied::Live) => *branch = Some(b),
                        Ok(lab::Applied::Reset) => fail(&format!("branch {}: changing it rebuilds the network, a fork keeps it", f.key)),
                        Err(e) => fail(&format!("branch {}: {e}", f.key)),
                    }
                }
            };
            let label = if fork.is_some() { Some("A") } else { None };
            // A report shows the evaluation due at its step: its chunks run first (else each call
            // that runs one would report the same step again, the first with the old figures).
            let settle = |session: &mut Box<dyn lab::LabSession>| {
                let mut calls = 0;
                while session.evaluating() {
                    session.step(1);
                    calls += 1;
                    if calls > 1_000_000 {
                        fail("an evaluation makes no progress");
                    }
                }
            };
            let report = |session: &mut Box<dyn lab::LabSession>, done: bool, label: Option<&str>| {
                let steps_done = session.steps().max(1);
                session.set_timing(start.elapsed().as_secs_f64() * 1e3 / steps_done as f64);
                let s = session.snapshot();
                if json {
                    let mut obj = serde_json::Map::new();
                    if done {
                        obj.insert("final".into(), json!(true));
                    }
                    if let Some(l) = label {
                        obj.insert("branch".into(), json!(l));
                    }
                    obj.insert("step".into(), json!(s.step));
                    obj.insert("epoch".into(), json!(s.epoch));
                    obj.insert("loss".into(), json!(s.loss));
                    obj.insert("train_loss".into(), json!(s.train_loss));
                    obj.insert("test_loss".into(), json!(s.test_loss));
                    obj.extend(metrics_json(&s));
                    if !s.diagnoses.is_empty() {
                        obj.insert("diagnoses".into(), json!(s.diagnoses.iter().map(|d| d.kind).collect::<Vec<_>>()));
                    }
                    if done {
                        obj.insert("ms_per_step".into(), json!(s.ms_per_step));
                        obj.insert("link".into(), json!(session.config().to_query()));
                    }
                    println!("{}", serde_json::Value::Object(obj));
                } else {
                    let extra: String = s.metrics.iter().map(|m| format!("  {} {:.4}", m.name, m.value)).collect();
                    let notes: String = s.diagnoses.iter().map(|d| format!("\n  ! {}", d.message)).collect();
                    println!(
                        "{}{}step {:>7}  epoch {:>4}  loss {:<12}  train {:<12}  test {:<12}{extra}{notes}",
                        label.map_or(String::new(), |l| format!("{l}: ")),
                        if done { "final " } else { "" },
                        s.step,
                        s.epoch,
                        s.loss,
                        s.train_loss,
                        s.test_loss
                    );
                }
            };
            match (steps, epochs) {
                (Some(n), _) => {
                    let mut stalled = 0;
                    take_branch(&mut session, &mut branch);
                    while session.steps() < n {
                        // Chunks end at the fork's step (the numbers don't depend on chunking).
                        let to_fork = fork.as_ref().map_or(u64::MAX, |f| if f.at > session.steps() { f.at - session.steps() } else { u64::MAX });
                        let k = every.min(n - session.steps()).min(to_fork);
                        let before = session.steps();
                        session.step(k);
                        take_branch(&mut session, &mut branch);
                        stalled = if session.steps() == before { stalled + 1 } else { 0 };
                        if stalled > 1000 {
                            fail("training makes no progress (no step was taken in 1,000 calls)");
                        }
                        if session.steps() % every == 0 && session.steps() > 0 && session.steps() < n {
                            settle(&mut session);
                            report(&mut session, false, label);
                        }
                    }
                }
                (None, Some(e)) => {
                    // Step until the epoch counter reaches `e`, reporting every K steps.
                    let (mut last_epoch, mut reported, mut stalled) = (0, 0, 0);
                    take_branch(&mut session, &mut branch);
                    while last_epoch < e {
                        let before = session.steps();
                        session.step(1);
                        take_branch(&mut session, &mut branch);
                        stalled = if session.steps() == before { stalled + 1 } else { 0 };
                        if stalled > 1000 {
                            fail("training makes no progress (no step was taken in 1,000 calls)");
                        }
                        if session.steps() % every == 0 && session.steps() != reported {
                            reported = session.steps();
                            settle(&mut session);
                            report(&mut session, false, label);
                        }
                        last_epoch = epoch_of(&mut session);
                    }
                }
                (None, None) => unreachable!("clap requires --steps or --epochs"),
            }
            session.finish();
            report(&mut session, true, label);
            match (fork, branch) {
                (Some(_), Some(mut b)) => {
                    b.set_workers(n_threads, make.clone());
                    let end = session.steps();
                    while b.steps() < end {
                        let before = b.steps();
                        b.step(every.min(end - b.steps()));
                        if b.steps() == before {
                            fail("branch B makes no progress");
                        }
                        if b.steps() % every == 0 && b.steps() < end {
                            settle(&mut b);
                            report(&mut b, false, Some("B"));
                        }
                    }
                    b.finish();
                    report(&mut b, true, Some("B"));
                }
                (Some(f), None) => eprintln!("notice [fork]: the run ended at step {} before the fork's step {}: no branch B", session.steps(), f.at),
                _ => {}
            }
        }
    }
}

/// `--threads N` (default: every core) and native threads as helpers.
fn workers(threads: Option<usize>) -> (usize, Option<lab::HelperFactory>) {
    // Every core by default, up to the most a run splits over (a 64-core machine trains on 16).
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(engine::parallel::MAX_WORKERS));
    if !(1..=engine::parallel::MAX_WORKERS).contains(&n) {
        fail(&format!("--threads {n}: from 1 to {}", engine::parallel::MAX_WORKERS));
    }
    (n, Some(thread_helpers()))
}

/// Helpers as native threads.
fn thread_helpers() -> lab::HelperFactory {
    std::sync::Arc::new(|model: &engine::sequential::Sequential, count: usize, _: &lab::LabConfig| {
        engine::parallel::ThreadHelpers::new(model, count).map(|h| Box::new(h) as Box<dyn engine::parallel::Helpers>)
    })
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

/// The image data a config trains on, read from `static/data` (run from the repository root;
/// the crate's own checkout is the fallback).
fn load_assets(config: &lab::LabConfig) -> engine::data::images::Assets {
    let mut assets = match lab::needs_images(config) {
        Some(set) => load_images(set),
        None => engine::data::images::Assets::default(),
    };
    if let Some(set) = lab::needs_text(config) {
        match engine::data::names::TextFile::load_dir(set, &data_dir()) {
            Ok(file) => assets.insert_text(file),
            Err(e) => fail(&format!("cannot load {}: {e}", set.label())),
        }
    }
    assets
}

/// `static/data` from the repository root, or the crate's own checkout as the fallback.
fn data_dir() -> std::path::PathBuf {
    let here = std::path::PathBuf::from("static/data");
    if here.is_dir() {
        here
    } else {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data")
    }
}

fn load_images(set: engine::data::images::ImageSet) -> engine::data::images::Assets {
    let mut assets = engine::data::images::Assets::default();
    {
        let here = std::path::PathBuf::from("static/data");
        let dir = if here.is_dir() { here } else { std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data") };
        match engine::data::images::ImagePair::load_dir(set, &dir) {
            Ok(pair) => assets.insert(pair),
            Err(e) => fail(&format!("cannot load {}: {e}", set.label())),
        }
    }
    assets
}

fn epoch_of(session: &mut Box<dyn lab::LabSession>) -> u64 {
    session.epochs()
}
