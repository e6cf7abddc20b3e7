//! The PyTorch export: the script compiles (`python3 -m py_compile`), and the layers, shapes,
//! hyper-parameters and distributed entry point it declares match the config.

use engine::export::pytorch;
use engine::lab::batchnorm::{BnConfig, Net};
use engine::lab::cnn::CnnConfig;
use engine::lab::parse_link;
use engine::rng::Rng;
use serde_json::Value;
use std::process::Command;

/// The JSON literal assigned to `name` in the script.
fn declared(script: &str, name: &str) -> Value {
    let open = format!("{name} = json.loads(r'''");
    let start = script.find(&open).unwrap_or_else(|| panic!("{name} is declared")) + open.len();
    let end = start + script[start..].find("''')").expect("closed");
    serde_json::from_str(&script[start..end]).expect("valid JSON")
}

fn compiles(script: &str, name: &str) {
    let dir = std::env::temp_dir().join(format!("deeply-export-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.py");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("python3").args(["-m", "py_compile"]).arg(&path).output().expect("python3 runs (Debian's, or any 3.x)");
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lenet5_exports_a_script_that_compiles_and_declares_its_layers_and_hyper_parameters() {
    let link = "lab=cnn&model=lenet5&opt=momentum&lr=0.05&mom=0.8&l2=0.0005&bs=128&epochs=4&data=fashion";
    let config = parse_link(link).config;
    let c = config.get::<CnnConfig>().unwrap();
    let model = c.build_model(&mut Rng::fork(c.seed, 1));
    let script = pytorch(&config, &model).unwrap();
    compiles(&script, "lenet5");
    let hyper = declared(&script, "HYPER");
    assert_eq!(hyper["optimizer"], "momentum");
    assert_eq!((hyper["lr"].as_f64(), hyper["momentum"].as_f64(), hyper["l2"].as_f64()), (Some(0.05), Some(0.8), Some(0.0005)), "as typed");
    assert_eq!((hyper["batch_size"].as_u64(), hyper["epochs"].as_u64()), (Some(128), Some(4)));
    assert_eq!(hyper["dataset"], "fashion-mnist");
    assert_eq!(hyper["input"], serde_json::json!([1, 28, 28]));
    let layers = declared(&script, "LAYERS");
    let kinds: Vec<&str> = layers.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    // LeNet-5 as the engine builds it: conv 5×5 (pad 2) → act → pool, conv 5×5 → act → pool, three dense.
    assert_eq!(kinds.iter().filter(|k| **k == "Conv2d").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "Linear").count(), 3);
    assert!(kinds.contains(&"Flatten") && kinds.iter().filter(|k| k.ends_with("Pool2d")).count() == 2, "{kinds:?}");
    let conv = layers.as_array().unwrap().iter().find(|l| l["type"] == "Conv2d").unwrap();
    assert_eq!((conv["in"].as_u64(), conv["out"].as_u64(), conv["kernel"].as_u64(), conv["padding"].as_u64()), (Some(1), Some(6), Some(5), Some(2)));
    let linear: Vec<(u64, u64)> =
        layers.as_array().unwrap().iter().filter(|l| l["type"] == "Linear").map(|l| (l["in"].as_u64().unwrap(), l["out"].as_u64().unwrap())).collect();
    assert_eq!(linear, [(400, 120), (120, 84), (84, 10)]);
    // The distributed entry point.
    for needle in ["DistributedDataParallel", "DistributedSampler", "init_process_group", "WORLD_SIZE", "if __name__ == \"__main__\":"] {
        assert!(script.contains(needle), "the script declares {needle}");
    }
}

#[test]
fn the_batch_norm_lab_exports_its_lead_net_with_batch_norm_layers() {
    let config = parse_link("lab=batchnorm&hidden=100,100&act=sigmoid&opt=adam&lr=0.001").config;
    let c = config.get::<BnConfig>().unwrap();
    let model = c.build_model(Net::Bn, &mut Rng::new(1));
    let script = pytorch(&config, &model).unwrap();
    compiles(&script, "bn");
    let layers = declared(&script, "LAYERS");
    let kinds: Vec<&str> = layers.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "BatchNorm1d").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "Sigmoid").count(), 2);
    assert_eq!(declared(&script, "HYPER")["optimizer"], "adam");
    assert_eq!(declared(&script, "HYPER")["input"], serde_json::json!([784]));
}
