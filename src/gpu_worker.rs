//! The GPU worker: the training worker (`worker.rs`) with a WebGPU device from `crates/gpu`,
//! started for labs whose networks can run on the GPU when the browser offers WebGPU. It is the
//! app's one wasm in a worker named [`crate::GPU_WORKER_NAME`]: wgpu's WebGPU path costs ~47 KB
//! gzipped, less than a second wasm would (541 KB, most of it the trainer again). It runs a lab's steps on the GPU or the CPU as the link's
//! `backend` asks, and the benchmark workloads (`?lab=bench&workload=w3&backend=webgpu`).
//! Readbacks are awaited, never blocked on.

use crate::protocol::{encode, Command, Message};
use crate::worker::GpuProvider;
use engine::data::images::Assets;
use engine::lab::accel::{RaceLane, RaceProbe};
use engine::lab::bench::Workload;
use engine::lab::{Accelerator, Trainer};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::DedicatedWorkerGlobalScope;

struct WebGpu(gpu::Gpu);

impl GpuProvider for WebGpu {
    fn name(&self) -> String {
        self.0.adapter.clone()
    }

    fn software(&self) -> bool {
        self.0.software
    }

    fn make(&self, trainer: &Trainer, input: &[usize]) -> Result<Box<dyn Accelerator>, String> {
        gpu::GpuAccelerator::new(&self.0, trainer, input).map(|a| Box::new(a) as Box<dyn Accelerator>)
    }

    fn race(&self, probe: RaceProbe) -> Pin<Box<dyn Future<Output = Result<RaceLane, String>>>> {
        let gpu = self.0.clone();
        Box::pin(async move {
            let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
            let clock = scope.performance().ok_or("no performance clock")?;
            gpu::race::lane(&gpu, &probe, &mut || clock.now()).await
        })
    }
}

/// The browser's WebGPU device, named, or why there is none.
async fn device(scope: &DedicatedWorkerGlobalScope) -> Result<gpu::Gpu, String> {
    let has_webgpu = js_sys::Reflect::get(&scope.navigator(), &"gpu".into()).is_ok_and(|g| !g.is_undefined());
    if !has_webgpu {
        return Err("this browser offers no WebGPU: navigator.gpu is missing".into());
    }
    let mut gpu = gpu::Gpu::new().await?;
    if gpu.adapter.is_empty() {
        // wgpu keeps only the adapter's description (often empty); the browser knows more.
        gpu.adapter = adapter_label(scope).await.unwrap_or_else(|| "WebGPU adapter".into());
    }
    // The browser may not say the adapter is a CPU one; its name does.
    let lower = gpu.adapter.to_lowercase();
    gpu.software |= ["swiftshader", "llvmpipe", "lavapipe", "software"].iter().any(|s| lower.contains(s));
    if gpu.software && !gpu.adapter.contains("software") {
        gpu.adapter.push_str(" (software)");
    }
    Ok(gpu)
}

fn post(scope: &DedicatedWorkerGlobalScope, m: &Message) {
    let _ = scope.post_message(&encode(m));
}

async fn bench(scope: &DedicatedWorkerGlobalScope, workload: &str, seconds: f64, batch: Option<usize>) -> Result<engine::lab::bench::BenchResult, String> {
    let w = Workload::parse(workload).ok_or_else(|| format!("unknown workload \"{workload}\" (the workloads: {})", engine::lab::bench::WORKLOADS))?;
    let gpu = match device(scope).await {
        Ok(g) => g,
        Err(reason) => {
            post(scope, &Message::GpuUnavailable { reason });
            return Err("no WebGPU".into());
        }
    };
    let mut assets = Assets::default();
    if let Some(set) = w.needs_images() {
        let what = set.label().to_string();
        let mut progress = |loaded, total| post(scope, &Message::Loading { what: what.clone(), loaded, total });
        assets.insert(crate::loader::fetch_images(scope, set, &mut progress).await?);
    }
    let clock = scope.performance().ok_or("no performance clock")?;
    gpu::bench::run_async(&gpu, w, batch, seconds, &assets, &mut || clock.now()).await
}

/// "vendor architecture device" of the browser's adapter (`GPUAdapterInfo`), when it says.
async fn adapter_label(scope: &DedicatedWorkerGlobalScope) -> Option<String> {
    use js_sys::Reflect;
    let gpu = Reflect::get(&scope.navigator(), &"gpu".into()).ok().filter(|g| !g.is_undefined())?;
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| !a.is_null())?;
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let parts: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|k| Reflect::get(&info, &(*k).into()).ok()?.as_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Entry point of the GPU worker binary: finds the device, then runs the training worker with it
/// (benchmarks are taken here first).
pub fn run() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    wasm_bindgen_futures::spawn_local(async move {
        let gpu = device(&scope).await.map(|g| Rc::new(WebGpu(g)) as Rc<dyn GpuProvider>);
        let intercept = Box::new(move |command: &Command| {
            let Command::Bench { workload, seconds, batch, .. } = command else { return false };
            let (scope, workload, seconds, batch) = (scope.clone(), workload.clone(), *seconds, *batch);
            wasm_bindgen_futures::spawn_local(async move {
                let result = bench(&scope, &workload, seconds, batch).await;
                if result.as_ref().err().map(String::as_str) != Some("no WebGPU") {
                    post(&scope, &Message::BenchDone { result });
                }
            });
            true
        });
        crate::worker::run_with(gpu, intercept);
    });
}
