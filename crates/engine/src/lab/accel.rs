//! Training steps run elsewhere (the GPU), the trainer's model staying the place every snapshot
//! reads from. The engine has no GPU code: `crates/gpu` implements [`Accelerator`], and a driver
//! (the browser's GPU worker, the CLI, tests) attaches it to a session.
//!
//! Why this shape: a GPU step is submitted, not finished — the browser cannot wait for it. So the
//! trainer hands each mini-batch over and counts the step; the accelerator answers later, when a
//! readback it started has arrived, with the losses of the steps finished since the last answer,
//! and writes the weights, their gradients and running statistics into the model. Between two
//! answers the model is a little behind the step counter (`Trainer::in_sync` says when it is not).

use crate::optim::{Hyper, OptimizerKind};
use crate::sequential::Sequential;

/// What a readback brought: the mean loss of every step it covers, oldest first, and the step
/// count the model's weights now belong to — counted from the accelerator's first step (1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Synced {
    pub losses: Vec<(u64, f32)>,
    pub step: u64,
}

pub trait Accelerator: Send {
    /// The device, as people know it ("NVIDIA H200", "google swiftshader (software)").
    fn name(&self) -> String;
    /// Whether it can take mini-batches of up to `batch` rows with this optimiser and these
    /// settings; when not, the run waits until the driver builds a new one from the model (once
    /// the model is in sync) — or, when it can't, moves the run to the CPU with a message.
    fn fits(&self, batch: usize, kind: OptimizerKind, hyper: &Hyper) -> bool;
    /// Submits one step on a mini-batch (inputs flat, one class per row) without waiting. An error
    /// (device lost, out of memory, a setting it cannot run) hands the run to the CPU.
    fn submit(&mut self, x: &[f32], classes: &[usize], hyper: &Hyper) -> Result<(), String>;
    /// Steps submitted but not known to be finished: the trainer stops submitting beyond
    /// [`MAX_AHEAD`] so the queue (and its memory) stays bounded.
    fn ahead(&mut self) -> u64;
    /// Brings `model` up to date when a readback has arrived (then starts none: call again to
    /// ask for the next one). `wait` blocks until it has (native drivers only; the browser never
    /// waits). `Ok(None)`: still on its way.
    fn sync(&mut self, model: &mut Sequential, wait: bool) -> Result<Option<Synced>, String>;
}

/// The same mini-batch through every conv layer, for an accelerator's lane in the CNN race: per
/// layer its shape and weights, the input it saw and the output gradient it got in the CPU
/// race, and the CPU's (im2col) output to compare with.
#[derive(Clone, Debug, Default)]
pub struct RaceProbe {
    pub layers: Vec<RaceLayer>,
}

#[derive(Clone, Debug, Default)]
pub struct RaceLayer {
    /// Input `(n, c, h, w)`, `o` filters of `k × k`, stride, padding.
    pub shape: [usize; 8],
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub x: Vec<f32>,
    pub dy: Vec<f32>,
    pub y: Vec<f32>,
}

/// An accelerator's lane of the race: its time for every conv layer forward and backward (from
/// the submission to the outputs read back) and its largest difference from the CPU's outputs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RaceLane {
    pub device: String,
    pub ms: f64,
    pub max_diff: f32,
}

/// The most steps the trainer submits ahead of what the device has finished: enough to keep a
/// GPU busy, few enough that a pause or a snapshot on a slow (software) GPU waits only briefly.
pub const MAX_AHEAD: u64 = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::trainer::Trainer;
    use crate::layer::Layer;
    use crate::loss::Loss;
    use crate::ops::{Activation, ActivationKind, Dense};
    use crate::rng::Rng;
    use crate::tensor::{self, Mode};

    /// An accelerator that is the engine itself, one step behind: it trains its own copy of the
    /// model when a step is submitted and hands the weights over only on `sync`. It proves the
    /// trainer's bookkeeping (records, sync, rebuild, failure) without a GPU.
    struct Lagging {
        model: Sequential,
        trainer_loss: Loss,
        opt: Box<dyn crate::optim::Optimizer>,
        kind: OptimizerKind,
        steps: u64,
        synced: u64,
        losses: Vec<(u64, f32)>,
        fail_at: Option<u64>,
        batch: usize,
    }

    impl Accelerator for Lagging {
        fn name(&self) -> String {
            "lagging test device".into()
        }
        fn fits(&self, batch: usize, kind: OptimizerKind, _hyper: &Hyper) -> bool {
            batch <= self.batch && kind == self.kind
        }
        fn submit(&mut self, x: &[f32], classes: &[usize], hyper: &Hyper) -> Result<(), String> {
            if Some(self.steps) == self.fail_at {
                return Err("device lost".into());
            }
            let x = tensor::from_vec(&[classes.len(), x.len() / classes.len()], x.to_vec());
            self.model.zero_grad();
            let out = self.model.forward(&x, Mode::Train);
            let mut dout = tensor::zeros(&[0]);
            let loss = self.trainer_loss.value_and_grad(out, crate::loss::Target::Classes(classes), &mut dout);
            self.model.backward(&dout);
            crate::optim::apply(&mut self.model, self.opt.as_mut(), hyper);
            self.steps += 1;
            self.losses.push((self.steps, loss));
            Ok(())
        }
        fn ahead(&mut self) -> u64 {
            0
        }
        fn sync(&mut self, model: &mut Sequential, _wait: bool) -> Result<Option<Synced>, String> {
            let mut values = Vec::new();
            self.model.visit_params(&mut |_, _, w, g| values.push((tensor::slice(w).to_vec(), tensor::slice(g).to_vec())));
            let mut it = values.into_iter();
            model.visit_params(&mut |_, _, w, g| {
                let (v, d) = it.next().expect("same shape");
                tensor::slice_mut(w).copy_from_slice(&v);
                tensor::slice_mut(g).copy_from_slice(&d);
            });
            self.synced = self.steps;
            Ok(Some(Synced { losses: std::mem::take(&mut self.losses), step: self.steps }))
        }
    }

    fn model() -> Sequential {
        let mut rng = Rng::new(3);
        let first = Dense::new(2, 8, crate::init::Init::He, 1.0, &mut rng);
        let second = Dense::new(8, 2, crate::init::Init::He, 1.0, &mut rng);
        Sequential::new(vec![Box::new(first), Box::new(Activation::new(ActivationKind::Tanh, 0.0)), Box::new(second)])
    }

    fn data() -> crate::data::Dataset {
        let mut rng = Rng::new(9);
        let xs: Vec<f32> = (0..64).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
        let classes: Vec<usize> = xs.chunks(2).map(|p| usize::from(p[0] * p[1] > 0.0)).collect();
        crate::data::Dataset { x: tensor::from_vec(&[32, 2], xs), y: crate::data::Targets::Classes(classes) }
    }

    fn trainer() -> Trainer {
        Trainer::new(model(), OptimizerKind::Momentum, Hyper { lr: 0.1, momentum: 0.9, l2: 0.0, l1: 0.0, clip: 0.0 }, Loss::Softmax, 8, 32, Rng::new(5))
    }

    fn lagging(t: &Trainer, fail_at: Option<u64>) -> Box<dyn Accelerator> {
        Box::new(Lagging {
            model: model(),
            trainer_loss: t.loss,
            opt: t.optimizer_kind.build(),
            kind: t.optimizer_kind,
            steps: 0,
            synced: 0,
            losses: Vec::new(),
            fail_at,
            batch: t.batch_size,
        })
    }

    #[test]
    fn an_accelerated_run_records_the_same_losses_and_weights_as_the_cpu() {
        let d = data();
        let (mut cpu, mut acc) = (trainer(), trainer());
        let a = lagging(&acc, None);
        acc.attach(a);
        let mut cpu_losses = Vec::new();
        for _ in 0..20 {
            cpu_losses.push(cpu.train_step(&d));
            acc.train_step(&d);
        }
        assert!(!acc.in_sync(), "submitted steps are not in the model until a sync");
        assert!(acc.sync(true).is_ok());
        assert!(acc.in_sync());
        let acc_losses: Vec<f32> = acc.records.iter().map(|r| r.loss).collect();
        assert_eq!(acc_losses, cpu_losses);
        assert_eq!(acc.last_loss, *cpu_losses.last().unwrap());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        cpu.model.visit_params(&mut |_, _, w, _| a.extend_from_slice(tensor::slice(w)));
        acc.model.visit_params(&mut |_, _, w, _| b.extend_from_slice(tensor::slice(w)));
        assert_eq!(a, b);
        assert_eq!((acc.step, acc.epoch), (cpu.step, cpu.epoch));
    }

    #[test]
    fn a_larger_batch_waits_for_a_rebuild_without_losing_a_step() {
        let d = data();
        let mut t = trainer();
        let a = lagging(&t, None);
        t.attach(a);
        t.train_step(&d);
        t.batch_size = 16;
        let before = t.step;
        t.train_step(&d);
        assert_eq!(t.step, before, "the step waits");
        assert!(t.needs_rebuild());
        assert!(t.sync(true).is_ok());
        let fresh = lagging(&t, None);
        t.attach(fresh);
        assert!(!t.needs_rebuild());
        t.train_step(&d);
        assert_eq!(t.step, before + 1);
    }

    #[test]
    fn a_failed_device_hands_the_run_to_the_cpu_with_a_message() {
        let d = data();
        let mut t = trainer();
        let a = lagging(&t, Some(3));
        t.attach(a);
        for _ in 0..3 {
            t.train_step(&d);
        }
        assert!(t.sync(true).is_ok());
        let loss = t.train_step(&d);
        let failure = t.take_failure().expect("the failure is reported");
        assert!(failure.contains("device lost"), "{failure}");
        assert!(t.accelerator_name().is_none(), "detached");
        assert_eq!(t.step, 4, "the step ran on the CPU");
        assert!(loss.is_finite());
    }
}
