//! Deeply's GPU executor: the engine's ops as WGSL compute kernels on wgpu (Vulkan natively,
//! WebGPU in the browser). The engine (`crates/engine`) stays the reference and has no GPU code;
//! every kernel here has a parity test against its engine op (`tests/parity.rs`).
//!
//! Weights, gradients and optimiser state live in GPU buffers between steps. A training step is
//! a list of [`Dispatch`]es recorded once and submitted without waiting; only readbacks (a loss,
//! the weights) wait for the queue.
//!
//! Determinism: no atomics anywhere; every sum runs in one invocation in a fixed order (the
//! matrix product over k, the bias gradient over the rows, the batch loss over the rows), so a
//! run replays the same numbers on the same device.

pub mod accel;
pub mod bench;
mod context;
pub mod kernels;
pub mod net;
pub mod race;

pub use accel::GpuAccelerator;
pub use context::{Buf, Gpu};
pub use kernels::Dispatch;
pub use net::GpuNet;
