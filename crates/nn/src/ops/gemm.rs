//! A small matrix product for the im2col convolution, written out rather than borrowed.
//!
//! ```text
//! C (m×n) = C₀ + A (m×k) · B (k×n)      all row-major, contiguous
//! C[i,j]  = (((C₀[i,j] + A[i,0]·B[0,j]) + A[i,1]·B[1,j]) + …)     summed over k in order
//! ```
//! Why not ndarray's GEMM: it picks FMA kernels at run time on x86 but cannot on wasm, so the
//! native CLI and the browser would round differently. Here every output is summed in the same
//! order with separate multiply and add on both targets — bit for bit — and the work is laid out
//! in register blocks (4 rows × 8 columns of C; 4 × 16 with AVX natively) that become SIMD (SSE
//! or AVX natively, chosen at run time; simd128 in wasm) without reordering any sum. The last
//! 1–7 columns are blocks too (a strided scalar loop there cost the RNN lab a tenth of its time).

/// Rows of C per block.
const MR: usize = 4;
/// Columns of C per block (two 4-lane vectors).
const NR: usize = 8;

/// `C = C + A·B` when `accumulate`, else `C = A·B`.
pub fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm operand sizes");
    product::<false>(m, k, n, k, n, n, a, b, c, accumulate)
}

/// [`gemm`] on blocks: `B` and `C` are `n` columns of wider row-major matrices whose rows are
/// `ldb` and `ldc` apart (a block of a dense layer's W and outputs, split between threads), and
/// Every element is summed as in [`gemm`] (over k in order), so a block has the bits of those
/// columns of the whole product.
/// A's `m` rows (of which the first `k` columns are used) are `lda` apart: a block of the
/// layer's input columns, for a block of W's rows.
#[allow(clippy::too_many_arguments)]
pub fn gemm_strided(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize, accumulate: bool) {
    let a_fits = lda >= k && (m == 0 || k == 0 || (m - 1) * lda + k <= a.len());
    assert!(a_fits && strided_fits(m, k, n, ldb, ldc, m * k, b.len(), c.len()), "gemm_strided operand sizes");
    product::<false>(m, k, n, lda, ldb, ldc, a, b, c, accumulate)
}

/// [`gemm_tn`] on blocks, as [`gemm_strided`]; A's `k` rows (of which the first `m` columns
/// are used) are `lda` apart too: a block of rows of C (of a dense layer's ∂W) from a block of
/// columns of the layer's input.
#[allow(clippy::too_many_arguments)]
pub fn gemm_tn_strided(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], ldc: usize, accumulate: bool) {
    let a_fits = lda >= m && (k == 0 || m == 0 || (k - 1) * lda + m <= a.len());
    assert!(a_fits && strided_fits(m, k, n, ldb, ldc, m * k, b.len(), c.len()), "gemm_tn_strided operand sizes");
    product::<true>(m, k, n, lda, ldb, ldc, a, b, c, accumulate)
}

/// Whether A (m·k), B (k rows of `ldb`, `n` used) and C (m rows of `ldc`) fit their slices.
#[allow(clippy::too_many_arguments)]
fn strided_fits(m: usize, k: usize, n: usize, ldb: usize, ldc: usize, a: usize, b: usize, c: usize) -> bool {
    let rows = |count: usize, ld: usize| if count == 0 || n == 0 { 0 } else { (count - 1) * ld + n };
    ldb >= n && ldc >= n && a >= m * k && b >= rows(k, ldb) && c >= rows(m, ldc)
}

/// The most rows of k for which [`gemm_tn`] beats a transposed copy and [`gemm`]: each block of
/// C reads one 64-byte line of A per row of k, and these 256 lines (16 KB) stay in L1 while the
/// block sweeps the columns (W2's micro-shards of 16 rows: +6 % a step natively; the RNN's
/// thousand-row products were 8 % slower without the copy).
pub const TN_MAX_K: usize = 256;

/// [`gemm`] with `A` given transposed, stored as (k×m): `C = C + Aᵀ·B` when `accumulate`, else
/// `C = Aᵀ·B`. The same sums in the same order as [`gemm`] on a transposed copy (the same bits),
/// without the copy: a dense layer's `∂W = xᵀ·∂y` reads a micro-shard's rows as they are (up to
/// [`TN_MAX_K`] rows; more are faster copied first).
pub fn gemm_tn(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "gemm_tn operand sizes");
    product::<true>(m, k, n, m, n, n, a, b, c, accumulate)
}

/// Element (i, p) of A: row-major (m×k), or stored transposed (k×m) when `TA`.
#[inline(always)]
fn a_at<const TA: bool>(i: usize, p: usize, lda: usize) -> usize {
    if TA {
        p * lda + i
    } else {
        i * lda + p
    }
}

// Inlined natively (each caller's strides known); one copy per `TA` in wasm, whose download
// the four wrappers would otherwise each carry (~10 KB apiece before compression).
#[cfg_attr(not(target_arch = "wasm32"), inline(always))]
#[cfg_attr(target_arch = "wasm32", inline(never))]
#[allow(clippy::too_many_arguments)]
fn product<const TA: bool>(m: usize, k: usize, n: usize, lda: usize, ldb: usize, ldc: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above); the callers checked the sizes.
        return unsafe { avx::gemm::<TA>(m, k, n, lda, ldb, ldc, a, b, c, accumulate) };
    }
    gemm_blocks::<TA>(m, k, n, lda, ldb, ldc, a, b, c, accumulate)
}

/// The native build on a CPU with AVX (the CLI, the native tests): 8-lane vectors and blocks of
/// 4 rows × 16 columns (eight accumulators hide the adds' latency). Each lane still multiplies,
/// rounds, then adds — no FMA — and every C[i,j] is summed over k in the same order, so the bits
/// are those of the plain loops and of the wasm build (`kernels_give_the_golden_bits` and
/// `blocks_give_the_same_bits_as_the_plain_triple_loop` run on the machine at hand).
#[cfg(target_arch = "x86_64")]
mod avx {
    use core::arch::x86_64::*;

    /// Callers check the operand sizes (`super::gemm`) and that the CPU has AVX.
    #[target_feature(enable = "avx")]
    pub unsafe fn gemm<const TA: bool>(
        m: usize,
        k: usize,
        n: usize,
        lda: usize,
        ldb: usize,
        ldc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        accumulate: bool,
    ) {
        let mut i = 0;
        while i + super::MR <= m {
            rows::<{ super::MR }, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
            i += super::MR;
        }
        match m - i {
            0 => {}
            1 => rows::<1, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
            2 => rows::<2, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
            _ => rows::<3, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
        }
    }

    /// Rows `i..i+R` of C: 16 columns at a time, then 8, then the last 0–7 as the generic blocks
    /// (compiled here with AVX).
    #[target_feature(enable = "avx")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows<const R: usize, const TA: bool>(
        i: usize,
        m: usize,
        k: usize,
        n: usize,
        lda: usize,
        ldb: usize,
        ldc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        accumulate: bool,
    ) {
        let mut j = 0;
        while j + 16 <= n {
            wide::<R, 2, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
            j += 16;
        }
        if j + 8 <= n {
            wide::<R, 1, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
            j += 8;
        }
        if n - j >= 4 {
            super::block::<R, 4, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
            j += 4;
        }
        match n - j {
            0 => {}
            1 => super::block::<R, 1, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
            2 => super::block::<R, 2, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
            _ => super::block::<R, 3, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
        }
    }

    /// An `R × 8V` block of C at (i, j), accumulated in `R·V` registers over all of k.
    #[target_feature(enable = "avx")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn wide<const R: usize, const V: usize, const TA: bool>(
        i: usize,
        j: usize,
        m: usize,
        k: usize,
        n: usize,
        lda: usize,
        ldb: usize,
        ldc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        accumulate: bool,
    ) {
        debug_assert!(
            m * k <= a.len() && i + R <= m && j + 8 * V <= n && (k == 0 || (k - 1) * ldb + j + 8 * V <= b.len()) && (i + R - 1) * ldc + j + 8 * V <= c.len()
        );
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        // SAFETY (every pointer below): rows i..i+R <= m, columns j..j+8V <= n and p < k, within
        // the sizes `super::gemm` / `gemm_tn` asserted; unaligned loads and stores.
        if accumulate {
            for r in 0..R {
                for v in 0..V {
                    acc[r][v] = _mm256_loadu_ps(c.as_ptr().add((i + r) * ldc + j + 8 * v));
                }
            }
        }
        let mut bv = [_mm256_setzero_ps(); V];
        for p in 0..k {
            let bp = b.as_ptr().add(p * ldb + j);
            for v in 0..V {
                bv[v] = _mm256_loadu_ps(bp.add(8 * v));
            }
            for r in 0..R {
                let av = _mm256_set1_ps(*a.get_unchecked(super::a_at::<TA>(i + r, p, lda)));
                for v in 0..V {
                    acc[r][v] = _mm256_add_ps(acc[r][v], _mm256_mul_ps(av, bv[v]));
                }
            }
        }
        for r in 0..R {
            for v in 0..V {
                _mm256_storeu_ps(c.as_mut_ptr().add((i + r) * ldc + j + 8 * v), acc[r][v]);
            }
        }
    }
}

/// [`gemm`] as register blocks: every row block of `MR` rows (then the last 1–3 rows as one
/// block) sweeps the columns in blocks of 8, then one of 4, then one of the last 1–3, so every
/// panel of B is read once per row block and every element of C is summed over k in order.
#[inline(always)]
fn gemm_blocks<const TA: bool>(m: usize, k: usize, n: usize, lda: usize, ldb: usize, ldc: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let mut i = 0;
    while i + MR <= m {
        row_block::<MR, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
        i += MR;
    }
    match m - i {
        0 => {}
        1 => row_block::<1, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
        2 => row_block::<2, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
        _ => row_block::<3, TA>(i, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
    }
}

/// Rows `i..i+R` of C, all columns.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_block<const R: usize, const TA: bool>(
    i: usize,
    m: usize,
    k: usize,
    n: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    let full_cols = n - n % NR;
    for j in (0..full_cols).step_by(NR) {
        block::<R, NR, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
    }
    let mut j = full_cols;
    if n - j >= 4 {
        block::<R, 4, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
        j += 4;
    }
    match n - j {
        0 => {}
        1 => block::<R, 1, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
        2 => block::<R, 2, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
        _ => block::<R, 3, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate),
    }
}

/// `C = C + A·Bᵀ` when `accumulate`, else `C = A·Bᵀ`, for `B` stored as (n×k): every C[i,j] is
/// a dot product of two contiguous rows, summed in 8 interleaved lanes (lane l takes the terms
/// p ≡ l mod 8) that are then added in a fixed tree — SIMD-friendly and the same on every target.
pub fn gemm_nt(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n, "gemm_nt operand sizes");
    for i in 0..m {
        let ai = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let d = dot(ai, &b[j * k..(j + 1) * k]);
            let cij = &mut c[i * n + j];
            *cij = if accumulate { *cij + d } else { d };
        }
    }
}

/// `Σ x[p]·y[p]` in 8 interleaved lanes plus a sequential tail, combined in a fixed order.
#[inline]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        simd::dot(x, y)
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        dot_lanes(x, y)
    }
}

/// [`dot`] in plain Rust (what the SIMD version must equal bit for bit).
#[inline]
pub fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    let len = x.len().min(y.len());
    let chunks = len / 8;
    let mut lanes = [0.0f32; 8];
    for (xc, yc) in x[..chunks * 8].chunks_exact(8).zip(y[..chunks * 8].chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += xc[l] * yc[l];
        }
    }
    let mut tail = 0.0f32;
    for p in chunks * 8..len {
        tail += x[p] * y[p];
    }
    (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]))) + tail
}

/// One `R × C` block of C at (i, j), accumulated in registers over all of k.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const R: usize, const C: usize, const TA: bool>(
    i: usize,
    j: usize,
    m: usize,
    k: usize,
    n: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if C == 8 {
        return simd::block8::<R, TA>(i, j, m, k, n, lda, ldb, ldc, a, b, c, accumulate);
    }
    debug_assert!(j + C <= n && i + R <= m);
    let mut acc = [[0.0f32; C]; R];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&c[(i + r) * ldc + j..(i + r) * ldc + j + C]);
        }
    }
    for p in 0..k {
        let bp: &[f32; C] = b[p * ldb + j..p * ldb + j + C].try_into().expect("C columns");
        for (r, row) in acc.iter_mut().enumerate() {
            let av = a[a_at::<TA>(i + r, p, lda)];
            for q in 0..C {
                row[q] += av * bp[q];
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        c[(i + r) * ldc + j..(i + r) * ldc + j + C].copy_from_slice(row);
    }
}

/// The two hot kernels written with wasm's 4-lane SIMD. Each lane does exactly what the plain
/// code does for that element (IEEE multiply, then add; no FMA), so the bits are the same as the
/// native build's; LLVM's auto-vectoriser left these at about half speed.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    #[inline]
    pub fn dot(x: &[f32], y: &[f32]) -> f32 {
        let len = x.len().min(y.len());
        let chunks = len / 8;
        let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for c in 0..chunks {
            let p = c * 8;
            // SAFETY: p + 8 <= chunks * 8 <= len, within both slices; v128 loads need no alignment.
            unsafe {
                let (x0, x1) = (v128_load(x.as_ptr().add(p) as *const v128), v128_load(x.as_ptr().add(p + 4) as *const v128));
                let (y0, y1) = (v128_load(y.as_ptr().add(p) as *const v128), v128_load(y.as_ptr().add(p + 4) as *const v128));
                lo = f32x4_add(lo, f32x4_mul(x0, y0));
                hi = f32x4_add(hi, f32x4_mul(x1, y1));
            }
        }
        let mut tail = 0.0f32;
        for p in chunks * 8..len {
            tail += x[p] * y[p];
        }
        // (l0 + l4, l1 + l5, l2 + l6, l3 + l7), then ((s0 + s1) + (s2 + s3)) + tail, as in dot_lanes.
        let s = f32x4_add(lo, hi);
        ((f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<1>(s)) + (f32x4_extract_lane::<2>(s) + f32x4_extract_lane::<3>(s))) + tail
    }

    /// An `R × 8` block of C += A·B, as `super::block`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn block8<const R: usize, const TA: bool>(
        i: usize,
        j: usize,
        m: usize,
        k: usize,
        n: usize,
        lda: usize,
        ldb: usize,
        ldc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        accumulate: bool,
    ) {
        assert!(j + 8 <= n && (i + R - 1) * ldc + j + 8 <= c.len() && (k == 0 || (k - 1) * ldb + j + 8 <= b.len()) && i + R <= m && m * k <= a.len());
        let mut acc = [[f32x4_splat(0.0); 2]; R];
        // SAFETY: the assert above bounds every load and store below.
        unsafe {
            if accumulate {
                for (r, row) in acc.iter_mut().enumerate() {
                    let at = c.as_ptr().add((i + r) * ldc + j);
                    *row = [v128_load(at as *const v128), v128_load(at.add(4) as *const v128)];
                }
            }
            for p in 0..k {
                let bp = b.as_ptr().add(p * ldb + j);
                let (b0, b1) = (v128_load(bp as *const v128), v128_load(bp.add(4) as *const v128));
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = f32x4_splat(*a.get_unchecked(super::a_at::<TA>(i + r, p, lda)));
                    row[0] = f32x4_add(row[0], f32x4_mul(av, b0));
                    row[1] = f32x4_add(row[1], f32x4_mul(av, b1));
                }
            }
            for (r, row) in acc.iter().enumerate() {
                let at = c.as_mut_ptr().add((i + r) * ldc + j);
                v128_store(at as *mut v128, row[0]);
                v128_store(at.add(4) as *mut v128, row[1]);
            }
        }
    }
}

/// `dst (cols×rows) = srcᵀ` for a row-major `src (rows×cols)`.
pub fn transpose(rows: usize, cols: usize, src: &[f32], dst: &mut [f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    // Tiles keep both sides in cache.
    const T: usize = 16;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// A hash of the exact bits the kernels produce on seeded data (every block shape, the dot
/// product, and an im2col conv forward + backward). The native and the wasm tests assert the same
/// value ([`KERNEL_FINGERPRINT`]): the SIMD paths must not change a single bit.
pub fn kernel_fingerprint() -> u64 {
    use crate::layer::Layer;
    use crate::tensor::{self, Mode};
    let mut rng = crate::rng::Rng::new(99);
    let mut hash = 0xcbf29ce484222325u64;
    let mut eat = |values: &[f32]| {
        for v in values {
            hash = (hash ^ v.to_bits() as u64).wrapping_mul(0x100000001b3);
        }
    };
    for (m, k, n) in [(6, 25, 784), (16, 150, 100), (7, 9, 21), (3, 40, 13)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
        let mut c: Vec<f32> = (0..m * n).map(|_| rng.normal()).collect();
        gemm(m, k, n, &a, &b, &mut c, true);
        eat(&c);
        let bt: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
        gemm_nt(m, k, n, &a, &bt, &mut c, false);
        eat(&c);
    }
    let mut conv = crate::ops::Conv2d::new(3, 5, 3, 1, 1, crate::init::Init::He, &mut rng);
    let x = tensor::from_vec(&[2, 3, 9, 9], (0..2 * 3 * 81).map(|_| rng.normal()).collect());
    let y = conv.forward(&x, Mode::Train).clone();
    eat(tensor::slice(&y));
    let dy = tensor::from_vec(y.shape(), (0..y.len()).map(|_| rng.normal()).collect());
    eat(tensor::slice(conv.backward(&dy)));
    eat(tensor::slice(&conv.dw));
    // A given transposed (a dense layer's ∂W over a micro-shard), full and partial blocks.
    for (m, k, n) in [(784, 16, 128), (13, 5, 11)] {
        let a_t: Vec<f32> = (0..k * m).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
        let mut c: Vec<f32> = (0..m * n).map(|_| rng.normal()).collect();
        gemm_tn(m, k, n, &a_t, &b, &mut c, true);
        eat(&c);
    }
    hash
}

/// The value of [`kernel_fingerprint`] on every target.
pub const KERNEL_FINGERPRINT: u64 = 2236095613954309906;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], acc: bool) {
        for i in 0..m {
            for j in 0..n {
                let mut s = if acc { c[i * n + j] } else { 0.0 };
                for p in 0..k {
                    s += a[i * k + p] * b[p * n + j];
                }
                c[i * n + j] = s;
            }
        }
    }

    #[test]
    fn kernels_give_the_golden_bits() {
        assert_eq!(kernel_fingerprint(), KERNEL_FINGERPRINT, "kernel bits changed: update KERNEL_FINGERPRINT only if that was meant");
    }

    #[test]
    fn hand_values() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let mut c = [1.0; 4];
        gemm(2, 2, 2, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], &mut c, false);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        gemm(2, 2, 2, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], &mut c, true);
        assert_eq!(c, [38.0, 44.0, 86.0, 100.0]);
        let mut t = [0.0; 6];
        transpose(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &mut t);
        assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn the_transposed_product_matches_a_plain_sum() {
        let mut rng = Rng::new(5);
        for (m, k, n) in [(6, 784, 25), (16, 100, 150), (3, 7, 2), (2, 17, 3)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            let mut c = vec![1.0; m * n];
            gemm_nt(m, k, n, &a, &b, &mut c, true);
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[j * k + p] as f64).sum::<f64>() + 1.0;
                    assert!((c[i * n + j] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()), "{m}×{k}×{n}");
                }
            }
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    }

    #[test]
    fn blocks_give_the_same_bits_as_the_plain_triple_loop() {
        let mut rng = Rng::new(3);
        for (m, k, n) in [(6, 25, 784), (16, 150, 100), (150, 16, 100), (1, 1, 1), (5, 3, 17), (9, 7, 8), (5, 4, 13), (4, 2, 12), (7, 33, 31), (2, 5, 26)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| rng.normal()).collect();
            for acc in [false, true] {
                let (mut fast, mut portable, mut slow) = (c0.clone(), c0.clone(), c0.clone());
                // The dispatched kernel (AVX where the CPU has it) and the portable blocks.
                gemm(m, k, n, &a, &b, &mut fast, acc);
                gemm_blocks::<false>(m, k, n, k, n, n, &a, &b, &mut portable, acc);
                naive(m, k, n, &a, &b, &mut slow, acc);
                assert!(fast.iter().zip(&slow).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}×{k}×{n} acc={acc}");
                assert!(portable.iter().zip(&slow).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}×{k}×{n} acc={acc}");
                // A given transposed: the same bits, dispatched and portable.
                let mut a_t = vec![0.0; m * k];
                transpose(m, k, &a, &mut a_t);
                let (mut fast_t, mut portable_t) = (c0.clone(), c0.clone());
                gemm_tn(m, k, n, &a_t, &b, &mut fast_t, acc);
                gemm_blocks::<true>(m, k, n, m, n, n, &a_t, &b, &mut portable_t, acc);
                assert!(fast_t.iter().zip(&slow).all(|(x, y)| x.to_bits() == y.to_bits()), "Aᵀ {m}×{k}×{n} acc={acc}");
                assert!(portable_t.iter().zip(&slow).all(|(x, y)| x.to_bits() == y.to_bits()), "Aᵀ {m}×{k}×{n} acc={acc}");
            }
        }
    }

    #[test]
    fn column_blocks_have_the_bits_of_the_whole_product() {
        // W2's first layer split between two threads (64 rows × 784 → 128 columns in blocks of
        // 64, 40 + 88 and 13 + 115), and its weight gradient from a micro-shard of 16 rows.
        let mut rng = Rng::new(11);
        let (m, k, n) = (64, 784, 128);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
        let c0: Vec<f32> = (0..m * n).map(|_| rng.normal()).collect();
        for split in [64, 40, 13] {
            for acc in [false, true] {
                let mut whole = c0.clone();
                gemm(m, k, n, &a, &b, &mut whole, acc);
                let mut blocks = c0.clone();
                gemm_strided(m, k, split, &a, k, &b, n, &mut blocks, n, acc);
                gemm_strided(m, k, n - split, &a, k, &b[split..], n, &mut blocks[split..], n, acc);
                // Split by k instead: the first rows of W, then the rest from that partial sum
                // (the same adds in the same order).
                let mut chained = c0.clone();
                gemm_strided(m, split, n, &a, k, &b, n, &mut chained, n, acc);
                gemm_strided(m, k - split, n, &a[split..], k, &b[split * n..], n, &mut chained, n, true);
                assert!(whole.iter().zip(&chained).all(|(x, y)| x.to_bits() == y.to_bits()), "x·W chained at k = {split}, acc={acc}");
                assert!(whole.iter().zip(&blocks).all(|(x, y)| x.to_bits() == y.to_bits()), "x·W split at {split}, acc={acc}");
                // ∂W = xᵀ·∂y for 16 rows, each block into a contiguous buffer of its own.
                let (x, dy) = (&a[..16 * k], &c0[..16 * n]);
                let mut whole_t = vec![0.0; k * n];
                gemm_tn(k, 16, n, x, dy, &mut whole_t, false);
                let mut left = vec![0.0; k * split];
                gemm_tn_strided(k, 16, split, x, k, dy, n, &mut left, split, false);
                let mut right = vec![0.0; k * (n - split)];
                gemm_tn_strided(k, 16, n - split, x, k, &dy[split..], n, &mut right, n - split, false);
                // Rows 100..116 of ∂W's left block alone (A's columns 100..116).
                let mut rows = vec![0.0; 16 * split];
                gemm_tn_strided(16, 16, split, &x[100..], k, dy, n, &mut rows, split, false);
                assert!(rows.iter().zip(&left[100 * split..116 * split]).all(|(x, y)| x.to_bits() == y.to_bits()), "a block of ∂W's rows");
                for row in 0..k {
                    let got = left[row * split..(row + 1) * split].iter().chain(&right[row * (n - split)..(row + 1) * (n - split)]);
                    assert!(whole_t[row * n..(row + 1) * n].iter().zip(got).all(|(x, y)| x.to_bits() == y.to_bits()), "xᵀ·∂y split at {split}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "gemm_strided operand sizes")]
    fn a_stride_narrower_than_the_block_is_refused() {
        let mut c = [0.0; 8];
        gemm_strided(2, 2, 4, &[1.0; 4], 2, &[1.0; 8], 2, &mut c, 4, false);
    }
}
