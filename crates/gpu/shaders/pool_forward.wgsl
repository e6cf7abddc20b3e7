// Pooling over (n, c, h, w) with a k × k window and stride s, no padding; one invocation per output:
//   max  y = max_{u,v} x[…, i·s+u, j·s+v], the first maximum wins ties; its flat index is the switch
//   avg  y = (Σ_{u,v} x[…]) / k²
// kind: 0 max, 1 avg.

struct Params { planes: u32, h: u32, w: u32, k: u32, s: u32, oh: u32, ow: u32, kind: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> switches: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let out = g.x + g.y * nw.x * 256u;
    if (out >= P.planes * P.oh * P.ow) { return; }
    let j = out % P.ow;
    let i = (out / P.ow) % P.oh;
    let plane = out / (P.ow * P.oh);
    let base = (plane * P.h + i * P.s) * P.w + j * P.s;
    if (P.kind == 0u) {
        var best = X[base];
        var at = base;
        for (var u = 0u; u < P.k; u = u + 1u) {
            for (var v = 0u; v < P.k; v = v + 1u) {
                let idx = base + u * P.w + v;
                if (X[idx] > best) { best = X[idx]; at = idx; }
            }
        }
        Y[out] = best;
        switches[out] = at;
    } else {
        var sum = 0.0;
        for (var u = 0u; u < P.k; u = u + 1u) {
            for (var v = 0u; v < P.k; v = v + 1u) { sum = sum + X[base + u * P.w + v]; }
        }
        Y[out] = sum / f32(P.k * P.k);
    }
}
