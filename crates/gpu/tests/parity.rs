//! Every GPU kernel against its engine op, at small and odd sizes (1, 3, 17, 64, 129), forward and
//! backward, and 100 training steps of an MLP on both backends. Natively these run on whatever
//! adapter wgpu finds — on CI machines lavapipe (Vulkan on the CPU, `mesa-vulkan-drivers`, which
//! `scripts/setup.sh` installs). Without an adapter the tests fail with that message: never a
//! silent skip.
//!
//! Tolerance: the normwise relative error `max|gpu − cpu| / max(max|cpu|, 1e-6)` ≤ 1e-4 (the GPU
//! may fuse a multiply-add the CPU rounds twice, and `exp`/`tanh` differ in the last bits).

use engine::init::Init;
use engine::layer::Layer;
use engine::loss::{Loss, Target};
use engine::ops::{Activation, ActivationKind, Dense};
use engine::optim::{self, Hyper, OptimizerKind};
use engine::rng::Rng;
use engine::sequential::Sequential;
use engine::tensor::{self, Mode};
use gpu::kernels::{AdamParams, SgdParams};
use gpu::{Gpu, GpuNet};

const SIZES: [usize; 5] = [1, 3, 17, 64, 129];

fn gpu() -> Gpu {
    std::env::set_var("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    Gpu::new_blocking().unwrap_or_else(|e| panic!("{e}: install a Vulkan driver (bash scripts/setup.sh installs lavapipe, mesa-vulkan-drivers)"))
}

fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

fn assert_close(gpu: &[f32], cpu: &[f32], what: &str) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = gpu.iter().zip(cpu).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
    assert!(err <= 1e-4, "{what}: relative error {err:e}");
}

#[test]
fn the_adapter_is_named() {
    let g = gpu();
    eprintln!("adapter: {} (software: {})", g.adapter, g.software);
    assert!(!g.adapter.is_empty());
}

#[test]
fn matmul_and_its_transposed_variants_equal_the_engine_gemm() {
    let g = gpu();
    let mut rng = Rng::new(1);
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &[1, 17, 129] {
                let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
                let mut want = vec![0.0; m * n];
                engine::ops::gemm::gemm(m, k, n, &a, &b, &mut want, false);
                // a stored transposed (k × m), b stored transposed (n × k): the same product.
                let mut at = vec![0.0; m * k];
                engine::ops::gemm::transpose(m, k, &a, &mut at);
                let mut bt = vec![0.0; k * n];
                engine::ops::gemm::transpose(k, n, &b, &mut bt);
                let (ga, gb, gat, gbt, c) = (g.upload(&a), g.upload(&b), g.upload(&at), g.upload(&bt), g.zeros(m * n));
                for (x, y, ta, tb) in [(&ga, &gb, false, false), (&gat, &gb, true, false), (&ga, &gbt, false, true), (&gat, &gbt, true, true)] {
                    g.run(&[g.matmul(x, y, &c, (m, n, k), ta, tb, false)]);
                    assert_close(&g.read(&c), &want, &format!("{m}×{k}·{k}×{n} transposed a {ta} b {tb}"));
                }
                // Accumulating adds to what is there.
                g.run(&[g.matmul(&ga, &gb, &c, (m, n, k), false, false, true)]);
                let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
                assert_close(&g.read(&c), &twice, "accumulate");
            }
        }
    }
}

#[test]
fn bias_and_activations_forward_and_backward_equal_the_engine() {
    let g = gpu();
    let mut rng = Rng::new(2);
    for &rows in &SIZES {
        for &cols in &[1, 3, 17, 129] {
            let (z, b, dy) = (random(rows * cols, &mut rng), random(cols, &mut rng), random(rows * cols, &mut rng));
            for kind in ActivationKind::ALL {
                // The engine: z + b (as Dense adds it), then the activation.
                let zb: Vec<f32> = z.iter().enumerate().map(|(i, &v)| v + b[i % cols]).collect();
                let mut act = Activation::new(kind, 0.1);
                let want_y = tensor::slice(act.forward(&tensor::from_vec(&[rows, cols], zb), Mode::Train)).to_vec();
                let want_dz = tensor::slice(act.backward(&tensor::from_vec(&[rows, cols], dy.clone()))).to_vec();
                let (gz, gb, gy, gdy, gdz) = (g.upload(&z), g.upload(&b), g.zeros(rows * cols), g.upload(&dy), g.zeros(rows * cols));
                g.run(&[g.bias_act(&gz, &gb, &gy, (rows, cols), kind, 0.1), g.act_backward(&gdy, &gy, &gdz, rows * cols, kind, 0.1)]);
                assert_close(&g.read(&gy), &want_y, &format!("{kind:?} forward {rows}×{cols}"));
                assert_close(&g.read(&gdz), &want_dz, &format!("{kind:?} backward {rows}×{cols}"));
            }
        }
    }
}

#[test]
fn column_sums_and_the_batch_loss_equal_the_engine() {
    let g = gpu();
    let mut rng = Rng::new(3);
    for &rows in &SIZES {
        for &cols in &SIZES {
            let x = random(rows * cols, &mut rng);
            let want: Vec<f32> = (0..cols).map(|j| (0..rows).map(|i| x[i * cols + j]).sum()).collect();
            let (gx, s) = (g.upload(&x), g.zeros(cols));
            g.run(&[g.column_sum(&gx, &s, (rows, cols))]);
            assert_close(&g.read(&s), &want, &format!("column sums {rows}×{cols}"));
        }
    }
    for &k in &[2, 3, 17, 129] {
        for &n in &SIZES {
            let z = random(n * k, &mut rng);
            let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 1) % k).collect();
            let mut want_dz = tensor::zeros(&[0]);
            let want = Loss::Softmax.value_and_grad(&tensor::from_vec(&[n, k], z.clone()), Target::Classes(&labels), &mut want_dz);
            let labels32: Vec<u32> = labels.iter().map(|&c| c as u32).collect();
            let (gz, gl, gdz, losses, loss) = (g.upload(&z), g.upload_u32(&labels32), g.zeros(n * k), g.zeros(n), g.zeros(1));
            g.run(&[g.softmax_cross_entropy(&gz, &gl, &gdz, &losses, (n, k)), g.sum(&losses, &loss, n, 1.0 / n as f32)]);
            assert_close(&g.read(&gdz), tensor::slice(&want_dz), &format!("softmax CE gradient {n}×{k}"));
            assert_close(&g.read(&loss), &[want], &format!("softmax CE loss {n}×{k}"));
        }
    }
}

#[test]
fn optimizer_updates_equal_the_engine_over_several_steps() {
    let g = gpu();
    let mut rng = Rng::new(4);
    for &len in &SIZES {
        for opt in [OptimizerKind::Sgd, OptimizerKind::Momentum, OptimizerKind::Nesterov, OptimizerKind::Adam] {
            let h = Hyper { lr: 0.05, momentum: 0.9, l2: 0.01, l1: 0.0, clip: 0.0 };
            let mut w = random(len, &mut rng);
            let (gw, gg, s0, s1) = (g.upload(&w), g.zeros(len), g.zeros(len), g.zeros(len));
            let mut cpu = opt.build();
            let mut beta_t = (1.0f32, 1.0f32);
            for step in 0..5 {
                let grad = random(len, &mut rng);
                // The engine adds L2 to the gradient, then updates.
                let with_l2: Vec<f32> = grad.iter().zip(&w).map(|(g, w)| g + h.l2 * w).collect();
                cpu.begin_step();
                cpu.update(0, &mut w, &with_l2, &h);
                g.write(&gg, &grad);
                let d = match opt {
                    OptimizerKind::Adam => {
                        beta_t = (beta_t.0 * 0.9, beta_t.1 * 0.999);
                        let p = AdamParams {
                            len: len as u32,
                            pad0: [0; 3],
                            lr: h.lr,
                            b1: 0.9,
                            b2: 0.999,
                            eps: 1e-8,
                            c1: 1.0 - beta_t.0,
                            c2: 1.0 - beta_t.1,
                            l2: h.l2,
                            pad1: 0.0,
                        };
                        g.adam_update(&gw, &gg, &s0, &s1, p)
                    }
                    _ => {
                        let mode = [OptimizerKind::Sgd, OptimizerKind::Momentum, OptimizerKind::Nesterov].iter().position(|&o| o == opt).unwrap() as u32;
                        g.sgd_update(&gw, &gg, &s0, SgdParams { len: len as u32, mode, pad0: [0; 2], lr: h.lr, mu: h.momentum, l2: h.l2, pad1: 0.0 })
                    }
                };
                g.run(&[d]);
                assert_close(&g.read(&gw), &w, &format!("{opt:?} step {step}, {len} weights"));
            }
        }
    }
}

fn mlp(inputs: usize, hidden: &[usize], classes: usize, act: ActivationKind, seed: u64) -> Sequential {
    let mut rng = Rng::new(seed);
    let mut b = Sequential::builder();
    let mut width = inputs;
    for &h in hidden {
        b.push(Dense::new(width, h, Init::He, 0.0, &mut rng));
        b.push(Activation::new(act, 0.1));
        width = h;
    }
    b.push(Dense::new(width, classes, Init::Xavier, 0.0, &mut rng));
    b.build()
}

/// One CPU step of the engine's model: forward, softmax CE, backward, update. Returns the loss.
fn cpu_step(model: &mut Sequential, opt: &mut dyn optim::Optimizer, h: &Hyper, x: &[f32], labels: &[usize], inputs: usize) -> f32 {
    let x = tensor::from_vec(&[labels.len(), inputs], x.to_vec());
    model.zero_grad();
    let out = model.forward(&x, Mode::Train).clone();
    let mut d = tensor::zeros(&[0]);
    let loss = Loss::Softmax.value_and_grad(&out, Target::Classes(labels), &mut d);
    model.backward(&d);
    optim::apply(model, opt, h);
    loss
}

#[test]
fn dense_gradients_of_a_step_equal_the_engine_backward() {
    let g = gpu();
    let (inputs, n) = (17, 3);
    let model = mlp(inputs, &[64, 17], 3, ActivationKind::Tanh, 5);
    let mut cpu = mlp(inputs, &[64, 17], 3, ActivationKind::Tanh, 5);
    let mut rng = Rng::new(6);
    let x = random(n * inputs, &mut rng);
    let labels = [0, 2, 1];
    // lr 0: the step computes gradients and leaves the weights.
    let h = Hyper { lr: 0.0, momentum: 0.0, l2: 0.0, l1: 0.0, clip: 0.0 };
    let mut m = GpuNet::new(&g, &model, &[inputs], n, OptimizerKind::Sgd, h).unwrap();
    m.step(&x, &labels).unwrap();
    let loss = cpu_step(&mut cpu, &mut *OptimizerKind::Sgd.build(), &h, &x, &labels, inputs);
    assert_close(&[m.loss()], &[loss], "loss");
    let mut want = Vec::new();
    cpu.visit_params(&mut |_, _, _, gr| want.push(tensor::slice(gr).to_vec()));
    let got: Vec<Vec<f32>> = m.params().into_iter().map(|(_, g)| g).collect();
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_close(a, b, &format!("gradient of parameter {i}"));
    }
}

#[test]
fn an_mlp_trains_100_steps_on_both_backends_to_the_same_losses() {
    let g = gpu();
    let (inputs, classes, n) = (64, 10, 32);
    for (opt, act) in [(OptimizerKind::Momentum, ActivationKind::Relu), (OptimizerKind::Adam, ActivationKind::Tanh)] {
        let h = Hyper { lr: if opt == OptimizerKind::Adam { 0.002 } else { 0.05 }, momentum: 0.9, l2: 1e-4, l1: 0.0, clip: 0.0 };
        let mut cpu = mlp(inputs, &[128, 64], classes, act, 7);
        let mut gpu_model = GpuNet::new(&g, &mlp(inputs, &[128, 64], classes, act, 7), &[inputs], n, opt, h).unwrap();
        let mut cpu_opt = opt.build();
        // A learnable task: the class is which of ten input blocks has the largest mean.
        let mut rng = Rng::new(8);
        let (mut first, mut last) = (0.0, 0.0);
        for step in 0..100 {
            let labels: Vec<usize> = (0..n).map(|_| (rng.uniform() * classes as f32) as usize % classes).collect();
            let x: Vec<f32> = (0..n * inputs).map(|i| rng.normal() * 0.5 + if (i % inputs) / 6 == labels[i / inputs] { 1.0 } else { 0.0 }).collect();
            let cpu_loss = cpu_step(&mut cpu, &mut *cpu_opt, &h, &x, &labels, inputs);
            gpu_model.step(&x, &labels).unwrap();
            let gpu_loss = gpu_model.loss();
            // Rounding differences grow through training: 1e-3 relative over 100 steps.
            assert!((gpu_loss - cpu_loss).abs() <= 1e-3 * cpu_loss.abs().max(1e-3), "{opt:?} step {step}: GPU {gpu_loss} vs CPU {cpu_loss}");
            if step == 0 {
                first = cpu_loss;
            }
            last = cpu_loss;
        }
        assert!(last < 0.5 * first, "{opt:?}: it learns ({first} → {last})");
        // The weights come back to the CPU model (a backend switch keeps them).
        let mut back = mlp(inputs, &[128, 64], classes, act, 99);
        gpu_model.write_back(&mut back).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        back.visit_params(&mut |_, _, w, _| a.extend_from_slice(tensor::slice(w)));
        cpu.visit_params(&mut |_, _, w, _| b.extend_from_slice(tensor::slice(w)));
        assert_close(&a, &b, &format!("{opt:?}: weights after 100 steps"));
    }
}

#[test]
fn the_same_steps_replay_the_same_bits_on_the_gpu() {
    let g = gpu();
    let run = || {
        let h = Hyper { lr: 0.01, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 0.0 };
        let mut m = GpuNet::new(&g, &mlp(17, &[129], 3, ActivationKind::Relu, 1), &[17], 64, OptimizerKind::Adam, h).unwrap();
        let mut rng = Rng::new(2);
        let mut losses = Vec::new();
        for _ in 0..10 {
            let x = random(64 * 17, &mut rng);
            let labels: Vec<usize> = (0..64).map(|i| i % 3).collect();
            m.step(&x, &labels).unwrap();
            losses.push(m.loss().to_bits());
        }
        losses
    };
    assert_eq!(run(), run());
}

#[test]
fn what_the_gpu_cannot_run_is_refused_with_a_message() {
    let g = gpu();
    let h = Hyper { lr: 0.1, momentum: 0.0, l2: 0.0, l1: 0.0, clip: 0.0 };
    let model = mlp(4, &[3], 2, ActivationKind::Relu, 1);
    let err = |r: Result<GpuNet, String>| r.err().expect("refused");
    assert!(err(GpuNet::new(&g, &model, &[4], 8, OptimizerKind::Adagrad, h)).contains("Adagrad"));
    assert!(err(GpuNet::new(&g, &model, &[4], 8, OptimizerKind::Sgd, Hyper { clip: 1.0, ..h })).contains("clipping"));
    assert!(err(GpuNet::new(&g, &model, &[4], 0, OptimizerKind::Sgd, h)).contains("batch"));
    assert!(err(GpuNet::new(&g, &model, &[5], 2, OptimizerKind::Sgd, h)).contains("dense"), "a wrong input shape is refused");
    let mut m = GpuNet::new(&g, &model, &[4], 2, OptimizerKind::Sgd, h).unwrap();
    assert!(m.step(&[0.0; 8], &[0, 5]).unwrap_err().contains("class 5"));
    assert!(m.step(&[0.0; 7], &[0, 1]).is_err());
    let mut b = Sequential::builder();
    b.push(Activation::new(ActivationKind::Relu, 0.0));
    b.push(engine::ops::Rnn::new(4, 3, Init::Normal, 1.0, &mut Rng::new(1)));
    assert!(err(GpuNet::new(&g, &b.build(), &[2, 4], 2, OptimizerKind::Sgd, h)).contains("does not run on the GPU"));
}

#[test]
fn convolution_forward_and_both_backward_passes_equal_the_engine() {
    use engine::ops::Conv2d;
    use gpu::kernels::ConvShape;
    let g = gpu();
    let mut rng = Rng::new(9);
    // (n, c, h, w, o, k, stride, pad): odd sizes, strides and paddings, LeNet's first layer, a big batch.
    let shapes = [
        (1, 1, 5, 5, 1, 1, 1, 0),
        (3, 3, 17, 17, 6, 3, 1, 1),
        (2, 1, 28, 28, 6, 5, 1, 2),
        (3, 6, 14, 14, 16, 5, 1, 0),
        (1, 3, 17, 13, 4, 3, 2, 1),
        (2, 2, 9, 9, 3, 5, 2, 2),
        // A large batch: the weight gradient sums over chunks of images, then the chunks.
        (300, 1, 28, 28, 6, 4, 1, 0),
    ];
    for (n, c, h, w, o, k, s, p) in shapes {
        let mut conv = Conv2d::new(c, o, k, s, p, Init::He, &mut rng);
        tensor::slice_mut(&mut conv.b).iter_mut().for_each(|b| *b = rng.normal());
        let x = random(n * c * h * w, &mut rng);
        let y = tensor::slice(conv.forward(&tensor::from_vec(&[n, c, h, w], x.clone()), Mode::Train)).to_vec();
        let shape = ConvShape { n, c, h, w, o, k, s, p };
        let (oh, ow) = shape.out();
        let dy = random(n * o * oh * ow, &mut rng);
        let dx = tensor::slice(conv.backward(&tensor::from_vec(&[n, o, oh, ow], dy.clone()))).to_vec();
        let (gx, gw, gb, gy) = (g.upload(&x), g.upload(tensor::slice(&conv.w)), g.upload(tensor::slice(&conv.b)), g.zeros(y.len()));
        let (gdy, gdx, gdw, gdb) = (g.upload(&dy), g.zeros(x.len()), g.zeros(conv.w.len()), g.zeros(o));
        let [dw1, dw2] = g.conv2d_backward_weight(&gdy, &gx, &gdw, &gdb, shape);
        g.run(&[g.conv2d_forward(&gx, &gw, &gb, &gy, shape), g.conv2d_backward_input(&gdy, &gw, &gdx, shape), dw1, dw2]);
        let what = format!("conv {shape:?}");
        assert_close(&g.read(&gy), &y, &format!("{what} forward"));
        assert_close(&g.read(&gdx), &dx, &format!("{what} dx"));
        assert_close(&g.read(&gdw), tensor::slice(&conv.dw), &format!("{what} dW"));
        assert_close(&g.read(&gdb), tensor::slice(&conv.db), &format!("{what} db"));
    }
}

#[test]
fn max_and_average_pooling_equal_the_engine_with_their_switches() {
    use engine::ops::{Pool2d, PoolKind};
    use gpu::kernels::PoolShape;
    let g = gpu();
    let mut rng = Rng::new(10);
    for (n, c, h, w, k, s) in [(1, 1, 2, 2, 2, 2), (3, 6, 28, 28, 2, 2), (2, 3, 17, 17, 3, 2), (1, 2, 9, 7, 3, 1), (2, 1, 5, 5, 1, 1)] {
        for kind in [PoolKind::Max, PoolKind::Avg] {
            let mut pool = Pool2d::new(kind, k, s);
            // Ties on purpose (rounded values): the first maximum must win on both.
            let x: Vec<f32> = (0..n * c * h * w).map(|_| (rng.normal() * 2.0).round()).collect();
            let y = tensor::slice(pool.forward(&tensor::from_vec(&[n, c, h, w], x.clone()), Mode::Train)).to_vec();
            let shape = PoolShape { planes: n * c, h, w, k, s, max: kind == PoolKind::Max };
            let dy = random(y.len(), &mut rng);
            let dx = tensor::slice(pool.backward(&tensor::from_vec(pool.output().shape(), dy.clone()))).to_vec();
            let (gx, gy, sw, gdy, gdx) = (g.upload(&x), g.zeros(y.len()), g.upload_u32(&vec![0; y.len()]), g.upload(&dy), g.zeros(x.len()));
            g.run(&[g.pool_forward(&gx, &gy, &sw, shape), g.pool_backward(&gdy, &sw, &gdx, shape)]);
            assert_close(&g.read(&gy), &y, &format!("{kind:?} pool {shape:?} forward"));
            assert_close(&g.read(&gdx), &dx, &format!("{kind:?} pool {shape:?} backward"));
        }
    }
}

#[test]
fn batch_norm_forward_backward_and_running_statistics_equal_the_engine() {
    use engine::ops::BatchNorm;
    let g = gpu();
    let mut rng = Rng::new(11);
    // (n, c, inner): BatchNorm1d over features, and 2d over channels.
    for (n, c, inner) in [(2, 1, 1), (3, 17, 1), (64, 129, 1), (17, 3, 1), (4, 6, 25), (3, 2, 9)] {
        let mut bn = BatchNorm::new(c);
        tensor::slice_mut(&mut bn.gamma).iter_mut().for_each(|v| *v = 1.0 + 0.3 * rng.normal());
        tensor::slice_mut(&mut bn.beta).iter_mut().for_each(|v| *v = rng.normal());
        let shape: Vec<usize> = if inner == 1 { vec![n, c] } else { vec![n, c, inner, 1] };
        let x: Vec<f32> = (0..n * c * inner).map(|i| 3.0 + (i % 5) as f32 * rng.normal()).collect();
        let (gamma, beta) = (tensor::slice(&bn.gamma).to_vec(), tensor::slice(&bn.beta).to_vec());
        let y = tensor::slice(bn.forward(&tensor::from_vec(&shape, x.clone()), Mode::Train)).to_vec();
        let dy = random(x.len(), &mut rng);
        let dx = tensor::slice(bn.backward(&tensor::from_vec(&shape, dy.clone()))).to_vec();
        let mut stats = vec![0.0; c];
        stats.extend(vec![1.0; c]);
        stats.extend(vec![0.0; c]);
        let (gx, gg, gb, gy, xh, st) = (g.upload(&x), g.upload(&gamma), g.upload(&beta), g.zeros(x.len()), g.zeros(x.len()), g.upload(&stats));
        let (gdy, gdx, dg, db) = (g.upload(&dy), g.zeros(x.len()), g.zeros(c), g.zeros(c));
        g.run(&[
            g.batchnorm_forward(&gx, &gg, &gb, &gy, &xh, &st, (n, c, inner), true),
            g.batchnorm_backward(&gdy, &xh, &gg, &st, &gdx, &dg, &db, (n, c, inner)),
        ]);
        let what = format!("batch norm ({n}, {c}, {inner})");
        assert_close(&g.read(&gy), &y, &format!("{what} forward"));
        assert_close(&g.read(&gdx), &dx, &format!("{what} dx"));
        assert_close(&g.read(&dg), tensor::slice(&bn.dgamma), &format!("{what} dγ"));
        assert_close(&g.read(&db), tensor::slice(&bn.dbeta), &format!("{what} dβ"));
        let s = g.read(&st);
        assert_close(&s[..c], tensor::slice(&bn.running_mean), &format!("{what} running mean"));
        assert_close(&s[c..2 * c], tensor::slice(&bn.running_var), &format!("{what} running variance"));
        // Evaluation mode reads the running statistics.
        let want_eval = tensor::slice(bn.forward(&tensor::from_vec(&shape, x.clone()), Mode::Eval)).to_vec();
        g.run(&[g.batchnorm_forward(&gx, &gg, &gb, &gy, &xh, &st, (n, c, inner), false)]);
        assert_close(&g.read(&gy), &want_eval, &format!("{what} evaluation"));
    }
}

#[test]
fn dropout_drops_the_units_the_engine_drops() {
    use engine::ops::Dropout;
    let g = gpu();
    let mut rng = Rng::new(12);
    for &len in &SIZES {
        let x = random(len, &mut rng);
        // The engine's mask, read off its forward on ones (its own seeded stream), then applied on the GPU.
        let scale = tensor::slice(Dropout::new(0.3, 5).forward(&tensor::from_vec(&[len], vec![1.0; len]), Mode::Train)).to_vec();
        let want = tensor::slice(Dropout::new(0.3, 5).forward(&tensor::from_vec(&[len], x.clone()), Mode::Train)).to_vec();
        let (gx, gs, gy) = (g.upload(&x), g.upload(&scale), g.zeros(len));
        g.run(&[g.dropout(&gx, &gs, &gy, len)]);
        assert_close(&g.read(&gy), &want, &format!("dropout of {len}"));
    }
}

/// MNIST from the shipped files, scaled like the labs.
fn mnist() -> engine::data::images::ImagePair {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/data");
    engine::data::images::ImagePair::load_dir(engine::data::images::ImageSet::Mnist, &dir).expect("static/data ships MNIST")
}

/// Trains a lab's model `steps` steps on both backends on the same MNIST batches; returns the
/// largest relative loss difference and the first and last CPU losses.
fn both_backends(g: &Gpu, link: &str, input: &[usize], batch: usize, steps: usize) -> (f32, f32, f32) {
    use engine::data::Source;
    use engine::lab::{batchnorm::BnConfig, cnn::CnnConfig, parse_link};
    let config = parse_link(link).config;
    let (mut cpu, opt, h, norm) = if let Some(c) = config.get::<CnnConfig>() {
        (c.build_model(&mut Rng::fork(c.seed, 1)), c.opt, c.hyper(), c.norm)
    } else {
        let c = config.get::<BnConfig>().expect("a cnn or batchnorm link");
        (c.build_model(engine::lab::batchnorm::Net::Bn, &mut Rng::fork(c.seed, 1)), c.opt, c.hyper(), c.norm)
    };
    let mut on_gpu = GpuNet::new(g, &cpu, input, batch, opt, h).unwrap();
    let images = mnist();
    let source = images.train_source(images.scaling(norm));
    let mut cpu_opt = opt.build();
    let (mut x, mut y, mut classes) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new());
    let (mut worst, mut first, mut last) = (0.0f32, 0.0, 0.0);
    let inputs: usize = input.iter().product();
    for step in 0..steps {
        let rows: Vec<usize> = (step * batch..(step + 1) * batch).collect();
        source.gather(&rows, &mut x, &mut y, &mut classes);
        let flat = tensor::slice(&x).to_vec();
        cpu.zero_grad();
        let shaped = tensor::from_vec(&std::iter::once(batch).chain(input.iter().copied()).collect::<Vec<_>>(), flat.clone());
        let out = cpu.forward(&shaped, Mode::Train).clone();
        let mut d = tensor::zeros(&[0]);
        let cpu_loss = Loss::Softmax.value_and_grad(&out, Target::Classes(&classes), &mut d);
        cpu.backward(&d);
        optim::apply(&mut cpu, &mut *cpu_opt, &h);
        assert_eq!(flat.len(), batch * inputs);
        on_gpu.step(&flat, &classes).unwrap();
        let gpu_loss = on_gpu.loss();
        worst = worst.max((gpu_loss - cpu_loss).abs() / cpu_loss.abs().max(1e-3));
        if step == 0 {
            first = cpu_loss;
        }
        last = cpu_loss;
    }
    (worst, first, last)
}

#[test]
fn lenet5_trains_100_steps_on_both_backends_to_the_same_losses() {
    let g = gpu();
    let (worst, first, last) = both_backends(&g, "lab=cnn&model=lenet5&bs=16&seed=1", &[1, 28, 28], 16, 100);
    eprintln!("LeNet-5, 100 steps of 16: largest relative loss difference {worst:e}; loss {first} → {last}");
    assert!(worst <= 1e-3, "{worst}");
    assert!(last < 0.5 * first, "it learns: {first} → {last}");
}

#[test]
fn an_mlp_with_batch_norm_trains_100_steps_on_both_backends_to_the_same_losses() {
    let g = gpu();
    let (worst, first, last) = both_backends(&g, "lab=batchnorm&hidden=100,100&act=sigmoid&opt=sgd&lr=0.5&bs=32&seed=1", &[784], 32, 100);
    eprintln!("MLP + BN, 100 steps of 32: largest relative loss difference {worst:e}; loss {first} → {last}");
    assert!(worst <= 1e-3, "{worst}");
    assert!(last < 0.5 * first, "it learns: {first} → {last}");
}
