//! The one source of randomness: a PCG32 stream (`rand_pcg`) seeded from the link's seed.
//! PCG produces the same `u32` sequence on every platform, and every derived draw below uses
//! only integer maths, IEEE-exact f32/f64 operations and `libm`, so a seed replays bit for bit
//! natively and in wasm (where `usize` is 32 bits: nothing here depends on its width).

use crate::math;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;

#[derive(Clone)]
pub struct Rng {
    inner: Pcg32,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { inner: Pcg32::seed_from_u64(seed) }
    }

    /// An independent stream for one purpose (init, shuffling, data), so that e.g. changing the
    /// number of training points does not change the initial weights.
    pub fn fork(seed: u64, stream: u64) -> Self {
        Rng { inner: Pcg32::new(seed, stream.wrapping_mul(2).wrapping_add(1)) }
    }

    pub fn next_u32(&mut self) -> u32 {
        self.inner.next_u32()
    }

    /// Uniform in [0, 1), 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_in(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform64(&mut self) -> f64 {
        let hi = (self.next_u32() >> 5) as u64; // 27 bits
        let lo = (self.next_u32() >> 6) as u64; // 26 bits
        ((hi << 26) | lo) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Standard normal by Box–Muller (one draw per call, computed in f64, portable via libm).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform64(); // (0, 1]: ln is finite
        let u2 = self.uniform64();
        let r = (-2.0 * math::ln64(u1)).sqrt();
        (r * math::cos(2.0 * std::f64::consts::PI * u2)) as f32
    }

    /// An integer in [0, bound) by multiply-shift (bias < bound / 2^32: irrelevant here).
    pub fn below(&mut self, bound: usize) -> usize {
        ((self.next_u32() as u64 * bound as u64) >> 32) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_known_first_values() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u32> = (0..5).map(|_| a.next_u32()).collect();
        let ys: Vec<u32> = (0..5).map(|_| b.next_u32()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(43).next_u32(), xs[0]);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let (mut s, mut s2, mut ns, mut ns2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for _ in 0..n {
            let u = r.uniform() as f64;
            assert!((0.0..1.0).contains(&u));
            s += u;
            s2 += u * u;
            let z = r.normal() as f64;
            ns += z;
            ns2 += z * z;
        }
        let n = n as f64;
        assert!((s / n - 0.5).abs() < 0.005);
        assert!((s2 / n - 1.0 / 3.0).abs() < 0.005);
        assert!((ns / n).abs() < 0.01);
        assert!((ns2 / n - 1.0).abs() < 0.02);
    }

    #[test]
    fn shuffle_is_a_permutation_and_forks_differ() {
        let mut r = Rng::new(1);
        let mut v: Vec<usize> = (0..100).collect();
        r.shuffle(&mut v);
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        assert_ne!(Rng::fork(1, 0).next_u32(), Rng::fork(1, 1).next_u32());
    }
}
