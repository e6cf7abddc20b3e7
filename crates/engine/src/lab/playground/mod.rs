//! The playground: 2-D classification and regression, on par with TensorFlow Playground.

pub mod config;
pub mod session;
pub mod view;

pub use config::{PlayLoss, PlaygroundConfig, Regularization, EXTENT, GRID, MAX_LAYERS, MAX_UNITS, NEURON_GRID};
pub use session::PlaygroundLab;
pub use view::{NeuronMap, PlaygroundCommand, PlaygroundReply, PlaygroundView, SavedState};
