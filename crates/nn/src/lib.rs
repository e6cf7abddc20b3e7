//! Deeply's neural-network core: tensors, ops with their backward passes, losses, optimisers and
//! the model — the code every training step runs in. Its own crate so that the release build can
//! optimise it for speed while everything around it (labs, datasets, export, UI) is optimised for
//! download size; `deeply-engine` re-exports every module, so `engine::ops::…` is the same item.
//!
//! Shapes used across the engine (see `tensor`):
//! - dense data `(n, features)`; images `(n, c, h, w)`; sequences batch-major `(n, t, features)`
//!   with an `(n, t)` mask (see the engine's `data::seq`).
//!
//! Ops implement [`layer::Layer`]: `forward` caches what `backward` needs, `backward(dy)` returns
//! `dx` and *adds* into each parameter's gradient. A second compute backend (WebGPU) plugs in
//! behind the same trait: a GPU layer keeps its tensors on the device and implements the same
//! `forward`/`backward`/`visit_params`, and [`backend::Backend`] chooses which implementation a
//! model is built from. The CPU implementation is the reference every other one is tested against.

pub mod backend;
pub mod split_layer;
pub mod gradcheck;
pub mod init;
pub mod lanes;
pub mod layer;
pub mod loss;
pub mod math;
pub mod ops;
pub mod optim;
pub mod parallel;
pub mod rng;
pub mod sequential;
pub mod stats;
pub mod tensor;

pub use tensor::{Mode, Tensor};
