// dZ = dY ⊙ f′, from the cached output Y (as the engine's activation does):
//   identity 1 · ReLU [y > 0] · leaky 1 if y > 0 else α · tanh 1 − y² · sigmoid y(1 − y)

struct Params { len: u32, act: u32, _p0: u32, _p1: u32, alpha: f32, _p2: f32, _p3: f32, _p4: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dZ: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = g.x + g.y * nw.x * 256u;
    if (i >= P.len) { return; }
    let y = Y[i];
    let d = dY[i];
    var out = d;
    switch P.act {
        case 1u: { if (y > 0.0) { out = d; } else { out = 0.0; } }
        case 2u: { if (y > 0.0) { out = d; } else { out = P.alpha * d; } }
        case 3u: { out = d * (1.0 - y * y); }
        case 4u: { out = d * y * (1.0 - y); }
        default: { out = d; }
    }
    dZ[i] = out;
}
