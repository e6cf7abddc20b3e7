//! `deeply train` on a fork link trains run A as the link says and then branch B from A's
//! checkpoint with its one value changed: A equals the link without the fork, B equals the engine
//! run that changed the value at the fork's step — bit for bit. And a report is one line per step.

use engine::lab::{build, parse_link, Applied};
use std::process::Command;

fn lines(link: &str, steps: u64, every: u64) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_deeply"))
        .args(["train", "--link", link, "--steps", &steps.to_string(), "--every", &every.to_string(), "--json"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("the CLI runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn final_lines(link: &str, steps: u64) -> Vec<serde_json::Value> {
    lines(link, steps, 25).into_iter().filter(|v| v["final"] == true).collect()
}

fn bits(v: &serde_json::Value) -> u32 {
    (v["loss"].as_f64().unwrap() as f32).to_bits()
}

#[test]
fn a_fork_link_trains_both_branches() {
    let plain = "lab=fit&hidden=8,8&lr=0.02&bs=16";
    let finals = final_lines(&format!("{plain}&fork=60&branch=lr:0.2"), 150);
    assert_eq!(finals.len(), 2, "one final line per branch: {finals:?}");
    assert_eq!((finals[0]["branch"].as_str(), finals[1]["branch"].as_str()), (Some("A"), Some("B")));
    assert_eq!((finals[0]["step"].as_u64(), finals[1]["step"].as_u64()), (Some(150), Some(150)));
    assert!(finals[1]["link"].as_str().unwrap().contains("lr=0.2"), "B's link carries its value");

    let a = &final_lines(plain, 150)[0];
    assert_eq!(bits(&finals[0]), bits(a), "A is the link without its fork");

    let mut b = build(&parse_link(plain).config);
    b.step(60);
    assert_eq!(b.set("lr", "0.2").unwrap(), Applied::Live);
    b.step(90);
    assert_eq!(bits(&finals[1]), b.last_loss().to_bits(), "B changed lr at step 60");
    assert_ne!(bits(&finals[0]), bits(&finals[1]));
}

#[test]
fn each_report_is_one_line_with_the_evaluation_due_at_its_step() {
    // The CNN lab evaluates its 10,000 test images in chunks, one per call: the CLI finishes them
    // before it reports (it once printed a step once per chunk, the first with the old figures).
    let out = lines("lab=cnn&eval=50&race=false", 150, 50);
    let steps: Vec<u64> = out.iter().map(|v| v["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [50, 100, 150], "{out:?}");
    let accuracy: Vec<f64> = out.iter().map(|v| v["test_accuracy"].as_f64().unwrap()).collect();
    assert!(accuracy[0] != accuracy[1] && accuracy[1] != accuracy[2], "a fresh evaluation on every line: {accuracy:?}");
    // The Batch Norm lab evaluates its initial weights before its first step: not a report line.
    let out = lines("lab=batchnorm&hidden=32&eval=50", 100, 50);
    assert_eq!(out.iter().map(|v| v["step"].as_u64().unwrap()).collect::<Vec<_>>(), [50, 100], "{out:?}");
}
