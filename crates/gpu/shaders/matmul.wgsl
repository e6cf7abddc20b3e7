// C (+)= op(A) · op(B), tiled 16 × 16 through workgroup memory.
//   op(A) is M × K: A (row-major M × K), or Aᵀ when trans_a (A stored K × M)
//   op(B) is K × N: B (row-major K × N), or Bᵀ when trans_b (B stored N × K)
// Every C[i, j] is summed by one invocation over p = 0, 1, …, K − 1 in order (tile by tile),
// so the result does not depend on the GPU's scheduling: no atomics, a fixed order.
// The dense layer's three products: Z = X·W, dW = Xᵀ·dZ (trans_a), dX = dZ·Wᵀ (trans_b).

struct Params { m: u32, n: u32, k: u32, trans_a: u32, trans_b: u32, accumulate: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const T: u32 = 16u;
var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;

fn a_at(i: u32, p: u32) -> f32 {
    if (i >= P.m || p >= P.k) { return 0.0; }
    if (P.trans_a == 1u) { return A[p * P.m + i]; }
    return A[i * P.k + p];
}

fn b_at(p: u32, j: u32) -> f32 {
    if (p >= P.k || j >= P.n) { return 0.0; }
    if (P.trans_b == 1u) { return B[j * P.k + p]; }
    return B[p * P.n + j];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>) {
    let i = wg.y * T + l.y;
    let j = wg.x * T + l.x;
    var sum = 0.0;
    let tiles = (P.k + T - 1u) / T;
    for (var t = 0u; t < tiles; t = t + 1u) {
        ta[l.y][l.x] = a_at(i, t * T + l.x);
        tb[l.y][l.x] = b_at(t * T + l.y, j);
        workgroupBarrier();
        for (var q = 0u; q < T; q = q + 1u) {
            sum = sum + ta[l.y][q] * tb[q][l.x];
        }
        workgroupBarrier();
    }
    if (i < P.m && j < P.n) {
        let o = i * P.n + j;
        if (P.accumulate == 1u) { C[o] = C[o] + sum; } else { C[o] = sum; }
    }
}
