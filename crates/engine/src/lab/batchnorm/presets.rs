//! The Batch Norm lab's presets: each a share link with its story in a few sentences. The
//! engine tests (`tests/batchnorm.rs`) hold the stories to what the runs do.

pub struct BnPreset {
    pub id: &'static str,
    pub title: &'static str,
    pub story: &'static str,
    pub link: &'static str,
}

pub const PRESETS: &[BnPreset] = &[
    BnPreset {
        id: "seed",
        title: "(a) The seed's network: 784-128-10, ReLU, Adam",
        story: "One hidden layer of 128 ReLUs, Adam at 0.001, batches of 64, with and without a BN layer before the ReLU. \
                Both end near 97 % after 3 epochs, within a few tenths of a point of each other: a shallow net with a good \
                initialisation and Adam has little for BN to fix early on. Look at the histograms instead of the accuracy.",
        link: "lab=batchnorm&hidden=128&act=relu&init=he&opt=adam&lr=0.001&bs=64&eval=500&epochs=3",
    },
    BnPreset {
        id: "figure1",
        title: "(b) The BN paper's Figure 1: 3 × 100 sigmoid, SGD",
        story: "Ioffe & Szegedy's experiment: three hidden layers of 100 sigmoid units, weights from N(0, 0.1²), plain SGD at \
                0.1, batches of 60. The BN net is near 90 % after 500 steps while the plain one is still near 50 %. The last chart \
                follows one unit's sigmoid input (15th, 50th, 85th percentile over the test images): in the plain net it keeps \
                shifting as the layers below change; with BN it stays put.",
        link: "lab=batchnorm&hidden=100,100,100&act=sigmoid&init=normal&sigma=0.1&opt=sgd&lr=0.1&bs=60&eval=100&epochs=0&stop=3000",
    },
    BnPreset {
        id: "tanh-small",
        title: "(c) Deep tanh, init gain too small",
        story: "Five tanh layers of 100 with Xavier weights scaled by 0.3: each layer shrinks the signal, so without BN the \
                activations and gradients of the deeper layers collapse towards 0 (see the histograms over time, layer by \
                layer). With BN every layer's input is rescaled to unit spread and the signal survives.",
        link: "lab=batchnorm&hidden=100,100,100,100,100&act=tanh&init=xavier&gain=0.3&opt=sgd&lr=0.05&bs=64&eval=500&epochs=1",
    },
    BnPreset {
        id: "tanh-large",
        title: "(c) Deep tanh, init gain too large",
        story: "The same five tanh layers with weights scaled by 3: without BN nearly every unit sits at ±1 from the first step, \
                where tanh is flat and passes almost no gradient (look at % saturated). BN before each tanh brings the inputs \
                back to where tanh bends.",
        link: "lab=batchnorm&hidden=100,100,100,100,100&act=tanh&init=xavier&gain=3&opt=sgd&lr=0.05&bs=64&eval=500&epochs=1",
    },
    BnPreset {
        id: "high-lr",
        title: "(d) BN lets you raise the learning rate",
        story: "The seed's network with plain SGD at 1, ten times a usual rate. The plain net's first steps overshoot: its \
                loss jumps, nearly all of its ReLUs are pushed below zero for every image and die (a dead ReLU gets no gradient, \
                so it never recovers) — it stalls, and the run pauses once to say so. The BN net passes 95 % within one epoch: \
                normalising each layer's input undoes whatever scale the large steps give the weights.",
        link: "lab=batchnorm&hidden=128&act=relu&init=he&opt=sgd&lr=1&bs=64&eval=200&epochs=1",
    },
    BnPreset {
        id: "tiny-batch",
        title: "(e) Pitfalls: batches of 2, and evaluating in training mode",
        story: "With 2 examples per batch, each value is normalised by a mean and variance of just two numbers: the statistics \
                are noise and the running averages wander. The accuracy is shown in training mode — each test batch of 2 \
                normalised by itself — which is what forgetting to switch to evaluation mode does; switch the toggle to \
                evaluation mode and compare (both are measured every time).",
        link: "lab=batchnorm&hidden=128&act=relu&init=he&opt=adam&lr=0.001&bs=2&mode=train&eval=1000&epochs=0&stop=5000",
    },
];
