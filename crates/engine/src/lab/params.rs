//! Link plumbing shared by every lab: the [`LabParams`] trait a lab's config implements, value
//! parsing through serde, and [`Notice`]s. A leaf module: it imports no lab.
//!
//! A config is a flat serde struct whose field names are the link keys. A link is parsed
//! **order-free**: every key is read first, then the whole config is checked once; only the keys at
//! fault fall back (each with a notice naming it), so `filters=6,8&kernel=4,4` means the same as
//! `kernel=4,4&filters=6,8`.

use crate::optim::{Hyper, OptimizerKind, Schedule};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A problem with one key of a link or a control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub key: String,
    pub message: String,
}

impl Notice {
    pub fn new(key: &str, message: impl Into<String>) -> Notice {
        Notice { key: key.into(), message: message.into() }
    }
}

/// What the trainer needs from a config, applied live between two steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Training {
    pub hyper: Hyper,
    pub batch_size: usize,
    pub optimizer: OptimizerKind,
    pub schedule: Schedule,
    pub period: u64,
}

/// A lab's parameters: a flat serde struct whose field names are the link keys.
pub trait LabParams: Serialize + DeserializeOwned + Default + Clone + PartialEq + std::fmt::Debug + Send + 'static {
    /// The value of the `lab` key.
    const LAB: &'static str;
    /// Keys that take effect on the next step without rebuilding the model (all in one place).
    const LIVE: &'static [&'static str];
    /// Keys of stop conditions: changing one re-arms a condition that has already paused the run.
    const STOP_KEYS: &'static [&'static str] = &["stop"];
    /// Range and consistency checks of the whole config: the first offending key and why.
    fn check(&self) -> Result<(), Notice>;
    /// The seed of every random stream of a run.
    fn seed(&self) -> u64;
    /// Pause at this step (0: never).
    fn stop(&self) -> u64;
    /// The optimiser settings for the trainer.
    fn training(&self) -> Training;
    /// The config a link's keys are applied to. A lab may take keys that choose a starting point
    /// (the CNN's `model`) or translate foreign keys (TensorFlow Playground's) out of `pairs` here.
    fn base(_pairs: &mut Vec<(String, String)>, _notices: &mut Vec<Notice>) -> Self {
        Self::default()
    }
}

/// The link text of an enum value (its serde name).
pub fn value_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|j| j.as_str().map(str::to_string)).unwrap_or_default()
}

/// Flat `(key, value)` pairs of a config, via serde.
pub fn to_pairs<C: Serialize>(config: &C) -> Vec<(String, String)> {
    let q = serde_urlencoded::to_string(config).expect("flat config");
    serde_urlencoded::from_str(&q).expect("round trip of our own encoding")
}

/// `pairs` with `changes` put in place of their keys' values, deserialised (unchecked).
fn deserialize_with<C: LabParams>(pairs: &[(String, String)], changes: &[(String, String)]) -> Result<C, String> {
    let mut pairs = pairs.to_vec();
    for (key, value) in changes {
        if let Some(slot) = pairs.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value.clone();
        }
    }
    let query = serde_urlencoded::to_string(&pairs).expect("string pairs encode");
    serde_urlencoded::from_str(&query).map_err(|e| e.to_string())
}

/// The notice for a refused value of `key`: why, and which value is kept.
fn refused<C: LabParams>(kept_from: &C, key: &str, value: &str, why: &str) -> Notice {
    let kept = to_pairs(kept_from).into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default();
    let is_default = to_pairs(&C::default()).into_iter().any(|(k, v)| k == key && v == kept);
    let which = if is_default { "the default" } else { "the previous value" };
    Notice { key: key.to_string(), message: format!("{key}=\"{}\" is not valid: {why}; keeping {which} {key}={kept}", clip(value)) }
}

fn unknown(key: &str) -> Notice {
    Notice { key: clip(key), message: format!("unknown key \"{}\" ignored", clip(key)) }
}

/// Applies every pair to the defaults at once (see [`parse_pairs_from`]).
pub fn parse_pairs<C: LabParams>(pairs: &[(String, String)]) -> (C, Vec<Notice>) {
    parse_pairs_from(C::default(), pairs)
}

/// Applies every pair to `base` at once, then checks the whole config once. Unknown keys and
/// values of the wrong type are refused first, each on its own; when the combination fails the
/// check, the key the check names (else the last one given) falls back to `base`'s value, and
/// the rest is checked again. Notices come in the order of the keys in `pairs`.
pub fn parse_pairs_from<C: LabParams>(base: C, pairs: &[(String, String)]) -> (C, Vec<Notice>) {
    let base_pairs = to_pairs(&base);
    let mut notices = Vec::new();
    let mut good: Vec<(String, String)> = Vec::new();
    for (key, value) in pairs {
        if !base_pairs.iter().any(|(k, _)| k == key) {
            notices.push(unknown(key));
            continue;
        }
        let one = [(key.clone(), value.clone())];
        match deserialize_with::<C>(&base_pairs, &one) {
            Ok(_) => {
                good.retain(|(k, _)| k != key); // the last of a repeated key wins
                good.push(one[0].clone());
            }
            Err(why) => notices.push(refused(&base, key, value, &why)),
        }
    }
    let passes = |good: &[(String, String)]| deserialize_with::<C>(&base_pairs, good).is_ok_and(|c| c.check().is_ok());
    let config = loop {
        let Ok(candidate) = deserialize_with::<C>(&base_pairs, &good) else {
            break base;
        };
        match candidate.check() {
            Ok(()) => break candidate,
            Err(n) if !good.is_empty() => {
                // The key the check names, if dropping it is enough; else the last key whose
                // dropping alone is enough; else the named (or last) key, and check again.
                let without = |i: usize| [&good[..i], &good[i + 1..]].concat();
                let named = good.iter().rposition(|(k, _)| *k == n.key);
                let at =
                    named.filter(|&i| passes(&without(i))).or_else(|| (0..good.len()).rev().find(|&i| passes(&without(i)))).or(named).unwrap_or(good.len() - 1);
                let (key, value) = good.remove(at);
                let why = if key == n.key { n.message } else { format!("{} (with {key}={})", n.message, clip(&value)) };
                notices.push(refused(&base, &key, &value, &why));
            }
            Err(_) => break base,
        }
    };
    let position = |key: &str| pairs.iter().position(|(k, _)| clip(k) == key).unwrap_or(usize::MAX);
    notices.sort_by_key(|n| position(&n.key));
    (config, notices)
}

/// `config` with `key` set to `value`, if the key exists and the whole config stays valid.
pub fn with_value<C: LabParams>(config: &C, key: &str, value: &str) -> Result<C, Notice> {
    let pairs = to_pairs(config);
    if !pairs.iter().any(|(k, _)| k == key) {
        return Err(unknown(key));
    }
    let candidate: C = deserialize_with(&pairs, &[(key.to_string(), value.to_string())]).map_err(|e| refused(config, key, value, &e))?;
    candidate.check().map_err(|n| refused(config, key, value, &n.message))?;
    Ok(candidate)
}

/// Keeps user text in messages short.
pub fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A range check of a number: `key` in `[lo, hi]` (or `(lo, hi]` when `lo_open`), finite.
pub fn in_range(key: &str, v: f32, lo: f32, hi: f32, lo_open: bool) -> Result<(), Notice> {
    let ok = v.is_finite() && (if lo_open { v > lo } else { v >= lo }) && v <= hi;
    if ok {
        Ok(())
    } else {
        let l = if lo_open { "(" } else { "[" };
        Err(Notice::new(key, format!("{key} must be a number in {l}{lo}, {hi}]")))
    }
}

/// A range check of a count: `key` a whole number in `lo..=hi`.
pub fn count_in(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), Notice> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Notice::new(key, format!("{key} must be a whole number from {lo} to {hi}")))
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
