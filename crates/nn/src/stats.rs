//! Compact summaries of tensors for snapshots: histogram bins, mean, std, L2 norm.

use serde::{Deserialize, Serialize};

pub const BINS: usize = 24;

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
    pub fn of(values: &[f32]) -> Self {
        let (mut n, mut s, mut s2, mut lo, mut hi, mut bad) = (0usize, 0.0f64, 0.0f64, f32::INFINITY, f32::NEG_INFINITY, 0);
        for &v in values {
            if !v.is_finite() {
                bad += 1;
                continue;
            }
            n += 1;
            s += v as f64;
            s2 += v as f64 * v as f64;
            if v < lo {
                lo = v;
            }
            if v > hi {
                hi = v;
            }
        }
        if n == 0 {
            return TensorStats { non_finite: bad, bins: vec![0; BINS], ..Default::default() };
        }
        let mean = s / n as f64;
        let var = (s2 / n as f64 - mean * mean).max(0.0);
        let mut bins = vec![0u32; BINS];
        let width = (hi - lo) as f64;
        for &v in values.iter().filter(|v| v.is_finite()) {
            let b = if width > 0.0 { (((v - lo) as f64 / width) * BINS as f64) as usize } else { BINS / 2 };
            bins[b.min(BINS - 1)] += 1;
        }
        TensorStats {
            count: n,
            mean: mean as f32,
            std: var.sqrt() as f32,
            l2: s2.sqrt() as f32,
            min: lo,
            max: hi,
            bins,
            non_finite: bad,
        }
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
    }
}
