// ∂L/∂x of a convolution, gathered: one invocation per input x[n, c, r, q]
//   dx[n,c,r,q] = Σ_{o,u,v} dy[n,o,i,j] · W[o,c,u,v]   over i·s+u−p = r, j·s+v−p = q
// (the scatter of col2im turned around, so no two invocations write the same number).

struct Params { n: u32, c: u32, h: u32, w: u32, o: u32, k: u32, s: u32, p: u32, oh: u32, ow: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read_write> dX: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = g.x + g.y * nw.x * 256u;
    if (idx >= P.n * P.c * P.h * P.w) { return; }
    let q = idx % P.w;
    let r = (idx / P.w) % P.h;
    let c = (idx / (P.w * P.h)) % P.c;
    let n = idx / (P.w * P.h * P.c);
    var sum = 0.0;
    for (var o = 0u; o < P.o; o = o + 1u) {
        for (var u = 0u; u < P.k; u = u + 1u) {
            let ti = i32(r + P.p) - i32(u);
            if (ti < 0 || ti % i32(P.s) != 0) { continue; }
            let i = u32(ti) / P.s;
            if (i >= P.oh) { continue; }
            for (var v = 0u; v < P.k; v = v + 1u) {
                let tj = i32(q + P.p) - i32(v);
                if (tj < 0 || tj % i32(P.s) != 0) { continue; }
                let j = u32(tj) / P.s;
                if (j >= P.ow) { continue; }
                sum = sum + dY[((n * P.o + o) * P.oh + i) * P.ow + j] * W[((o * P.c + c) * P.k + u) * P.k + v];
            }
        }
    }
    dX[idx] = sum;
}
