//! The sharded step's element-wise passes over whole gradient and weight vectors: copying, zeroing, adding
//! two shards' sums, checking weights bit for bit. Natively LLVM vectorises the plain loops; for
//! wasm's `simd128` it leaves them scalar (one `f32.add` per element, measured in the shipped
//! wasm on 2026-12-04), and several of them run on the lead worker while its helpers wait. So in
//! wasm they go four lanes at a time. An IEEE addition rounds the same in a lane as alone: the
//! bits are the scalar loop's (`tests` natively, `lanes_give_the_scalar_bits` in the wasm tests).

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use core::arch::wasm32::*;

/// `dst[i] = 0.0`.
#[inline(never)]
pub fn zero(dst: &mut [f32]) {
    // A memset (`memory.fill` in wasm): called from here, this crate's optimisation applies
    // (inlined into a size-optimised caller, the fill was a store per element).
    dst.fill(0.0);
}

/// `dst[i] = src[i]` over the shorter length, around `memcpy`'s slow case.
///
/// glibc's `memcpy` copies 2 KB–512 KB with `rep movsb`, which on these AMD EPYC machines runs
/// 10–25× slower when the destination's address is 1–31 bytes past the source's modulo 4096
/// (100 KB: 2.2 µs, or 35 µs at 16 bytes; 400 KB: 12 µs, or 140 µs). Two 16-byte-aligned
/// allocations land 16 bytes apart that way whenever one starts a page and the other 32 bytes
/// into one, and a step's copies then stay slow for the whole run: W2's helper rows of the
/// mini-batch took 15–26 µs instead of 2 on the lead's path every step. V8's copies go through
/// the same `memmove` (Node 20's `copyWithin` of 100 KB: 3.4 µs, or 35–40 µs 4–16 bytes on),
/// and a wasm address is its host address's offset in a page-aligned memory, so the browser
/// has the same pairs. Within that window (widened to 63 bytes) the copy is plain vector loads
/// and stores, as fast as `memcpy`'s good case natively (2.0–2.4 µs for 100 KB at any
/// distance); elsewhere `memcpy` itself, which wasm's vector loop did not match (Chromium,
/// W2 on one worker: −3 %).
#[inline(never)]
pub fn copy(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    let near = (1..64).contains(&((d as usize).wrapping_sub(s as usize) % 4096));
    let whole = if near { n / 16 * 16 } else { 0 };
    #[cfg(target_arch = "x86_64")]
    for i in (0..whole).step_by(16) {
        use core::arch::x86_64::*;
        // SAFETY: i + 16 <= whole <= n, both slices' length; SSE (in every x86-64) and the
        // unaligned forms need no alignment. Four loads before four stores: slices never overlap.
        unsafe {
            let v = [_mm_loadu_ps(s.add(i)), _mm_loadu_ps(s.add(i + 4)), _mm_loadu_ps(s.add(i + 8)), _mm_loadu_ps(s.add(i + 12))];
            for (k, v) in v.into_iter().enumerate() {
                _mm_storeu_ps(d.add(i + 4 * k), v);
            }
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    for i in (0..whole).step_by(16) {
        // SAFETY: as above; v128 needs no alignment.
        unsafe {
            let v = [0, 4, 8, 12].map(|k| v128_load(s.add(i + k) as *const v128));
            for (k, v) in v.into_iter().enumerate() {
                v128_store(d.add(i + 4 * k) as *mut v128, v);
            }
        }
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    let whole = 0;
    // The rest (or another target): `memcpy`, or too few bytes for `rep movsb`.
    dst[whole..].copy_from_slice(&src[whole..]);
}

/// [`copy`] for a buffer another thread reads next: on x86-64 with non-temporal stores, which
/// write whole lines to memory without first fetching them for ownership; elsewhere [`copy`].
///
/// On this project's 2-vCPU VMs, in windows of seconds, a plain store to a line that is not in
/// this core's cache runs ~8× slower: writing 400 KB that the other thread had read took
/// 150–340 µs instead of ~40, streamed ~30 µs in every window (a C probe of two threads in
/// lockstep, each writing 400 KB for the other per step: 0.96–1.16× one thread in those windows
/// with plain stores, 1.56–1.75× streamed; 2026-12-05). Those are the collapses of W2 on two
/// threads that the measurement log follows from the thirty-fourth sitting. The cost: the reader
/// then fetches the lines from memory, not from the writer's cache (~20 → ~37 µs for 400 KB),
/// which is why [`crate::parallel::ThreadHelpers`] streams only while it measures that to pay.
#[inline(never)]
pub fn copy_streaming(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        // Plain stores up to a 16-byte boundary (an f32 slice is 4-byte aligned), streamed
        // 16 floats at a time from there, plain stores for the rest.
        let head = ((16 - dst.as_ptr() as usize % 16) % 16 / 4).min(n);
        let whole = head + (n - head) / 16 * 16;
        dst[..head].copy_from_slice(&src[..head]);
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        for i in (head..whole).step_by(16) {
            // SAFETY: i + 16 <= whole <= n, both slices' length; `d + i` is 16-byte aligned (the
            // head), as `_mm_stream_ps` needs; the loads need no alignment; SSE is in every x86-64.
            unsafe {
                let v = [_mm_loadu_ps(s.add(i)), _mm_loadu_ps(s.add(i + 4)), _mm_loadu_ps(s.add(i + 8)), _mm_loadu_ps(s.add(i + 12))];
                for (k, v) in v.into_iter().enumerate() {
                    _mm_stream_ps(d.add(i + 4 * k), v);
                }
            }
        }
        dst[whole..].copy_from_slice(&src[whole..]);
        // Streamed stores are not ordered with later ones: fenced before the buffer is sent.
        // SAFETY: SSE.
        unsafe { _mm_sfence() };
    }
    #[cfg(not(target_arch = "x86_64"))]
    copy(dst, src);
}

/// [`add_to`] for a buffer other threads read next: `out[i] = a[i] + b[i]` written with
/// non-temporal stores on x86-64 (see [`copy_streaming`]), [`add_to`] elsewhere; the same bits.
#[inline(never)]
pub fn add_to_streaming(out: &mut [f32], a: &[f32], b: &[f32]) {
    let n = out.len().min(a.len()).min(b.len());
    let (out, a, b) = (&mut out[..n], &a[..n], &b[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::*;
        let head = ((16 - out.as_ptr() as usize % 16) % 16 / 4).min(n);
        let whole = head + (n - head) / 16 * 16;
        add_to(&mut out[..head], &a[..head], &b[..head]);
        let (o, x, y) = (out.as_mut_ptr(), a.as_ptr(), b.as_ptr());
        for i in (head..whole).step_by(16) {
            // SAFETY: as in `copy_streaming` (i + 16 <= whole <= n, all three slices' length;
            // `o + i` 16-byte aligned).
            unsafe {
                for k in 0..4 {
                    let v = _mm_add_ps(_mm_loadu_ps(x.add(i + 4 * k)), _mm_loadu_ps(y.add(i + 4 * k)));
                    _mm_stream_ps(o.add(i + 4 * k), v);
                }
            }
        }
        add_to(&mut out[whole..], &a[whole..], &b[whole..]);
        // SAFETY: SSE.
        unsafe { _mm_sfence() };
    }
    #[cfg(not(target_arch = "x86_64"))]
    add_to(out, a, b);
}

/// `dst` = `src`'s values, resized to its length (see [`copy`]).
pub fn copy_to_vec(dst: &mut Vec<f32>, src: &[f32]) {
    dst.resize(src.len(), 0.0);
    copy(dst, src);
}

/// `dst[i] += src[i]` over the shorter length.
#[inline(never)]
pub fn add_assign(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = {
        let whole = n / 4 * 4;
        let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
        for i in (0..whole).step_by(4) {
            // SAFETY: i + 4 <= whole <= n, both slices' length; v128 needs no alignment.
            unsafe {
                let sum = f32x4_add(v128_load(d.add(i) as *const v128), v128_load(s.add(i) as *const v128));
                v128_store(d.add(i) as *mut v128, sum);
            }
        }
        whole
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    for (d, s) in dst[done..].iter_mut().zip(&src[done..]) {
        *d += s;
    }
}

/// `out[i] = a[i] + b[i]` over the shortest length.
#[inline(never)]
pub fn add_to(out: &mut [f32], a: &[f32], b: &[f32]) {
    let n = out.len().min(a.len()).min(b.len());
    let (out, a, b) = (&mut out[..n], &a[..n], &b[..n]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let done = {
        let whole = n / 4 * 4;
        let (o, ap, bp) = (out.as_mut_ptr(), a.as_ptr(), b.as_ptr());
        for i in (0..whole).step_by(4) {
            // SAFETY: as in `add_assign`.
            unsafe {
                let sum = f32x4_add(v128_load(ap.add(i) as *const v128), v128_load(bp.add(i) as *const v128));
                v128_store(o.add(i) as *mut v128, sum);
            }
        }
        whole
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let done = 0;
    for ((o, x), y) in out[done..].iter_mut().zip(&a[done..]).zip(&b[done..]) {
        *o = x + y;
    }
}

/// Whether `a` and `b` hold the same bits (NaN payloads and the sign of zero included).
#[inline(never)]
pub fn same_bits(a: &[f32], b: &[f32]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (done, mut diff) = {
        let whole = a.len() / 4 * 4;
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        let mut acc = i32x4_splat(0);
        for i in (0..whole).step_by(4) {
            // SAFETY: i + 4 <= whole <= both slices' length.
            unsafe { acc = v128_or(acc, v128_xor(v128_load(ap.add(i) as *const v128), v128_load(bp.add(i) as *const v128))) }
        }
        (whole, u32::from(v128_any_true(acc)))
    };
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    let (done, mut diff) = (0, 0u32);
    // Or-ing the differences (no early exit) lets the loop run in SIMD lanes natively.
    diff |= a[done..].iter().zip(&b[done..]).fold(0, |d, (x, y)| d | (x.to_bits() ^ y.to_bits()));
    diff == 0
}

/// The scalar definitions against the functions above, for lengths around the lane width and a
/// long one: the mismatches (none expected), named. Run natively here and in wasm by the wasm
/// tests, where the lanes are.
pub fn mismatches() -> Vec<String> {
    let mut out = Vec::new();
    let value = |i: usize, k: u32| {
        let x = ((i as u32).wrapping_mul(2_654_435_761) ^ k) as f32 / u32::MAX as f32 - 0.5;
        match i % 13 {
            5 => -0.0,
            7 => x * 1e-39, // subnormal
            _ => x * 3.0,
        }
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    for n in [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 1003] {
        let a: Vec<f32> = (0..n).map(|i| value(i, 1)).collect();
        let b: Vec<f32> = (0..n).map(|i| value(i, 2)).collect();
        let plain: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let mut sum = a.clone();
        add_assign(&mut sum, &b);
        if bits(&sum) != bits(&plain) {
            out.push(format!("add_assign, length {n}"));
        }
        let mut to = vec![f32::NAN; n];
        add_to(&mut to, &a, &b);
        if bits(&to) != bits(&plain) {
            out.push(format!("add_to, length {n}"));
        }
        // Streamed into each of the four float alignments within 16 bytes.
        for skew in 0..4 {
            let mut pool = vec![f32::NAN; n + 6];
            add_to_streaming(&mut pool[skew..skew + n], &a, &b);
            let outside = pool[..skew].iter().chain(&pool[skew + n..]).any(|v| !v.is_nan());
            if bits(&pool[skew..skew + n]) != bits(&plain) || outside {
                out.push(format!("add_to_streaming at +{skew} floats, length {n}"));
            }
        }
        for (from, to) in [(0, n), (n / 3, n)] {
            let mut copied = vec![f32::NAN; to - from + 2];
            copy(&mut copied, &a[from..to]);
            let mut grown = vec![1.0; 5];
            copy_to_vec(&mut grown, &a[from..to]);
            if bits(&copied[..to - from]) != bits(&a[from..to]) || copied[to - from..].iter().any(|v| !v.is_nan()) || bits(&grown) != bits(&a[from..to]) {
                out.push(format!("copy of [{from}, {to}), length {n}"));
            }
            // Streamed into each of the four float alignments within 16 bytes.
            for skew in 0..4 {
                let mut pool = vec![f32::NAN; to - from + 6];
                copy_streaming(&mut pool[skew..skew + to - from], &a[from..to]);
                let outside = pool[..skew].iter().chain(&pool[skew + to - from..]).any(|v| !v.is_nan());
                if bits(&pool[skew..skew + to - from]) != bits(&a[from..to]) || outside {
                    out.push(format!("copy_streaming of [{from}, {to}) at +{skew} floats, length {n}"));
                }
            }
        }
        // Destinations 4 and 16 bytes past a page from their source (the vector loop) and 64.
        for gap in [1025, 1028, 1040] {
            let mut pool = vec![f32::NAN; gap + n];
            pool[..n].copy_from_slice(&a);
            let (from, to) = pool.split_at_mut(gap);
            copy(&mut to[..n], &from[..n]);
            if bits(&to[..n]) != bits(&a) {
                out.push(format!("copy {} bytes on, length {n}", 4 * gap));
            }
        }
        let mut zeroed = a.clone();
        zero(&mut zeroed);
        if zeroed.iter().any(|v| v.to_bits() != 0) {
            out.push(format!("zero, length {n}"));
        }
        if !same_bits(&a, &a.clone()) {
            out.push(format!("same_bits of equal vectors, length {n}"));
        }
        for at in [0, n / 2, n.saturating_sub(1)].into_iter().filter(|_| n > 0) {
            let mut c = a.clone();
            c[at] = if c[at] == 0.0 { -c[at] } else { f32::from_bits(c[at].to_bits() ^ 1) };
            if same_bits(&a, &c) {
                out.push(format!("same_bits missed a change at {at}, length {n}"));
            }
        }
    }
    if same_bits(&[1.0], &[1.0, 2.0]) {
        out.push("same_bits of different lengths".into());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lanes_give_the_scalar_bits() {
        assert_eq!(super::mismatches(), Vec::<String>::new());
    }
}
