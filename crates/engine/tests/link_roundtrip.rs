//! Property test: a random *valid* config of every lab survives the share link unchanged —
//! `to_query` → `parse_link` gives the identical config and no notice, whatever order the keys
//! come in. Configs are made by random walks of single-key changes from each lab's defaults
//! (each change validated against the whole config, as the controls do).

use engine::lab::{parse_link, LabConfig, LABS};
use engine::rng::Rng;

/// Candidate values: the enum names of every lab's keys, booleans, lists and numbers.
const WORDS: &[&str] = &[
    "sin", "cube", "abs", "step", "noisy", "mlp", "poly", "relu", "leaky", "tanh", "sigmoid", "identity", "uniform", "normal", "xavier", "he",
    "zeros", "sgd", "momentum", "nesterov", "adagrad", "adam", "mse", "l1", "bce", "softmax", "nll", "ce", "none", "l2", "constant", "cosine",
    "max", "avg", "naive", "im2col", "mnist", "fashion", "small", "lenet5", "circle", "xor", "gauss", "spiral", "spiral3", "reg-plane",
    "reg-gauss", "custom", "true", "false", "", "relu,tanh", "sigmoid", "4", "8,8", "6,16", "5,5", "3,3,3", "2,2", "0,1", "2,0", "120,84",
];

fn random_value(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => WORDS[rng.below(WORDS.len())].to_string(),
        1 => rng.below(3000).to_string(),
        2 => format!("{}", rng.uniform() * 2.0),
        _ => format!("{:e}", 10f32.powi(-(rng.below(6) as i32)) * (1.0 + rng.uniform())),
    }
}

fn random_config(lab: &str, rng: &mut Rng) -> LabConfig {
    let mut config = parse_link(&format!("lab={lab}")).config;
    let keys: Vec<String> = config.pairs().into_iter().map(|(k, _)| k).collect();
    for _ in 0..rng.below(80) {
        let key = &keys[rng.below(keys.len())];
        if let Ok(next) = config.with_value(key, &random_value(rng)) {
            config = next;
        }
    }
    config
}

#[test]
fn random_valid_configs_of_every_lab_round_trip_in_any_key_order() {
    let mut rng = Rng::new(2026);
    let mut changed_keys = 0usize;
    for &lab in LABS {
        let default = parse_link(&format!("lab={lab}")).config;
        for _ in 0..300 {
            let config = random_config(lab, &mut rng);
            assert!(config.check().is_ok(), "{config:?}");
            changed_keys += config.pairs().iter().zip(default.pairs()).filter(|(a, b)| *a != b).count();
            let parsed = parse_link(&config.to_query());
            assert!(parsed.notices.is_empty(), "{lab}: {:?}\n{}", parsed.notices, config.to_query());
            assert_eq!(parsed.config, config, "{}", config.to_query());
            // The same keys shuffled.
            let mut pairs = config.pairs();
            rng.shuffle(&mut pairs);
            let query = format!("{}&lab={lab}", serde_urlencoded::to_string(&pairs).unwrap());
            let shuffled = parse_link(&query);
            assert!(shuffled.notices.is_empty(), "{lab}: {:?}\n{query}", shuffled.notices);
            assert_eq!(shuffled.config, config, "{query}");
        }
    }
    // The walks do explore: on average more than two keys differ from the defaults.
    assert!(changed_keys > 2 * 300 * LABS.len(), "{changed_keys}");
}
