//! The optimisers' element-wise passes in wasm's 4-lane SIMD. LLVM vectorises the zipped loops
//! natively but leaves them scalar for `simd128`, and the update is on a step's serial path,
//! where a worker's helpers wait. Each lane does exactly the scalar operations in the scalar
//! order (IEEE `+ − × ÷ √` round the same in a lane; no FMA), so the bits equal the native ones;
//! `formulas::mismatches` checks that in wasm. Each function does the first `4·⌊n/4⌋` elements
//! and returns that count; the caller's scalar loop does the rest.

use core::arch::wasm32::*;

/// `n` elements all slices hold; reads and writes stay below it.
#[inline]
fn whole_lanes(lens: &[usize]) -> usize {
    lens.iter().copied().min().unwrap_or(0) / 4 * 4
}

#[inline(always)]
unsafe fn load(s: *const f32, i: usize) -> v128 {
    v128_load(s.add(i) as *const v128)
}

#[inline(always)]
unsafe fn store(s: *mut f32, i: usize, x: v128) {
    v128_store(s.add(i) as *mut v128, x)
}

/// Adam: `m = b1·m + (1−b1)·g; v = b2·v + ((1−b2)·g)·g; w −= (lr·(m/c1)) / (√(v/c2) + eps)`.
#[allow(clippy::too_many_arguments)]
pub fn adam(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], b1: f32, b2: f32, c1: f32, c2: f32, lr: f32, eps: f32) -> usize {
    let n = whole_lanes(&[w.len(), g.len(), m.len(), v.len()]);
    let (b1, b2, a1, a2) = (f32x4_splat(b1), f32x4_splat(b2), f32x4_splat(1.0 - b1), f32x4_splat(1.0 - b2));
    let (c1, c2, lr, eps) = (f32x4_splat(c1), f32x4_splat(c2), f32x4_splat(lr), f32x4_splat(eps));
    let (wp, gp, mp, vp) = (w.as_mut_ptr(), g.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    for i in (0..n).step_by(4) {
        // SAFETY: i + 4 <= n <= every slice's length; v128 loads and stores need no alignment.
        unsafe {
            let gi = load(gp, i);
            let mi = f32x4_add(f32x4_mul(b1, load(mp, i)), f32x4_mul(a1, gi));
            let vi = f32x4_add(f32x4_mul(b2, load(vp, i)), f32x4_mul(f32x4_mul(a2, gi), gi));
            let step = f32x4_div(f32x4_mul(lr, f32x4_div(mi, c1)), f32x4_add(f32x4_sqrt(f32x4_div(vi, c2)), eps));
            store(mp, i, mi);
            store(vp, i, vi);
            store(wp, i, f32x4_sub(load(wp, i), step));
        }
    }
    n
}

/// Plain SGD: `w −= lr·g`.
pub fn sgd(w: &mut [f32], g: &[f32], lr: f32) -> usize {
    let n = whole_lanes(&[w.len(), g.len()]);
    let lr = f32x4_splat(lr);
    let (wp, gp) = (w.as_mut_ptr(), g.as_ptr());
    for i in (0..n).step_by(4) {
        // SAFETY: as in `adam`.
        unsafe { store(wp, i, f32x4_sub(load(wp, i), f32x4_mul(lr, load(gp, i)))) }
    }
    n
}

/// Adagrad: `s += g·g; w −= (lr·g) / (√s + eps)`.
pub fn adagrad(w: &mut [f32], g: &[f32], s: &mut [f32], lr: f32, eps: f32) -> usize {
    let n = whole_lanes(&[w.len(), g.len(), s.len()]);
    let (lr, eps) = (f32x4_splat(lr), f32x4_splat(eps));
    let (wp, gp, sp) = (w.as_mut_ptr(), g.as_ptr(), s.as_mut_ptr());
    for i in (0..n).step_by(4) {
        // SAFETY: as in `adam`.
        unsafe {
            let gi = load(gp, i);
            let si = f32x4_add(load(sp, i), f32x4_mul(gi, gi));
            store(sp, i, si);
            store(wp, i, f32x4_sub(load(wp, i), f32x4_div(f32x4_mul(lr, gi), f32x4_add(f32x4_sqrt(si), eps))));
        }
    }
    n
}

/// Momentum: `v = mu·v + g`, then `w −= lr·v` (heavy ball) or `w −= lr·(g + mu·v)` (Nesterov).
pub fn momentum(w: &mut [f32], g: &[f32], v: &mut [f32], mu: f32, lr: f32, nesterov: bool) -> usize {
    let n = whole_lanes(&[w.len(), g.len(), v.len()]);
    let (mu, lr) = (f32x4_splat(mu), f32x4_splat(lr));
    let (wp, gp, vp) = (w.as_mut_ptr(), g.as_ptr(), v.as_mut_ptr());
    for i in (0..n).step_by(4) {
        // SAFETY: as in `adam`.
        unsafe {
            let gi = load(gp, i);
            let vi = f32x4_add(f32x4_mul(mu, load(vp, i)), gi);
            store(vp, i, vi);
            let d = if nesterov { f32x4_add(gi, f32x4_mul(mu, vi)) } else { vi };
            store(wp, i, f32x4_sub(load(wp, i), f32x4_mul(lr, d)));
        }
    }
    n
}
