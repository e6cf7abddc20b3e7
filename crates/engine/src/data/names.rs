//! Names as symbol sequences: the shipped text files (surnames by origin, US baby names), the
//! character vocabulary, a seeded train / validation / test split, pasted custom data checked
//! line by line, and a character n-gram naive-Bayes baseline.
//!
//! Vocabulary: a–z, A–Z, space and `.,;'-` (58 symbols), then one out-of-vocabulary symbol.
//! Text is normalised first (Unicode NFKD, combining marks dropped: "Müller" → "Muller"); any
//! other character (an emoji, a CJK character, a digit) becomes the OOV symbol, and a name is cut
//! at [`MAX_LEN`] characters.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

pub const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'-";
/// Symbols: the letters above and the out-of-vocabulary symbol.
pub const VOCAB: usize = 59;
pub const OOV: usize = 58;
/// Names are cut here (the longest shipped surname has 20 characters).
pub const MAX_LEN: usize = 24;
/// The languages of the shipped surnames (their classes, sorted).
pub const LANGUAGES: [&str; 17] = [
    "Arabic",
    "Chinese",
    "Czech",
    "Dutch",
    "English",
    "French",
    "German",
    "Greek",
    "Irish",
    "Italian",
    "Japanese",
    "Korean",
    "Polish",
    "Portuguese",
    "Russian",
    "Spanish",
    "Vietnamese",
];
/// Most lines of pasted data, and most bytes.
pub const MAX_LINES: usize = 50_000;
pub const MAX_BYTES: usize = 2 << 20;
/// Classes a pasted set of labelled names may have.
pub const MIN_CLASSES: usize = 2;
pub const MAX_CLASSES: usize = 64;

/// The text datasets the app ships.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextSet {
    /// Surnames labelled by origin (17 classes, at most 2,000 each).
    #[default]
    Names,
    /// US first names of 2018, lower case.
    Baby,
    /// Eight plays by Shakespeare (gzipped; the generation task's long text).
    #[serde(rename = "shakespeare")]
    Play,
}

impl TextSet {
    pub fn label(self) -> &'static str {
        match self {
            TextSet::Names => "surnames by origin",
            TextSet::Baby => "US baby names 2018",
            TextSet::Play => "tiny Shakespeare",
        }
    }

    /// The file under `data/`.
    pub fn path(self) -> &'static str {
        match self {
            TextSet::Names => "names/names_top2000.tsv",
            TextSet::Baby => "names/baby_names_2018.txt",
            TextSet::Play => "char-text/shakespeare_tiny.txt.gz",
        }
    }

    /// The shipped file's size (the progress bar's total before the response says it).
    pub fn bytes(self) -> f64 {
        match self {
            TextSet::Names => 442_127.0,
            TextSet::Baby => 229_804.0,
            TextSet::Play => 450_607.0,
        }
    }
}

/// A loaded text file.
#[derive(Debug)]
pub struct TextFile {
    pub set: TextSet,
    pub text: String,
}

impl TextFile {
    pub fn parse(set: TextSet, bytes: &[u8]) -> Result<TextFile, String> {
        if bytes.len() > MAX_BYTES.max(set.bytes() as usize * 2) {
            return Err(format!("{}: {} bytes is too large", set.label(), bytes.len()));
        }
        let bytes = if set.path().ends_with(".gz") { gunzip(bytes).map_err(|e| format!("{}: {e}", set.label()))? } else { bytes.to_vec() };
        let text = String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 text ({e})", set.label()))?;
        Ok(TextFile { set, text })
    }

    /// Reads `dir/<set.path()>` (the CLI and the tests).
    pub fn load_dir(set: TextSet, dir: &std::path::Path) -> Result<TextFile, String> {
        let path = dir.join(set.path());
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        TextFile::parse(set, &bytes)
    }
}

/// A gzipped text, refused beyond [`MAX_TEXT`] bytes unpacked.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).take(MAX_TEXT as u64 + 1).read_to_end(&mut out).map_err(|e| format!("gzip: {e}"))?;
    if out.len() > MAX_TEXT {
        return Err(format!("more than {MAX_TEXT} bytes unpacked"));
    }
    Ok(out)
}

/// Most bytes of an unpacked text file.
pub const MAX_TEXT: usize = 4 << 20;

/// The symbol of one (normalised) character.
pub fn symbol(c: char) -> usize {
    LETTERS.find(c).filter(|_| c.is_ascii()).unwrap_or(OOV)
}

/// The character a symbol stands for (`·` for out-of-vocabulary).
pub fn character(s: usize) -> char {
    LETTERS.chars().nth(s).unwrap_or('·')
}

/// A name as symbols: normalised, trimmed, cut at [`MAX_LEN`]; `None` when nothing is left.
pub fn encode(name: &str) -> Option<Vec<usize>> {
    let symbols: Vec<usize> = name.trim().nfkd().filter(|c| !is_combining_mark(*c)).take(MAX_LEN).map(symbol).collect();
    (!symbols.is_empty()).then_some(symbols)
}

/// Symbols back to text.
pub fn decode(symbols: &[usize]) -> String {
    symbols.iter().map(|&s| character(s)).collect()
}

/// Labelled names, each encoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labelled {
    pub names: Vec<Vec<usize>>,
    pub labels: Vec<usize>,
    pub classes: Vec<String>,
}

impl Labelled {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Parses `name<TAB>class` or `name,class` lines. The classes are those met, sorted, unless
    /// `known` fixes them (then another class is refused). Every bad line is reported with its
    /// number (the first 20); any bad line refuses the whole text.
    pub fn parse(text: &str, known: Option<&[String]>) -> Result<Labelled, Vec<String>> {
        let mut errors = Vec::new();
        if text.len() > MAX_BYTES {
            return Err(vec![format!("the text is {} bytes; at most {MAX_BYTES}", text.len())]);
        }
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if rows.len() >= MAX_LINES {
                errors.push(format!("more than {MAX_LINES} names: the rest are left out"));
                break;
            }
            let Some((name, class)) = line.rsplit_once('\t').or_else(|| line.rsplit_once(',')) else {
                errors.push(format!("line {}: \"{}\" has no label (write name,label)", i + 1, clip(line)));
                continue;
            };
            let class = class.trim();
            match (encode(name), class.is_empty()) {
                (_, true) => errors.push(format!("line {}: the label is empty", i + 1)),
                (None, _) => errors.push(format!("line {}: the name is empty", i + 1)),
                (Some(symbols), false) => {
                    if let Some(k) = known.filter(|k| !k.iter().any(|c| c == class)) {
                        errors.push(format!("line {}: \"{}\" is not one of the classes ({})", i + 1, clip(class), k.join(", ")));
                    } else if class.chars().count() > 40 {
                        errors.push(format!("line {}: the label is longer than 40 characters", i + 1));
                    } else {
                        rows.push((symbols, class.to_string()));
                    }
                }
            }
        }
        if !errors.is_empty() {
            errors.truncate(20);
            return Err(errors);
        }
        if rows.is_empty() {
            return Err(vec!["no names: write one name,label per line".into()]);
        }
        let classes: Vec<String> = match known {
            Some(k) => k.to_vec(),
            None => {
                let mut c: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
                c.sort();
                c.dedup();
                c
            }
        };
        if !(MIN_CLASSES..=MAX_CLASSES).contains(&classes.len()) {
            return Err(vec![format!("{} classes: a classifier needs {MIN_CLASSES} to {MAX_CLASSES}", classes.len())]);
        }
        let (names, labels) = rows.into_iter().map(|(s, c)| (s, classes.iter().position(|k| *k == c).expect("a class met"))).unzip();
        Ok(Labelled { names, labels, classes })
    }
}

/// A line shortened for a message.
fn clip(s: &str) -> String {
    let short: String = s.chars().take(30).collect();
    if short.len() < s.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// Plain names, one per line (generation), encoded; empty lines skipped.
pub fn parse_plain(text: &str) -> Vec<Vec<usize>> {
    text.lines().take(MAX_LINES).filter_map(encode).collect()
}

/// Pasted plain names, one per line, checked like [`Labelled::parse`]: a line with a label or
/// longer than 100 characters is refused with its number (names are cut at [`MAX_LEN`]); empty
/// lines are skipped.
pub fn parse_plain_checked(text: &str) -> Result<Vec<Vec<usize>>, Vec<String>> {
    if text.len() > MAX_BYTES {
        return Err(vec![format!("the text is {} bytes; at most {MAX_BYTES}", text.len())]);
    }
    let mut errors = Vec::new();
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(symbols) = encode(line) else { continue };
        if names.len() >= MAX_LINES {
            errors.push(format!("more than {MAX_LINES} names: the rest are left out"));
            break;
        }
        if line.contains(',') || line.contains('\t') {
            errors.push(format!("line {}: \"{}\" has a label: this task takes one name per line", i + 1, clip(line)));
        } else if line.trim().chars().count() > 100 {
            errors.push(format!("line {}: longer than 100 characters", i + 1));
        } else {
            names.push(symbols);
        }
    }
    if !errors.is_empty() {
        errors.truncate(20);
        return Err(errors);
    }
    Ok(names)
}

/// Indices of a seeded split: `test_share` of all for test, then `val_share` of the rest for
/// validation, the remainder for training.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl Split {
    pub fn new(n: usize, test_share: f64, val_share: f64, seed: u64) -> Split {
        let mut order: Vec<usize> = (0..n).collect();
        Rng::fork(seed, 7).shuffle(&mut order);
        let test = ((n as f64 * test_share).round() as usize).min(n);
        let rest = n - test;
        let val = ((rest as f64 * val_share).round() as usize).min(rest);
        Split { test: order[..test].to_vec(), val: order[test..test + val].to_vec(), train: order[test + val..].to_vec() }
    }
}

/// A multinomial naive-Bayes classifier over character n-grams (n = 1, 2, 3, with `^` and `$`
/// marking the ends), Laplace smoothing — the classic baseline for names.
///
/// Each n-gram is one packed integer and each seen n-gram's per-class log-probabilities are
/// computed once at training: the RNN lab builds this baseline on every rebuild, and string
/// n-grams with logarithms per lookup took ~150 ms of it.
pub struct NaiveBayes {
    classes: usize,
    log_prior: Vec<f64>,
    /// Row of each seen n-gram in `log_p`.
    rows: HashMap<u32, usize>,
    /// `ln((count + 1) / (total_c + vocabulary + 1))`, `classes` values per seen n-gram.
    log_p: Vec<f64>,
    /// The same for an n-gram never seen in training.
    log_unseen: Vec<f64>,
}

/// Marks of a name's start and end among the symbols (every symbol is at most [`OOV`]).
const START: u32 = 0xFE;
const END: u32 = 0xFF;

/// A name's 1-, 2- and 3-grams, each packed as `n << 24 | a << 16 | b << 8 | c` (one-to-one).
fn grams(name: &[usize], out: &mut Vec<u32>) {
    out.clear();
    let text: Vec<u32> = std::iter::once(START).chain(name.iter().map(|&s| s.min(OOV) as u32)).chain(std::iter::once(END)).collect();
    for n in 1..=3 {
        for w in text.windows(n) {
            out.push(w.iter().fold(n as u32, |key, &s| key << 8 | s) << (8 * (3 - n)));
        }
    }
}

impl NaiveBayes {
    pub fn train(data: &Labelled, indices: &[usize]) -> NaiveBayes {
        let k = data.classes.len();
        let mut rows: HashMap<u32, usize> = HashMap::new();
        let mut counts: Vec<u32> = Vec::new();
        let mut totals = vec![0u64; k];
        let mut docs = vec![0u64; k];
        let mut gs = Vec::new();
        for &i in indices {
            let c = data.labels[i];
            docs[c] += 1;
            grams(&data.names[i], &mut gs);
            for &g in &gs {
                let next = rows.len();
                let row = *rows.entry(g).or_insert(next);
                if row == next {
                    counts.resize(counts.len() + k, 0);
                }
                counts[row * k + c] += 1;
                totals[c] += 1;
            }
        }
        let n = indices.len().max(1) as f64;
        let log_prior = docs.iter().map(|&d| ((d as f64 + 1.0) / (n + k as f64)).ln()).collect();
        let vocabulary = rows.len() as f64;
        let log = |count: u32, c: usize| ((count as f64 + 1.0) / (totals[c] as f64 + vocabulary + 1.0)).ln();
        let log_p = counts.iter().enumerate().map(|(j, &count)| log(count, j % k)).collect();
        let log_unseen = (0..k).map(|c| log(0, c)).collect();
        NaiveBayes { classes: k, log_prior, rows, log_p, log_unseen }
    }

    /// Log-probability scores per class (up to a constant).
    pub fn scores(&self, name: &[usize]) -> Vec<f64> {
        let k = self.classes;
        let mut s = self.log_prior.clone();
        let mut gs = Vec::new();
        grams(name, &mut gs);
        for g in gs {
            let row = self.rows.get(&g).map_or(&self.log_unseen[..], |&r| &self.log_p[r * k..(r + 1) * k]);
            for (score, l) in s.iter_mut().zip(row) {
                *score += l;
            }
        }
        s
    }

    pub fn predict(&self, name: &[usize]) -> usize {
        let s = self.scores(name);
        (0..self.classes).fold(0, |best, c| if s[c] > s[best] { c } else { best })
    }

    /// Accuracy on `indices`.
    pub fn accuracy(&self, data: &Labelled, indices: &[usize]) -> f32 {
        let right = indices.iter().filter(|&&i| self.predict(&data.names[i]) == data.labels[i]).count();
        right as f32 / indices.len().max(1) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_normalises_and_maps_the_rest_to_oov() {
        assert_eq!(decode(&encode("  Müller ").unwrap()), "Muller");
        assert_eq!(decode(&encode("O'Brien-Smith").unwrap()), "O'Brien-Smith");
        assert_eq!(decode(&encode("Zoë🙂9").unwrap()), "Zoe··");
        assert_eq!(encode(&"a".repeat(1000)).unwrap().len(), MAX_LEN);
        assert!(encode("   ").is_none() && encode("").is_none());
        assert_eq!((symbol('a'), symbol('Z'), symbol('-'), symbol('é')), (0, 51, 57, OOV));
    }

    #[test]
    fn pasted_data_is_checked_line_by_line() {
        let ok = Labelled::parse("Smith,English\n\nMüller\tGerman\nRossi,Italian\n", None).unwrap();
        assert_eq!(ok.classes, ["English", "German", "Italian"]);
        assert_eq!(ok.labels, [0, 1, 2]);
        let bad = Labelled::parse("Smith,English\nnolabel\n,German\nX,\n", None).unwrap_err();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].starts_with("line 2") && bad[1].starts_with("line 3") && bad[2].starts_with("line 4"), "{bad:?}");
        let known = ["English".to_string(), "German".to_string()];
        let unknown = Labelled::parse("Smith,English\nRossi,Klingon\n", Some(&known)).unwrap_err();
        assert!(unknown[0].contains("line 2") && unknown[0].contains("Klingon"), "{unknown:?}");
        assert!(Labelled::parse("", None).is_err());
        assert!(Labelled::parse("a,b\nc,b\n", None).is_err(), "one class is not a classification");
    }

    #[test]
    fn the_split_partitions_every_index_once() {
        let s = Split::new(1000, 0.15, 0.1, 3);
        assert_eq!((s.test.len(), s.val.len(), s.train.len()), (150, 85, 765));
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(s, Split::new(1000, 0.15, 0.1, 3));
        assert_ne!(s, Split::new(1000, 0.15, 0.1, 4));
    }

    #[test]
    fn naive_bayes_learns_a_tiny_hand_made_corpus() {
        // Class 0 names end in "ski", class 1 names start with "Mac".
        let text = "Kowalski,pl\nNowakowski,pl\nLewandowski,pl\nMacdonald,sc\nMacleod,sc\nMackenzie,sc\n";
        let data = Labelled::parse(text, None).unwrap();
        let nb = NaiveBayes::train(&data, &(0..6).collect::<Vec<_>>());
        assert_eq!(nb.accuracy(&data, &(0..6).collect::<Vec<_>>()), 1.0);
        assert_eq!(data.classes[nb.predict(&encode("Wisniewski").unwrap())], "pl");
        assert_eq!(data.classes[nb.predict(&encode("Macintosh").unwrap())], "sc");
    }

    #[test]
    fn the_shipped_files_have_their_known_values() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
        let names = TextFile::load_dir(TextSet::Names, &dir).unwrap();
        let data = Labelled::parse(&names.text, None).unwrap();
        assert_eq!((data.len(), data.classes.len()), (28_850, 17));
        assert_eq!(data.classes, LANGUAGES);
        assert_eq!((decode(&data.names[0]).as_str(), data.classes[data.labels[0]].as_str()), ("Ali", "Arabic"));
        let count = |c: &str| data.labels.iter().filter(|&&l| data.classes[l] == c).count();
        assert_eq!((count("Vietnamese"), count("Korean"), count("German")), (122, 480, 2000));
        assert!(data.names.iter().all(|n| !n.contains(&OOV)), "every shipped surname is in the vocabulary");
        let baby = parse_plain(&TextFile::load_dir(TextSet::Baby, &dir).unwrap().text);
        assert_eq!(baby.len(), 32_257);
        assert_eq!(baby[..3].iter().map(|n| decode(n)).collect::<Vec<_>>(), ["emma", "olivia", "ava"]);
        let play = TextFile::load_dir(TextSet::Play, &dir).unwrap().text;
        assert_eq!(play.len(), 1_158_412);
        assert!(play.starts_with("THE TRAGEDY OF CORIOLANUS\n"));
        let mut chars: Vec<char> = play.chars().collect();
        chars.sort();
        chars.dedup();
        assert_eq!(chars.into_iter().collect::<String>(), crate::data::play::CHARS, "the alphabet is the text's");
        // A gzip bomb or a corrupt file is refused with the set's name.
        let err = TextFile::parse(TextSet::Play, b"not gzip").unwrap_err();
        assert_eq!(parse_plain_checked("ava\n\n Émile \n"), Ok(vec![encode("ava").unwrap(), encode("Emile").unwrap()]));
        assert_eq!(parse_plain_checked("ava\nbo,English\nx").unwrap_err(), ["line 2: \"bo,English\" has a label: this task takes one name per line"]);
        assert_eq!(parse_plain_checked(&format!("ok\n{}", "y".repeat(101))).unwrap_err(), ["line 2: longer than 100 characters"]);
        assert_eq!(parse_plain_checked(&"z".repeat(60)).unwrap()[0].len(), MAX_LEN, "cut");
        assert!(err.starts_with("tiny Shakespeare: gzip"), "{err}");
    }
}
