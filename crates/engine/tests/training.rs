//! Whole-session tests: convergence and determinism.

use engine::lab::fit::{FitConfig, FitLab};
use engine::lab::{parse_link, LabSession, Session};

fn fit_session(c: FitConfig) -> Session<FitLab> {
    Session::new(FitLab::create(c))
}

#[test]
fn tanh_mlp_fits_standardised_sin_within_3000_steps() {
    let parsed = parse_link("lab=fit&hidden=16,16&act=tanh&norm=true&seed=1");
    assert!(parsed.notices.is_empty());
    let mut s = engine::lab::build(&parsed.config);
    let mut best = f32::INFINITY;
    while s.steps() < 3000 {
        s.step(100);
        best = best.min(s.snapshot().train_loss);
        if best < 1e-3 {
            break;
        }
    }
    assert!(best < 1e-3, "train MSE {best} after {} steps", s.steps());
    let snap = s.snapshot();
    assert!(snap.test_loss < 2e-3, "test MSE {}", snap.test_loss);
}

#[test]
fn same_config_gives_identical_loss_sequence() {
    let run = || {
        let mut s = fit_session(FitConfig { seed: 77, bs: 8, ..FitConfig::default() });
        (0..300).map(|_| s.step(1).to_bits()).collect::<Vec<u32>>()
    };
    let a = run();
    assert_eq!(a, run());
    let mut other = fit_session(FitConfig { seed: 78, bs: 8, ..FitConfig::default() });
    let b: Vec<u32> = (0..300).map(|_| other.step(1).to_bits()).collect();
    assert_ne!(a, b, "another seed gives another run");
}

#[test]
fn a_live_learning_rate_change_takes_effect_without_reset() {
    let mut a = fit_session(FitConfig::default());
    let mut b = fit_session(FitConfig::default());
    a.step(50);
    b.step(50);
    b.set("lr", "0.0001").unwrap();
    // The loss of step 51 is measured before its update; step 52 sees the new learning rate.
    a.step(2);
    b.step(2);
    assert_eq!(b.steps(), 52);
    assert_ne!(a.snapshot().loss.to_bits(), b.snapshot().loss.to_bits());
}

/// The default fit link's mini-batch loss at step 200. The web crate's wasm test asserts the
/// same bits, so native and browser builds are held to agree bit for bit.
pub const DEFAULT_FIT_LOSS_AT_200: f64 = 0.03212838992476463;

#[test]
fn default_link_reaches_the_golden_loss_at_step_200() {
    let mut s = engine::lab::build(&parse_link("lab=fit").config);
    assert_eq!(s.step(200).to_bits(), (DEFAULT_FIT_LOSS_AT_200 as f32).to_bits());
}

/// A long run's snapshots stay the same size: histories are bounded (step records thin out as
/// the run grows), so nothing grows with the step count.
#[test]
fn snapshots_stay_bounded_over_a_long_run() {
    for link in ["lab=fit", "lab=playground"] {
        let mut s = engine::lab::build(&parse_link(link).config);
        let mut sizes = Vec::new();
        for _ in 0..30 {
            s.step(1000);
            sizes.push(serde_json::to_string(&s.snapshot()).unwrap().len());
        }
        let early = sizes[4];
        let most = *sizes[5..].iter().max().unwrap();
        assert!(most <= early + early / 10, "{link}: snapshot sizes grew from {early} to {most} bytes: {sizes:?}");
    }
}
