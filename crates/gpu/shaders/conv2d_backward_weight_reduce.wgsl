// ∂L/∂W and ∂L/∂b of a convolution, stage 2 of 2: the chunks' partial sums added in order
//   dW[e] = Σ_q part[q, e]  (e < W)        db[o] = Σ_q part[q, W + o]
// One invocation per weight or bias; the same order every step (deterministic).

struct Params { weights: u32, o: u32, chunks: u32, _p: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Part: array<f32>;
@group(0) @binding(2) var<storage, read_write> dW: array<f32>;
@group(0) @binding(3) var<storage, read_write> dB: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let e = g.x + g.y * nw.x * 64u;
    let per = P.weights + P.o;
    if (e >= per) { return; }
    var sum = 0.0;
    for (var q = 0u; q < P.chunks; q = q + 1u) { sum = sum + Part[q * per + e]; }
    if (e < P.weights) { dW[e] = sum; } else { dB[e - P.weights] = sum; }
}
