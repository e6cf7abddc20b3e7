//! `deeply bench w2|w2bn|w3 --backend gpu`: the workload's model (the engine's link, the same
//! initial weights) trained by [`GpuNet`], timed like the CPU benchmark: a warm-up, then
//! steps until the time is up, then one readback so the clock counts the GPU's work. Mini-batches
//! are gathered on the CPU (as the worker would) and uploaded each step.

use crate::context::Gpu;
use crate::net::GpuNet;
use engine::data::images::Assets;
use engine::data::Source;
use engine::lab::batchnorm::{BnConfig, Net};
use engine::lab::bench::{BenchResult, Workload};
use engine::lab::cnn::CnnConfig;
use engine::lab::parse_link;
use engine::rng::Rng;
use engine::tensor;

/// Runs `workload` on `gpu` for `seconds` with mini-batches of `batch` (the workload's own when
/// `None`): W2 and W2bn (MLPs on MNIST), W3 (LeNet-5). W1 and W4 (a tiny MLP, an RNN) stay on the CPU.
#[cfg(not(target_arch = "wasm32"))]
pub fn run(gpu: &Gpu, workload: Workload, batch: Option<usize>, seconds: f64, assets: &Assets, now_ms: &mut dyn FnMut() -> f64) -> Result<BenchResult, String> {
    pollster::block_on(run_async(gpu, workload, batch, seconds, assets, now_ms))
}

/// [`run`] for the browser's worker: readbacks are awaited, never blocked on.
pub async fn run_async(
    gpu: &Gpu,
    workload: Workload,
    batch: Option<usize>,
    seconds: f64,
    assets: &Assets,
    now_ms: &mut dyn FnMut() -> f64,
) -> Result<BenchResult, String> {
    if !(seconds.is_finite() && (0.001..=600.0).contains(&seconds)) {
        return Err(format!("a benchmark runs from 0.001 to 600 seconds, not {seconds}"));
    }
    let config = parse_link(workload.link()).config;
    let (model, input, opt, hyper, bs, set, norm) = if let Some(c) = config.get::<BnConfig>() {
        let net = if workload == Workload::W2bn { Net::Bn } else { Net::Plain };
        (c.build_model(net, &mut Rng::fork(c.seed, 1)), vec![784], c.opt, c.hyper(), c.bs, c.data, c.norm)
    } else if let Some(c) = config.get::<CnnConfig>().filter(|_| workload == Workload::W3) {
        (c.build_model(&mut Rng::fork(c.seed, 1)), vec![1, 28, 28], c.opt, c.hyper(), c.bs, c.data, c.norm)
    } else {
        return Err(format!("{} does not run on the GPU: the GPU executor trains w2, w2bn and w3 (W1 is too small to pay, W4 is an RNN)", workload.name()));
    };
    let batch = batch.unwrap_or(bs);
    let images = assets.get(set).ok_or("MNIST is not loaded")?;
    let mut net = GpuNet::new(gpu, &model, &input, batch, opt, hyper)?;
    let source = images.train_source(images.scaling(norm));
    let mut rng = Rng::new(2);
    let (mut x, mut y, mut classes) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new());
    let mut rows = vec![0usize; batch];
    let mut step = |net: &mut GpuNet| -> Result<(), String> {
        rows.iter_mut().for_each(|r| *r = (rng.uniform() * source.len() as f32) as usize % source.len());
        source.gather(&rows, &mut x, &mut y, &mut classes);
        net.step(tensor::slice(&x), &classes)
    };
    let warm_until = now_ms() + seconds * 250.0;
    while now_ms() < warm_until {
        step(&mut net)?;
        net.loss_async().await?;
    }
    let start = now_ms();
    let mut steps = 0u64;
    loop {
        for _ in 0..8 {
            step(&mut net)?;
        }
        steps += 8;
        // Wait for the GPU: its queue is part of the time.
        let loss = net.loss_async().await?;
        if !loss.is_finite() {
            return Err(format!("the loss became {loss} on the GPU"));
        }
        let elapsed = now_ms() - start;
        if elapsed >= seconds * 1000.0 {
            let ms_per_step = elapsed / steps as f64;
            return Ok(BenchResult {
                workload: workload.name().into(),
                items_per_s: batch as f64 * 1000.0 / ms_per_step,
                ms_per_step,
                backend: format!("gpu: {}", gpu.adapter),
                steps,
                workers: 1,
            });
        }
    }
}
