//! The ops, each in its own file with forward, backward, the math and its tests.

pub mod activation;
pub mod dense;
pub mod dropout;
pub mod polynomial;

pub use activation::{Activation, ActivationKind};
pub use dense::Dense;
pub use dropout::Dropout;
pub use polynomial::Polynomial;
