// ∂L/∂W and ∂L/∂b of a convolution: one invocation per weight W[o, c, u, v], then one per bias
//   dW[o,c,u,v] = Σ_{n,i,j} dy[n,o,i,j] · x[n, c, i·s+u−p, j·s+v−p]      db[o] = Σ_{n,i,j} dy[n,o,i,j]
// summed over n, i, j in order. Invocations past the weights compute the biases.

struct Params { n: u32, c: u32, h: u32, w: u32, o: u32, k: u32, s: u32, p: u32, oh: u32, ow: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> dW: array<f32>;
@group(0) @binding(4) var<storage, read_write> dB: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = g.x + g.y * nw.x * 64u;
    let weights = P.o * P.c * P.k * P.k;
    if (idx >= weights + P.o) { return; }
    if (idx >= weights) {
        let o = idx - weights;
        var sb = 0.0;
        for (var n = 0u; n < P.n; n = n + 1u) {
            let base = (n * P.o + o) * P.oh * P.ow;
            for (var t = 0u; t < P.oh * P.ow; t = t + 1u) { sb = sb + dY[base + t]; }
        }
        dB[o] = sb;
        return;
    }
    let v = idx % P.k;
    let u = (idx / P.k) % P.k;
    let c = (idx / (P.k * P.k)) % P.c;
    let o = idx / (P.k * P.k * P.c);
    var sum = 0.0;
    for (var n = 0u; n < P.n; n = n + 1u) {
        for (var i = 0u; i < P.oh; i = i + 1u) {
            let row = i32(i * P.s + u) - i32(P.p);
            if (row < 0 || row >= i32(P.h)) { continue; }
            for (var j = 0u; j < P.ow; j = j + 1u) {
                let col = i32(j * P.s + v) - i32(P.p);
                if (col < 0 || col >= i32(P.w)) { continue; }
                sum = sum + dY[((n * P.o + o) * P.oh + i) * P.ow + j] * X[((n * P.c + c) * P.h + u32(row)) * P.w + u32(col)];
            }
        }
    }
    dW[idx] = sum;
}
