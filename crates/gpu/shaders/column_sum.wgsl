// s[j] = Σᵢ X[i, j] over the rows in order (the bias gradient db = Σₙ dZ): one invocation per
// column, a fixed order, no atomics.

struct Params { rows: u32, cols: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let j = g.x;
    if (j >= P.cols) { return; }
    var s = 0.0;
    for (var i = 0u; i < P.rows; i = i + 1u) {
        s = s + X[i * P.cols + j];
    }
    S[j] = s;
}
