//! What the playground's page draws, and what "Export" saves.

use crate::data::playground::Point;
use crate::sequential::ModelState;
use serde::{Deserialize, Serialize};

/// The playground's drawing data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaygroundView {
    /// `GRID × GRID` cells, row 0 at y = +EXTENT: the output mapped to 0..=255 (binary: P(class 1)
    /// or (tanh + 1)/2; regression: (value + 1)/2; multi-class: the winning class' probability).
    #[serde(with = "serde_bytes")]
    pub heat: Vec<u8>,
    /// Multi-class only: the winning class of each cell.
    #[serde(with = "serde_bytes")]
    pub heat_class: Vec<u8>,
    pub classes: usize,
    pub train: Vec<Point>,
    pub test: Vec<Point>,
    /// Every hidden unit's output over the plane (`NEURON_GRID²`, 0..=255 over the unit's own
    /// range [lo, hi]), by layer; layer 0 holds the input features.
    pub neurons: Vec<Vec<NeuronMap>>,
    /// Dense weights by layer, `(inputs × outputs)` row-major, for drawing the graph.
    pub weights: Vec<Vec<f32>>,
    pub feature_names: Vec<String>,
    /// Confusion matrix on the test set, `[true][predicted]` (classification).
    pub confusion: Vec<Vec<u32>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NeuronMap {
    #[serde(with = "serde_bytes")]
    pub map: Vec<u8>,
    pub lo: f32,
    pub hi: f32,
}

/// What "Export" saves (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    pub link: String,
    pub step: u64,
    pub epoch: u64,
    /// Parameters and buffers.
    #[serde(flatten)]
    pub model: ModelState,
    pub points: Vec<Point>,
}

/// The playground's own commands from the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaygroundCommand {
    /// Train on these points (the `custom` dataset); a reset.
    SetPoints { points: Vec<Point> },
    /// Set one weight: dense layer `layer` (0-based), from unit `from` to unit `to`.
    SetWeight { layer: usize, from: usize, to: usize, value: f32 },
    /// Send the whole state as JSON.
    Export,
    /// Restore a state saved by `Export`.
    Import { json: String },
}

/// The playground's answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaygroundReply {
    Exported { json: String },
}
