//! Lab 1, "Fit a function": an MLP (or a polynomial) learns a 1-D function from samples.

pub mod config;
pub mod session;
pub mod view;

pub use config::{FitConfig, FitModel, MAX_HIDDEN_LAYERS, MAX_POINTS, MAX_UNITS};
pub use session::FitLab;
pub use view::FitView;
