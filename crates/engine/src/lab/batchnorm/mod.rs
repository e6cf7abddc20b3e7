//! Lab 3, Batch Norm: a plain MLP and the same MLP with batch normalisation, trained side by
//! side on identical mini-batches — their activations, gradients and updates over time, the BN
//! paper's Figure 1, and the pitfalls (tiny batches, evaluating in training mode).

pub mod config;
pub mod presets;
pub mod session;
pub mod view;

pub use config::*;
pub use presets::{BnPreset, PRESETS};
pub use session::BnLab;
pub use view::*;
