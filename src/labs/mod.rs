//! One file per lab: its page and panels.

pub mod fit;
pub mod fit_charts;
