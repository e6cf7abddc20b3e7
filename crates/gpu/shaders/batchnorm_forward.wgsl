// Batch normalisation forward over (n, c, inner) — BatchNorm1d when inner = 1, 2d over channels —
// one invocation per feature j, its m = n·inner values summed in order:
//   training    μ = Σx/m;  σ² = Σ(x − μ)²/m;  x̂ = (x − μ)/√(σ² + ε);  y = γx̂ + β
//               running_mean ← (1 − p)·running_mean + p·μ;  running_var ← (1 − p)·running_var + p·σ²·m/(m − 1)
//   evaluation  x̂ = (x − running_mean)/√(running_var + ε)
// Saves x̂ and 1/√(σ² + ε) for the backward. train: 1 training, 0 evaluation.

struct Params { n: u32, c: u32, inner: u32, train: u32, eps: f32, momentum: f32, _p0: f32, _p1: f32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> Y: array<f32>;
@group(0) @binding(5) var<storage, read_write> xhat: array<f32>;
// Per feature: running mean, running variance, then the batch's 1/√(σ² + ε).
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let j = g.x;
    if (j >= P.c) { return; }
    let m = P.n * P.inner;
    var mean = stats[j];
    var istd = 1.0 / sqrt(stats[P.c + j] + P.eps);
    if (P.train == 1u) {
        var s = 0.0;
        for (var i = 0u; i < P.n; i = i + 1u) {
            for (var r = 0u; r < P.inner; r = r + 1u) { s = s + X[(i * P.c + j) * P.inner + r]; }
        }
        mean = s / f32(m);
        var v = 0.0;
        for (var i = 0u; i < P.n; i = i + 1u) {
            for (var r = 0u; r < P.inner; r = r + 1u) {
                let d = X[(i * P.c + j) * P.inner + r] - mean;
                v = v + d * d;
            }
        }
        let var_b = v / f32(m);
        istd = 1.0 / sqrt(var_b + P.eps);
        stats[j] = (1.0 - P.momentum) * stats[j] + P.momentum * mean;
        if (m > 1u) {
            stats[P.c + j] = (1.0 - P.momentum) * stats[P.c + j] + P.momentum * var_b * f32(m) / f32(m - 1u);
        }
    }
    stats[2u * P.c + j] = istd;
    for (var i = 0u; i < P.n; i = i + 1u) {
        for (var r = 0u; r < P.inner; r = r + 1u) {
            let at = (i * P.c + j) * P.inner + r;
            let h = (X[at] - mean) * istd;
            xhat[at] = h;
            Y[at] = gamma[j] * h + beta[j];
        }
    }
}
