//! Reusable UI pieces: charts, histograms, controls, the layer panel.

pub mod chart;
pub mod controls;
pub mod diagnoses;
pub mod histogram;
pub mod layers;
pub mod presets;
pub mod space;
pub mod stats_bar;
pub mod toolbar;

pub use toolbar::Toolbar;
