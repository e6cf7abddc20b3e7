//! `deeply bench w2 --backend gpu`: workload W2 (the MLP 784-128-10 ReLU on MNIST, SGD 0.1,
//! the engine's W2 link) trained by [`GpuMlp`], timed like the CPU benchmark: a warm-up, then
//! steps until the time is up, then one readback so the clock counts the GPU's work. Mini-batches
//! are gathered on the CPU (as the worker would) and uploaded each step.

use crate::context::Gpu;
use crate::mlp::GpuMlp;
use engine::data::images::Assets;
use engine::data::Source;
use engine::lab::batchnorm::{BnConfig, Net};
use engine::lab::bench::{BenchResult, Workload};
use engine::lab::parse_link;
use engine::rng::Rng;
use engine::tensor;

/// Runs `workload` on `gpu` for `seconds` with mini-batches of `batch` (the workload's own when
/// `None`).
pub fn run(gpu: &Gpu, workload: Workload, batch: Option<usize>, seconds: f64, assets: &Assets, now_ms: &mut dyn FnMut() -> f64) -> Result<BenchResult, String> {
    if workload != Workload::W2 {
        return Err(format!(
            "{} does not run on the GPU yet: the GPU executor trains MLPs (w2); convolutions, pooling, batch norm and RNNs are still CPU-only",
            workload.name()
        ));
    }
    if !(seconds.is_finite() && (0.001..=600.0).contains(&seconds)) {
        return Err(format!("a benchmark runs from 0.001 to 600 seconds, not {seconds}"));
    }
    let parsed = parse_link(workload.link());
    let config = parsed.config.get::<BnConfig>().ok_or("W2 is a batchnorm-lab link")?.clone();
    let batch = batch.unwrap_or(config.bs);
    if !(1..=4096).contains(&batch) {
        return Err(format!("a batch of 1 to 4096 rows, not {batch}"));
    }
    let images = assets.get(config.data).ok_or("MNIST is not loaded")?;
    let model = config.build_model(Net::Plain, &mut Rng::fork(config.seed, 1));
    let mut mlp = GpuMlp::new(gpu, &model, batch, config.opt, config.hyper())?;
    let source = images.train_source(images.scaling(config.norm));
    let mut rng = Rng::fork(config.seed, 2);
    let (mut x, mut y, mut classes) = (tensor::zeros(&[0]), tensor::zeros(&[0]), Vec::new());
    let mut rows = vec![0usize; batch];
    let mut step = |mlp: &mut GpuMlp| -> Result<(), String> {
        rows.iter_mut().for_each(|r| *r = (rng.uniform() * source.len() as f32) as usize % source.len());
        source.gather(&rows, &mut x, &mut y, &mut classes);
        mlp.step(tensor::slice(&x), &classes)
    };
    let warm_until = now_ms() + seconds * 250.0;
    while now_ms() < warm_until {
        step(&mut mlp)?;
        mlp.loss();
    }
    let start = now_ms();
    let mut steps = 0u64;
    loop {
        for _ in 0..8 {
            step(&mut mlp)?;
        }
        steps += 8;
        // Wait for the GPU: its queue is part of the time.
        let loss = mlp.loss();
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
            });
        }
    }
}
