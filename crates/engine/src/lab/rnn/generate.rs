//! The generation task (many:many): a character language model on names. Each name is read as
//! `.` + name and must predict name + `.` (the dot starts and ends a name, as in makemore), so the
//! loss counts the end token. Baselines: bigram and trigram counts (add-one smoothing) on the
//! same split. Sampling: the model's next-character distribution at a temperature, from a
//! priming prefix, until the end token.
//!
//! Shakespeare is one stream of text instead ([`GenData::play`]): windows whose every next
//! character is a target (no start or end token), and samples are passages of a fixed length,
//! drawn by stepping the trained cell by hand so the state carries over the whole passage.

use super::view::{GenSample, NextChar};
use crate::data::names::{self, Split, MAX_LEN};
use crate::data::play;
use crate::data::Source;
use crate::layer::Layer;
use crate::math;
use crate::ops::{Dense, Rnn};
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
    /// Windows of a stream of text (`names` holds them), not names.
    pub stream: bool,
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
        GenData { names, starts, classes, split, train_set, stream: false }
    }

    /// Shakespeare's plays as windows of symbols ([`play::windows`]), split in order.
    pub fn play(text: &str) -> GenData {
        let names = play::windows(&play::encode(text));
        let split = play::ordered_split(names.len());
        GenData { starts: Vec::new(), classes: Vec::new(), split, train_set: HashSet::new(), stream: true, names }
    }

    /// The symbols the network predicts.
    pub fn outputs(&self) -> usize {
        if self.stream {
            play::VOCAB
        } else {
            names::VOCAB
        }
    }

    /// Sequences over `indices` to train or evaluate on.
    pub fn seqs<'a>(&'a self, indices: &'a [usize], vocab: usize) -> Seqs<'a> {
        Seqs { names: &self.names, starts: &self.starts, indices, vocab, stream: self.stream }
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
    /// Windows of a stream: inputs all but the last symbol, targets all but the first.
    pub stream: bool,
}

impl Seqs<'_> {
    fn steps(&self, rows: &[usize]) -> usize {
        rows.iter().map(|&r| self.len(r)).max().unwrap_or(0)
    }

    /// Time steps of row `r`.
    fn len(&self, r: usize) -> usize {
        let seq = &self.names[self.indices[r]];
        if self.stream {
            seq.len().saturating_sub(1).min(MAX_LEN)
        } else {
            seq.len().min(MAX_LEN) + 1
        }
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
            if self.stream {
                for s in 0..self.len(r) {
                    xs[(i * t + s) * v + name[s].min(v - 1)] = 1.0;
                    classes[i * t + s] = name[s + 1];
                }
                continue;
            }
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
            mask[i * t..i * t + self.len(r)].iter_mut().for_each(|m| *m = true);
        }
        true
    }
}

/// Mean negative log-likelihood per character (end token included) of `names[indices]`, in
/// nats, evaluated in chunks by the caller: returns (sum, count) for `indices`.
pub fn nll_sum(model: &mut Sequential, data: &GenData, indices: &[usize], vocab: usize, x: &mut Tensor) -> (f64, usize) {
    let seqs = data.seqs(indices, vocab);
    let rows: Vec<usize> = (0..indices.len()).collect();
    let (mut y, mut classes, mut mask) = (tensor::zeros(&[0]), Vec::new(), Vec::new());
    seqs.gather(&rows, x, &mut y, &mut classes);
    seqs.mask(&rows, &mut mask);
    let out = model.forward(x, Mode::Eval);
    let mut sum = 0.0f64;
    let mut count = 0;
    // The output predicts characters only (inputs may also hold start symbols).
    for ((row, &c), &real) in tensor::slice(out).chunks(data.outputs()).zip(&classes).zip(&mask) {
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
/// characters seen in training: its mean NLL per character on `eval`. Names are read as
/// `.name.`; the windows of a stream (`stream`) as they are, every symbol after the first a target
/// (the context stops at the window's start, as the network's does).
pub fn ngram_nll(names: &[Vec<usize>], train: &[usize], eval: &[usize], n: usize, stream: bool) -> f32 {
    let d = dot();
    let padded = |name: &[usize]| -> Vec<usize> {
        if stream {
            name.to_vec()
        } else {
            std::iter::once(d).chain(name.iter().copied()).chain([d]).collect()
        }
    };
    // Before the sequence: `.` for names (as their start), a symbol of its own for windows.
    let pad = if stream { usize::MAX } else { d };
    let context = |seq: &[usize], j: usize| -> Vec<usize> { (j + 1..j + n).map(|p| if p >= n { seq[p - n] } else { pad }).collect() };
    let mut counts: HashMap<Vec<usize>, HashMap<usize, u32>> = HashMap::new();
    let mut symbols: HashSet<usize> = if stream { HashSet::new() } else { HashSet::from([d]) };
    for &i in train {
        let seq = padded(&names[i]);
        for j in 1..seq.len() {
            symbols.insert(seq[j]);
            *counts.entry(context(&seq, j)).or_default().entry(seq[j]).or_default() += 1;
        }
    }
    let k = symbols.len() as f64;
    let (mut sum, mut count) = (0.0f64, 0usize);
    for &i in eval {
        let seq = padded(&names[i]);
        for j in 1..seq.len() {
            let next = seq[j];
            let row = counts.get(&context(&seq, j));
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
        let (next, top) = draw(&tensor::slice(out)[(t - 1) * k..t * k], temperature, rng, names::character);
        steps.push(top);
        if next == d {
            break;
        }
        text.push(next);
    }
    let is_new = !train_set.contains(&text);
    GenSample { name: names::decode(&text), is_new, steps }
}

/// Draws the next symbol from `logits` at `temperature`; with the five likeliest and their
/// probabilities.
fn draw(logits: &[f32], temperature: f32, rng: &mut Rng, character: fn(usize) -> char) -> (usize, Vec<NextChar>) {
    let scaled: Vec<f32> = logits.iter().map(|&v| v / temperature).collect();
    let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scaled.iter().map(|&v| math::exp(v - max)).collect();
    let total: f32 = exps.iter().sum();
    let probs: Vec<f32> = exps.iter().map(|&e| e / total).collect();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let top = order.iter().take(5).map(|&c| NextChar { ch: character(c).to_string(), p: probs[c] }).collect();
    let mut u = rng.uniform();
    let mut next = order[0];
    for (c, &p) in probs.iter().enumerate() {
        if u < p {
            next = c;
            break;
        }
        u -= p;
    }
    (next, top)
}

/// The trained network stepped by hand, one character at a time, its state carried along:
/// `h ← tanh(b + W_xh[x] + h·W_hh)`, `logits = h·W + b_out` (the op's sums, in its order).
pub struct Stepper<'a> {
    rnn: &'a Rnn,
    out: &'a Dense,
    pub h: Vec<f32>,
    z: Vec<f32>,
    pub logits: Vec<f32>,
}

impl<'a> Stepper<'a> {
    pub fn new(model: &'a Sequential) -> Option<Stepper<'a>> {
        let rnn: &Rnn = model.tapped("rnn")?;
        let out: &Dense = model.tapped("output")?;
        Some(Stepper { h: tensor::slice(&rnn.h0).to_vec(), z: vec![0.0; rnn.hidden], logits: vec![0.0; out.outputs], rnn, out })
    }

    /// Reads symbol `x`; the logits of the next one are then in `logits`.
    pub fn step(&mut self, x: usize) {
        let (h, r) = (self.rnn.hidden, self.rnn);
        let w_xh = tensor::slice(&r.w_xh);
        self.z.copy_from_slice(tensor::slice(&r.b));
        self.z.iter_mut().zip(&w_xh[x.min(r.inputs - 1) * h..][..h]).for_each(|(z, &w)| *z += w);
        if r.recurrent {
            let w_hh = tensor::slice(&r.w_hh);
            for (k, &a) in self.h.iter().enumerate() {
                self.z.iter_mut().zip(&w_hh[k * h..(k + 1) * h]).for_each(|(z, &w)| *z += a * w);
            }
        }
        self.h.iter_mut().zip(&self.z).for_each(|(h, &z)| *h = math::tanh(z));
        let (o, w) = (self.out.outputs, tensor::slice(&self.out.w));
        self.logits.copy_from_slice(tensor::slice(&self.out.b));
        for (k, &a) in self.h.iter().enumerate() {
            self.logits.iter_mut().zip(&w[k * o..(k + 1) * o]).for_each(|(l, &w)| *l += a * w);
        }
    }
}

/// A passage of Shakespeare: the network reads a newline (a speech starts on a new line) and
/// `prime`, then draws [`play::PASSAGE`] characters at `temperature`, each step's five likeliest
/// kept; the passage is the prime and what was drawn.
pub fn sample_passage(model: &Sequential, prime: &[usize], temperature: f32, rng: &mut Rng) -> GenSample {
    let Some(mut net) = Stepper::new(model) else { return GenSample::default() };
    net.step(play::symbol('\n'));
    prime.iter().for_each(|&c| net.step(c));
    let mut text = prime.to_vec();
    let mut steps = Vec::with_capacity(play::PASSAGE);
    for _ in 0..play::PASSAGE {
        let (next, top) = draw(&net.logits, temperature, rng, play::character);
        steps.push(top);
        text.push(next);
        net.step(next);
    }
    // Passages are not compared with the training text (every one would be "new").
    GenSample { name: play::decode(&text), is_new: true, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_predict_the_next_character_and_the_end() {
        let names = vec![names::encode("ava").unwrap(), names::encode("bo").unwrap()];
        let s = Seqs { names: &names, starts: &[dot(), dot()], indices: &[0, 1], vocab: names::VOCAB, stream: false };
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
    fn windows_of_a_stream_predict_every_next_symbol() {
        let data = GenData::play("ab\ncd");
        assert_eq!(data.names, [play::encode("ab\ncd")]);
        let s = data.seqs(&[0], play::VOCAB);
        let (mut x, mut y, mut classes, mut mask) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new(), Vec::new());
        s.gather(&[0], &mut x, &mut y, &mut classes);
        assert!(s.mask(&[0], &mut mask));
        assert_eq!(x.shape(), &[1, 4, play::VOCAB]);
        assert_eq!(classes, play::encode("b\ncd"));
        assert_eq!(mask, [true; 4]);
        let hot: Vec<usize> = tensor::slice(&x).chunks(play::VOCAB).map(|r| r.iter().position(|&v| v == 1.0).unwrap()).collect();
        assert_eq!(hot, play::encode("ab\nc"));
    }

    #[test]
    fn the_stepper_equals_the_network_over_a_sequence() {
        use crate::lab::rnn::RnnConfig;
        let c = RnnConfig { hidden: 17, gain: 1.5, ..RnnConfig::shakespeare() };
        let mut model = c.build_model(0, &mut Rng::new(3));
        let text = play::encode("First Citizen:\nBefore we");
        let mut x = tensor::zeros(&[1, text.len(), play::VOCAB]);
        for (t, &s) in text.iter().enumerate() {
            tensor::slice_mut(&mut x)[t * play::VOCAB + s] = 1.0;
        }
        let out = tensor::slice(model.forward(&x, Mode::Eval)).to_vec();
        let mut net = Stepper::new(&model).unwrap();
        for (t, &s) in text.iter().enumerate() {
            net.step(s);
            for (a, b) in net.logits.iter().zip(&out[t * play::VOCAB..(t + 1) * play::VOCAB]) {
                assert!((a - b).abs() <= 1e-5, "step {t}: {a} vs {b}");
            }
        }
        let passage = sample_passage(&model, &play::encode("ROMEO:"), 1.0, &mut Rng::new(1));
        assert_eq!((passage.name.chars().count(), passage.steps.len()), (6 + play::PASSAGE, play::PASSAGE));
        assert!(passage.name.starts_with("ROMEO:"));
        assert_eq!(passage, sample_passage(&model, &play::encode("ROMEO:"), 1.0, &mut Rng::new(1)), "seeded");
    }

    #[test]
    fn ngram_baselines_on_a_tiny_corpus() {
        // Always "ab": a bigram model learns it almost surely; a unigram one cannot.
        let names: Vec<Vec<usize>> = (0..50).map(|_| names::encode("ab").unwrap()).collect();
        let all: Vec<usize> = (0..50).collect();
        let bigram = ngram_nll(&names, &all, &all, 2, false);
        let unigram = ngram_nll(&names, &all, &all, 1, false);
        assert!(bigram < 0.1 && unigram > 1.0, "{bigram} {unigram}");
        // A stream "abcabc…": after "ab" always "c" (trigram); a bigram is as sure, a unigram not.
        let text = play::windows(&play::encode(&"abc".repeat(100)));
        let all: Vec<usize> = (0..text.len()).collect();
        let (tri, uni) = (ngram_nll(&text, &all, &all, 3, true), ngram_nll(&text, &all, &all, 1, true));
        assert!(tri < 0.1 && (uni - 3f32.ln()).abs() < 0.05, "{tri} {uni}");
    }
}
