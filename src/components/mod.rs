//! Reusable UI pieces: charts, histograms, controls, the layer panel.

pub mod backprop;
pub mod canvas;
pub mod chart;
pub mod controls;
pub mod diagnoses;
pub mod drawer;
pub mod histogram;
pub mod layers;
pub mod loss_chart;
pub mod presets;
pub mod space;
pub mod stats_bar;
pub mod timeline;
pub mod toolbar;
pub mod tour;
pub mod why;

pub use backprop::Backprop;
pub use drawer::ControlsDrawer;
pub use loss_chart::LossChart;
pub use timeline::TimeTravel;
pub use toolbar::Toolbar;
pub use tour::Tour;
