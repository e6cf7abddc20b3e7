// Softmax cross-entropy, forward and backward, one invocation per row of logits Z (n × k):
//   Lᵢ = −ln softmax(zᵢ)[yᵢ] = ln Σⱼ e^(zᵢⱼ − m) − (zᵢ,yᵢ − m),  m = maxⱼ zᵢⱼ
//   dZᵢⱼ = (softmax(zᵢ)ⱼ − [j = yᵢ]) / n
// The per-row losses go to `losses`; the `sum` kernel adds them in order.

struct Params { n: u32, k: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dZ: array<f32>;
@group(0) @binding(4) var<storage, read_write> losses: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let i = g.x;
    if (i >= P.n) { return; }
    let base = i * P.k;
    var m = Z[base];
    for (var j = 1u; j < P.k; j = j + 1u) { m = max(m, Z[base + j]); }
    var s = 0.0;
    for (var j = 0u; j < P.k; j = j + 1u) { s = s + exp(Z[base + j] - m); }
    let y = labels[i];
    losses[i] = log(s) - (Z[base + y] - m);
    let inv_n = 1.0 / f32(P.n);
    for (var j = 0u; j < P.k; j = j + 1u) {
        var p = exp(Z[base + j] - m) / s;
        if (j == y) { p = p - 1.0; }
        dZ[base + j] = p * inv_n;
    }
}
