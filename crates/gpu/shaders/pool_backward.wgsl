// ∂L/∂x of pooling, gathered: one invocation per input x[plane, r, q], over the windows that hold it
// (outputs in order):
//   max  dx = Σ dy[out] where switch[out] is this input
//   avg  dx = Σ dy[out] / k²

struct Params { planes: u32, h: u32, w: u32, k: u32, s: u32, oh: u32, ow: u32, kind: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> switches: array<u32>;
@group(0) @binding(3) var<storage, read_write> dX: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = g.x + g.y * nw.x * 256u;
    if (idx >= P.planes * P.h * P.w) { return; }
    let q = idx % P.w;
    let r = (idx / P.w) % P.h;
    let plane = idx / (P.w * P.h);
    // Windows i with i·s ≤ r < i·s + k, likewise j.
    var i0 = 0u;
    if (r + 1u > P.k) { i0 = (r + 1u - P.k + P.s - 1u) / P.s; }
    var j0 = 0u;
    if (q + 1u > P.k) { j0 = (q + 1u - P.k + P.s - 1u) / P.s; }
    var sum = 0.0;
    for (var i = i0; i <= r / P.s && i < P.oh; i = i + 1u) {
        for (var j = j0; j <= q / P.s && j < P.ow; j = j + 1u) {
            let out = (plane * P.oh + i) * P.ow + j;
            if (P.kind == 0u) {
                if (switches[out] == idx) { sum = sum + dY[out]; }
            } else {
                sum = sum + dY[out] / f32(P.k * P.k);
            }
        }
    }
    dX[idx] = sum;
}
