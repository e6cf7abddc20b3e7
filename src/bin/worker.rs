//! The training worker: owns the lab session, trains in time-boxed chunks, and streams snapshots
//! to the UI at most 30 times a second. The UI never trains.

#[cfg(target_arch = "wasm32")]
fn main() {
    deeply_web::worker::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the worker runs in the browser; build it with `trunk build`");
}
