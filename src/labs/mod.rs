//! One file per lab: its page and panels.

pub mod bench;
pub mod cnn;
pub mod cnn_draw;
pub mod cnn_editor;
pub mod digit_pad;
pub mod fit;
pub mod fit_charts;
pub mod playground;
pub mod playground_draw;
