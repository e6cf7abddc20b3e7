//! Fuzzes the playground's file inputs — CSV of points and JSON exports — with random bytes,
//! truncations, huge numbers, wrong shapes and wrong labels. Every input is accepted (and then
//! fits the network and the problem) or refused with a message; none panics. Refusals change
//! nothing: import builds a new session only from a file that passed every check.

use engine::data::playground::{check_points, parse_csv, PlayData, Point};
use engine::lab::playground::{PlaygroundConfig, PlaygroundLab};
use engine::lab::{Lab, LabSession, Session};
use engine::rng::Rng;

fn valid_export() -> String {
    let mut lab = PlaygroundLab::new(PlaygroundConfig::default(), &Default::default()).unwrap();
    lab.set_points(vec![Point { x: 1.0, y: 1.0, label: 1.0 }, Point { x: -2.0, y: 0.5, label: 0.0 }, Point { x: 0.0, y: -3.0, label: 1.0 }]).unwrap();
    let mut s = Session::new(lab);
    s.step(20);
    s.lab.export().unwrap()
}

/// One random mutation of a text: truncation, a replaced number, a spliced token or random bytes.
fn mutate(text: &str, rng: &mut Rng) -> String {
    const TOKENS: &[&str] = &[
        "1e39", "-1e39", "NaN", "null", "9007199254740993", "18446744073709551615", "5", "-1", "0.5", "\"x\"", "[]", "{}", "[[]]", ",", "\"", "]", "}",
        "1e-45", "2",
    ];
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len().max(1));
    match rng.below(4) {
        0 => chars[..at].iter().collect(),
        1 => {
            // Replace the number (or token) starting near `at`.
            let start = (at..chars.len()).find(|&i| chars[i].is_ascii_digit() || chars[i] == '-').unwrap_or(at);
            let end = (start..chars.len()).find(|&i| !(chars[i].is_ascii_alphanumeric() || ".-+".contains(chars[i]))).unwrap_or(chars.len());
            let token = TOKENS[rng.below(TOKENS.len())];
            chars[..start].iter().collect::<String>() + token + &chars[end..].iter().collect::<String>()
        }
        2 => {
            let token = TOKENS[rng.below(TOKENS.len())];
            chars[..at].iter().collect::<String>() + token + &chars[at..].iter().collect::<String>()
        }
        _ => (0..rng.below(64)).map(|_| char::from_u32(rng.below(0x250) as u32).unwrap_or('?')).collect(),
    }
}

#[test]
fn csv_files_are_accepted_or_refused_never_a_panic() {
    let mut rng = Rng::new(11);
    let good = "x,y,label\n1,2,1\n-3.5,0.25,0\n# a comment\n\n0,0,1\n";
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..6000 {
        let text = if i % 3 == 0 { good.to_string() } else { mutate(&if i % 2 == 0 { good.to_string() } else { mutate(good, &mut rng) }, &mut rng) };
        match parse_csv(&text, Some(2)) {
            Ok(points) => {
                check_points(&points, PlayData::Custom.problem()).expect("what the CSV reader accepts, training accepts");
                accepted += 1;
            }
            Err(message) => {
                assert!(!message.is_empty());
                refused += 1;
            }
        }
    }
    assert!(accepted > 1000 && refused > 1000, "{accepted} accepted, {refused} refused");
    let million: String = (0..1_000_000).map(|i| format!("{},0,1\n", i % 5)).collect();
    assert!(parse_csv(&million, Some(2)).unwrap_err().contains("more than 2000"));
}

fn refusal(json: &str) -> String {
    PlaygroundLab::import(json).err().expect("refused")
}

#[test]
fn json_imports_are_accepted_or_refused_never_a_panic() {
    let good = valid_export();
    let mut rng = Rng::new(12);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..4000 {
        let mut text = mutate(&good, &mut rng);
        if rng.below(2) == 0 {
            text = mutate(&text, &mut rng);
        }
        match PlaygroundLab::import(&text) {
            Ok(lab) => {
                // What is accepted trains and reports finite numbers.
                let mut s = Session::new(lab);
                s.step(1);
                assert!(!s.snapshot().diverged || s.steps() > 0);
                accepted += 1;
            }
            Err(message) => {
                assert!(!message.is_empty());
                refused += 1;
            }
        }
    }
    assert!(accepted > 50 && refused > 1000, "{accepted} accepted, {refused} refused");
    // The defects named in the issue, each refused.
    let weight = good.replacen("\"parameters\": [\n    [\n      ", "\"parameters\": [\n    [\n      1e39, ", 1);
    assert!(PlaygroundLab::import(&weight).is_err());
    let counter = good.replacen("\"step\": 20", "\"step\": 18446744073709551615", 1);
    assert!(refusal(&counter).contains("counters"));
    let label = good.replacen("\"label\": 1.0", "\"label\": 5.0", 1);
    assert!(refusal(&label).contains("label"));
    assert!(refusal(&" ".repeat(9 << 20)).contains("larger"));
    assert!(PlaygroundLab::import(&good).is_ok());
}
