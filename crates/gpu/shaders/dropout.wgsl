// Inverted dropout, forward and backward alike: out = in ⊙ scale, where scale = m/(1 − p) with the
// keep mask m drawn on the CPU from the layer's own seeded stream (the engine's), uploaded per step,
// so the GPU drops exactly the units the CPU would.

struct Params { len: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = g.x + g.y * nw.x * 256u;
    if (i >= P.len) { return; }
    Y[i] = X[i] * scale[i];
}
