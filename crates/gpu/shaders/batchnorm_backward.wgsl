// Batch normalisation backward (training statistics), one invocation per feature j:
//   dβ = Σ dy;  dγ = Σ dy·x̂;  dx = γ·istd·(dy − dβ/m − x̂·dγ/m)
// (the engine's compact form; its step-by-step graph form gives the same gradients).

struct Params { n: u32, c: u32, inner: u32, _p0: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> xhat: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> dX: array<f32>;
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let j = g.x;
    if (j >= P.c) { return; }
    let m = f32(P.n * P.inner);
    var db = 0.0;
    var dg = 0.0;
    for (var i = 0u; i < P.n; i = i + 1u) {
        for (var r = 0u; r < P.inner; r = r + 1u) {
            let at = (i * P.c + j) * P.inner + r;
            db = db + dY[at];
            dg = dg + dY[at] * xhat[at];
        }
    }
    dbeta[j] = db;
    dgamma[j] = dg;
    let k = gamma[j] * stats[2u * P.c + j];
    for (var i = 0u; i < P.n; i = i + 1u) {
        for (var r = 0u; r < P.inner; r = r + 1u) {
            let at = (i * P.c + j) * P.inner + r;
            dX[at] = k * (dY[at] - db / m - xhat[at] * dg / m);
        }
    }
}
