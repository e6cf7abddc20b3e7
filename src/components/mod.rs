//! Reusable UI pieces: charts, histograms, controls, the layer panel.

pub mod chart;
pub mod controls;
pub mod histogram;
pub mod layers;
pub mod stats_bar;
pub mod toolbar;

pub use toolbar::Toolbar;
