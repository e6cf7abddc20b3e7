//! The ops, each in its own file with forward, backward, the math and its tests.

pub mod activation;
pub mod batchnorm;
pub mod conv2d;
pub mod dense;
pub mod dropout;
pub mod gemm;
pub mod polynomial;
pub mod pool;
pub mod rnn;

pub use activation::{Activation, ActivationKind};
pub use batchnorm::{BatchNorm, BnBackward};
pub use conv2d::{Conv2d, ConvImpl};
pub use dense::Dense;
pub use dropout::Dropout;
pub use polynomial::Polynomial;
pub use pool::{Flatten, Pool2d, PoolKind};
pub use rnn::{Rnn, RnnImpl};
