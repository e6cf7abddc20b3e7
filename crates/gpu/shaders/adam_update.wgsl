// Adam, element-wise, after the L2 penalty on weights (g ← g + λw):
//   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
//   w ← w − lr·(m/c₁)/(√(v/c₂) + ε),  c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ (running products, from the host)

struct Params { len: u32, _p0: u32, _p1: u32, _p2: u32, lr: f32, b1: f32, b2: f32, eps: f32, c1: f32, c2: f32, l2: f32, _p3: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> W: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> M: array<f32>;
@group(0) @binding(4) var<storage, read_write> V: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 256u;
    if (i >= P.len) { return; }
    var g = G[i];
    if (P.l2 > 0.0) { g = g + P.l2 * W[i]; }
    let m = P.b1 * M[i] + (1.0 - P.b1) * g;
    let v = P.b2 * V[i] + (1.0 - P.b2) * g * g;
    M[i] = m;
    V[i] = v;
    W[i] = W[i] - P.lr * (m / P.c1) / (sqrt(v / P.c2) + P.eps);
}
