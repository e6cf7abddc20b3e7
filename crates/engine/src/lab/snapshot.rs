//! Snapshots: compact plain data sent from the worker to the UI (and printed by the CLI).
//! Histogram bins and summary numbers, never raw tensors.

use crate::stats::TensorStats;
use serde::{Deserialize, Serialize};

/// `V` is the lab-specific data to draw: the registry's `View` for every lab together (see
/// `lab::Snapshot`), or one lab's own view type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot<V> {
    pub lab: String,
    pub step: u64,
    pub epoch: u64,
    /// The share of the current epoch done (0–1), and the steps an epoch takes: the page's
    /// progress bar and its time estimate.
    #[serde(default)]
    pub epoch_progress: f32,
    #[serde(default)]
    pub steps_per_epoch: u64,
    /// Loss of the last mini-batch.
    pub loss: f32,
    /// Loss over the whole training set (evaluation mode).
    pub train_loss: f32,
    /// Loss over the test set (evaluation mode).
    pub test_loss: f32,
    /// Extra metrics by name (e.g. `test_accuracy`).
    pub metrics: Vec<Metric>,
    /// Global gradient norm of the last step (as applied: after L1/L2 and clipping).
    pub grad_norm: f32,
    /// Measured wall time per step (set by the driver).
    pub ms_per_step: f64,
    /// True when the loss or a parameter is NaN or infinite.
    pub diverged: bool,
    pub layers: Vec<LayerSnapshot>,
    /// Per-step records since the previous snapshot (every step at first, then sparser: see
    /// `Trainer`), so charts are complete however rarely snapshots are taken.
    pub records: Vec<StepRecord>,
    /// Problems spotted while training (dead units, saturation, bad update sizes, NaN).
    pub diagnoses: Vec<super::diagnose::Diagnosis>,
    pub view: V,
}

/// One training step, recorded by the trainer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: u64,
    /// The mini-batch loss.
    pub loss: f32,
    /// The share of the mini-batch classified right as it trained (class targets on the CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f32>,
    /// ‖∂L/∂θ‖ of every parameter tensor, in model order (after L2 and clipping).
    pub grads: Vec<f32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub value: f32,
}

/// One layer with parameters (e.g. dense) together with the activation that follows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerSnapshot {
    pub name: String,
    pub params: Vec<ParamSnapshot>,
    /// The layer's output (after its activation) over the training set.
    pub activations: TensorStats,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamSnapshot {
    pub name: String,
    pub value: TensorStats,
    pub grad: TensorStats,
    /// `‖Δw‖ / ‖w‖` of the last step (about 1e-3 is healthy).
    pub update_ratio: f32,
}
