//! Sequences, **batch-major**: a mini-batch of sequences of different lengths is `(n, t, f)`
//! (example, time step, feature), padded to the longest, with a `(n, t)` mask that is true on
//! real steps and false on padding. Losses ([`crate::loss::Target::Masked`]) and metrics
//! ([`masked_accuracy`]) count only the real steps, so padding never changes a result.

use crate::tensor::{self, Tensor};

/// A padded, one-hot mini-batch of symbol sequences.
#[derive(Clone, Debug, Default)]
pub struct SeqBatch {
    /// `(n, t, vocab)`: one-hot symbols; padding rows are all zero.
    pub x: Tensor,
    /// `n·t` entries, row-major: true on real steps.
    pub mask: Vec<bool>,
    /// Each sequence's length (≤ `t`).
    pub lengths: Vec<usize>,
}

impl SeqBatch {
    pub fn n(&self) -> usize {
        self.lengths.len()
    }

    /// Steps per sequence (the padded length).
    pub fn t(&self) -> usize {
        self.x.shape().get(1).copied().unwrap_or(0)
    }

    /// Fills the batch from `sequences` (symbols `< vocab`), padded to the longest and cut at
    /// `max_len`, reusing the allocations. A symbol `≥ vocab` is a caller's bug and panics.
    pub fn fill(&mut self, sequences: &[&[usize]], vocab: usize, max_len: usize) {
        let t = sequences.iter().map(|s| s.len().min(max_len)).max().unwrap_or(0);
        let n = sequences.len();
        tensor::resize(&mut self.x, &[n, t, vocab]);
        let x = tensor::slice_mut(&mut self.x);
        x.fill(0.0);
        self.mask.clear();
        self.mask.resize(n * t, false);
        self.lengths.clear();
        for (i, s) in sequences.iter().enumerate() {
            let len = s.len().min(max_len);
            self.lengths.push(len);
            for (step, &symbol) in s[..len].iter().enumerate() {
                assert!(symbol < vocab, "symbol {symbol} outside a vocabulary of {vocab}");
                x[(i * t + step) * vocab + symbol] = 1.0;
                self.mask[i * t + step] = true;
            }
        }
    }
}

/// The share of real (unmasked) rows of `(rows, classes)` scores whose largest score is at the
/// row's class; NaN when no row is real.
pub fn masked_accuracy(scores: &[f32], classes: &[usize], mask: &[bool]) -> f32 {
    let k = scores.len() / classes.len().max(1);
    let (mut right, mut counted) = (0usize, 0usize);
    for (i, (&c, &real)) in classes.iter().zip(mask).enumerate() {
        if !real {
            continue;
        }
        let row = &scores[i * k..(i + 1) * k];
        let best = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b }).0;
        right += (best == c) as usize;
        counted += 1;
    }
    if counted == 0 {
        f32::NAN
    } else {
        right as f32 / counted as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{Loss, Target};

    #[test]
    fn sequences_pad_batch_major_with_a_mask() {
        let mut b = SeqBatch::default();
        b.fill(&[&[2, 0, 1], &[1]], 3, 10);
        assert_eq!(b.x.shape(), &[2, 3, 3]);
        assert_eq!(b.lengths, [3, 1]);
        assert_eq!(b.mask, [true, true, true, true, false, false]);
        // Example 1, step 0 is symbol 1; its padded steps are all zero.
        assert_eq!(&b.x.data()[9..12], &[0.0, 1.0, 0.0]);
        assert!(b.x.data()[12..].iter().all(|&v| v == 0.0));
        // Cut at max_len.
        b.fill(&[&[0, 1, 2, 0, 1]], 3, 2);
        assert_eq!((b.t(), b.n(), b.lengths[0]), (2, 1, 2));
    }

    #[test]
    fn padding_changes_neither_loss_nor_gradient_nor_accuracy() {
        // Three real rows and two padded rows holding garbage scores.
        let real = [0.5f32, -1.0, 2.0, 0.1, 0.3, -0.2, 1.0, 1.5, -3.0];
        let classes_real = [2usize, 0, 1];
        let mut padded = real.to_vec();
        padded.extend([9.0, -9.0, 4.0, 7.0, 7.0, 7.0]);
        let classes = [2usize, 0, 1, 1, 0];
        let mask = [true, true, true, false, false];
        let (mut g_real, mut g_pad) = (tensor::zeros(&[0]), tensor::zeros(&[0]));
        let plain = Loss::Softmax.value_and_grad(&tensor::from_vec(&[3, 3], real.to_vec()), Target::Classes(&classes_real), &mut g_real);
        let masked = Loss::Softmax.value_and_grad(&tensor::from_vec(&[5, 3], padded.clone()), Target::Masked { classes: &classes, mask: &mask }, &mut g_pad);
        assert_eq!(plain.to_bits(), masked.to_bits());
        assert_eq!(&g_pad.data()[..9], g_real.data());
        assert!(g_pad.data()[9..].iter().all(|&v| v == 0.0), "no gradient into padding");
        // Hand value: row 0 = [0.5, −1, 2], class 2: ln(e^0.5 + e^−1 + e^2) − 2 = 0.24131…
        let row0 = Loss::Softmax.value(&tensor::from_vec(&[1, 3], real[..3].to_vec()), Target::Classes(&[2]));
        assert!((row0 - 0.241_311).abs() < 1e-5, "{row0}");
        assert_eq!(masked_accuracy(&padded, &classes, &mask), 2.0 / 3.0);
        assert!(masked_accuracy(&padded, &classes, &[false; 5]).is_nan());
        let none = Loss::Softmax.value(&tensor::from_vec(&[5, 3], padded), Target::Masked { classes: &classes, mask: &[false; 5] });
        assert_eq!(none, 0.0, "all padding: nothing to learn, no NaN");
    }

    #[test]
    fn the_masked_gradient_matches_finite_differences() {
        let mut scores = vec![0.3f32, -0.7, 1.1, 0.0, 0.5, -0.5, 2.0, -1.0, 0.25, 0.8, -0.1, 0.4];
        let classes = [1usize, 0, 2, 1];
        let mask = [true, false, true, true];
        let loss = |s: &[f32]| Loss::Softmax.value(&tensor::from_vec(&[4, 3], s.to_vec()), Target::Masked { classes: &classes, mask: &mask }) as f64;
        let mut g = tensor::zeros(&[0]);
        Loss::Softmax.value_and_grad(&tensor::from_vec(&[4, 3], scores.clone()), Target::Masked { classes: &classes, mask: &mask }, &mut g);
        for i in 0..scores.len() {
            let h = 1e-2f32;
            let v = scores[i];
            scores[i] = v + h;
            let up = loss(&scores);
            scores[i] = v - h;
            let down = loss(&scores);
            scores[i] = v;
            let numeric = (up - down) / (2.0 * h as f64);
            assert!((numeric - g.data()[i] as f64).abs() < 1e-3, "score {i}: {numeric} vs {}", g.data()[i]);
        }
    }
}
