// ∂L/∂W and ∂L/∂b of a convolution, stage 1 of 2: partial sums over a chunk of images
//   part[q, o,c,u,v] = Σ_{n in chunk q} Σ_{i,j} dy[n,o,i,j] · x[n, c, i·s+u−p, j·s+v−p]
//   part[q, W + o]   = Σ_{n in chunk q} Σ_{i,j} dy[n,o,i,j]            (W = o·c·k·k weights)
// One invocation per (chunk, weight or bias), summing in a fixed order. Why chunks: one
// invocation per weight would loop over the whole batch alone (a mini-batch of 1,000 images is
// 600,000 terms in one thread: slow on a GPU, and lavapipe returned wrong sums for it).
// Stage 2 (conv2d_backward_weight_reduce) adds the chunks in order: deterministic, no atomics.

struct Params { n: u32, c: u32, h: u32, w: u32, o: u32, k: u32, s: u32, p: u32, oh: u32, ow: u32, chunk: u32, chunks: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> dY: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> Part: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let idx = g.x + g.y * nw.x * 64u;
    let weights = P.o * P.c * P.k * P.k;
    let per = weights + P.o;
    if (idx >= per * P.chunks) { return; }
    let q = idx / per;
    let e = idx % per;
    let first = q * P.chunk;
    let last = min(P.n, first + P.chunk);
    if (e >= weights) {
        let o = e - weights;
        var sb = 0.0;
        for (var n = first; n < last; n = n + 1u) {
            let base = (n * P.o + o) * P.oh * P.ow;
            for (var t = 0u; t < P.oh * P.ow; t = t + 1u) { sb = sb + dY[base + t]; }
        }
        Part[idx] = sb;
        return;
    }
    let v = e % P.k;
    let u = (e / P.k) % P.k;
    let c = (e / (P.k * P.k)) % P.c;
    let o = e / (P.k * P.k * P.c);
    var sum = 0.0;
    for (var n = first; n < last; n = n + 1u) {
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
    Part[idx] = sum;
}
