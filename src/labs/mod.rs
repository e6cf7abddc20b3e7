//! One file per lab: its page and panels.

pub mod bench;
pub mod fit;
pub mod fit_charts;
pub mod playground;
pub mod playground_draw;
