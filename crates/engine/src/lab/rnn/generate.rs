//! The generation task (many:many): a character language model on names. Each name is read as
//! `.` + name and must predict name + `.` (the dot starts and ends a name, as in makemore), so the
//! loss counts the end token. Baselines: bigram and trigram counts (add-one smoothing) on the
//! same split. Sampling: the model's next-character distribution at a temperature, from a
//! priming prefix, until the end token.

use super::view::{GenSample, NextChar};
use crate::data::names::{self, Split, MAX_LEN};
use crate::data::Source;
use crate::layer::Layer;
use crate::math;
use crate::rng::Rng;
use crate::sequential::Sequential;
use crate::tensor::{self, Mode, Tensor};
use std::collections::{HashMap, HashSet};

/// The start / end token.
pub fn dot() -> usize {
    names::symbol('.')
}

/// Names split 80 / 10 / 10 by the seed, each with the symbol it starts from: `.` — or, to
/// generate a name given its language (1:many), a start symbol per language after the
/// characters (`VOCAB + class`).
pub struct GenData {
    pub names: Vec<Vec<usize>>,
    pub starts: Vec<usize>,
    /// The languages of a labelled set (empty for plain names).
    pub classes: Vec<String>,
    pub split: Split,
    pub train_set: HashSet<Vec<usize>>,
}

impl GenData {
    pub fn new(names: Vec<Vec<usize>>, seed: u64) -> GenData {
        let starts = vec![dot(); names.len()];
        GenData::with_starts(names, starts, Vec::new(), seed)
    }

    /// Labelled names, each starting from its language's symbol.
    pub fn labelled(data: &names::Labelled, seed: u64) -> GenData {
        let starts = data.labels.iter().map(|&c| names::VOCAB + c).collect();
        GenData::with_starts(data.names.clone(), starts, data.classes.clone(), seed)
    }

    fn with_starts(names: Vec<Vec<usize>>, starts: Vec<usize>, classes: Vec<String>, seed: u64) -> GenData {
        // 10 % test, then 1/9 of the rest (10 % of all) for validation ("dev").
        let split = Split::new(names.len(), 0.1, 1.0 / 9.0, seed);
        let train_set = split.train.iter().map(|&i| names[i].clone()).collect();
        GenData { names, starts, classes, split, train_set }
    }
}

/// Some names as `(n, T, vocab)` one-hot inputs (`.` then the name), the next characters as
/// classes (`n·T`, the name then `.`) and a mask of the real steps.
pub struct Seqs<'a> {
    pub names: &'a [Vec<usize>],
    /// The start symbol of each name (by name index).
    pub starts: &'a [usize],
    pub indices: &'a [usize],
    pub vocab: usize,
}

impl Seqs<'_> {
    fn steps(&self, rows: &[usize]) -> usize {
        rows.iter().map(|&r| self.names[self.indices[r]].len().min(MAX_LEN) + 1).max().unwrap_or(0)
    }
}

impl Source for Seqs<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn has_classes(&self) -> bool {
        true
    }

    fn gather(&self, rows: &[usize], x: &mut Tensor, _y: &mut Tensor, classes: &mut Vec<usize>) {
        let t = self.steps(rows);
        let v = self.vocab;
        tensor::resize(x, &[rows.len(), t, v]);
        let xs = tensor::slice_mut(x);
        xs.fill(0.0);
        classes.clear();
        classes.resize(rows.len() * t, 0);
        for (i, &r) in rows.iter().enumerate() {
            let name = &self.names[self.indices[r]];
            let len = name.len().min(MAX_LEN);
            for s in 0..=len {
                let input = if s == 0 { self.starts[self.indices[r]] } else { name[s - 1] };
                xs[(i * t + s) * v + input.min(v - 1)] = 1.0;
                classes[i * t + s] = if s < len { name[s] } else { dot() };
            }
        }
    }

    fn mask(&self, rows: &[usize], mask: &mut Vec<bool>) -> bool {
        let t = self.steps(rows);
        mask.clear();
        mask.resize(rows.len() * t, false);
        for (i, &r) in rows.iter().enumerate() {
            let len = self.names[self.indices[r]].len().min(MAX_LEN);
            mask[i * t..i * t + len + 1].iter_mut().for_each(|m| *m = true);
        }
        true
    }
}

/// Mean negative log-likelihood per character (end token included) of `names[indices]`, in
/// nats, evaluated in chunks by the caller: returns (sum, count) for `indices`.
pub fn nll_sum(model: &mut Sequential, data: &GenData, indices: &[usize], vocab: usize, x: &mut Tensor) -> (f64, usize) {
    let seqs = Seqs { names: &data.names, starts: &data.starts, indices, vocab };
    let rows: Vec<usize> = (0..indices.len()).collect();
    let (mut y, mut classes, mut mask) = (tensor::zeros(&[0]), Vec::new(), Vec::new());
    seqs.gather(&rows, x, &mut y, &mut classes);
    seqs.mask(&rows, &mut mask);
    let out = model.forward(x, Mode::Eval);
    let mut sum = 0.0f64;
    let mut count = 0;
    // The output predicts characters only (inputs may also hold start symbols).
    for ((row, &c), &real) in tensor::slice(out).chunks(names::VOCAB).zip(&classes).zip(&mask) {
        if real {
            sum -= log_softmax_at(row, c) as f64;
            count += 1;
        }
    }
    (sum, count)
}

fn log_softmax_at(row: &[f32], c: usize) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&v| math::exp(v - max)).sum();
    row[c] - max - math::ln(sum)
}

/// An n-gram model (the previous `n − 1` characters, `.`-padded) with add-one smoothing over the
/// characters seen in training: its mean NLL per character on `eval`.
pub fn ngram_nll(names: &[Vec<usize>], train: &[usize], eval: &[usize], n: usize) -> f32 {
    let d = dot();
    let context = |name: &[usize], s: usize| -> Vec<usize> { (0..n - 1).map(|k| if s + k + 1 >= n { name[s + k + 1 - n] } else { d }).collect() };
    let mut counts: HashMap<Vec<usize>, HashMap<usize, u32>> = HashMap::new();
    let mut symbols: HashSet<usize> = HashSet::from([d]);
    for &i in train {
        let name = &names[i];
        for s in 0..=name.len() {
            let next = if s < name.len() { name[s] } else { d };
            symbols.insert(next);
            *counts.entry(context(name, s)).or_default().entry(next).or_default() += 1;
        }
    }
    let k = symbols.len() as f64;
    let (mut sum, mut count) = (0.0f64, 0usize);
    for &i in eval {
        let name = &names[i];
        for s in 0..=name.len() {
            let next = if s < name.len() { name[s] } else { d };
            let row = counts.get(&context(name, s));
            let total: u32 = row.map_or(0, |r| r.values().sum());
            let c = row.and_then(|r| r.get(&next)).copied().unwrap_or(0);
            sum -= ((c as f64 + 1.0) / (total as f64 + k)).ln();
            count += 1;
        }
    }
    (sum / count.max(1) as f64) as f32
}

/// Samples one name: the `start` symbol + `prime`, then characters drawn from the model at
/// `temperature` until `.` or [`MAX_LEN`]; with each drawn step's five likeliest next characters.
#[allow(clippy::too_many_arguments)]
pub fn sample(
    model: &mut Sequential,
    start: usize,
    prime: &[usize],
    temperature: f32,
    vocab: usize,
    rng: &mut Rng,
    train_set: &HashSet<Vec<usize>>,
) -> GenSample {
    let d = dot();
    let mut text: Vec<usize> = prime.to_vec();
    let mut steps = Vec::new();
    let mut x = tensor::zeros(&[0]);
    while text.len() < MAX_LEN {
        let t = text.len() + 1;
        tensor::resize(&mut x, &[1, t, vocab]);
        let xs = tensor::slice_mut(&mut x);
        xs.fill(0.0);
        for (s, &c) in std::iter::once(&start).chain(&text).enumerate() {
            xs[s * vocab + c.min(vocab - 1)] = 1.0;
        }
        let out = model.forward(&x, Mode::Eval);
        let k = names::VOCAB;
        let last = &tensor::slice(out)[(t - 1) * k..t * k];
        let scaled: Vec<f32> = last.iter().map(|&v| v / temperature).collect();
        let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = scaled.iter().map(|&v| math::exp(v - max)).collect();
        let total: f32 = exps.iter().sum();
        let probs: Vec<f32> = exps.iter().map(|&e| e / total).collect();
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let top = order.iter().take(5).map(|&c| NextChar { ch: names::character(c).to_string(), p: probs[c] }).collect();
        let mut u = rng.uniform();
        let mut next = order[0];
        for (c, &p) in probs.iter().enumerate() {
            if u < p {
                next = c;
                break;
            }
            u -= p;
        }
        steps.push(top);
        if next == d {
            break;
        }
        text.push(next);
    }
    let is_new = !train_set.contains(&text);
    GenSample { name: names::decode(&text), is_new, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_predict_the_next_character_and_the_end() {
        let names = vec![names::encode("ava").unwrap(), names::encode("bo").unwrap()];
        let s = Seqs { names: &names, starts: &[dot(), dot()], indices: &[0, 1], vocab: names::VOCAB };
        let (mut x, mut y, mut classes, mut mask) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new(), Vec::new());
        s.gather(&[0, 1], &mut x, &mut y, &mut classes);
        assert!(s.mask(&[0, 1], &mut mask));
        assert_eq!(x.shape(), &[2, 4, names::VOCAB]);
        let d = dot();
        let sym = |c| names::symbol(c);
        assert_eq!(classes, [sym('a'), sym('v'), sym('a'), d, sym('b'), sym('o'), d, 0]);
        assert_eq!(mask, [true, true, true, true, true, true, true, false]);
        // Inputs: . a v a / . b o (pad).
        let hot = |i: usize, t: usize| x.data()[(i * 4 + t) * names::VOCAB..(i * 4 + t + 1) * names::VOCAB].iter().position(|&v| v == 1.0);
        assert_eq!((hot(0, 0), hot(0, 1), hot(1, 2), hot(1, 3)), (Some(d), Some(sym('a')), Some(sym('o')), None));
    }

    #[test]
    fn ngram_baselines_on_a_tiny_corpus() {
        // Always "ab": a bigram model learns it almost surely; a unigram one cannot.
        let names: Vec<Vec<usize>> = (0..50).map(|_| names::encode("ab").unwrap()).collect();
        let all: Vec<usize> = (0..50).collect();
        let bigram = ngram_nll(&names, &all, &all, 2);
        let unigram = ngram_nll(&names, &all, &all, 1);
        assert!(bigram < 0.1 && unigram > 1.0, "{bigram} {unigram}");
    }
}
