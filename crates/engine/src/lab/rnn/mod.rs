//! Lab 4, RNN: a character-level recurrent network reads surnames and guesses their language;
//! backpropagation through time made visible (the gradient per time step, the spectral radius of
//! W_hh, clipping), the per-name loop raced against the batched layer, and a naive-Bayes baseline.

pub mod config;
pub mod generate;
pub mod presets;
pub mod session;
pub mod view;

pub use config::*;
pub use presets::{RnnPreset, PRESETS};
pub use session::RnnLab;
pub use view::*;
