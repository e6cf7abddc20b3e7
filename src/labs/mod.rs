//! The lab pages: one file (or a few) per lab, and [`PAGES`], the one list the app shell builds
//! its navigation and routes from. Adding a lab page = its file and one entry here.

pub mod batchnorm;
pub mod batchnorm_charts;
pub mod bench;
pub mod cnn;
pub mod cnn_draw;
pub mod cnn_editor;
pub mod cnn_panels;
pub mod digit_pad;
pub mod fit;
pub mod fit_charts;
pub mod playground;
pub mod playground_draw;
pub mod playground_panels;
pub mod rnn;
pub mod rnn_generate;
pub mod rnn_panels;

use crate::client::LabState;
use leptos::prelude::*;

/// A lab's page: its `lab` key, its place in the journey, and what draws it.
pub struct Page {
    /// The `lab` value (as in the engine's registry).
    pub key: &'static str,
    /// The navigation label.
    pub nav: &'static str,
    pub title: &'static str,
    /// A few sentences under the title.
    pub intro: &'static str,
    /// What a learner takes away (the home page's card).
    pub learn: &'static [&'static str],
    /// How long a first run takes, roughly.
    pub first_run: &'static str,
    pub view: fn(LabState) -> AnyView,
}

/// The lab pages, in the order of the journey.
pub const PAGES: &[Page] = &[
    Page {
        key: "fit",
        nav: "1 · Fit a function",
        title: "Fit a function",
        intro: "A small network of layers y = act(Wx + b) learns a function from sampled points by gradient descent. Press Play and watch the prediction bend towards the target; change the learning rate or batch size while it runs.",
        learn: &["a layer is y = act(Wx + b); a network is layers in a row", "gradient descent, mini-batches and the learning rate", "why ReLU with a bad initialisation gets stuck", "inputs normalised, and L2 against overfitting"],
        first_run: "a few seconds to a good fit",
        view: |state| view! { <fit::FitLab state/> }.into_any(),
    },
    Page {
        key: "playground",
        nav: "Playground",
        title: "Playground",
        intro: "Classify or regress points in the plane with a small network. Pick data and input features, add layers and units, and watch each neuron's view of the plane and the decision boundary while it trains. TensorFlow Playground links open here too.",
        learn: &["decision boundaries from layers of simple units", "what each neuron sees of the plane", "features, depth and width against spirals and XOR", "regression in the plane"],
        first_run: "under a minute",
        view: |state| view! { <playground::PlaygroundLab state/> }.into_any(),
    },
    Page {
        key: "cnn",
        nav: "2 · CNN",
        title: "CNN on real MNIST",
        intro: "A convolutional network learns to read handwritten digits (or clothes, with Fashion-MNIST) from the real 60,000 training images, right here in a worker. A convolution written as loops is correct but slow; the same maths as one matrix product (im2col) is fast — the race below times both on the same mini-batch. Watch the filters form, look inside the network at a test image, and draw your own digit.",
        learn: &["convolutions, filters and feature maps", "why loops are slow and im2col is fast", "LeNet-5 on the real 60,000 MNIST digits", "where it goes wrong: the confusion matrix"],
        first_run: "about a minute (11 MB of digits load first)",
        view: |state| view! { <cnn::CnnLab state/> }.into_any(),
    },
    Page {
        key: "batchnorm",
        nav: "3 · Batch Norm",
        title: "Batch Norm, with and without",
        intro: "Two copies of the same network learn side by side from the same mini-batches and the same initial weights; one normalises every layer's input over the batch (batch norm). Look past the accuracy at what happens inside: how each layer's activations, gradients and step sizes evolve, and what normalising does to them. The experiments below reproduce the BN paper's Figure 1 and the classic pitfalls.",
        learn: &["what normalising each layer's input does", "activations, gradients and step sizes inside, layer by layer", "the BN paper's Figure 1, reproduced", "the pitfalls: tiny batches, training mode at test time"],
        first_run: "one to two minutes",
        view: |state| view! { <batchnorm::BatchNormLab state/> }.into_any(),
    },
    Page {
        key: "rnn",
        nav: "4 · RNN",
        title: "RNN: names to languages",
        intro: "A recurrent network reads a surname one character at a time, carrying a hidden state from each character to the next, and guesses the language it comes from. Type a name to see its guesses after every prefix; follow the gradient back through time, where it can vanish or explode; race the per-name loop against the batched layer; and compare with a naive-Bayes baseline.",
        learn: &["reading a sequence with a hidden state", "backpropagation through time: vanishing and exploding", "clipping, and the four shapes of sequence problems", "generating names and Shakespeare, character by character"],
        first_run: "about a minute per epoch",
        view: |state| view! { <rnn::RnnLab state/> }.into_any(),
    },
];
