//! Every config a link can reach runs within the compute budget: random walks towards big
//! values (wide and deep layers, many points, big batches) through the same checks as links and
//! controls, then each accepted config is built, stepped, snapshotted (and, for the CNN, raced),
//! timed natively on this thread's CPU clock (a loaded CI machine does not inflate it). Native
//! code is ~2× faster than our wasm, so the limits here are the budget's 50 ms step / 100 ms
//! snapshot with room for a slow CI machine.

use engine::data::images::{Assets, ImagePair, ImageSet};
use engine::lab::cnn::CnnCommand;
use engine::lab::{parse_link, LabCommand, LabConfig, LABS};
use engine::rng::Rng;
use std::path::PathBuf;

mod cpu_time;
use cpu_time::CpuClock;

const BIG: &[&str] = &[
    "1024", "1024,1024,1024", "512,512,512,512,512,512,512,512,512,512", "10000", "5000", "2000", "1000", "64,64,64,64", "64,64", "32,32,32,32,32,32,32,32",
    "9", "9,9,9,9", "4", "4,4,4,4", "0", "0,0,0,0", "1", "7", "1024,1024", "2", "8", "relu", "tanh", "sgd", "adam", "mlp", "poly", "lenet5", "small",
    "true", "false", "0.5", "spiral3", "reg-gauss", "fashion", "mnist", "naive", "im2col",
];

fn assets() -> Assets {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST"));
    a.insert_text(engine::data::names::TextFile::load_dir(engine::data::names::TextSet::Names, &dir).expect("static/data ships the names"));
    a
}

fn big_config(lab: &str, rng: &mut Rng) -> LabConfig {
    let mut config = parse_link(&format!("lab={lab}&data=mnist")).config;
    let keys: Vec<String> = config.pairs().into_iter().map(|(k, _)| k).filter(|k| k != "data").collect();
    for _ in 0..rng.below(60) {
        let key = &keys[rng.below(keys.len())];
        if let Ok(next) = config.with_value(key, BIG[rng.below(BIG.len())]) {
            config = next;
        }
    }
    config
}

fn ms_since(t: CpuClock) -> f64 {
    t.ms()
}

/// The slowest call of one build → first steps → snapshot (→ race) of `config`, in ms, and
/// whether it got to train (or said why not) within 100 calls.
struct Timing {
    step: f64,
    snapshot: f64,
    race: f64,
    started: bool,
}

fn time_config(config: &LabConfig, assets: &Assets) -> Timing {
    let mut s = config.build(assets).expect("builds");
    // The first step sizes the buffers; the BN lab first evaluates its initial weights, one
    // budget-sized chunk of the test set per call, so a wide net takes many calls to get there.
    // Every call is held to the step budget.
    let mut step = 0.0f64;
    for _ in 0..100 {
        let t = CpuClock::now();
        s.step(1);
        step = step.max(ms_since(t));
        if s.steps() >= 1 || s.cannot_train().is_some() {
            break;
        }
    }
    let t = CpuClock::now();
    s.step(1);
    step = step.max(ms_since(t));
    let t = CpuClock::now();
    let snap = s.snapshot();
    let snapshot = ms_since(t);
    let started = snap.step >= 1 || s.cannot_train().is_some();
    let mut race = 0.0;
    if config.lab() == "cnn" {
        let t = CpuClock::now();
        s.command(LabCommand::Cnn(CnnCommand::Race), &mut || 0.0).expect("a race");
        race = ms_since(t);
    }
    Timing { step, snapshot, race, started }
}

/// Big reachable configs of `lab` build, step, snapshot (and, for the CNN, race) within the
/// budget. One test per lab, so the test harness runs them side by side. A config over a limit
/// is timed twice more and judged by its best run: a config that is over budget is slow every
/// time, while another test or process taking the core is not.
fn reachable_configs_step_and_snapshot_within_the_budget(lab: &str, seed: u64) {
    const STEP_MS: f64 = 150.0;
    const SNAPSHOT_MS: f64 = 250.0;
    const RACE_MS: f64 = 1500.0;
    let assets = assets();
    let mut rng = Rng::new(seed);
    let (mut tried, mut started, mut retimed) = (0, 0, 0);
    let (mut worst_step, mut worst_snapshot, mut worst_race) = (0.0f64, 0.0f64, 0.0f64);
    let mut worst_link = String::new();
    // The Batch Norm lab's wide pairs evaluate their initial weights in many chunks first: its
    // 100 configs are two tests of 50, so the harness's two threads share them.
    let runs = match lab {
        "cnn" => 40,
        "batchnorm" => 50,
        _ => 150,
    };
    for _ in 0..runs {
        let config = big_config(lab, &mut rng);
        let mut t = time_config(&config, &assets);
        for _ in 0..2 {
            if t.step < STEP_MS && t.snapshot < SNAPSHOT_MS && t.race < RACE_MS {
                break;
            }
            retimed += 1;
            let again = time_config(&config, &assets);
            t = Timing { step: t.step.min(again.step), snapshot: t.snapshot.min(again.snapshot), race: t.race.min(again.race), started: t.started };
        }
        let link = config.to_query();
        assert!(t.step < STEP_MS, "{:.0} ms for one step of {link} (best of 3 timings)", t.step);
        assert!(t.snapshot < SNAPSHOT_MS, "{:.0} ms for a snapshot of {link} (best of 3 timings)", t.snapshot);
        assert!(t.race < RACE_MS, "{:.0} ms for a race of {link} (best of 3 timings)", t.race);
        if t.snapshot > worst_snapshot {
            worst_link = link;
        }
        (worst_step, worst_snapshot, worst_race) = (worst_step.max(t.step), worst_snapshot.max(t.snapshot), worst_race.max(t.race));
        started += t.started as usize;
        tried += 1;
    }
    assert!(started * 10 >= tried * 9, "only {started} of {tried} configs got to train (or said why not) within 100 calls");
    println!(
        "{lab}: {tried} configs ({started} training, {retimed} retimed): worst step {worst_step:.1} ms, worst snapshot {worst_snapshot:.1} ms ({worst_link}), worst race {worst_race:.1} ms"
    );
}

#[test]
fn every_lab_is_fuzzed() {
    assert_eq!(LABS, ["fit", "playground", "cnn", "batchnorm", "rnn"], "a new lab needs its budget test below");
}

#[test]
fn reachable_fit_configs_step_and_snapshot_within_the_budget() {
    reachable_configs_step_and_snapshot_within_the_budget("fit", 99);
}

#[test]
fn reachable_playground_configs_step_and_snapshot_within_the_budget() {
    reachable_configs_step_and_snapshot_within_the_budget("playground", 100);
}

#[test]
fn reachable_cnn_configs_step_snapshot_and_race_within_the_budget() {
    reachable_configs_step_and_snapshot_within_the_budget("cnn", 101);
}

#[test]
fn reachable_batchnorm_configs_step_and_snapshot_within_the_budget() {
    reachable_configs_step_and_snapshot_within_the_budget("batchnorm", 102);
}

#[test]
fn reachable_batchnorm_configs_step_and_snapshot_within_the_budget_more_seeds() {
    reachable_configs_step_and_snapshot_within_the_budget("batchnorm", 104);
}

#[test]
fn reachable_rnn_configs_step_and_snapshot_within_the_budget() {
    reachable_configs_step_and_snapshot_within_the_budget("rnn", 103);
}
