//! Labs: one serde config struct per lab (the URL, the controls, presets and the CLI all read it),
//! and a [`LabSession`] that trains it step by step and reports plain-data snapshots.

pub mod bench;
pub mod cnn;
pub mod cnn_session;
pub mod diagnose;
pub mod fit;
pub mod link;
pub mod playground;
pub mod presets;
pub mod snapshot;
pub mod space;
pub mod tf_link;
pub mod trainer;

pub use link::{parse_link, LabConfig, Notice, ParsedLink};
pub use snapshot::Snapshot;

use crate::data::images::{Assets, ImageSet};

/// What a change of one config value needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Took effect for the next step (learning rate, momentum, L2, batch size, clipping…).
    Live,
    /// Changes the model or data: the session was rebuilt from the new config and its seed.
    Reset,
}

/// A running lab: the worker and the CLI drive every lab through this.
pub trait LabSession: Send {
    /// The current config (including values changed mid-run).
    fn config(&self) -> LabConfig;
    /// Runs `n` optimiser steps; returns the last mini-batch loss.
    fn step(&mut self, n: u64) -> f32;
    /// The number of optimiser steps taken so far.
    fn steps(&self) -> u64;
    /// Completed passes over the training set.
    fn epochs(&self) -> u64;
    /// The configured step to pause at (0: never).
    fn stop_at(&self) -> u64;
    /// A reason to pause now (a stop condition was met), checked after every chunk of steps.
    fn stop_reason(&mut self) -> Option<String> {
        None
    }
    /// Sets one config value by its link key, validated like a link value.
    fn set(&mut self, key: &str, value: &str) -> Result<Applied, String>;
    /// Records the measured wall time per step (the engine has no clock on the web).
    fn set_timing(&mut self, ms_per_step: f64);
    /// A plain-data summary of the current state (evaluates the train and test sets).
    fn snapshot(&mut self) -> Snapshot;
    /// The playground's extra operations (own points, weight edits, export), where this is it.
    fn as_playground(&mut self) -> Option<&mut playground::PlaygroundSession> {
        None
    }
    /// The CNN lab's extra operations (the race, draw-a-digit), where this is it.
    fn as_cnn(&mut self) -> Option<&mut cnn_session::CnnSession> {
        None
    }
    /// The shortest time between two snapshots while training, in ms (≤ 30 per second; labs
    /// with heavy views ask for fewer so the page keeps its frame rate).
    fn snapshot_interval_ms(&self) -> f64 {
        1000.0 / 30.0
    }
    /// Brings the final metrics up to date (the CNN lab evaluates its test set on a schedule).
    fn finish(&mut self) {}
}

/// Builds the session a config describes, for labs that need no loaded data (fit, playground).
/// Panics for a lab that does: use [`build_with`].
pub fn build(config: &LabConfig) -> Box<dyn LabSession> {
    build_with(config, &Assets::default()).expect("this lab needs data: use build_with")
}

/// The image dataset a config trains on, if any (the driver loads it first).
pub fn needs_images(config: &LabConfig) -> Option<ImageSet> {
    match config {
        LabConfig::Cnn(c) => Some(c.data),
        _ => None,
    }
}

/// Builds the session a config describes with the loaded datasets.
pub fn build_with(config: &LabConfig, assets: &Assets) -> Result<Box<dyn LabSession>, String> {
    Ok(match config {
        LabConfig::Fit(c) => Box::new(fit::FitSession::new(c.clone())),
        LabConfig::Playground(c) => Box::new(playground::PlaygroundSession::new(c.clone())),
        LabConfig::Cnn(c) => {
            let images = assets.get(c.data).ok_or_else(|| format!("the {} images are not loaded", c.data.label()))?;
            Box::new(cnn_session::CnnSession::new(c.clone(), images))
        }
    })
}
