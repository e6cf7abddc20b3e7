//! Export → import round-trips a run in every lab: the same link, counters and weights (both
//! networks of the Batch Norm lab); a file that doesn't fit is refused with a message.

use engine::data::images::{Assets, ImagePair, ImageSet};
use engine::data::names::{TextFile, TextSet};
use engine::lab::saved::{self, SavedRun};
use engine::lab::{build_with, parse_link, LabSession};
use std::path::PathBuf;

fn assets() -> Assets {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let mut a = Assets::default();
    a.insert(ImagePair::load_dir(ImageSet::Mnist, &dir).expect("static/data ships MNIST"));
    a.insert_text(TextFile::load_dir(TextSet::Names, &dir).expect("static/data ships the names"));
    a
}

fn trained(link: &str, steps: u64, a: &Assets) -> Box<dyn LabSession> {
    let mut s = build_with(&parse_link(link).config, a).unwrap();
    while s.steps() < steps {
        s.step(1);
    }
    s
}

#[test]
fn every_lab_round_trips_its_link_counters_and_weights() {
    let a = assets();
    for link in ["lab=fit&lr=0.05&seed=3", "lab=playground&seed=4", "lab=cnn&model=small&seed=5", "lab=batchnorm&seed=6", "lab=rnn&seed=7"] {
        let mut s = trained(link, 25, &a);
        let json = s.export_run().unwrap();
        let run = SavedRun::parse(&json).unwrap();
        assert_eq!(run.networks.len(), if link.contains("batchnorm") { 2 } else { 1 }, "{link}");
        let mut opened = saved::open(&json, &a).unwrap();
        assert_eq!(opened.config().to_query(), s.config().to_query(), "{link}");
        assert_eq!((opened.steps(), opened.epochs()), (s.steps(), s.epochs()), "{link}");
        assert_eq!(opened.export_run().unwrap(), json, "{link}: the same weights, bit for bit");
        let before = opened.steps();
        assert!(!opened.diverged(), "{link}: an opened run has no loss yet, and is not diverged");
        // (A call may evaluate instead of stepping: a few calls take a step.)
        for _ in 0..50 {
            if opened.steps() > before {
                break;
            }
            opened.step(1);
        }
        assert!(!opened.diverged(), "{link}: an opened run is not diverged before its first step");
        assert!(opened.steps() > before && !opened.diverged(), "{link}: the opened run trains on");
    }
}

#[test]
fn a_file_that_does_not_fit_is_refused_with_a_message() {
    let a = assets();
    let mut s = trained("lab=fit&seed=3", 5, &a);
    let json = s.export_run().unwrap();
    let refused = |text: &str| saved::open(text, &a).err().expect("refused");
    assert!(refused("{}").contains("not a Deeply run"));
    assert!(refused(&json.replace("deeply-run-1", "deeply-run-9")).contains("format"));
    assert!(refused(&json.replacen("\"step\":5", "\"step\":99999999999999999", 1)).contains("counters"));
    assert!(refused(&json.replacen("lab=fit", "lab=fit&lr=banana", 1)).contains("link"));
    let mut run = SavedRun::parse(&json).unwrap();
    run.networks[0].parameters[0].pop();
    assert!(refused(&serde_json::to_string(&run).unwrap()).contains("do not fit"));
    let mut two = SavedRun::parse(&json).unwrap();
    two.networks.push(two.networks[0].clone());
    assert!(refused(&serde_json::to_string(&two).unwrap()).contains("networks"));
    let nan = json.replacen("[", "[null,", 3);
    assert!(saved::open(&nan, &a).is_err());
    // Another lab's run is refused by a session of this lab.
    let mut cnn = build_with(&parse_link("lab=cnn").config, &a).unwrap();
    assert!(cnn.restore(&SavedRun::parse(&json).unwrap()).unwrap_err().contains("fit run"));
    assert!(refused(&"x".repeat(saved::MAX_BYTES + 1)).contains("larger"));
}
