// 2-D convolution (cross-correlation), direct: one invocation per output y[n, o, i, j]
//   y[n,o,i,j] = b[o] + Σ_{c,u,v} W[o,c,u,v] · x[n, c, i·s+u−p, j·s+v−p]   (zero outside x)
// summed over c, u, v in order. Direct rather than im2col + GEMM: every sum has one owner and a
// fixed order (no atomics, no column buffer); LeNet-sized layers are small enough that the
// im2col copy would cost as much as it saves.

struct Params { n: u32, c: u32, h: u32, w: u32, o: u32, k: u32, s: u32, p: u32, oh: u32, ow: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> W: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = g.x + g.y * nw.x * 256u;
    if (idx >= P.n * P.o * P.oh * P.ow) { return; }
    let j = idx % P.ow;
    let i = (idx / P.ow) % P.oh;
    let o = (idx / (P.ow * P.oh)) % P.o;
    let n = idx / (P.ow * P.oh * P.o);
    var sum = 0.0;
    for (var c = 0u; c < P.c; c = c + 1u) {
        for (var u = 0u; u < P.k; u = u + 1u) {
            let row = i32(i * P.s + u) - i32(P.p);
            if (row < 0 || row >= i32(P.h)) { continue; }
            for (var v = 0u; v < P.k; v = v + 1u) {
                let col = i32(j * P.s + v) - i32(P.p);
                if (col < 0 || col >= i32(P.w)) { continue; }
                sum = sum + W[((o * P.c + c) * P.k + u) * P.k + v] * X[((n * P.c + c) * P.h + u32(row)) * P.w + u32(col)];
            }
        }
    }
    Y[idx] = B[o] + sum;
}
