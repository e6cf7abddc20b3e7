// SGD, element-wise, after the L2 penalty on weights (g ← g + λw):
//   plain     w ← w − lr·g
//   momentum  v ← μv + g;  w ← w − lr·v
//   Nesterov  v ← μv + g;  w ← w − lr·(g + μv)
// mode: 0 plain, 1 momentum, 2 Nesterov.

struct Params { len: u32, mode: u32, _p0: u32, _p1: u32, lr: f32, mu: f32, l2: f32, _p2: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> W: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read_write> V: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 256u;
    if (i >= P.len) { return; }
    var g = G[i];
    if (P.l2 > 0.0) { g = g + P.l2 * W[i]; }
    if (P.mode == 0u) {
        W[i] = W[i] - P.lr * g;
        return;
    }
    let v = P.mu * V[i] + g;
    V[i] = v;
    if (P.mode == 2u) { W[i] = W[i] - P.lr * (g + P.mu * v); } else { W[i] = W[i] - P.lr * v; }
}
