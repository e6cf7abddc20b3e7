//! The GPU worker: a second Web Worker, loaded only when a link asks for `backend=webgpu`, that
//! trains on the browser's WebGPU with `crates/gpu` (the CPU worker stays free of wgpu). Today it
//! runs the benchmark workloads (`?lab=bench&workload=w3&backend=webgpu`); readbacks are awaited,
//! never blocked on.

use crate::protocol::{decode, encode, Command, Message};
use engine::data::images::Assets;
use engine::lab::bench::Workload;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

fn post(scope: &DedicatedWorkerGlobalScope, m: &Message) {
    let _ = scope.post_message(&encode(m));
}

async fn bench(scope: &DedicatedWorkerGlobalScope, workload: &str, seconds: f64) -> Result<engine::lab::bench::BenchResult, String> {
    let w = Workload::parse(workload).ok_or_else(|| format!("unknown workload \"{workload}\" (the workloads: {})", engine::lab::bench::WORKLOADS))?;
    let has_webgpu = js_sys::Reflect::get(&scope.navigator(), &"gpu".into()).is_ok_and(|g| !g.is_undefined());
    if !has_webgpu {
        post(scope, &Message::GpuUnavailable { reason: "this browser offers no WebGPU: navigator.gpu is missing".into() });
        return Err("no WebGPU".into());
    }
    let mut gpu = match gpu::Gpu::new().await {
        Ok(g) => g,
        Err(reason) => {
            post(scope, &Message::GpuUnavailable { reason });
            return Err("no WebGPU".into());
        }
    };
    if gpu.adapter.is_empty() {
        // wgpu keeps only the adapter's description (often empty); the browser knows more.
        gpu.adapter = adapter_label(scope).await.unwrap_or_else(|| "WebGPU adapter".into());
    }
    if gpu.software && !gpu.adapter.contains("software") {
        gpu.adapter.push_str(" (software)");
    }
    let mut assets = Assets::default();
    if let Some(set) = w.needs_images() {
        let what = set.label().to_string();
        let mut progress = |loaded, total| post(scope, &Message::Loading { what: what.clone(), loaded, total });
        assets.insert(crate::loader::fetch_images(scope, set, &mut progress).await?);
    }
    let clock = scope.performance().ok_or("no performance clock")?;
    gpu::bench::run_async(&gpu, w, None, seconds, &assets, &mut || clock.now()).await
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

/// Entry point of the GPU worker binary.
pub fn run() {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    std::panic::set_hook(Box::new({
        let scope = scope.clone();
        move |info| {
            let message = format!("The GPU worker crashed: {info}");
            web_sys::console::error_1(&message.clone().into());
            post(&scope, &Message::Error { message });
        }
    }));
    let on_command = Closure::<dyn FnMut(MessageEvent)>::new({
        let scope = scope.clone();
        move |event: MessageEvent| match decode::<Command>(event.data()) {
            Ok(Command::Bench { workload, seconds }) => {
                let scope = scope.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = bench(&scope, &workload, seconds).await;
                    if result.as_ref().err().map(String::as_str) != Some("no WebGPU") {
                        post(&scope, &Message::BenchDone { result });
                    }
                });
            }
            Ok(_) => web_sys::console::warn_1(&"GPU worker: it runs benchmarks only".into()),
            Err(e) => web_sys::console::warn_1(&format!("GPU worker: unreadable command: {e}").into()),
        }
    });
    scope.set_onmessage(Some(on_command.as_ref().unchecked_ref()));
    on_command.forget();
    post(&scope, &Message::Ready);
}
