//! TensorFlow Playground links: its URL keys translated to the playground's, wherever the
//! meaning matches, so that its links open here meaningfully.

/// TensorFlow Playground key → our key.
const KEYS: &[(&str, &str)] = &[
    ("activation", "act"),
    ("regularization", "reg"),
    ("batchSize", "bs"),
    ("dataset", "data"),
    ("regDataset", "data"),
    ("learningRate", "lr"),
    ("regularizationRate", "regrate"),
    ("noise", "noise"),
    ("networkShape", "hidden"),
    ("seed", "seed"),
    ("percTrainData", "ptrain"),
    ("x", "x"),
    ("y", "y"),
    ("xTimesY", "xy"),
    ("xSquared", "xsq"),
    ("ySquared", "ysq"),
    ("sinX", "sinx"),
    ("sinY", "siny"),
    ("cosX", "cosx"),
    ("cosY", "cosy"),
    ("showTestData", "showtest"),
    ("discretize", "discretize"),
];

/// Its keys that only affect its own page furniture: dropped without a notice.
const DISPLAY_ONLY: &[&str] = &["hideText", "collectStats", "tutorial", "initZero", "stepButton", "problem"];

/// TensorFlow Playground's defaults, in our keys: inputs x₁ and x₂ only, a 4-2 tanh network,
/// squared error, SGD at 0.03 with batches of 10.
const TF_DEFAULTS: &[(&str, &str)] = &[
    ("x", "true"),
    ("y", "true"),
    ("xsq", "false"),
    ("ysq", "false"),
    ("xy", "false"),
    ("sinx", "false"),
    ("siny", "false"),
    ("cosx", "false"),
    ("cosy", "false"),
    ("hidden", "4,2"),
    ("act", "tanh"),
    ("loss", "mse"),
    ("opt", "sgd"),
    ("lr", "0.03"),
    ("bs", "10"),
];

/// True for a key only TensorFlow Playground links use.
pub fn is_tf_key(key: &str) -> bool {
    matches!(key, "activation" | "networkShape" | "dataset" | "regDataset" | "learningRate" | "percTrainData" | "batchSize" | "problem" | "regularizationRate")
}

/// Our key for a control named either way.
pub fn our_key(key: &str) -> &str {
    KEYS.iter().find(|(tf, _)| *tf == key).map(|(_, ours)| *ours).unwrap_or(key)
}

/// FNV-1a: TensorFlow Playground seeds are strings such as "0.12345".
fn seed_of(text: &str) -> u64 {
    if let Ok(n) = text.parse::<u64>() {
        return n;
    }
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// Rewrites TensorFlow Playground pairs into ours; our own keys pass through unchanged.
pub fn translate(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let regression = pairs.iter().any(|(k, v)| k == "problem" && v == "regression");
    let mut out = Vec::with_capacity(pairs.len() + TF_DEFAULTS.len());
    // A link from TensorFlow Playground means its defaults for whatever it leaves out.
    if pairs.iter().any(|(k, _)| is_tf_key(k)) {
        out.extend(TF_DEFAULTS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    }
    for (key, value) in pairs {
        if DISPLAY_ONLY.contains(&key.as_str()) {
            continue;
        }
        // A regression link names its data in regDataset; a classification one in dataset.
        if (key == "dataset" && regression) || (key == "regDataset" && !regression) {
            continue;
        }
        let ours = our_key(&key).to_string();
        let value = match key.as_str() {
            "activation" if value == "linear" => "identity".to_string(),
            "regularization" => value.to_lowercase(),
            // Its noise is a percentage 0..50.
            "noise" if value.parse::<f32>().is_ok_and(|v| v > 0.5) => {
                format!("{}", value.parse::<f32>().unwrap_or(0.0) / 100.0)
            }
            "seed" => seed_of(&value).to_string(),
            _ => value,
        };
        out.push((ours, value));
    }
    if regression && !out.iter().any(|(k, _)| k == "data") {
        out.push(("data".into(), "reg-plane".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::lab::link::parse_link;
    use crate::lab::LabConfig;

    #[test]
    fn a_tensorflow_playground_link_restores_its_controls() {
        let p = parse_link(
            "https://playground.tensorflow.org/#activation=tanh&batchSize=10&dataset=spiral&regDataset=reg-plane&learningRate=0.03\
             &regularizationRate=0&noise=15&networkShape=8,8&seed=0.5&showTestData=true&discretize=false&percTrainData=60\
             &x=true&y=true&xTimesY=false&xSquared=true&ySquared=false&cosX=false&sinX=true&cosY=false&sinY=false\
             &collectStats=false&problem=classification&initZero=false&hideText=false&regularization=L2",
        );
        assert!(p.notices.is_empty(), "{:?}", p.notices);
        let LabConfig::Playground(c) = p.config else { panic!("opens the playground") };
        assert_eq!(c.act, crate::ops::ActivationKind::Tanh);
        assert_eq!((c.bs, c.lr, c.hidden.clone(), c.ptrain), (10, 0.03, vec![8, 8], 60));
        assert_eq!(c.data, crate::data::playground::PlayData::Spiral);
        assert_eq!(c.noise, 0.15);
        assert_eq!(c.reg, crate::lab::playground::Regularization::L2);
        assert!(c.x && c.y && c.xsq && c.sinx && !c.xy && !c.ysq);
        assert_eq!(c.loss, crate::lab::playground::PlayLoss::Mse, "squared error, as there");
        // Keys it leaves out take its defaults, not ours.
        let LabConfig::Playground(d) = parse_link("#dataset=spiral&networkShape=8,8").config else { panic!() };
        assert!(d.x && d.y && !d.sinx && !d.siny);
        assert!(c.showtest && !c.discretize);
        assert_eq!(c.seed, parse_link("#seed=0.5&dataset=circle").config.seed());
        assert_ne!(c.seed, parse_link("#seed=0.6&dataset=circle").config.seed());
    }

    #[test]
    fn regression_links_and_hide_keys() {
        let p = parse_link("#problem=regression&regDataset=reg-gauss&dataset=circle&activation=linear&noise_hide=true&dataset_hide=true");
        let LabConfig::Playground(c) = p.config else { panic!("playground") };
        assert_eq!(c.data, crate::data::playground::PlayData::RegGauss);
        assert_eq!(c.act, crate::ops::ActivationKind::Identity);
        assert_eq!(p.hidden_controls, ["noise", "data"]);
        assert!(p.notices.is_empty(), "{:?}", p.notices);
    }
}
