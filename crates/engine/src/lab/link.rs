//! Share links: URL query ⇄ lab config, with serde doing all the encoding.
//!
//! A link is `…?lab=fit&lr=0.01&hidden=16,16&seed=7` (a fragment `#…` is read too). The keys are
//! read order-free (see [`super::params`]): an unknown key is ignored with a notice; a bad value
//! (wrong type, out of range, NaN, absurd size, inconsistent with the rest) gets a notice naming
//! the key, and that key keeps its default. Parsing never panics, whatever the input (a fuzz
//! test holds it to that).

use super::params::{clip, Notice};
use super::registry::{LabConfig, LABS};
use serde::{Deserialize, Serialize};

/// How fast a page trains: optimiser steps per displayed frame (about 60 frames a second), or
/// as fast as the worker can. Pacing only: the same link gives the same numbers at any speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Speed {
    One,
    /// The first visit's default: slow enough to watch a small network learn.
    #[default]
    Ten,
    Hundred,
    Max,
}

impl Speed {
    pub const ALL: [Speed; 4] = [Speed::One, Speed::Ten, Speed::Hundred, Speed::Max];

    /// The `speed` link value.
    pub fn key(self) -> &'static str {
        match self {
            Speed::One => "1",
            Speed::Ten => "10",
            Speed::Hundred => "100",
            Speed::Max => "max",
        }
    }

    pub fn parse(value: &str) -> Option<Speed> {
        Speed::ALL.into_iter().find(|s| s.key() == value)
    }

    /// Steps per frame; `None`: as fast as possible.
    pub fn steps_per_frame(self) -> Option<u64> {
        match self {
            Speed::One => Some(1),
            Speed::Ten => Some(10),
            Speed::Hundred => Some(100),
            Speed::Max => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Speed::One => "1 step / frame",
            Speed::Ten => "10 steps / frame",
            Speed::Hundred => "100 steps / frame",
            Speed::Max => "as fast as possible",
        }
    }
}

/// Where a run's steps execute: `auto` (WebGPU when the browser has a hardware adapter and the
/// lab's network runs there, else the CPU), `cpu`, or `webgpu` (asked for: when missing or failing,
/// the page says so and trains on the CPU). Placement only: CPU and GPU agree to a stated tolerance,
/// and the same link on the same device replays the same numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Auto,
    Cpu,
    Webgpu,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Auto, Backend::Cpu, Backend::Webgpu];

    /// The `backend` link value.
    pub fn key(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Cpu => "cpu",
            Backend::Webgpu => "webgpu",
        }
    }

    pub fn parse(value: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.key() == value)
    }

    pub fn label(self) -> &'static str {
        match self {
            Backend::Auto => "auto (GPU if fast)",
            Backend::Cpu => "CPU",
            Backend::Webgpu => "WebGPU",
        }
    }
}

/// How many training workers a page uses: `auto` (`navigator.hardwareConcurrency − 1`, at least
/// 1) or a number from 1 to 16. Placement only: the steps are the same bits for any number (see
/// [`crate::parallel`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerCount {
    #[default]
    Auto,
    Fixed(usize),
}

impl WorkerCount {
    pub fn parse(value: &str) -> Option<WorkerCount> {
        match value {
            "auto" => Some(WorkerCount::Auto),
            n => n.parse::<usize>().ok().filter(|n| (1..=crate::parallel::MAX_WORKERS).contains(n)).map(WorkerCount::Fixed),
        }
    }

    /// The `workers` link value.
    pub fn key(self) -> String {
        match self {
            WorkerCount::Auto => "auto".into(),
            WorkerCount::Fixed(n) => n.to_string(),
        }
    }

    /// The number of workers on a machine with `cores` logical cores.
    pub fn resolve(self, cores: usize) -> usize {
        match self {
            WorkerCount::Auto => cores.saturating_sub(1).clamp(1, crate::parallel::MAX_WORKERS),
            WorkerCount::Fixed(n) => n,
        }
    }
}

pub struct ParsedLink {
    pub config: LabConfig,
    pub notices: Vec<Notice>,
    /// Controls to hide (`<control>_hide=true`), by link key: for embedding a page. Only keys of
    /// the lab's config are kept, so a crafted `_hide` key can't smuggle text into a link.
    pub hidden_controls: Vec<String>,
    /// The `speed` key (pacing, not part of the lab's config), if the link has a valid one.
    pub speed: Option<Speed>,
    /// The `backend` key (placement, not part of the lab's config); `auto` when absent or bad.
    pub backend: Backend,
    /// A fork the run makes when it reaches its step (`fork=500&branch=lr:0.1`), when valid.
    pub fork: Option<super::timeline::ForkSpec>,
    /// The `workers` key (placement, not part of the lab's config); `auto` when absent or bad.
    pub workers: WorkerCount,
}

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

/// A notice for each key given more than once with different values (say, a value appended to a
/// link by hand): the last is used — a browser's `URLSearchParams.get` would take the first, so
/// the notice says which. Linear in the pairs: a hostile link may hold a hundred thousand.
fn repeated_keys(pairs: &[(String, String)]) -> Vec<Notice> {
    // Per key, in the order of first appearance: times given, the last value, values differ.
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut keys: Vec<(&str, usize, &str, bool)> = Vec::new();
    for (k, v) in pairs {
        match index.get(k.as_str()) {
            Some(&at) => {
                let entry = &mut keys[at];
                entry.1 += 1;
                entry.3 |= entry.2 != v;
                entry.2 = v;
            }
            None => {
                index.insert(k, keys.len());
                keys.push((k, 1, v, false));
            }
        }
    }
    keys.into_iter()
        .filter(|&(_, _, _, differ)| differ)
        .map(|(k, times, last, _)| Notice::new(k, format!("{} is given {times} times; using the last, {}=\"{}\"", clip(k), clip(k), clip(last))))
        .collect()
}

/// Parses a share link (a full URL, `?query`, `#fragment` or a bare query). TensorFlow
/// Playground links (its keys, in the query or after `#`) open the playground.
pub fn parse_link(input: &str) -> ParsedLink {
    let pairs = query_pairs(input);
    let mut notices = repeated_keys(&pairs);
    let lab = pairs.iter().rev().find(|(k, _)| k == "lab").map(|(_, v)| v.to_string());
    let speed = pairs.iter().rev().find(|(k, _)| k == "speed").and_then(|(_, v)| {
        let parsed = Speed::parse(v);
        if parsed.is_none() {
            notices.push(Notice::new("speed", format!("speed=\"{}\" is not valid: it is 1, 10, 100 or max (steps per frame)", clip(v))));
        }
        parsed
    });
    let backend = pairs.iter().rev().find(|(k, _)| k == "backend").map_or(Backend::Auto, |(_, v)| {
        Backend::parse(v).unwrap_or_else(|| {
            notices.push(Notice::new("backend", format!("backend=\"{}\" is not valid: it is auto, cpu or webgpu; using auto", clip(v))));
            Backend::Auto
        })
    });
    let workers = pairs.iter().rev().find(|(k, _)| k == "workers").map_or(WorkerCount::Auto, |(_, v)| {
        WorkerCount::parse(v).unwrap_or_else(|| {
            let max = crate::parallel::MAX_WORKERS;
            notices.push(Notice::new("workers", format!("workers=\"{}\" is not valid: it is auto or 1 to {max}; using auto", clip(v))));
            WorkerCount::Auto
        })
    });
    let last = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let (fork, branch) = (last("fork"), last("branch"));
    let mut rest: Vec<(String, String)> =
        pairs.into_iter().filter(|(k, _)| !["lab", "speed", "backend", "fork", "branch", "workers"].contains(&k.as_str())).collect();
    let mut hide = Vec::new();
    rest.retain(|(k, v)| match k.strip_suffix("_hide") {
        Some(control) => {
            if v == "true" {
                hide.push(super::tf_link::our_key(control).to_string());
            }
            false
        }
        None => true,
    });
    let looks_tf = rest.iter().any(|(k, _)| super::tf_link::is_tf_key(k));
    let lab = match lab.as_deref() {
        Some(l) if LABS.contains(&l) => l.to_string(),
        None if looks_tf => "playground".to_string(),
        None => LABS[0].to_string(),
        Some(other) => {
            notices.push(Notice {
                key: "lab".into(),
                message: format!("unknown lab \"{}\"; opening \"{}\" (the labs: {})", clip(other), LABS[0], LABS.join(", ")),
            });
            LABS[0].to_string()
        }
    };
    let (config, more) = LabConfig::parse(&lab, rest).expect("a lab from LABS");
    notices.extend(more);
    let keys = config.pairs();
    let mut hidden_controls: Vec<String> = Vec::new();
    for k in hide {
        if keys.iter().any(|(key, _)| *key == k) && !hidden_controls.contains(&k) {
            hidden_controls.push(k);
        }
    }
    let fork = super::timeline::ForkSpec::parse(&config, fork.as_deref(), branch.as_deref()).unwrap_or_else(|n| {
        notices.push(n);
        None
    });
    ParsedLink { config, notices, hidden_controls, speed, backend, fork, workers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_with_different_values_is_noticed_and_the_last_used() {
        let parsed = parse_link("lab=cnn&lr=0.1&bs=16&lr=0.2&bs=16&workers=2&workers=3&lr=0.05");
        let said: Vec<(&str, &str)> = parsed.notices.iter().map(|n| (n.key.as_str(), n.message.as_str())).collect();
        assert_eq!(said, [("lr", "lr is given 3 times; using the last, lr=\"0.05\""), ("workers", "workers is given 2 times; using the last, workers=\"3\"")]);
        assert_eq!(parsed.workers, WorkerCount::Fixed(3));
        assert!(parsed.config.to_query().contains("&lr=0.05&"), "{}", parsed.config.to_query());
        // The same value twice is no news.
        assert!(parse_link("lab=cnn&bs=16&bs=16").notices.is_empty());
    }

    #[test]
    fn workers_are_read_beside_the_config_and_a_bad_count_falls_back_to_auto() {
        assert_eq!(parse_link("lab=cnn&workers=3").workers, WorkerCount::Fixed(3));
        assert_eq!(parse_link("lab=cnn").workers, WorkerCount::Auto);
        for bad in ["0", "17", "-1", "NaN", "1e9", "two", ""] {
            let p = parse_link(&format!("lab=cnn&workers={bad}"));
            assert_eq!(p.workers, WorkerCount::Auto, "{bad}");
            assert!(p.notices.iter().any(|n| n.key == "workers" && n.message.contains("auto or 1 to 16")), "{bad}: {:?}", p.notices);
            assert!(!p.config.to_query().contains("workers"), "not a config key");
        }
        assert_eq!((WorkerCount::Auto.resolve(2), WorkerCount::Auto.resolve(1), WorkerCount::Auto.resolve(64)), (1, 1, 16));
        assert_eq!(WorkerCount::Fixed(2).resolve(1), 2);
    }

    #[test]
    fn backend_is_read_beside_the_config_and_a_bad_one_falls_back_to_auto() {
        let p = parse_link("lab=cnn&backend=webgpu&lr=0.01");
        assert_eq!((p.backend, p.notices.len()), (Backend::Webgpu, 0));
        assert_eq!(parse_link("lab=cnn").backend, Backend::Auto);
        let bad = parse_link("lab=cnn&backend=cuda");
        assert_eq!(bad.backend, Backend::Auto);
        assert!(bad.notices.iter().any(|n| n.key == "backend" && n.message.contains("auto, cpu or webgpu")), "{:?}", bad.notices);
        assert!(!bad.config.to_query().contains("backend"), "not a config key");
    }

    #[test]
    fn speed_is_read_beside_the_config() {
        let p = parse_link("speed=1&lab=fit&lr=0.02");
        assert_eq!((p.speed, p.notices.len()), (Some(Speed::One), 0));
        assert_eq!(p.config, parse_link("lab=fit&lr=0.02").config, "pacing is not part of the run");
        let bad = parse_link("lab=fit&speed=warp");
        assert_eq!((bad.speed, bad.notices[0].key.as_str()), (None, "speed"));
        assert!(Speed::ALL.iter().all(|s| Speed::parse(s.key()) == Some(*s)));
    }

    #[test]
    fn hide_keys_are_kept_only_for_real_controls() {
        let p = parse_link("lab=fit&lr_hide=true&x%26lab%3Dcnn_hide=true&lr_hide=true&zz_hide=true");
        assert_eq!(p.hidden_controls, ["lr"]);
    }

    #[test]
    fn links_over_the_compute_budget_are_refused_key_by_key() {
        use super::super::budget;
        let ten = vec!["1024"; 10].join(",");
        let p = parse_link(&format!("lab=fit&hidden={ten}&n=10000&bs=10000"));
        assert!(p.notices.iter().any(|n| n.key == "hidden" && n.message.contains("GFLOP")), "{:?}", p.notices);
        let c = p.config.get::<super::super::fit::FitConfig>().unwrap();
        assert!(c.cost().check(["", "", ""]).is_ok(), "{:?}", c.cost());
        // The wide CNN of the issue: refused, and what opens is within budget.
        let p = parse_link("lab=cnn&filters=64,64,64,64&kernel=9&pad=4,4,4,4&pool=0&bs=1024");
        assert!(!p.notices.is_empty());
        let c = p.config.get::<super::super::cnn::CnnConfig>().unwrap();
        assert!(c.cost().step_flops <= budget::STEP_FLOPS && c.cost().bytes <= budget::MEMORY_BYTES);
    }

    #[test]
    fn keys_apply_in_any_order() {
        let a = parse_link("lab=cnn&filters=6,8&kernel=4,4&pool=2,2");
        let b = parse_link("lab=cnn&pool=2,2&kernel=4,4&filters=6,8");
        assert!(a.notices.is_empty(), "{:?}", a.notices);
        assert!(b.notices.is_empty(), "{:?}", b.notices);
        assert_eq!(a.config, b.config);
        let c = a.config.get::<super::super::cnn::CnnConfig>().unwrap();
        assert_eq!(c.filters, [6, 8]);
        // Only the key at fault falls back.
        let p = parse_link("lab=cnn&filters=6,8,8,8&kernel=9&lr=0.5");
        assert_eq!(p.notices.iter().map(|n| n.key.as_str()).collect::<Vec<_>>(), ["filters"], "{:?}", p.notices);
        assert_eq!(p.config.get::<super::super::cnn::CnnConfig>().unwrap().lr, 0.5);
    }
}
