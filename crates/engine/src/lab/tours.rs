//! Guided tours: per lab, a few short steps in our own words. Each step's "Try this" opens its
//! link (a whole config) and says what to look at and why it happens. Tested: every link opens
//! its lab with no notice.

/// One step of a tour.
#[derive(Clone, Copy, Debug)]
pub struct TourStep {
    pub title: &'static str,
    /// The share-link query the step opens.
    pub link: &'static str,
    /// What to look at, and why it happens.
    pub look: &'static str,
}

const FIT: &[TourStep] = &[
    TourStep {
        title: "No hidden layer: a straight line",
        link: "lab=fit&fn=sin&hidden=&stop=1000",
        look: "With no hidden layer the model is y = Wx + b. Whatever it learns, the prediction stays a straight line, and the loss levels off well above zero.",
    },
    TourStep {
        title: "One hidden layer bends it",
        link: "lab=fit&fn=sin&hidden=8&act=tanh&stop=3000",
        look: "Eight tanh units, each an S-shaped piece (see the contributions chart): their weighted sum bends into the sine. The loss keeps falling where the line had stopped.",
    },
    TourStep {
        title: "ReLU and a bad init get stuck",
        link: "lab=fit&fn=cube&norm=false&act=relu&init=uniform&opt=sgd&lr=0.001&stop=3000",
        look: "All weights start positive and x³ is huge: most ReLUs are pushed below zero and pass no gradient. Look at the dead-unit diagnosis and the flat activation histograms.",
    },
    TourStep {
        title: "Standardise and use He init",
        link: "lab=fit&fn=cube&norm=true&act=relu&init=he&opt=sgd&lr=0.01&stop=3000",
        look: "The same network with inputs and targets scaled to mean 0, variance 1 and weights scaled to the fan-in: the units stay alive and the loss keeps falling.",
    },
    TourStep {
        title: "A learning rate far too high",
        link: "lab=fit&fn=sin&opt=sgd&lr=3",
        look: "Each step overshoots the minimum by more than it corrects: the loss grows until it is not a number, and the run pauses with a one-click fix.",
    },
    TourStep {
        title: "Mini-batches are noisy",
        link: "lab=fit&fn=sin&opt=sgd&lr=0.1&bs=1&stop=3000",
        look: "One point per step: the grey mini-batch loss jumps around while the train loss still falls. Set the batch size to 200 (the whole set) and the steps become smooth, but each costs 200 times more.",
    },
    TourStep {
        title: "Overfitting, and L2 against it",
        link: "lab=fit&fn=noisy&n=20&hidden=64,64&act=tanh&stop=5000",
        look: "Twenty noisy points and a wide network: the train loss goes on falling as the network follows the noise, and the test loss stays above it. Set L2 to 0.01 and compare the two curves.",
    },
];

const PLAYGROUND: &[TourStep] = &[
    TourStep {
        title: "A circle needs a hidden layer",
        link: "lab=playground&data=circle&hidden=&x=true&y=true&sinx=false&siny=false&stop=2000",
        look: "With x and y alone and no hidden layer the boundary is a straight line: a circle can't be separated, and the test loss stays high.",
    },
    TourStep {
        title: "…or a feature that does the work",
        link: "lab=playground&data=circle&hidden=&x=true&y=true&xsq=true&ysq=true&sinx=false&siny=false&stop=2000",
        look: "Add x² and y²: the circle x² + y² = r² is a straight line in those features, and the same linear model separates it.",
    },
    TourStep {
        title: "XOR needs a hidden layer",
        link: "lab=playground&data=xor&hidden=4&act=tanh&x=true&y=true&sinx=false&siny=false&lr=0.1&stop=3000",
        look: "No single line separates XOR. Watch the hidden units' heatmaps: each draws one line through the plane, and the output combines them into the four quadrants.",
    },
    TourStep {
        title: "The spiral is hard",
        link: "lab=playground&data=spiral&hidden=8,8,8&act=tanh&lr=0.03&stop=20000",
        look: "A deeper network with sin features: the boundary winds around step by step. It takes thousands of steps; the log step axis shows the early ones.",
    },
    TourStep {
        title: "Dropout as a regulariser",
        link: "lab=playground&data=gauss&noise=0.5&hidden=8,8&dropout=0.3&ptrain=20&stop=3000",
        look: "Few noisy training points: dropout zeroes units at random while training, so no unit can rely on another. Compare the test loss with dropout=0.",
    },
    TourStep {
        title: "A learning-rate schedule",
        link: "lab=playground&data=spiral&hidden=8,8,8&act=tanh&lr=0.1&sched=cosine&period=5000&stop=5000",
        look: "Cosine annealing takes big steps first and ever smaller ones towards the end of the period: compare the boundary's last moves with a constant rate.",
    },
];

const CNN: &[TourStep] = &[
    TourStep {
        title: "A small CNN on MNIST",
        link: "lab=cnn&model=small&epochs=1",
        look: "One conv layer, one pooling layer and the output: the test accuracy (all 10,000 images, every 500 steps) passes 90 % within the first epoch.",
    },
    TourStep {
        title: "Loops are slow",
        link: "lab=cnn&model=small&conv=naive&epochs=1",
        look: "The same convolution written as nested loops: the race panel times both on the same batch, and im2col (one matrix product) wins by a wide margin.",
    },
    TourStep {
        title: "LeNet-5",
        link: "lab=cnn&model=lenet5&epochs=3",
        look: "Two conv + pool stages and three dense layers: the classic. Look at the first layer's filters: they start as noise and turn into smoother patterns that respond to edges and strokes.",
    },
    TourStep {
        title: "Feature maps of one image",
        link: "lab=cnn&model=lenet5&probe=7&epochs=1",
        look: "The probe image through every layer: early maps keep the digit's shape, later ones are small and abstract. Draw your own digit in the pad to see the same.",
    },
    TourStep {
        title: "Fashion is harder",
        link: "lab=cnn&model=lenet5&data=fashion&epochs=3",
        look: "The same network on clothes: accuracy tops out lower, and the confusion matrix shows why — shirts, pullovers and coats look alike.",
    },
    TourStep {
        title: "Too high a learning rate",
        link: "lab=cnn&model=small&opt=sgd&lr=2&epochs=1",
        look: "Plain SGD at 2: the first steps overshoot so far that the loss becomes NaN within a few hundred steps; the run pauses, says why, and offers a smaller rate.",
    },
];

const BATCHNORM: &[TourStep] = &[
    TourStep {
        title: "Two nets, one difference",
        link: "lab=batchnorm&hidden=128&act=relu&init=he&opt=adam&lr=0.001&bs=64&eval=500&epochs=3",
        look: "The same network and batches, with and without batch norm. Compare the two loss curves and the activation histograms layer by layer.",
    },
    TourStep {
        title: "The BN paper's Figure 1",
        link: "lab=batchnorm&hidden=100,100,100&act=sigmoid&init=normal&sigma=0.1&opt=sgd&lr=0.1&bs=60&eval=100&epochs=0&stop=3000",
        look: "Three sigmoid layers with SGD: the plain net's input percentiles drift while the BN net's stay put, and the BN net learns faster.",
    },
    TourStep {
        title: "Init gain too small",
        link: "lab=batchnorm&hidden=100,100,100,100,100&act=tanh&init=xavier&gain=0.3&opt=sgd&lr=0.05&bs=64&eval=500&epochs=1",
        look: "Five tanh layers with small weights: signals shrink layer by layer in the plain net (look at the narrowing histograms); BN rescales each layer.",
    },
    TourStep {
        title: "BN lets you raise the learning rate",
        link: "lab=batchnorm&hidden=128&act=relu&init=he&opt=sgd&lr=1&bs=64&eval=200&epochs=1",
        look: "SGD at 1: the plain net diverges or stalls and pauses with the reason; the BN net trains on.",
    },
    TourStep {
        title: "Batches of two, evaluated in training mode",
        link: "lab=batchnorm&hidden=128&act=relu&init=he&opt=adam&lr=0.001&bs=2&mode=train&eval=1000&epochs=0&stop=5000",
        look: "With two examples a batch's mean and variance are poor estimates, and test batches normalised by their own statistics score differently from the running ones: switch mode to eval.",
    },
];

const RNN: &[TourStep] = &[
    TourStep {
        title: "Names → language",
        link: "lab=rnn&hidden=128&gain=0.5&opt=adam&lr=0.002&sched=cosine&period=13800&bs=32&eval=200&patience=5&epochs=20",
        look: "A recurrent net reads a surname letter by letter and guesses one of 17 languages. Type a name to see its guesses after every prefix.",
    },
    TourStep {
        title: "The gradient vanishes",
        link: "lab=rnn&hidden=128&init=normal&gain=0.1&opt=sgd&lr=0.05&bs=32&eval=200&name=Papadopoulos&epochs=0",
        look: "W_hh is small: look at ‖∂L/∂h_t‖ through time — the early letters of a long name get almost no gradient, so they barely matter to what is learned.",
    },
    TourStep {
        title: "The gradient explodes",
        link: "lab=rnn&hidden=128&init=normal&gain=3&opt=sgd&lr=0.05&bs=32&eval=200&clip=0&epochs=0",
        look: "W_hh is large (spectral radius about 3): going back through time the gradient can grow at every character, so its norm spikes from step to step and plain SGD's steps are erratic.",
    },
    TourStep {
        title: "Clipping tames it",
        link: "lab=rnn&hidden=128&init=normal&gain=3&opt=sgd&lr=0.05&clip=1&bs=32&eval=200&epochs=0",
        look: "The same network with the gradient's global norm clipped to 1: the clip meter shows how often and how hard it bites; no step can be longer than the learning rate.",
    },
    TourStep {
        title: "Generate names",
        link: "lab=rnn&task=generate&data=baby&epochs=5&temp=0.8",
        look: "A character language model: samples at the temperature you set. Low temperature repeats common names; high temperature invents odd ones.",
    },
];

/// The tour of a lab (by its link name).
pub fn tour(lab: &str) -> &'static [TourStep] {
    match lab {
        "fit" => FIT,
        "playground" => PLAYGROUND,
        "cnn" => CNN,
        "batchnorm" => BATCHNORM,
        "rnn" => RNN,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{parse_link, LABS};

    #[test]
    fn every_lab_has_a_tour_of_five_to_eight_steps_whose_links_open_it_cleanly() {
        for lab in LABS {
            let steps = tour(lab);
            assert!((5..=8).contains(&steps.len()), "{lab}: {} steps", steps.len());
            for s in steps {
                let p = parse_link(s.link);
                assert!(p.notices.is_empty(), "{lab} / {}: {:?}", s.title, p.notices);
                assert_eq!(p.config.lab(), *lab, "{}", s.title);
                assert!(s.look.len() < 300 && s.title.len() < 60, "{}: short", s.title);
            }
        }
    }
}
