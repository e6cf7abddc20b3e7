//! What the Batch Norm lab's page draws, and the lab's own commands. Everything is per net
//! (`[plain, with BN]`, index = `Net as usize`) so the page draws both in the same charts.

use crate::data::images::ImageSet;
use serde::{Deserialize, Serialize};

/// Bins of each histogram column of the heat maps.
pub const HEAT_BINS: usize = 16;
/// The quantities drawn as histograms over time, per hidden layer.
pub const QUANTITIES: [&str; 4] = ["pre-activation", "activation", "gradient ∂L/∂activation", "weights W"];
/// The per-layer numbers tracked over time (see [`Columns::series`]).
pub const SERIES: [&str; 5] = ["saturated", "dead", "update_log10", "grad_data", "mean_abs_grad"];

/// Mini-batch loss and accuracy of both nets, averaged over the steps since the previous point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    pub step: u64,
    /// NaN for a net that has stopped (diverged).
    pub loss: [f32; 2],
    pub accuracy: [f32; 2],
}

/// One evaluation on all 10,000 test images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: u64,
    /// Epochs as a fraction (steps × batch / training images).
    pub epoch: f32,
    /// Evaluation mode (the BN net with its running statistics).
    pub accuracy: [f32; 2],
    pub loss: [f32; 2],
    /// The BN net in training mode: each test batch (of the training batch size) normalised
    /// with its own statistics.
    pub bn_train_mode_accuracy: f32,
    /// 15th, 50th and 85th percentiles of the tracked unit's activation input over the test
    /// images (Figure 1 b, c of the BN paper).
    pub percentiles: [[f32; 3]; 2],
}

/// Histograms over time and per-layer numbers, sampled every few steps (the samples thin out
/// evenly as a run grows, so a snapshot stays the same size). Flat buffers, indexed by the
/// methods below, so a snapshot is a few arrays rather than thousands of small objects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Columns {
    pub steps: Vec<u64>,
    /// Hidden layers per net (the same in both).
    pub layers: usize,
    /// Dense layers per net (hidden + output), for the per-weight numbers.
    pub dense: usize,
    /// `[net][layer][quantity][column][bin]`: bin counts scaled so a column's tallest is 255.
    #[serde(with = "serde_bytes")]
    pub heat: Vec<u8>,
    /// `[net][layer][quantity][column]` → `(lo, hi)` of that column's bins.
    pub ranges: Vec<(f32, f32)>,
    /// `[net][dense layer][series][column]`, the series in [`SERIES`] order (saturated and
    /// dead: fractions, NaN for the output layer; update:data as log10).
    pub series: Vec<f32>,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    fn at(&self, net: usize, layer: usize, quantity: usize) -> usize {
        (net * self.layers + layer) * QUANTITIES.len() + quantity
    }

    /// A column's bins and range (the histogram of `quantity` at sample `column`).
    pub fn histogram(&self, net: usize, layer: usize, quantity: usize, column: usize) -> Option<(&[u8], (f32, f32))> {
        let slot = self.at(net, layer, quantity) * self.len() + column;
        let bins = self.heat.get(slot * HEAT_BINS..(slot + 1) * HEAT_BINS)?;
        Some((bins, *self.ranges.get(slot)?))
    }

    /// `series` of dense layer `layer` of `net` over the samples.
    pub fn series(&self, net: usize, layer: usize, series: usize) -> &[f32] {
        let start = ((net * self.dense + layer) * SERIES.len() + series) * self.len();
        self.series.get(start..start + self.len()).unwrap_or(&[])
    }
}

/// A BN layer's running statistics beside the last training batch's (the first features).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BnStats {
    pub layer: usize,
    pub batch_mean: Vec<f32>,
    pub running_mean: Vec<f32>,
    pub batch_var: Vec<f32>,
    pub running_var: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BnView {
    pub data: ImageSet,
    pub train_size: usize,
    /// Dense layer names (`dense 784→128`…) in depth order.
    pub dense_names: Vec<String>,
    pub trace: Vec<TracePoint>,
    pub history: Vec<EvalPoint>,
    pub columns: Columns,
    pub bn_stats: Vec<BnStats>,
    /// The step at which the plain net's loss became NaN or infinite (it stopped there).
    pub plain_diverged_at: Option<u64>,
    /// Why the plain net failed (diverged or stalled), if it did.
    pub plain_failure: Option<String>,
    /// How much the tracked unit's input percentiles moved over training, per net: the mean over
    /// the three percentiles of (largest − smallest value over the evaluations), divided by the
    /// latest 15–85 spread; over the evaluations after step 0. NaN before two of them.
    pub drift: [f32; 2],
    pub eval_progress: f32,
    /// What the last "calibrate" did.
    pub calibrated: Option<String>,
}

/// The lab's own commands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BnCommand {
    /// Recompute the BN net's running statistics over the training set (each batch counted
    /// equally), then evaluate again.
    Calibrate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BnReply {
    Calibrated { images: usize, message: String },
}
