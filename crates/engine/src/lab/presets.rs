//! Pitfall presets for the fit lab: each a share link that reproduces its story, with the
//! expectation a test holds it to.

use super::Snapshot;

/// What a preset's run must show after `steps` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expect {
    TrainLossAbove(f32),
    TrainLossBelow(f32),
    /// The loss becomes NaN or infinite (and training pauses itself).
    Diverges,
    TestR2Below(f32),
    TestR2Above(f32),
}

impl Expect {
    pub fn holds(self, s: &Snapshot) -> bool {
        let r2 = s.metrics.iter().find(|m| m.name == "test_r2").map(|m| m.value).unwrap_or(f32::NAN);
        match self {
            Expect::TrainLossAbove(v) => s.train_loss > v,
            Expect::TrainLossBelow(v) => s.train_loss < v,
            Expect::Diverges => s.diverged,
            Expect::TestR2Below(v) => r2 < v,
            Expect::TestR2Above(v) => r2 > v,
        }
    }
}

pub struct Preset {
    pub id: &'static str,
    pub title: &'static str,
    /// What happens and why, in a few sentences.
    pub story: &'static str,
    /// The share-link query.
    pub link: &'static str,
    pub steps: u64,
    pub expect: Expect,
}

pub const FIT_PRESETS: &[Preset] = &[
    Preset {
        id: "stuck-relu",
        title: "Stuck: ReLU + uniform [0, 1) init on raw x³",
        story: "Every weight starts positive and x³ reaches ±248, so the first steps are huge: most ReLUs are pushed \
                to output 0 for every input. A dead ReLU passes no gradient, so it never comes back, and the loss \
                sits on a plateau. Watch the activation histograms collapse to 0.",
        link: "lab=fit&fn=cube&norm=false&act=relu&init=uniform&opt=sgd&lr=0.001&stop=3000",
        steps: 3000,
        expect: Expect::TrainLossAbove(5000.0),
    },
    Preset {
        id: "stuck-relu-fixed",
        title: "Fixed: standardise x and y, He init",
        story: "The same ReLU network, with inputs and targets scaled to mean 0 and standard deviation 1 and weights \
                drawn with He's scale sqrt(2 / fan-in). The units stay alive and the loss keeps falling.",
        link: "lab=fit&fn=cube&norm=true&act=relu&init=he&opt=sgd&lr=0.01&stop=3000",
        steps: 3000,
        expect: Expect::TrainLossBelow(0.05),
    },
    Preset {
        id: "lr-too-high",
        title: "Learning rate far too high",
        story: "With plain SGD at learning rate 3, each step overshoots the minimum by more than it corrects, the \
                weights grow without bound and the loss becomes NaN within a few hundred steps. Training pauses \
                itself and offers to restart with a rate ten times smaller.",
        link: "lab=fit&fn=sin&opt=sgd&lr=3",
        steps: 1000,
        expect: Expect::Diverges,
    },
    Preset {
        id: "lr-too-low",
        title: "Learning rate far too small",
        story: "At 0.00001 every step is so small that after 3,000 steps the network has hardly moved from its \
                initial guess: the update:data ratio sits around 1e-6 instead of 1e-3.",
        link: "lab=fit&fn=sin&opt=sgd&lr=0.00001&stop=3000",
        steps: 3000,
        expect: Expect::TrainLossAbove(0.3),
    },
    Preset {
        id: "lr-right",
        title: "Learning rate about right",
        story: "The same network with SGD at 0.1: the loss falls steadily and the prediction follows sin(x) on the \
                training interval — and only there: outside it the network has no idea what sin is.",
        link: "lab=fit&fn=sin&opt=sgd&lr=0.1&stop=3000",
        steps: 3000,
        expect: Expect::TrainLossBelow(0.02),
    },
    Preset {
        id: "no-norm",
        title: "Without normalisation",
        story: "A tanh network on raw x in [−2π, 2π] and targets up to ±248: the inputs to the tanh units are large, \
                almost every unit sits on a flat end of its curve (saturated), gradients vanish and the fit stalls \
                (test R² stays low).",
        link: "lab=fit&fn=cube&norm=false&act=tanh&init=xavier&opt=sgd&lr=0.01&stop=3000",
        steps: 3000,
        expect: Expect::TestR2Below(0.7),
    },
    Preset {
        id: "with-norm",
        title: "With normalisation",
        story: "Exactly the same network and learning rate, with x and y standardised on the training data (and \
                mapped back for the charts): the units work in their responsive range and the fit is good.",
        link: "lab=fit&fn=cube&norm=true&act=tanh&init=xavier&opt=sgd&lr=0.01&stop=3000",
        steps: 3000,
        expect: Expect::TestR2Above(0.9),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{build, parse_link};

    #[test]
    fn every_preset_tells_its_story() {
        for p in FIT_PRESETS {
            let parsed = parse_link(p.link);
            assert!(parsed.notices.is_empty(), "{}: {:?}", p.id, parsed.notices);
            let mut s = build(&parsed.config);
            s.step(p.steps);
            let snap = s.snapshot();
            assert!(p.expect.holds(&snap), "{}: {:?} failed (train loss {}, metrics {:?})", p.id, p.expect, snap.train_loss, snap.metrics);
        }
    }

    #[test]
    fn the_stuck_preset_diagnoses_dead_units_and_the_fixed_one_does_not() {
        use crate::lab::diagnose::DiagnosisKind;
        let run = |link: &str| {
            let mut s = build(&parse_link(link).config);
            s.step(3000);
            s.snapshot().diagnoses.iter().map(|d| d.kind).collect::<Vec<_>>()
        };
        assert!(run(FIT_PRESETS[0].link).contains(&DiagnosisKind::DeadUnits));
        assert!(!run(FIT_PRESETS[1].link).contains(&DiagnosisKind::DeadUnits));
        assert!(run(FIT_PRESETS[5].link).contains(&DiagnosisKind::Saturated));
    }
}
