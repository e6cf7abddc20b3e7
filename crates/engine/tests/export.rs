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
    let script = pytorch(&config, &model, None).unwrap();
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
    let script = pytorch(&config, &model, None).unwrap();
    compiles(&script, "bn");
    let layers = declared(&script, "LAYERS");
    let kinds: Vec<&str> = layers.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "BatchNorm1d").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "Sigmoid").count(), 2);
    assert_eq!(declared(&script, "HYPER")["optimizer"], "adam");
    assert_eq!(declared(&script, "HYPER")["input"], serde_json::json!([784]));
}

/// DATA's set `part`: (input shape, classes or value shape).
fn data_shape(script: &str, part: &str) -> (Vec<u64>, Value) {
    let data = declared(script, "DATA");
    let shape = data[part]["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    (shape, data[part]["y"].clone())
}

#[test]
fn the_fit_lab_exports_its_network_and_its_points() {
    let link = "lab=fit&hidden=12,8&act=tanh&opt=adam&lr=0.005&l2=0.001&clip=2&bs=16&n=120&loss=l1&stop=900";
    let mut s = engine::lab::build(&parse_link(link).config);
    s.step(20);
    let script = s.pytorch().unwrap();
    compiles(&script, "fit");
    let hyper = declared(&script, "HYPER");
    assert_eq!((hyper["data"].as_str(), hyper["loss"].as_str(), hyper["metric"].as_str()), (Some("inline"), Some("l1"), Some("loss")));
    assert_eq!((hyper["lr"].as_f64(), hyper["l2"].as_f64(), hyper["clip"].as_f64()), (Some(0.005), Some(0.001), Some(2.0)));
    assert_eq!((hyper["batch_size"].as_u64(), hyper["steps"].as_u64(), hyper["optimizer"].as_str()), (Some(16), Some(900), Some("adam")));
    let layers = declared(&script, "LAYERS");
    let linear: Vec<(u64, u64)> =
        layers.as_array().unwrap().iter().filter(|l| l["type"] == "Linear").map(|l| (l["in"].as_u64().unwrap(), l["out"].as_u64().unwrap())).collect();
    assert_eq!(linear, [(1, 12), (12, 8), (8, 1)]);
    assert_eq!(layers.as_array().unwrap().iter().filter(|l| l["type"] == "Tanh").count(), 2);
    // The exported weights are the run's after 20 steps.
    let first = &layers[0];
    let bytes = base64_decode(first["weight"].as_str().unwrap());
    let d = s.model().layers_of::<engine::ops::Dense>().next().unwrap();
    assert_eq!(bytes[..12], engine::tensor::slice(&d.w)[..12], "a 1→12 layer's W is its own transpose");
    let (train, y) = data_shape(&script, "train");
    assert_eq!(train, [120, 1]);
    assert_eq!(y["shape"], serde_json::json!([120, 1]));
    assert_eq!(data_shape(&script, "test").0, [60, 1]);

    let poly = engine::lab::build(&parse_link("lab=fit&model=poly&degree=5").config).pytorch().unwrap();
    compiles(&poly, "poly");
    let layers = declared(&poly, "LAYERS");
    assert_eq!((layers[0]["type"].as_str(), layers[0]["degree"].as_u64()), (Some("Polynomial"), Some(5)));
}

#[test]
fn the_playground_exports_its_features_head_and_regularisation() {
    let link = "lab=playground&data=spiral3&hidden=6,4&act=relu&dropout=0.1&reg=l1&regrate=0.003&sched=cosine&period=300&bs=20";
    let script = engine::lab::build(&parse_link(link).config).pytorch().unwrap();
    compiles(&script, "playground");
    let hyper = declared(&script, "HYPER");
    assert_eq!((hyper["loss"].as_str(), hyper["metric"].as_str()), (Some("cross_entropy"), Some("accuracy")));
    assert_eq!((hyper["l1"].as_f64(), hyper["l2"].as_f64()), (Some(0.003), Some(0.0)));
    assert_eq!((hyper["schedule"].as_str(), hyper["period"].as_u64()), (Some("cosine"), Some(300)));
    let layers = declared(&script, "LAYERS");
    let kinds: Vec<&str> = layers.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]);
    let features = layers[0]["in"].as_u64().unwrap();
    let (train, y) = data_shape(&script, "train");
    assert_eq!(train[1], features, "the inputs are the chosen features");
    assert_eq!(y["classes"].as_array().unwrap().len() as u64, train[0]);
    assert_eq!(layers[6]["out"].as_u64(), Some(3));

    // Binary with squared error: TensorFlow Playground's tanh output against labels ±1.
    let binary = engine::lab::build(&parse_link("lab=playground&data=xor&loss=mse").config).pytorch().unwrap();
    compiles(&binary, "binary");
    assert_eq!(declared(&binary, "HYPER")["metric"], "accuracy_sign");
    assert_eq!(declared(&binary, "LAYERS").as_array().unwrap().last().unwrap()["type"], "Tanh");
    let logit = engine::lab::build(&parse_link("lab=playground&data=circle").config).pytorch().unwrap();
    assert_eq!((declared(&logit, "HYPER")["loss"].as_str(), declared(&logit, "HYPER")["metric"].as_str()), (Some("bce_logits"), Some("accuracy_logit")));
}

fn base64_decode(s: &str) -> Vec<f32> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    bytes.chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn rnn_script(link: &str) -> (String, Box<dyn engine::lab::LabSession>) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    let config = parse_link(link).config;
    let mut assets = engine::data::images::Assets::default();
    if let Some(set) = engine::lab::needs_text(&config) {
        assets.insert_text(engine::data::names::TextFile::load_dir(set, &dir).unwrap());
    }
    let mut s = engine::lab::build_with(&config, &assets).unwrap();
    s.step(3);
    (s.pytorch().unwrap(), s)
}

#[test]
fn the_rnn_lab_exports_its_recurrent_layer_and_its_sequences() {
    // Classify: names in, a language out; truncated BPTT and clipping carried over.
    let (script, s) = rnn_script("lab=rnn&hidden=24&truncate=3&clip=5&bs=16&opt=momentum&lr=0.01");
    compiles(&script, "rnn");
    let hyper = declared(&script, "HYPER");
    assert_eq!((hyper["data"].as_str(), hyper["metric"].as_str(), hyper["loss"].as_str()), (Some("sequences"), Some("accuracy"), Some("cross_entropy")));
    assert_eq!((hyper["clip"].as_f64(), hyper["batch_size"].as_u64(), hyper["vocab"].as_u64()), (Some(5.0), Some(16), Some(59)));
    let layers = declared(&script, "LAYERS");
    let rnn = &layers[0];
    assert_eq!((rnn["type"].as_str(), rnn["in"].as_u64(), rnn["hidden"].as_u64()), (Some("RNN"), Some(59), Some(24)));
    assert_eq!((rnn["all_steps"].as_bool(), rnn["recurrent"].as_bool(), rnn["truncate"].as_u64()), (Some(false), Some(true), Some(3)));
    assert_eq!((layers[1]["type"].as_str(), layers[1]["in"].as_u64(), layers[1]["out"].as_u64()), (Some("Linear"), Some(24), Some(17)));
    // W_hh is the run's (after 3 steps), in the engine's layout.
    let r = s.model().layers_of::<engine::ops::Rnn>().next().unwrap();
    assert_eq!(base64_decode(rnn["w_hh"].as_str().unwrap()), engine::tensor::slice(&r.w_hh));
    let data = declared(&script, "DATA");
    let (inputs, classes) = (data["train"]["inputs"].as_array().unwrap(), data["train"]["classes"].as_array().unwrap());
    assert_eq!(inputs.len(), classes.len());
    assert!(inputs.len() > 15_000, "the training names: {}", inputs.len());
    assert!(classes.iter().all(|c| c.as_u64().unwrap() < 17));
    assert!(inputs.iter().all(|n| {
        let n = n.as_array().unwrap();
        !n.is_empty() && n.len() <= 24 && n.iter().all(|c| c.as_u64().unwrap() < 59)
    }));
    // A name's symbols read back as its letters.
    let first: String = inputs[0].as_array().unwrap().iter().map(|c| engine::data::names::character(c.as_u64().unwrap() as usize)).collect();
    assert!(first.chars().next().unwrap().is_uppercase(), "a surname: {first}");
    assert!(data["test"]["inputs"].as_array().unwrap().len() > 2_000);

    // Generate: every state through the output layer, a next character per real step.
    let (script, _) = rnn_script("lab=rnn&task=generate&hidden=16");
    compiles(&script, "rnn-generate");
    assert_eq!(declared(&script, "HYPER")["metric"], "nll");
    let layers = declared(&script, "LAYERS");
    assert_eq!(layers[0]["all_steps"], true);
    let data = declared(&script, "DATA");
    let (inputs, steps) = (data["train"]["inputs"].as_array().unwrap(), data["train"]["steps"].as_array().unwrap());
    assert_eq!(inputs.len(), steps.len());
    let dot = engine::data::names::symbol('.') as u64;
    for (x, y) in inputs.iter().zip(steps).take(200) {
        let (x, y) = (x.as_array().unwrap(), y.as_array().unwrap());
        assert_eq!(x.len(), y.len(), "a target per input");
        assert_eq!(x[0].as_u64(), Some(dot), "a name starts from the dot");
        assert_eq!(y.last().unwrap().as_u64(), Some(dot), "and predicts it at its end");
        assert_eq!(&x[1..], &y[..y.len() - 1], "each step predicts the next input");
    }

    // 1:1 (no recurrence) exports W_hh unused.
    let (script, _) = rnn_script("lab=rnn&task=bigram&hidden=8");
    compiles(&script, "rnn-bigram");
    assert_eq!(declared(&script, "LAYERS")[0]["recurrent"], false);
}
