// Y = act(Z + b), row by row (Z is rows × cols, b has cols entries):
//   identity y = x · ReLU max(x, 0) · leaky x if x > 0 else αx · tanh · sigmoid 1 / (1 + e⁻ˣ)
// act: 0 identity, 1 ReLU, 2 leaky, 3 tanh, 4 sigmoid (the engine's ActivationKind).

struct Params { rows: u32, cols: u32, act: u32, _p0: u32, alpha: f32, _p1: f32, _p2: f32, _p3: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Z: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> Y: array<f32>;

fn act(x: f32) -> f32 {
    switch P.act {
        case 1u: { if (x > 0.0) { return x; } return 0.0; }
        case 2u: { if (x > 0.0) { return x; } return P.alpha * x; }
        case 3u: { return tanh(x); }
        case 4u: { return 1.0 / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = g.x + g.y * nw.x * 256u;
    if (i >= P.rows * P.cols) { return; }
    Y[i] = act(Z[i] + bias[i % P.cols]);
}
