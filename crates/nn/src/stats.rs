//! Compact summaries of tensors for snapshots: histogram bins, mean, std, L2 norm.

use serde::{Deserialize, Serialize};

pub const BINS: usize = 24;

/// Σ `f(v)` over `values`, in 4 interleaved partial sums (lane l takes the values l, l + 4, …)
/// added as ((s₀ + s₁) + (s₂ + s₃)) at the end: the same order on every target, so a browser and
/// the CLI agree bit for bit. One running sum would make every addition wait for the one before
/// (f64 addition may not be reordered by the compiler); four run side by side, in SIMD lanes
/// where there are any. For the statistics a step's record takes of every weight and gradient,
/// on the lead worker's serial path.
pub fn lane_sum(values: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut s = [0.0f64; 4];
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (s, &v) in s.iter_mut().zip(c) {
            *s += f(v);
        }
    }
    for (s, &v) in s.iter_mut().zip(rest) {
        *s += f(v);
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

/// [`lane_sum`] of `f(i)` for `i` in `0..n` (terms that need several arrays at one index).
pub fn lane_sum_by(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let mut s = [0.0f64; 4];
    let whole = n - n % 4;
    for i in (0..whole).step_by(4) {
        for l in 0..4 {
            s[l] += f(i + l);
        }
    }
    for i in whole..n {
        s[i - whole] += f(i);
    }
    (s[0] + s[1]) + (s[2] + s[3])
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    pub count: usize,
    pub mean: f32,
    pub std: f32,
    pub l2: f32,
    pub min: f32,
    pub max: f32,
    /// Counts in `BINS` equal bins spanning `[min, max]`.
    pub bins: Vec<u32>,
    /// Values that were NaN or infinite (left out of everything else).
    pub non_finite: usize,
}

impl TensorStats {
    /// One pass for the moments and the range, one for the bins. Snapshots summarise every
    /// weight, activation and gradient many times a second, so both passes are written to
    /// vectorise: the sums run in `LANES` interleaved partial sums (lane l takes the values
    /// l, l + LANES, …; added in a fixed order at the end, the same on every target), the
    /// non-finite values are masked rather than branched around, and the bins multiply by a scale
    /// computed once rather than divide per value.
    pub fn of(values: &[f32]) -> Self {
        const LANES: usize = 4;
        let (mut s, mut s2) = ([0.0f64; LANES], [0.0f64; LANES]);
        let (mut lo, mut hi, mut n) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES], [0usize; LANES]);
        let mut lane = |l: usize, v: f32| {
            let ok = v.is_finite();
            let x = if ok { v as f64 } else { 0.0 };
            s[l] += x;
            s2[l] += x * x;
            lo[l] = if ok && v < lo[l] { v } else { lo[l] };
            hi[l] = if ok && v > hi[l] { v } else { hi[l] };
            n[l] += ok as usize;
        };
        let chunks = values.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for (l, &v) in c.iter().enumerate() {
                lane(l, v);
            }
        }
        for (l, &v) in rest.iter().enumerate() {
            lane(l, v);
        }
        let n: usize = n.iter().sum();
        let bad = values.len() - n;
        if n == 0 {
            return TensorStats { non_finite: bad, bins: vec![0; BINS], ..Default::default() };
        }
        let (s, s2) = ((s[0] + s[1]) + (s[2] + s[3]), (s2[0] + s2[1]) + (s2[2] + s2[3]));
        let lo = lo.into_iter().fold(f32::INFINITY, f32::min);
        let hi = hi.into_iter().fold(f32::NEG_INFINITY, f32::max);
        let mean = s / n as f64;
        let var = (s2 / n as f64 - mean * mean).max(0.0);
        let mut bins = vec![0u32; BINS];
        let width = (hi - lo) as f64;
        if width > 0.0 {
            // Four histograms, one per lane, summed at the end: a run of values in one bin would
            // otherwise wait on each increment's store before the next one's load.
            let scale = BINS as f64 / width;
            let mut sub = [[0u32; BINS]; LANES];
            let bin = |v: f32| (((v - lo) as f64 * scale) as usize).min(BINS - 1);
            let chunks = values.chunks_exact(LANES);
            let rest = chunks.remainder();
            for c in chunks {
                for (l, &v) in c.iter().enumerate() {
                    sub[l][bin(v)] += v.is_finite() as u32;
                }
            }
            for &v in rest {
                sub[0][bin(v)] += v.is_finite() as u32;
            }
            for (b, count) in bins.iter_mut().enumerate() {
                *count = sub.iter().map(|h| h[b]).sum();
            }
        } else {
            bins[BINS / 2] = n as u32;
        }
        TensorStats { count: n, mean: mean as f32, std: var.sqrt() as f32, l2: s2.sqrt() as f32, min: lo, max: hi, bins, non_finite: bad }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_values() {
        let st = TensorStats::of(&[1.0, 2.0, 3.0, 4.0, f32::NAN]);
        assert_eq!((st.count, st.non_finite), (4, 1));
        assert_eq!((st.mean, st.min, st.max), (2.5, 1.0, 4.0));
        assert!((st.std - 1.118_034).abs() < 1e-6);
        assert!((st.l2 - 30f32.sqrt()).abs() < 1e-6);
        assert_eq!(st.bins.iter().sum::<u32>(), 4);
        assert_eq!((st.bins[0], st.bins[BINS - 1]), (1, 1));
        let flat = TensorStats::of(&[0.0; 3]);
        assert_eq!(flat.bins[BINS / 2], 3);
        let none = TensorStats::of(&[f32::INFINITY, f32::NAN]);
        assert_eq!((none.count, none.non_finite, none.bins.iter().sum::<u32>()), (0, 2, 0));
    }

    #[test]
    fn lane_sum_adds_four_interleaved_partial_sums() {
        assert_eq!(lane_sum(&[], |v| v as f64), 0.0);
        assert_eq!(lane_sum(&[1.0, 2.0, 3.0], |v| v as f64 * 10.0), 60.0);
        // Lane 0 takes 1e16 and 1.0, lane 1 takes -1e16: (1e16 + 1) rounds to 1e16 in f64, so
        // the sum is 0 — a plain left-to-right sum would give 1 (1e16 - 1e16 + 1).
        assert_eq!(lane_sum(&[1e16, -1e16, 0.0, 0.0, 1.0], |v| v as f64), 0.0);
        let values: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.37).sin()).collect();
        let plain: f64 = values.iter().map(|&v| v as f64 * v as f64).sum();
        assert!((lane_sum(&values, |v| v as f64 * v as f64) - plain).abs() < 1e-9 * plain);
        for n in [0, 1, 3, 4, 5, 1003] {
            let by = lane_sum_by(n, |i| values[i] as f64 * 3.0);
            assert_eq!(by.to_bits(), lane_sum(&values[..n], |v| v as f64 * 3.0).to_bits(), "{n}");
        }
    }

    /// The lanes and the scale agree with the plain one-value-at-a-time definition: the same
    /// counts, range and bins, the moments to f64 rounding.
    #[test]
    fn equals_the_plain_definition() {
        let mut rng = crate::rng::Rng::new(17);
        for len in [1, 3, 4, 5, 1000, 4099] {
            let values: Vec<f32> = (0..len)
                .map(|i| match i % 97 {
                    13 => f32::NAN,
                    41 => f32::NEG_INFINITY,
                    _ => rng.normal() * 3.0 + 1.0,
                })
                .collect();
            let finite: Vec<f64> = values.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
            let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let mut bins = vec![0u32; BINS];
            for &v in &finite {
                let b = if hi > lo { (((v as f32 - lo as f32) as f64 / (hi - lo)) * BINS as f64) as usize } else { BINS / 2 };
                bins[b.min(BINS - 1)] += 1;
            }
            let mean = finite.iter().sum::<f64>() / finite.len() as f64;
            let l2 = finite.iter().map(|v| v * v).sum::<f64>().sqrt();
            let st = TensorStats::of(&values);
            assert_eq!((st.count, st.non_finite), (finite.len(), len - finite.len()), "{len}");
            assert_eq!((st.min, st.max), (lo as f32, hi as f32), "{len}");
            assert_eq!(st.bins, bins, "{len}");
            assert!((st.mean as f64 - mean).abs() <= 1e-6 * (1.0 + mean.abs()) && (st.l2 as f64 - l2).abs() <= 1e-6 * l2, "{len}");
        }
    }
}
