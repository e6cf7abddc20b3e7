//! What the RNN lab's page draws, and the lab's own commands.

use serde::{Deserialize, Serialize};

/// One evaluation of the validation and test names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: u64,
    /// Epochs as a fraction.
    pub epoch: f32,
    /// Mini-batches since the previous point.
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub val_loss: f32,
    pub val_accuracy: f32,
    pub test_loss: f32,
    pub test_accuracy: f32,
    /// Mean per-class recall on the test names (the classes are unbalanced).
    pub test_balanced: f32,
    /// Evaluated at the end of an epoch (the points early stopping compares).
    pub epoch_end: bool,
}

/// The epoch with the best validation accuracy so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub epoch: u64,
    pub step: u64,
    pub val_accuracy: f32,
    pub test_accuracy: f32,
    pub test_balanced: f32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Guess {
    pub class: String,
    pub p: f32,
}

/// The typed name through the network: its guesses, after every prefix too, and BPTT made
/// visible — the hidden states over the characters and how much each earlier character drives
/// the output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The name as the network reads it (normalised, cut, unknown characters as `·`).
    pub name: String,
    pub top: Vec<Guess>,
    /// The best guess after "K", "Ko", "Kow"…
    pub prefixes: Vec<Guess>,
    /// `(characters × hidden)` hidden states, row by row.
    pub states: Vec<f32>,
    pub hidden: usize,
    /// ‖∂L/∂h_t‖ per character, L = −log p(top guess).
    pub state_grads: Vec<f32>,
    /// ‖∂L/∂x_t‖ per character: how strongly each character drives the output.
    pub input_grads: Vec<f32>,
    /// The same after each prefix, `(characters × characters)` row by row: row `l` is
    /// ‖∂L_l/∂x_s‖ for the guess after the first `l + 1` characters (zero for `s > l`).
    pub influence: Vec<f32>,
}

/// The loop and the batched RNN layer on the same mini-batch (forward + backward).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Race {
    pub step: u64,
    pub batch: usize,
    pub loop_ms: f64,
    pub batched_ms: f64,
    /// The largest |difference| between the two implementations' weight gradients.
    pub max_grad_diff: f32,
    /// …and between their outputs (the same bits: 0).
    pub max_out_diff: f32,
}

/// How often and how hard clipping acts (the last 100 steps).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClipMeter {
    pub threshold: f32,
    /// Share of the last steps whose gradient norm was over the threshold.
    pub clipped: f32,
    /// Mean gradient norm before clipping over those steps.
    pub mean_norm: f32,
    pub max_norm: f32,
}

/// One of the five likeliest next characters at a sampled step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NextChar {
    pub ch: String,
    pub p: f32,
}

/// A sampled name, whether it is new (not in the training names), and each step's top five.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenSample {
    pub name: String,
    pub is_new: bool,
    pub steps: Vec<Vec<NextChar>>,
}

/// One evaluation of the language model: nats per character (end token included).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenPoint {
    pub step: u64,
    pub epoch: f32,
    /// Mini-batches since the previous point.
    pub train_nll: f32,
    pub dev_nll: f32,
}

/// The generation task's view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenView {
    pub history: Vec<GenPoint>,
    /// Dev NLL of the bigram and trigram counts (add-one smoothing) on the same split.
    pub bigram: f32,
    pub trigram: f32,
    pub samples: Vec<GenSample>,
    /// Share of the samples not in the training names.
    pub new_share: f32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RnnView {
    /// Set for the generation task (then the classifier's fields are empty).
    pub gen: Option<GenView>,
    pub classes: Vec<String>,
    /// Names in the training, validation and test splits.
    pub sizes: [usize; 3],
    /// Pasted data in use instead of the shipped names.
    pub custom: bool,
    pub history: Vec<EvalPoint>,
    pub best: Option<Best>,
    /// `classes × classes` on the test names (rows: true, columns: predicted).
    pub confusion: Vec<u32>,
    /// Recall per class on the test names, and the class sizes there.
    pub recall: Vec<f32>,
    pub test_counts: Vec<u32>,
    /// The character n-gram naive-Bayes baseline on the same split: test accuracy, balanced.
    pub baseline: [f32; 2],
    pub probe: Probe,
    /// ‖∂L/∂h_t‖ per time step of the last mini-batch (t = 1…T): over its first shard's names
    /// when it was split (the rows the layer keeps; see [`crate::parallel`]).
    pub step_grads: Vec<f32>,
    /// Which names `step_grads` covers when the batch was split (empty: all of them).
    pub step_grads_of: String,
    /// The spectral radius of W_hh (> 1: states and gradients can grow through time).
    pub spectral_radius: f32,
    pub clip: ClipMeter,
    pub race: Option<Race>,
    pub eval_progress: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RnnCommand {
    /// Race the loop against the batched layer now.
    Race,
    /// Train on pasted `name,label` lines instead (empty text: back to the shipped names).
    SetData { text: String },
    /// Sample `n` names now (generation).
    Sample { n: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RnnReply {
    DataSet { names: usize, classes: usize },
    Samples { names: Vec<String> },
}
