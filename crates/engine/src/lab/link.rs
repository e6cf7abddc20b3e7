//! Share links: URL query ⇄ lab config, with serde doing all the encoding.
//!
//! A link is `…?lab=fit&lr=0.01&hidden=16,16&seed=7` (a fragment `#…` is read too). Each key is
//! validated on its own: an unknown key is ignored with a notice; a bad value (wrong type, out of
//! range, NaN, absurd size) gets a notice naming the key, and that key keeps its default.
//! Parsing never panics, whatever the input (a fuzz test holds it to that).

use super::cnn::CnnConfig;
use super::fit::FitConfig;
use super::playground::PlaygroundConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A problem with one key of a link or a control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub key: String,
    pub message: String,
}

/// A lab's parameters: a flat serde struct whose field names are the link keys.
pub trait LabParams: Serialize + DeserializeOwned + Default + Clone + PartialEq {
    /// The value of the `lab` key.
    const LAB: &'static str;
    /// Range checks: the first offending key and why.
    fn check(&self) -> Result<(), Notice>;
}

/// Every lab's config, tagged by the `lab` key.
#[derive(Clone, Debug, PartialEq)]
pub enum LabConfig {
    Fit(FitConfig),
    Playground(PlaygroundConfig),
    Cnn(CnnConfig),
}

/// Runs `$body` with `$c` bound to the lab's config struct, whatever the lab.
macro_rules! each_lab {
    ($config:expr, $c:ident => $body:expr) => {
        match $config {
            LabConfig::Fit($c) => $body,
            LabConfig::Playground($c) => $body,
            LabConfig::Cnn($c) => $body,
        }
    };
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig::Fit(FitConfig::default())
    }
}

impl LabConfig {
    pub fn lab(&self) -> &'static str {
        match self {
            LabConfig::Fit(_) => FitConfig::LAB,
            LabConfig::Playground(_) => PlaygroundConfig::LAB,
            LabConfig::Cnn(_) => CnnConfig::LAB,
        }
    }

    /// The share-link query (without `?`): `lab` first, then every value.
    pub fn to_query(&self) -> String {
        let body = each_lab!(self, c => serde_urlencoded::to_string(c)).expect("lab configs are flat structs of plain values");
        format!("lab={}&{}", self.lab(), body)
    }

    pub fn seed(&self) -> u64 {
        each_lab!(self, c => c.seed)
    }

    /// The same config with one key changed, validated.
    pub fn with_value(&self, key: &str, value: &str) -> Result<LabConfig, Notice> {
        Ok(match self {
            LabConfig::Fit(c) => LabConfig::Fit(with_value(c, key, value)?),
            LabConfig::Playground(c) => LabConfig::Playground(with_value(c, key, value)?),
            LabConfig::Cnn(c) => LabConfig::Cnn(with_value(c, key, value)?),
        })
    }

    /// Every key of this lab with its current value, in link order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        each_lab!(self, c => to_pairs(c))
    }

    /// The config is valid (every key in range).
    pub fn check(&self) -> Result<(), Notice> {
        each_lab!(self, c => c.check())
    }
}

pub struct ParsedLink {
    pub config: LabConfig,
    pub notices: Vec<Notice>,
    /// Controls to hide (`<control>_hide=true`), by link key: for embedding a page.
    pub hidden_controls: Vec<String>,
}

/// The labs, by their `lab` value.
pub const LABS: [&str; 3] = ["fit", "playground", "cnn"];

/// The `key=value` pairs of a URL or a bare query; both the query and the fragment are read
/// (the fragment last, so it wins).
pub fn query_pairs(input: &str) -> Vec<(String, String)> {
    let input = input.trim();
    let (before_hash, fragment) = match input.split_once('#') {
        Some((a, b)) => (a, b),
        None => (input, ""),
    };
    let query = match before_hash.split_once('?') {
        Some((_, q)) => q,
        None if before_hash.contains("://") => "",
        None => before_hash,
    };
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(fragment).unwrap_or_default());
    pairs.retain(|(k, _)| !k.is_empty());
    pairs
}

/// Parses a share link (a full URL, `?query`, `#fragment` or a bare query). TensorFlow
/// Playground links (its keys, in the query or after `#`) open the playground.
pub fn parse_link(input: &str) -> ParsedLink {
    let pairs = query_pairs(input);
    let mut notices = Vec::new();
    let lab = pairs.iter().rev().find(|(k, _)| k == "lab").map(|(_, v)| v.to_string());
    let mut rest: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "lab").collect();
    let mut hidden_controls = Vec::new();
    rest.retain(|(k, v)| match k.strip_suffix("_hide") {
        Some(control) => {
            if v == "true" {
                hidden_controls.push(super::tf_link::our_key(control).to_string());
            }
            false
        }
        None => true,
    });
    let looks_tf = rest.iter().any(|(k, _)| super::tf_link::is_tf_key(k));
    let lab = match lab.as_deref() {
        Some(l) if LABS.contains(&l) => l.to_string(),
        None if looks_tf => "playground".to_string(),
        None => "fit".to_string(),
        Some(other) => {
            notices.push(Notice {
                key: "lab".into(),
                message: format!("unknown lab \"{}\"; opening \"fit\" (the labs: {})", clip(other), LABS.join(", ")),
            });
            "fit".to_string()
        }
    };
    let config = if lab == "playground" {
        let translated = super::tf_link::translate(rest);
        let (c, n) = parse_pairs::<PlaygroundConfig>(&translated);
        notices.extend(n);
        LabConfig::Playground(c)
    } else if lab == "cnn" {
        // `model` picks the starting architecture and recipe; the other keys edit it.
        let mut base = CnnConfig::default();
        if let Some((_, m)) = rest.iter().rev().find(|(k, _)| k == "model") {
            match with_value(&base, "model", m) {
                Ok(c) => base = CnnConfig::for_model(c.model),
                Err(n) => notices.push(n),
            }
        }
        let rest: Vec<(String, String)> = rest.into_iter().filter(|(k, _)| k != "model").collect();
        let (c, n) = parse_pairs_from(base, &rest);
        notices.extend(n);
        LabConfig::Cnn(c)
    } else {
        let (c, n) = parse_pairs::<FitConfig>(&rest);
        notices.extend(n);
        LabConfig::Fit(c)
    };
    ParsedLink { config, notices, hidden_controls }
}

/// The link text of an enum value (its serde name).
pub fn value_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|j| j.as_str().map(str::to_string)).unwrap_or_default()
}

/// Applies each pair on top of the defaults, one key at a time.
pub fn parse_pairs<C: LabParams>(pairs: &[(String, String)]) -> (C, Vec<Notice>) {
    parse_pairs_from(C::default(), pairs)
}

/// Applies each pair on top of `config`, one key at a time.
pub fn parse_pairs_from<C: LabParams>(config: C, pairs: &[(String, String)]) -> (C, Vec<Notice>) {
    let mut config = config;
    let mut notices = Vec::new();
    for (key, value) in pairs {
        match with_value(&config, key, value) {
            Ok(c) => config = c,
            Err(n) => notices.push(n),
        }
    }
    (config, notices)
}

/// Flat `(key, value)` pairs of a config, via serde.
pub fn to_pairs<C: Serialize>(config: &C) -> Vec<(String, String)> {
    let q = serde_urlencoded::to_string(config).expect("flat config");
    serde_urlencoded::from_str(&q).expect("round trip of our own encoding")
}

/// `config` with `key` set to `value`, if the key exists and the value is valid.
pub fn with_value<C: LabParams>(config: &C, key: &str, value: &str) -> Result<C, Notice> {
    let mut pairs = to_pairs(config);
    let Some(slot) = pairs.iter_mut().find(|(k, _)| k == key) else {
        return Err(Notice { key: clip(key), message: format!("unknown key \"{}\" ignored", clip(key)) });
    };
    slot.1 = value.to_string();
    let query = serde_urlencoded::to_string(&pairs).expect("string pairs encode");
    let kept = to_pairs(config).into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default();
    let is_default = to_pairs(&C::default()).into_iter().any(|(k, v)| k == key && v == kept);
    let which = if is_default { "the default" } else { "the previous value" };
    let bad = |why: String| Notice {
        key: key.to_string(),
        message: format!("{key}=\"{}\" is not valid: {why}; keeping {which} {key}={kept}", clip(value)),
    };
    let candidate: C = serde_urlencoded::from_str(&query).map_err(|e| bad(e.to_string()))?;
    candidate.check().map_err(|n| bad(n.message))?;
    Ok(candidate)
}

/// Keeps user text in messages short.
fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// `a,b,c` lists of sizes in links (serde `with` module).
pub mod comma_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[usize], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<usize>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > 200 {
            return Err(serde::de::Error::custom("list too long"));
        }
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<usize>().map_err(|_| serde::de::Error::custom(format!("\"{p}\" is not a whole number"))))
            .collect()
    }
}
