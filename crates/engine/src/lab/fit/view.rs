//! What the fit lab's page draws.

use serde::{Deserialize, Serialize};

/// The fit lab's chart data, in the target's own units.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FitView {
    /// Curve positions over the extended range (the training interval ± half its width).
    pub xs: Vec<f32>,
    pub target: Vec<f32>,
    pub prediction: Vec<f32>,
    /// The training interval.
    pub domain: (f32, f32),
    pub train_points: Vec<(f32, f32)>,
    /// Indices into `train_points` of the last mini-batch.
    pub batch: Vec<u32>,
    /// Each unit of the last hidden layer's contribution `w_j·h_j(x)` to the output, on `xs`
    /// (empty for the polynomial or a network without hidden layers). For ReLU, hinges.
    pub units: Vec<Vec<f32>>,
}
