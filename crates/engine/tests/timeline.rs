//! Time travel: going back to a checkpoint and continuing reproduces the run bit for bit in every
//! lab; a fork trains on the same batches and differs by its value alone; the ring stays within
//! its bounds; fork links are read and bad ones refused with a message.

use engine::data::images::{Assets, ImagePair, ImageSet};
use engine::data::names::{TextFile, TextSet};
use engine::lab::timeline::{ForkSpec, Timeline, MAX_BYTES, MAX_CHECKPOINTS};
use engine::lab::{build_with, parse_link, LabSession};
use std::path::PathBuf;

fn assets() -> Assets {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST"));
    a.insert_text(TextFile::load_dir(TextSet::Names, &dir).expect("static/data ships the names"));
    a
}

/// Trains to `to` the way the page's worker does (chunks cut where the timeline needs to look),
/// returning the bits of every step's loss and of the final weights.
fn run_to(s: &mut dyn LabSession, t: &mut Timeline, to: u64, chunk: u64) -> (Vec<(u64, u32)>, String) {
    let mut losses = Vec::new();
    while s.steps() < to {
        let before = s.steps();
        let k = chunk.min(t.room(before)).min(to - before);
        if k == 1 || chunk == 1 {
            s.step(1);
        } else {
            s.step(k);
        }
        if s.steps() > before {
            losses.push((s.steps(), s.last_loss().to_bits()));
        }
        t.advance(s).unwrap();
    }
    (losses, s.export_run().unwrap())
}

fn spec(at: u64, key: &str, value: &str) -> ForkSpec {
    ForkSpec { at, key: key.into(), value: value.into() }
}

#[test]
fn going_back_and_continuing_repeats_the_run_bit_for_bit_in_every_lab() {
    let a = assets();
    let links = [
        "lab=fit&lr=0.05&seed=3&opt=adam",
        "lab=playground&seed=4&dropout=0.2",
        "lab=cnn&model=small&seed=5&bs=16&opt=momentum",
        "lab=batchnorm&seed=6&bs=16",
        "lab=rnn&seed=7&bs=8",
    ];
    for link in links {
        let mut s = build_with(&parse_link(link).config, &a).unwrap();
        let mut t = Timeline::new(s.as_mut(), None);
        let (first, weights) = run_to(s.as_mut(), &mut t, 120, 1);
        let kept = t.view().checkpoints;
        assert!(kept.len() >= 3 && kept[0] == 0, "{link}: checkpoints {kept:?}");
        let back = kept[kept.len() / 2];
        let mut again = t.rewind(back).unwrap();
        assert_eq!(again.steps(), back, "{link}");
        assert!(t.view().checkpoints.iter().all(|&c| c <= back), "{link}: later checkpoints are dropped");
        let (second, weights_again) = run_to(again.as_mut(), &mut t, 120, 1);
        let tail: Vec<_> = first.iter().filter(|(step, _)| *step > back).cloned().collect();
        assert_eq!(second, tail, "{link}: the continuation from step {back} repeats every loss bit for bit");
        assert_eq!(weights_again, weights, "{link}: and ends on the same weights");
    }
}

#[test]
fn chunks_of_any_size_give_the_same_run_and_checkpoints() {
    let link = "lab=fit&seed=11&bs=8";
    let a = Assets::default();
    let mut one = build_with(&parse_link(link).config, &a).unwrap();
    let mut t1 = Timeline::new(one.as_mut(), None);
    let mut many = build_with(&parse_link(link).config, &a).unwrap();
    let mut t2 = Timeline::new(many.as_mut(), None);
    let (_, w1) = run_to(one.as_mut(), &mut t1, 400, 1);
    let (_, w2) = run_to(many.as_mut(), &mut t2, 400, 37);
    assert_eq!(w1, w2);
    assert_eq!(t1.view().checkpoints, t2.view().checkpoints, "checkpoints land on the same steps");
}

#[test]
fn a_fork_trains_on_the_same_batches_and_differs_by_its_value_alone() {
    let link = "lab=playground&seed=9&lr=0.03";
    let a = Assets::default();
    let mut s = build_with(&parse_link(link).config, &a).unwrap();
    let mut t = Timeline::new(s.as_mut(), None);
    run_to(s.as_mut(), &mut t, 100, 10);
    let at = t.view().checkpoints[2];

    // The same value: branch B is A, step for step.
    let mut a_run = t.fork(spec(at, "lr", "0.03")).unwrap();
    run_to(a_run.as_mut(), &mut t, 200, 10);
    let v = t.view();
    let b = v.branch.expect("a branch trains beside the run");
    assert_eq!((b.step, b.loss.to_bits()), (200, a_run.last_loss().to_bits()), "an unchanged fork is the run itself");

    // Another learning rate: B = the run with lr set to 0.3 at the fork's step.
    let mut a_run = t.fork(spec(at, "lr", "0.3")).unwrap();
    assert!(a_run.config().to_query().contains("lr=0.03"), "A keeps its value");
    let (a_losses, _) = run_to(a_run.as_mut(), &mut t, 200, 10);
    let mut b_losses = t.view().branch.unwrap().records;
    let mut reference = build_with(&parse_link(link).config, &a).unwrap();
    while reference.steps() < at {
        reference.step(1);
    }
    reference.set("lr", "0.3").unwrap();
    let _ = reference.take_records();
    while reference.steps() < 200 {
        reference.step(1);
    }
    let expected: Vec<(u64, f32)> = reference.take_records().iter().map(|r| (r.step, r.loss)).collect();
    b_losses.retain(|(step, _)| *step > at);
    assert!(!b_losses.is_empty());
    assert_eq!(
        b_losses.iter().map(|(s, l)| (*s, l.to_bits())).collect::<Vec<_>>(),
        expected.iter().filter(|(s, _)| *s > at).map(|(s, l)| (*s, l.to_bits())).collect::<Vec<_>>()
    );
    assert_ne!(a_losses.last().unwrap().1, reference.last_loss().to_bits(), "the branches differ");

    // Keeping B makes it the run, with the checkpoints up to the fork.
    let kept = t.keep_branch().expect("a branch");
    assert!(kept.config().to_query().contains("lr=0.3"));
    assert!(t.view().checkpoints.iter().all(|&c| c <= at) && t.view().branch.is_none());
}

#[test]
fn a_link_forks_when_the_run_reaches_its_step() {
    let p = parse_link("lab=fit&seed=2&fork=60&branch=lr:0.2");
    assert!(p.notices.is_empty(), "{:?}", p.notices);
    let fork = p.fork.clone().expect("the link's fork");
    assert_eq!(fork, spec(60, "lr", "0.2"));
    let mut s = build_with(&p.config, &Assets::default()).unwrap();
    let mut t = Timeline::new(s.as_mut(), p.fork);
    assert_eq!(t.room(0), 25, "the first checkpoint is due first");
    run_to(s.as_mut(), &mut t, 100, 1000);
    let v = t.view();
    assert!(v.checkpoints.contains(&60), "a checkpoint where it forked: {:?}", v.checkpoints);
    let b = v.branch.expect("forked at step 60");
    assert_eq!((b.spec.at, b.step), (60, 100));
    assert!(v.pending.is_none());
}

#[test]
fn bad_fork_links_are_refused_with_a_message_and_the_config_kept() {
    for (link, key, words) in [
        ("lab=fit&fork=50", "branch", "needs branch="),
        ("lab=fit&branch=lr:0.1", "fork", "needs fork="),
        ("lab=fit&fork=abc&branch=lr:0.1", "fork", "not a step"),
        ("lab=fit&fork=0&branch=lr:0.1", "fork", "not a step"),
        ("lab=fit&fork=1e99&branch=lr:0.1", "fork", "not a step"),
        ("lab=fit&fork=50&branch=lr", "branch", "KEY:VALUE"),
        ("lab=fit&fork=50&branch=hidden:3", "branch", "keeps the network"),
        ("lab=fit&fork=50&branch=lr:NaN", "branch", "lr"),
        ("lab=fit&fork=50&branch=lr:-1", "branch", "lr"),
        ("lab=fit&fork=50&branch=nokey:1", "branch", "keeps the network"),
    ] {
        let p = parse_link(&format!("{link}&lr=0.02"));
        assert!(p.fork.is_none(), "{link}");
        let n = p.notices.iter().find(|n| n.key == key).unwrap_or_else(|| panic!("{link}: a notice on {key}: {:?}", p.notices));
        assert!(n.message.contains(words), "{link}: {}", n.message);
        assert!(p.config.to_query().contains("lr=0.02"), "{link}: the rest of the link is kept");
    }
}

#[test]
fn the_ring_keeps_its_bounds_and_spreads_over_a_long_run() {
    let a = Assets::default();
    let mut s = build_with(&parse_link("lab=fit&seed=1&bs=4").config, &a).unwrap();
    let mut t = Timeline::new(s.as_mut(), None);
    let mut held = Vec::new();
    for to in (500..=20_000).step_by(500) {
        run_to(s.as_mut(), &mut t, to, 500);
        held.push((t.held_bytes(), t.view().bytes as usize));
    }
    let v = t.view();
    // Thinned checkpoints wait as spares and go one by one as new ones are made: what the ring
    // and the spares hold together never passes what a full ring holds, one more checkpoint
    // (the one that made it thin) and some slack (step 0's checkpoint is smaller than the others).
    let each = (v.bytes / v.checkpoints.len() as u64) as usize;
    assert!(held.iter().all(|&(h, _)| h <= (MAX_CHECKPOINTS + 2) * each), "held {held:?}, {each} bytes each");
    assert!(held.iter().any(|&(h, ring)| h > ring), "spares are kept after a thinning: {held:?}");
    assert!(v.checkpoints.len() <= MAX_CHECKPOINTS && v.checkpoints.len() >= MAX_CHECKPOINTS / 2, "{:?}", v.checkpoints);
    assert!(v.bytes <= MAX_BYTES as u64 && v.bytes > 0);
    assert_eq!(v.checkpoints[0], 0);
    let gaps: Vec<u64> = v.checkpoints.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| g == gaps[0]), "evenly spread: {gaps:?}");
    assert!(*v.checkpoints.last().unwrap() > 20_000 - 2 * gaps[0], "up to the end: {:?}", v.checkpoints);
}

#[test]
fn an_unknown_checkpoint_is_refused_and_nothing_changes() {
    let a = Assets::default();
    let mut s = build_with(&parse_link("lab=fit").config, &a).unwrap();
    let mut t = Timeline::new(s.as_mut(), None);
    run_to(s.as_mut(), &mut t, 80, 10);
    let before = t.view().checkpoints;
    let err = t.rewind(13).err().unwrap();
    assert!(err.contains("no checkpoint at step 13"), "{err}");
    let err = t.fork(spec(25, "hidden", "4")).err().unwrap();
    assert!(err.contains("keeps the network"), "{err}");
    assert_eq!(t.view().checkpoints, before);
}
