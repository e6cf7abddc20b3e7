//! Deeply's web app: a Leptos single-page app (the UI, main thread) and a training Web Worker.
//! The UI never trains; it sends [`protocol::Command`]s and draws the snapshots it receives.

pub mod app;
pub mod client;
pub mod components;
pub mod fatal;
pub mod format;
#[cfg(target_arch = "wasm32")]
pub mod gpu_worker;
pub mod helpers;
pub mod home;
pub mod labs;
pub mod loader;
pub mod pacing;
pub mod protocol;
pub mod rate;
pub mod share;
pub mod shared_copy;
pub mod theme;
pub mod worker;

#[cfg(test)]
mod wasm_tests;

/// The name the page gives the GPU worker (`WorkerOptions.name`): the one wasm, started by
/// `www/worker_main.js`, runs the trainer with WebGPU when its worker has this name.
pub const GPU_WORKER_NAME: &str = "deeply-gpu";

/// Entry point in a worker: the trainer with WebGPU (the GPU worker), or without (the CPU worker
/// and its helpers).
#[cfg(target_arch = "wasm32")]
pub fn worker_entry() {
    use wasm_bindgen::JsCast;
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    if scope.name() == GPU_WORKER_NAME {
        gpu_worker::run();
    } else {
        worker::run();
    }
}

/// Entry point of the UI.
pub fn start() {
    fatal::install_panic_hook();
    fatal::install_debug_hooks();
    leptos::mount::mount_to_body(app::App);
}
