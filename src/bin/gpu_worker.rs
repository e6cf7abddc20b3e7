//! The GPU worker (WebGPU through `crates/gpu`), loaded only for `backend=webgpu`.

#[cfg(target_arch = "wasm32")]
fn main() {
    deeply_web::gpu_worker::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the GPU worker runs in the browser; build it with `trunk build`");
}
