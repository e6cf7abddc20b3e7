//! Lab 2, CNN: a convolutional network on MNIST or Fashion-MNIST, the naive-vs-im2col race,
//! filters, feature maps and draw-a-digit.

pub mod config;
pub mod session;
pub mod view;

pub use config::*;
pub use session::CnnLab;
pub use view::{AccuracyPoint, CnnCommand, CnnReply, CnnView, FeatureMaps, FilterBank, Probe, Race, WrongImage};
