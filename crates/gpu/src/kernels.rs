//! The WGSL kernels (`shaders/<name>.wgsl`, named like the engine's ops), compiled once per
//! device, and the [`Dispatch`]es that bind them to buffers. The maths is in each shader's header.

use crate::context::{Buf, Gpu};
use bytemuck::{Pod, Zeroable};
use engine::ops::ActivationKind;
use wgpu::util::DeviceExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Matmul,
    BiasActForward,
    ActBackward,
    ColumnSum,
    SoftmaxCrossEntropy,
    Sum,
    SgdUpdate,
    AdamUpdate,
    Conv2dForward,
    Conv2dBackwardInput,
    Conv2dBackwardWeight,
    Conv2dBackwardWeightReduce,
    PoolForward,
    PoolBackward,
    BatchnormForward,
    BatchnormBackward,
    Dropout,
}

const SOURCES: [(Kernel, &str); 17] = [
    (Kernel::Matmul, include_str!("../shaders/matmul.wgsl")),
    (Kernel::BiasActForward, include_str!("../shaders/bias_act_forward.wgsl")),
    (Kernel::ActBackward, include_str!("../shaders/act_backward.wgsl")),
    (Kernel::ColumnSum, include_str!("../shaders/column_sum.wgsl")),
    (Kernel::SoftmaxCrossEntropy, include_str!("../shaders/softmax_cross_entropy.wgsl")),
    (Kernel::Sum, include_str!("../shaders/sum.wgsl")),
    (Kernel::SgdUpdate, include_str!("../shaders/sgd_update.wgsl")),
    (Kernel::AdamUpdate, include_str!("../shaders/adam_update.wgsl")),
    (Kernel::Conv2dForward, include_str!("../shaders/conv2d_forward.wgsl")),
    (Kernel::Conv2dBackwardInput, include_str!("../shaders/conv2d_backward_input.wgsl")),
    (Kernel::Conv2dBackwardWeight, include_str!("../shaders/conv2d_backward_weight.wgsl")),
    (Kernel::Conv2dBackwardWeightReduce, include_str!("../shaders/conv2d_backward_weight_reduce.wgsl")),
    (Kernel::PoolForward, include_str!("../shaders/pool_forward.wgsl")),
    (Kernel::PoolBackward, include_str!("../shaders/pool_backward.wgsl")),
    (Kernel::BatchnormForward, include_str!("../shaders/batchnorm_forward.wgsl")),
    (Kernel::BatchnormBackward, include_str!("../shaders/batchnorm_backward.wgsl")),
    (Kernel::Dropout, include_str!("../shaders/dropout.wgsl")),
];

/// A convolution's shape: input `(n, c, h, w)`, `o` filters of `k × k`, stride `s`, padding `p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
}

impl ConvShape {
    pub fn out(&self) -> (usize, usize) {
        ((self.h + 2 * self.p - self.k) / self.s + 1, (self.w + 2 * self.p - self.k) / self.s + 1)
    }

    fn params(&self) -> [u32; 12] {
        let (oh, ow) = self.out();
        [self.n, self.c, self.h, self.w, self.o, self.k, self.s, self.p, oh, ow, 0, 0].map(|v| v as u32)
    }
}

/// A pooling's shape: `planes = n·c` images of `h × w`, a `k × k` window, stride `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub s: usize,
    pub max: bool,
}

impl PoolShape {
    pub fn out(&self) -> (usize, usize) {
        ((self.h - self.k) / self.s + 1, (self.w - self.k) / self.s + 1)
    }

    fn params(&self) -> [u32; 8] {
        let (oh, ow) = self.out();
        [self.planes, self.h, self.w, self.k, self.s, oh, ow, usize::from(!self.max)].map(|v| v as u32)
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BnParams {
    n: u32,
    c: u32,
    inner: u32,
    train: u32,
    eps: f32,
    momentum: f32,
    pad: [f32; 2],
}

pub(crate) struct Kernels {
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device) -> Kernels {
        let pipelines = SOURCES
            .iter()
            .map(|&(kernel, source)| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&format!("{kernel:?}")),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("{kernel:?}")),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: Default::default(),
                    cache: None,
                });
                (kernel, pipeline)
            })
            .collect();
        Kernels { pipelines }
    }

    pub(crate) fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        &self.pipelines.iter().find(|(k, _)| *k == kernel).expect("every kernel is compiled").1
    }
}

/// One kernel bound to its buffers and parameters, with its workgroup counts.
pub struct Dispatch {
    pub kernel: Kernel,
    pub(crate) group: wgpu::BindGroup,
    /// The parameters (rewritten by [`Gpu::set_params`] when they change, e.g. the learning rate).
    pub params: wgpu::Buffer,
    pub(crate) groups: (u32, u32),
}

/// Workgroups for `len` invocations of 256 along x, spilling into y beyond 65,535 groups.
fn groups_1d(len: usize, size: usize) -> (u32, u32) {
    let groups = len.div_ceil(size).max(1);
    let x = groups.min(65_535);
    (x as u32, groups.div_ceil(x) as u32)
}

fn act_code(kind: ActivationKind) -> u32 {
    match kind {
        ActivationKind::Identity => 0,
        ActivationKind::Relu => 1,
        ActivationKind::Leaky => 2,
        ActivationKind::Tanh => 3,
        ActivationKind::Sigmoid => 4,
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    accumulate: u32,
    pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ActParams {
    a: u32,
    b: u32,
    act: u32,
    pad0: u32,
    alpha: f32,
    pad1: [f32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Shape {
    a: u32,
    b: u32,
    pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Shape4 {
    v: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SumParams {
    len: u32,
    pad0: [u32; 3],
    scale: f32,
    pad1: [f32; 3],
}

/// SGD's parameters: `mode` 0 plain, 1 momentum, 2 Nesterov.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
pub struct SgdParams {
    pub len: u32,
    pub mode: u32,
    pub pad0: [u32; 2],
    pub lr: f32,
    pub mu: f32,
    pub l2: f32,
    pub pad1: f32,
}

/// Adam's parameters; `c1 = 1 − β₁ᵗ`, `c2 = 1 − β₂ᵗ` change every step.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
pub struct AdamParams {
    pub len: u32,
    pub pad0: [u32; 3],
    pub lr: f32,
    pub b1: f32,
    pub b2: f32,
    pub eps: f32,
    pub c1: f32,
    pub c2: f32,
    pub l2: f32,
    pub pad1: f32,
}

impl Gpu {
    fn dispatch<P: Pod>(&self, kernel: Kernel, params: &P, buffers: &[&Buf], groups: (u32, u32)) -> Dispatch {
        let params = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() }];
        entries.extend(buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.buffer.as_entire_binding() }));
        let layout = self.kernels.pipeline(kernel).get_bind_group_layout(0);
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries });
        Dispatch { kernel, group, params, groups }
    }

    /// Rewrites a dispatch's parameters (before the next submission).
    pub fn set_params<P: Pod>(&self, d: &Dispatch, params: &P) {
        self.queue.write_buffer(&d.params, 0, bytemuck::bytes_of(params));
    }

    /// `c (+)= op(a)·op(b)`: `op(a)` is m × k (a stored k × m when `trans_a`), `op(b)` is k × n
    /// (b stored n × k when `trans_b`).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(&self, a: &Buf, b: &Buf, c: &Buf, (m, n, k): (usize, usize, usize), trans_a: bool, trans_b: bool, accumulate: bool) -> Dispatch {
        assert!(a.len >= m * k && b.len >= k * n && c.len >= m * n, "matmul {m}×{k}·{k}×{n}: buffers {} {} {}", a.len, b.len, c.len);
        let p = MatmulParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            trans_a: trans_a as u32,
            trans_b: trans_b as u32,
            accumulate: accumulate as u32,
            pad: [0; 2],
        };
        self.dispatch(Kernel::Matmul, &p, &[a, b, c], (n.div_ceil(16).max(1) as u32, m.div_ceil(16).max(1) as u32))
    }

    /// `y = act(z + bias)` over `rows × cols`.
    pub fn bias_act(&self, z: &Buf, bias: &Buf, y: &Buf, (rows, cols): (usize, usize), act: ActivationKind, alpha: f32) -> Dispatch {
        let p = ActParams { a: rows as u32, b: cols as u32, act: act_code(act), pad0: 0, alpha, pad1: [0.0; 3] };
        self.dispatch(Kernel::BiasActForward, &p, &[z, bias, y], groups_1d(rows * cols, 256))
    }

    /// `dz = dy ⊙ f′` from the activation's output `y`.
    pub fn act_backward(&self, dy: &Buf, y: &Buf, dz: &Buf, len: usize, act: ActivationKind, alpha: f32) -> Dispatch {
        let p = ActParams { a: len as u32, b: act_code(act), act: 0, pad0: 0, alpha, pad1: [0.0; 3] };
        self.dispatch(Kernel::ActBackward, &p, &[dy, y, dz], groups_1d(len, 256))
    }

    /// `s[j] = Σᵢ x[i, j]` over `rows × cols`.
    pub fn column_sum(&self, x: &Buf, s: &Buf, (rows, cols): (usize, usize)) -> Dispatch {
        self.dispatch(Kernel::ColumnSum, &Shape { a: rows as u32, b: cols as u32, pad: [0; 2] }, &[x, s], groups_1d(cols, 64))
    }

    /// Per-row softmax cross-entropy of logits `z` (n × k) against `labels`: `dz` and `losses`.
    pub fn softmax_cross_entropy(&self, z: &Buf, labels: &Buf, dz: &Buf, losses: &Buf, (n, k): (usize, usize)) -> Dispatch {
        self.dispatch(Kernel::SoftmaxCrossEntropy, &Shape { a: n as u32, b: k as u32, pad: [0; 2] }, &[z, labels, dz, losses], groups_1d(n, 64))
    }

    /// `out[0] = scale · Σ x`, in order.
    pub fn sum(&self, x: &Buf, out: &Buf, len: usize, scale: f32) -> Dispatch {
        self.dispatch(Kernel::Sum, &SumParams { len: len as u32, pad0: [0; 3], scale, pad1: [0.0; 3] }, &[x, out], (1, 1))
    }

    /// One SGD update of `w` from `g` (`v`: the velocity, unused by plain SGD).
    pub fn sgd_update(&self, w: &Buf, g: &Buf, v: &Buf, p: SgdParams) -> Dispatch {
        self.dispatch(Kernel::SgdUpdate, &p, &[w, g, v], groups_1d(p.len as usize, 256))
    }

    /// `y = conv(x, w) + b`, direct.
    pub fn conv2d_forward(&self, x: &Buf, w: &Buf, b: &Buf, y: &Buf, s: ConvShape) -> Dispatch {
        let (oh, ow) = s.out();
        self.dispatch(Kernel::Conv2dForward, &s.params(), &[x, w, b, y], groups_1d(s.n * s.o * oh * ow, 256))
    }

    /// `dx` of a convolution from `dy`, gathered per input.
    pub fn conv2d_backward_input(&self, dy: &Buf, w: &Buf, dx: &Buf, s: ConvShape) -> Dispatch {
        self.dispatch(Kernel::Conv2dBackwardInput, &s.params(), &[dy, w, dx], groups_1d(s.n * s.c * s.h * s.w, 256))
    }

    /// `dW` and `db` of a convolution from `dy` and its input `x` (overwritten, not accumulated).
    /// dW and db in two dispatches: partial sums over chunks of about 4,096 output positions'
    /// worth of images, then the chunks added in order (see the shaders' headers).
    pub fn conv2d_backward_weight(&self, dy: &Buf, x: &Buf, dw: &Buf, db: &Buf, s: ConvShape) -> [Dispatch; 2] {
        let (oh, ow) = s.out();
        let chunk = (4096 / (oh * ow).max(1)).clamp(1, s.n.max(1));
        let chunks = s.n.max(1).div_ceil(chunk);
        let (weights, per) = (s.o * s.c * s.k * s.k, s.o * s.c * s.k * s.k + s.o);
        // The partial sums: held by the dispatches' bind groups as long as they live.
        let part = self.zeros(per * chunks);
        let mut params = s.params();
        params[10] = chunk as u32;
        params[11] = chunks as u32;
        let reduce = Shape4 { v: [weights as u32, s.o as u32, chunks as u32, 0] };
        [
            self.dispatch(Kernel::Conv2dBackwardWeight, &params, &[dy, x, &part], groups_1d(per * chunks, 64)),
            self.dispatch(Kernel::Conv2dBackwardWeightReduce, &reduce, &[&part, dw, db], groups_1d(per, 64)),
        ]
    }

    /// Max (with switches, a u32 buffer) or average pooling.
    pub fn pool_forward(&self, x: &Buf, y: &Buf, switches: &Buf, s: PoolShape) -> Dispatch {
        let (oh, ow) = s.out();
        self.dispatch(Kernel::PoolForward, &s.params(), &[x, y, switches], groups_1d(s.planes * oh * ow, 256))
    }

    pub fn pool_backward(&self, dy: &Buf, switches: &Buf, dx: &Buf, s: PoolShape) -> Dispatch {
        self.dispatch(Kernel::PoolBackward, &s.params(), &[dy, switches, dx], groups_1d(s.planes * s.h * s.w, 256))
    }

    /// Batch norm over `(n, c, inner)`; `stats` holds the running mean, running variance and the
    /// batch's 1/√(σ² + ε) (3·c numbers).
    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_forward(
        &self,
        x: &Buf,
        gamma: &Buf,
        beta: &Buf,
        y: &Buf,
        xhat: &Buf,
        stats: &Buf,
        (n, c, inner): (usize, usize, usize),
        train: bool,
    ) -> Dispatch {
        let p = BnParams {
            n: n as u32,
            c: c as u32,
            inner: inner as u32,
            train: train as u32,
            eps: engine::ops::batchnorm::EPS,
            momentum: engine::ops::batchnorm::MOMENTUM,
            pad: [0.0; 2],
        };
        self.dispatch(Kernel::BatchnormForward, &p, &[x, gamma, beta, y, xhat, stats], groups_1d(c, 64))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn batchnorm_backward(
        &self,
        dy: &Buf,
        xhat: &Buf,
        gamma: &Buf,
        stats: &Buf,
        dx: &Buf,
        dgamma: &Buf,
        dbeta: &Buf,
        (n, c, inner): (usize, usize, usize),
    ) -> Dispatch {
        let p = Shape4 { v: [n as u32, c as u32, inner as u32, 0] };
        self.dispatch(Kernel::BatchnormBackward, &p, &[dy, xhat, gamma, stats, dx, dgamma, dbeta], groups_1d(c, 64))
    }

    /// `y = x ⊙ scale` (dropout's forward and backward).
    pub fn dropout(&self, x: &Buf, scale: &Buf, y: &Buf, len: usize) -> Dispatch {
        self.dispatch(Kernel::Dropout, &Shape4 { v: [len as u32, 0, 0, 0] }, &[x, scale, y], groups_1d(len, 256))
    }

    /// One Adam update of `w` from `g` with moments `m`, `v`.
    pub fn adam_update(&self, w: &Buf, g: &Buf, m: &Buf, v: &Buf, p: AdamParams) -> Dispatch {
        self.dispatch(Kernel::AdamUpdate, &p, &[w, g, m, v], groups_1d(p.len as usize, 256))
    }
}
