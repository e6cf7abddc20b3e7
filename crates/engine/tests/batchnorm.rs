//! The Batch Norm lab's guarantees and targets on the real MNIST test set (seeded, release mode):
//! the lockstep pair, the BN paper's Figure 1, "BN lets you raise the learning rate", the seed's
//! network after 3 epochs, and the pitfalls (a batch of 1 refused, training-mode evaluation).

use engine::data::images::{Assets, ImagePair, ImageSet};
use engine::lab::batchnorm::{BnCommand, BnConfig, BnLab, BnReply, Net, PRESETS};
use engine::lab::{parse_link, Lab, LabCommand, LabConfig, LabReply, View};
use engine::ops::{BatchNorm, Dense};
use std::path::PathBuf;

fn assets() -> Assets {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST"));
    a
}

fn config(link: &str) -> BnConfig {
    let parsed = parse_link(link);
    assert!(parsed.notices.is_empty(), "{link}: {:?}", parsed.notices);
    parsed.config.get::<BnConfig>().expect("a batchnorm link").clone()
}

fn lab(link: &str) -> BnLab {
    BnLab::new(config(link), &assets()).expect("MNIST loaded")
}

/// Steps until the run's step counter reaches `steps` (evaluations take calls of their own).
fn train_to(lab: &mut BnLab, steps: u64) {
    while lab.trainer().step < steps {
        lab.train(1);
    }
    lab.finish();
}

fn preset(id: &str) -> &'static str {
    PRESETS.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("preset {id}")).link
}

#[test]
fn the_pair_steps_in_lockstep_from_the_same_weights() {
    let mut l = lab("lab=batchnorm&hidden=64,32&eval=1000000");
    let weights = |l: &BnLab, net: Net| l.trainer_of(net).model.layers_of::<Dense>().map(|d| d.w.data().to_vec()).collect::<Vec<_>>();
    assert_eq!(weights(&l, Net::Plain), weights(&l, Net::Bn), "identical initial weights for every shared layer");
    assert_eq!(l.trainer_of(Net::Bn).model.layers_of::<BatchNorm>().count(), 2);
    l.train(1); // the evaluation of the initial weights
    for _ in 0..1200 {
        l.train(1);
        assert_eq!(l.trainer_of(Net::Plain).last_batch, l.trainer_of(Net::Bn).last_batch, "the same mini-batch at step {}", l.trainer().step);
    }
    // Past an epoch boundary (937.5 batches of 64), and the nets did learn different weights.
    assert!(l.trainer().epoch >= 1);
    assert_ne!(weights(&l, Net::Plain), weights(&l, Net::Bn));
}

#[test]
fn figure_1_bn_is_ahead_at_500_1000_and_2000_steps_and_its_inputs_move_less() {
    let mut l = lab(preset("figure1"));
    for (steps, margin) in [(500, 0.2), (1000, 0.05), (2000, 0.02)] {
        train_to(&mut l, steps);
        let e = l.last_eval().expect("evaluated");
        assert_eq!(e.step, steps);
        eprintln!("step {steps}: plain {:.4} bn {:.4}", e.accuracy[0], e.accuracy[1]);
        assert!(e.accuracy[1] > e.accuracy[0] + margin, "step {steps}: BN {} vs plain {}", e.accuracy[1], e.accuracy[0]);
    }
    // The measure: per net, the mean over the 15th/50th/85th percentile of how far it moved
    // (largest − smallest over the evaluations every 100 steps after step 0), divided by the
    // final 15–85 spread. Measured: plain ≈ 0.42, BN ≈ 0.09.
    let drift = l.report().view.drift;
    eprintln!("percentile drift {drift:?}");
    assert!(drift[1] < 0.5 * drift[0], "the BN net's sigmoid inputs move less: {drift:?}");
}

#[test]
fn at_ten_times_the_learning_rate_the_plain_net_fails_and_the_bn_net_passes_95_percent_in_one_epoch() {
    let mut l = lab(preset("high-lr"));
    while l.trainer().epoch < 1 {
        l.train(1);
    }
    l.finish();
    let e = l.last_eval().unwrap().clone();
    eprintln!("1 epoch at lr 1: plain {:.4} bn {:.4} — {:?}", e.accuracy[0], e.accuracy[1], l.plain_failure());
    assert!(e.accuracy[1] >= 0.95, "BN after 1 epoch: {}", e.accuracy[1]);
    assert!(e.accuracy[0].is_nan() || e.accuracy[0] < 0.8, "plain after 1 epoch: {}", e.accuracy[0]);
    let why = l.plain_failure().expect("the plain net's failure is reported").to_string();
    // The run pauses once, saying why, and trains on after that.
    let mut session = engine::lab::Session::new(lab(preset("high-lr")));
    let mut reason = None;
    while session.lab.trainer().step < 1000 && reason.is_none() {
        engine::lab::LabSession::step(&mut session, 1);
        reason = engine::lab::LabSession::stop_reason(&mut session);
    }
    let reason = reason.expect("a pause");
    assert!(reason.contains("plain net") && reason.contains("BN net trains on"), "{reason} / {why}");
    assert!(engine::lab::LabSession::stop_reason(&mut session).is_none(), "once");
    let snap = engine::lab::LabSession::snapshot(&mut session);
    assert!(snap.diagnoses.iter().any(|d| d.message.contains("plain net") && d.fix.is_some()), "{:?}", snap.diagnoses);
}

#[test]
fn the_seeds_network_passes_the_seeds_figures_after_3_epochs() {
    let mut l = lab(preset("seed"));
    while l.trainer().epoch < 3 {
        l.train(1);
    }
    l.finish();
    let e = l.last_eval().unwrap();
    eprintln!("3 epochs: plain {:.4} bn {:.4}", e.accuracy[0], e.accuracy[1]);
    assert!(e.accuracy[1] >= 0.9658 && e.accuracy[0] >= 0.9526, "BN {} plain {}", e.accuracy[1], e.accuracy[0]);
}

#[test]
fn tiny_batches_and_training_mode_evaluation_are_the_pitfalls() {
    // A batch of one is refused with a message naming the key (in a link, and as a change).
    let parsed = parse_link("lab=batchnorm&bs=1");
    assert!(parsed.notices.iter().any(|n| n.key == "bs" && n.message.contains("at least 2")), "{:?}", parsed.notices);
    assert_eq!(parsed.config.get::<BnConfig>().unwrap().bs, 64, "the safe default stays");
    let config = LabConfig::from(config("lab=batchnorm"));
    assert!(config.with_value("bs", "1").unwrap_err().message.contains("at least 2"));
    // Batches of 2: the training-mode accuracy (each test pair normalised by itself) is far
    // below the evaluation-mode accuracy.
    let mut l = lab(preset("tiny-batch"));
    train_to(&mut l, 3000);
    let e = l.last_eval().unwrap().clone();
    eprintln!("bs 2: eval mode {:.4}, train mode {:.4}, plain {:.4}", e.accuracy[1], e.bn_train_mode_accuracy, e.accuracy[0]);
    assert!(e.bn_train_mode_accuracy < e.accuracy[1] - 0.1, "{e:?}");
    assert_eq!(l.config().mode, engine::lab::batchnorm::ShownMode::Train, "the preset shows training mode");
    let mut metric = |name: &str| l.report().metrics.iter().find(|m| m.name == name).unwrap().value;
    assert_eq!((metric("bn_test_accuracy"), metric("bn_test_accuracy_train_mode")), (e.accuracy[1], e.bn_train_mode_accuracy));
}

#[test]
fn calibrate_recomputes_the_running_statistics_and_evaluates_again() {
    let mut l = lab("lab=batchnorm&bs=2&eval=1000000");
    train_to(&mut l, 500);
    let before = l.last_eval().unwrap().accuracy[1];
    let reply = l.command(BnCommand::Calibrate, &mut || 0.0).unwrap().unwrap();
    let BnReply::Calibrated { images, message } = reply;
    assert_eq!(images, 60_000, "{message}");
    let after = l.last_eval().unwrap().accuracy[1];
    eprintln!("bs 2 after 500 steps: {before:.4} → calibrated {after:.4}");
    let bn = l.trainer_of(Net::Bn).model.layers_of::<BatchNorm>().next().unwrap();
    assert!(bn.running_var.data().iter().all(|v| v.is_finite() && *v > 0.0));
    // The command travels through the registry like any lab's.
    let mut s = engine::lab::build_with(&parse_link("lab=batchnorm&hidden=16").config, &assets()).unwrap();
    s.step(3);
    let r = s.command(LabCommand::Batchnorm(BnCommand::Calibrate), &mut || 0.0).unwrap();
    assert!(matches!(r, Some(LabReply::Batchnorm(BnReply::Calibrated { .. }))));
    assert!(matches!(s.snapshot().view, View::Batchnorm(v) if v.calibrated.is_some()));
}

#[test]
fn freezing_gamma_and_beta_keeps_the_run_and_stops_them_learning() {
    let mut s = engine::lab::build_with(&parse_link("lab=batchnorm&hidden=32&eval=1000000").config, &assets()).unwrap();
    // The first calls evaluate the initial weights (a chunk of the test set each).
    while s.steps() < 50 {
        s.step(1);
    }
    let before = s.steps();
    assert_eq!(s.set("freeze", "true").unwrap(), engine::lab::Applied::Live, "the weights are kept");
    s.step(20);
    assert!(s.steps() > before, "training goes on from where it was");
    let View::Batchnorm(v) = s.snapshot().view else { panic!("a batchnorm view") };
    let stats = &v.bn_stats[0];
    assert!(stats.gamma.iter().all(|&g| g != 1.0), "γ learned before freezing and keeps that value: {:?}", &stats.gamma[..4]);
    let frozen = stats.gamma.clone();
    s.step(20);
    let View::Batchnorm(v) = s.snapshot().view else { panic!() };
    assert_eq!(v.bn_stats[0].gamma, frozen, "γ no longer moves");
    // Frozen from the start: γ = 1 and β = 0 throughout.
    let mut l = lab("lab=batchnorm&hidden=32&freeze=true&eval=1000000");
    train_to(&mut l, 30);
    let bn = l.trainer_of(Net::Bn).model.layers_of::<BatchNorm>().next().unwrap();
    assert!(bn.gamma.data().iter().all(|&g| g == 1.0) && bn.beta.data().iter().all(|&b| b == 0.0));
}
