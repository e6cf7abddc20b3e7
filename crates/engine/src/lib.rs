//! Deeply's training engine: datasets, lab sessions, links and export, on the neural-network core
//! of `deeply-nn` (tensors, ops with their backward passes, losses, optimisers), whose modules it
//! re-exports. Pure Rust on ndarray — no web crate — so the same code trains natively (tests, the
//! `deeply` CLI) and inside the browser's Web Worker. See `nn` for shapes and the `Layer` contract.

pub use nn::{backend, gradcheck, init, lanes, layer, loss, math, ops, optim, parallel, rng, sequential, split_layer, stats, tensor};
pub use nn::{Mode, Tensor};

pub mod data;
pub mod export;
pub mod lab;
