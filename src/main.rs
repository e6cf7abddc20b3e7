//! One wasm for the page and its CPU training worker (one download): in a window `main` mounts
//! the UI; in a worker (`www/worker_main.js` starts this same module) it runs the trainer.

fn main() {
    #[cfg(target_arch = "wasm32")]
    if web_sys::window().is_none() {
        deeply_web::worker_entry();
        return;
    }
    deeply_web::start();
}
