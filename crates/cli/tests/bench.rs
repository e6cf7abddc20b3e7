//! `deeply bench` with a list of thread counts runs them side by side (a chunk of steps each in
//! turn) and prints one result per count; a count out of range is refused with its reason.

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deeply"))
        .arg("bench")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("the CLI runs")
}

#[test]
fn a_list_of_thread_counts_runs_side_by_side_with_one_result_each() {
    let out = bench(&["w2", "--threads", "2,1", "--seconds", "0.1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let workers: Vec<u64> = r.as_array().unwrap().iter().map(|x| x["workers"].as_u64().unwrap()).collect();
    assert_eq!(workers, [2, 1], "{r}");
    assert!(r.as_array().unwrap().iter().all(|x| x["workload"] == "w2" && x["items_per_s"].as_f64().unwrap() > 0.0), "{r}");

    let text = bench(&["w2", "--threads", "1,2", "--seconds", "0.1"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("on 1 thread (1.00× the first") && text.contains("on 2 threads ("), "{text}");

    for bad in ["0,2", "1,17"] {
        let out = bench(&["w2", "--threads", bad, "--seconds", "0.1"]);
        assert!(!out.status.success(), "--threads {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("workers: from 1 to 16"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
