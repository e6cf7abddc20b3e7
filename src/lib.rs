//! Deeply's web app: a Leptos single-page app (the UI, main thread) and a training Web Worker.
//! The UI never trains; it sends [`protocol::Command`]s and draws the snapshots it receives.

pub mod app;
pub mod client;
pub mod components;
pub mod fatal;
pub mod format;
pub mod helpers;
pub mod home;
#[cfg(target_arch = "wasm32")]
pub mod gpu_worker;
pub mod labs;
pub mod loader;
pub mod pacing;
pub mod protocol;
pub mod share;
pub mod theme;
pub mod worker;

#[cfg(test)]
mod wasm_tests;

/// Entry point of the UI binary.
pub fn start() {
    fatal::install_panic_hook();
    fatal::install_debug_hooks();
    leptos::mount::mount_to_body(app::App);
}
