//! Scalar maths used by the ops. Every transcendental function comes from the `libm` crate so
//! that native and wasm builds compute identical bits (the platform libm differs by an ulp here
//! and there, which would make a shared link replay differently in the CLI and the browser).
//! Rust never fuses `a * b + c` into an FMA on its own, so plain arithmetic is portable too.

#[inline]
pub fn exp(x: f32) -> f32 {
    libm::expf(x)
}

#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

/// tanh as a rational minimax approximation (the form Eigen uses): `x·P(x²)/Q(x²)` on
/// [−7.905, 7.905], clamped outside. Max abs error 4.4e-7 against the true tanh (checked
/// below), about 3× faster than `libm::tanhf` — tanh dominates a small tanh network's step —
/// and pure arithmetic without branches, so loops over it vectorise (SIMD128 in wasm) and give
/// identical bits on every target.
#[inline]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    let x = if x > CLAMP {
        CLAMP
    } else if x < -CLAMP {
        -CLAMP
    } else {
        x
    };
    let x2 = x * x;
    let p = ((((((-2.760_768_5e-16f32 * x2 + 2.000_188e-13) * x2 - 8.604_671_5e-11) * x2 + 5.122_297e-8) * x2 + 1.485_722_4e-5) * x2 + 6.372_619_3e-4) * x2
        + 4.893_524_6e-3)
        * x;
    let q = ((1.198_258_4e-6f32 * x2 + 1.185_347e-4) * x2 + 2.268_434_6e-3) * x2 + 4.893_525e-3;
    p / q
}

/// Numerically safe logistic function: never evaluates `exp` of a large positive number.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
#[inline]
pub fn softplus(x: f32) -> f32 {
    relu(x) + libm::log1pf(exp(-x.abs()))
}

/// `max(x, 0)` written as a branch: `f32::max` lowers to a libm call in wasm (NaN semantics).
#[inline]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

#[inline]
pub fn sin(x: f64) -> f64 {
    libm::sin(x)
}

#[inline]
pub fn cos(x: f64) -> f64 {
    libm::cos(x)
}

#[inline]
pub fn exp_f64(x: f64) -> f64 {
    libm::exp(x)
}

#[inline]
pub fn ln64(x: f64) -> f64 {
    libm::log(x)
}

#[inline]
pub fn powf(x: f32, y: f32) -> f32 {
    libm::powf(x, y)
}

/// Each byte as a pixel in [0, 1] (`b / 255`), standardised: `(b/255 − mean) / std` into `out`.
/// The reference for [`PixelTable`]; the bits are those of the two steps written out.
pub fn standardise_pixels(bytes: &[u8], (mean, std): (f32, f32), out: &mut [f32]) {
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = (b as f32 / 255.0 - mean) / std;
    }
}

/// [`standardise_pixels`] as a lookup: a byte has 256 values, so their 256 results are computed
/// once per mini-batch and each pixel is one load instead of two divisions (W2's batch of 64
/// MNIST images, timed in Chromium's worker: 171 → 106–128 µs; the rest is fetching the images
/// from memory). Every image mini-batch is gathered through it, so it lives in this speed-built
/// crate (the engine's data module is built for size). In wasm, 16 pixels at a time compute the
/// two steps in SIMD lanes instead (a lane rounds as the scalar operation: the table's bits):
/// 30 µs against the table's 125–134 µs for a batch of 64 images (Node's V8, 2026-12-04). On the
/// lead worker's serial path when several train.
pub struct PixelTable {
    table: [f32; 256],
    scaling: (f32, f32),
}

impl PixelTable {
    pub fn new(scaling: (f32, f32)) -> PixelTable {
        let mut table = [0.0f32; 256];
        let bytes: [u8; 256] = std::array::from_fn(|b| b as u8);
        standardise_pixels(&bytes, scaling, &mut table);
        PixelTable { table, scaling }
    }

    /// Row `k` of `out` (`size` values each, `count` rows) = `row(k)` standardised. Every row
    /// is touched first, one load per 64-byte line: a mini-batch's images lie scattered over the
    /// dataset (47 MB for MNIST's), and loads issued together wait for memory together instead
    /// of image after image (64 random MNIST images, natively: 33–36 → 22–23 µs a batch; in
    /// Chromium, where the lanes' divisions dominate, within the noise).
    pub fn fill_rows<'a>(&self, count: usize, size: usize, row: impl Fn(usize) -> &'a [u8], out: &mut [f32]) {
        let mut sum = 0u32;
        for k in 0..count {
            sum = row(k).iter().step_by(64).fold(sum, |s, &b| s.wrapping_add(u32::from(b)));
        }
        // Keeps the loads: their sum is otherwise unused.
        std::hint::black_box(sum);
        for (k, dst) in out.chunks_exact_mut(size.max(1)).take(count).enumerate() {
            self.fill(row(k), dst);
        }
    }

    /// `out[i]` = the standardised value of `bytes[i]`.
    pub fn fill(&self, bytes: &[u8], out: &mut [f32]) {
        let n = bytes.len().min(out.len());
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        let done = {
            use core::arch::wasm32::*;
            let whole = n / 16 * 16;
            let (k255, mean, std) = (f32x4_splat(255.0), f32x4_splat(self.scaling.0), f32x4_splat(self.scaling.1));
            let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr());
            for i in (0..whole).step_by(16) {
                // SAFETY: i + 16 <= whole <= both lengths (16 bytes read, 16 floats written).
                unsafe {
                    let b = v128_load(src.add(i) as *const v128);
                    let (lo, hi) = (u16x8_extend_low_u8x16(b), u16x8_extend_high_u8x16(b));
                    let quarters = [u32x4_extend_low_u16x8(lo), u32x4_extend_high_u16x8(lo), u32x4_extend_low_u16x8(hi), u32x4_extend_high_u16x8(hi)];
                    for (k, q) in quarters.into_iter().enumerate() {
                        let p = f32x4_div(f32x4_convert_u32x4(q), k255);
                        v128_store(dst.add(i + 4 * k) as *mut v128, f32x4_div(f32x4_sub(p, mean), std));
                    }
                }
            }
            whole
        };
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        let done = {
            let _ = self.scaling;
            0
        };
        for (o, &b) in out[done..n].iter_mut().zip(&bytes[done..n]) {
            *o = self.table[b as usize];
        }
    }
}

/// [`PixelTable::fill`] against [`standardise_pixels`] for every byte value, at lengths around
/// the 16-pixel lanes and an image's 784, and [`PixelTable::fill_rows`] on rows out of order, for
/// MNIST's and Fashion-MNIST's scalings: the mismatches (none expected). Run natively and in the wasm tests, where the lanes are.
pub fn pixel_mismatches() -> Vec<String> {
    let mut out = Vec::new();
    for scaling in [(0.1307, 0.3081), (0.2860, 0.3530), (0.0, 1.0)] {
        let table = PixelTable::new(scaling);
        for n in [0, 1, 15, 16, 17, 255, 256, 784, 1000] {
            let bytes: Vec<u8> = (0..n).map(|i| ((i * 97 + 13) % 256) as u8).collect();
            let mut want = vec![0.0f32; n];
            standardise_pixels(&bytes, scaling, &mut want);
            let mut got = vec![f32::NAN; n];
            table.fill(&bytes, &mut got);
            if got.iter().zip(&want).any(|(a, b)| a.to_bits() != b.to_bits()) {
                out.push(format!("scaling {scaling:?}, length {n}"));
            }
        }
        // Rows gathered out of order from a larger set, as a mini-batch is.
        let (size, rows) = (784, [4usize, 0, 2]);
        let set: Vec<u8> = (0..5 * size).map(|i| ((i * 31 + 7) % 256) as u8).collect();
        let mut want = vec![0.0f32; rows.len() * size];
        for (k, &r) in rows.iter().enumerate() {
            standardise_pixels(&set[r * size..(r + 1) * size], scaling, &mut want[k * size..(k + 1) * size]);
        }
        let mut got = vec![f32::NAN; rows.len() * size];
        table.fill_rows(rows.len(), size, |k| &set[rows[k] * size..(rows[k] + 1) * size], &mut got);
        if got.iter().zip(&want).any(|(a, b)| a.to_bits() != b.to_bits()) {
            out.push(format!("scaling {scaling:?}, rows {rows:?} of {size}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardise_pixels_gives_the_bits_of_scaling_then_standardising() {
        let bytes: Vec<u8> = (0..=255).collect();
        for (mean, std) in [(0.1307, 0.3081), (0.2860, 0.3530), (0.0, 1.0)] {
            let mut out = vec![f32::NAN; 256];
            standardise_pixels(&bytes, (mean, std), &mut out);
            for (&b, &o) in bytes.iter().zip(&out) {
                let p = b as f32 / 255.0;
                assert_eq!(o.to_bits(), ((p - mean) / std).to_bits(), "byte {b}");
            }
            assert_eq!(out[0], -mean / std);
            let mut looked_up = vec![f32::NAN; 256];
            PixelTable::new((mean, std)).fill(&bytes, &mut looked_up);
            assert_eq!(looked_up.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), out.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_pixel_table_gives_the_formula_bits() {
        assert_eq!(pixel_mismatches(), Vec::<String>::new());
    }

    #[test]
    fn tanh_is_within_5e7_of_the_true_tanh_and_odd() {
        let mut worst = 0.0f64;
        for i in -240_000..=240_000 {
            let x = i as f32 * 5e-5;
            worst = worst.max((tanh(x) as f64 - (x as f64).tanh()).abs());
            assert_eq!(tanh(-x), -tanh(x));
        }
        assert!(worst < 5e-7, "max error {worst}");
        assert!(tanh(100.0) <= 1.0 && tanh(100.0) > 0.999_999);
    }

    #[test]
    fn hand_values() {
        assert_eq!(relu(-2.0), 0.0);
        assert_eq!(relu(3.0), 3.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        assert!((sigmoid(-100.0)).abs() < 1e-30 + 1e-40);
        assert!((sigmoid(100.0) - 1.0).abs() < 1e-7);
        assert!((softplus(0.0) - 2f32.ln()).abs() < 1e-7);
        assert!((softplus(100.0) - 100.0).abs() < 1e-5);
        assert!((tanh(0.5) - 0.462_117_16).abs() < 1e-7);
    }

    /// Golden bits of `tanh`, `exp` and `ln` (computed once, natively). The web crate's wasm
    /// tests check the same table, so a maths change that would break CLI/browser agreement
    /// fails on both sides.
    #[test]
    fn golden_bits() {
        for &(x, t, e, l) in GOLDEN {
            assert_eq!(tanh(x).to_bits(), t, "tanh({x})");
            assert_eq!(exp(x).to_bits(), e, "exp({x})");
            assert_eq!(ln(x.abs()).to_bits(), l, "ln({x})");
        }
    }
}

/// `(x, tanh x, exp x, ln |x|)` as f32 bits (regenerate with `cargo run -p deeply-engine --example golden`).
pub const GOLDEN: &[(f32, u32, u32, u32)] = &[
    (0.5, 0x3eec9a9f, 0x3fd3094c, 0xbf317218),
    (-1.25, 0xbf59291f, 0x3e92b0c2, 0x3e647fbe),
    (3.0, 0x3f7ebbe8, 0x41a0af2e, 0x3f8c9f54),
    (0.1, 0x3dcc1ebb, 0x3f8d763e, 0xc0135d8e),
];
