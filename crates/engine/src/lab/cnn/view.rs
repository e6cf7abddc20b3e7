//! What the CNN lab's page draws, and the lab's own commands.

use crate::data::images::ImageSet;
use serde::{Deserialize, Serialize};

/// One point of the accuracy curves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccuracyPoint {
    pub step: u64,
    /// Epochs as a fraction (steps × batch / training images).
    pub epoch: f32,
    /// Mean accuracy and loss of the mini-batches since the previous point.
    pub train_accuracy: f32,
    pub train_loss: f32,
    /// On all test images, at this step.
    pub test_accuracy: f32,
    pub test_loss: f32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WrongImage {
    pub index: usize,
    pub label: usize,
    pub predicted: usize,
    /// The probability given to the wrong class.
    pub confidence: f32,
    pub pixels: Vec<u8>,
}

/// The weights of one conv layer, to draw each filter as a small image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterBank {
    pub name: String,
    pub filters: usize,
    pub channels: usize,
    pub k: usize,
    /// `(filters, channels, k, k)` row-major.
    pub weights: Vec<f32>,
}

/// The output of one layer for the probe image: `channels` maps of `side × side`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureMaps {
    pub name: String,
    pub channels: usize,
    pub side: usize,
    pub values: Vec<f32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub index: usize,
    pub label: usize,
    pub pixels: Vec<u8>,
    pub probabilities: Vec<f32>,
    pub maps: Vec<FeatureMaps>,
}

/// The same mini-batch through both convolutions (forward + backward of every conv layer).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Race {
    pub step: u64,
    pub batch: usize,
    pub naive_ms: f64,
    pub im2col_ms: f64,
    /// The largest |difference| between the two implementations' outputs.
    pub max_diff: f32,
    /// The GPU's lane on the same mini-batch, when the page trains in the GPU worker.
    #[serde(default)]
    pub gpu: Option<crate::lab::accel::RaceLane>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CnnView {
    pub data: ImageSet,
    pub classes: Vec<String>,
    pub train_size: usize,
    pub history: Vec<AccuracyPoint>,
    /// Share of the running test evaluation done (0 when none is running).
    pub eval_progress: f32,
    /// `confusion[true][predicted]` of the last evaluation (row-major 10×10).
    pub confusion: Vec<u32>,
    pub wrong: Vec<WrongImage>,
    pub filters: Vec<FilterBank>,
    pub probe: Probe,
    pub race: Option<Race>,
}

/// The CNN lab's own commands from the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CnnCommand {
    /// Race the naive and the im2col convolution on the current mini-batch now.
    Race,
    /// Class probabilities for a 28×28 image (values in [0, 1]); answered by `Classified`.
    Classify { pixels: Vec<f32> },
}

/// The CNN lab's answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CnnReply {
    /// Draw-a-digit: the class probabilities of the drawing.
    Classified { probabilities: Vec<f32> },
}
