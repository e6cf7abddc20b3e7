//! Evaluation's own copy of a trained network, kept beside a session but out of its checkpoints.
//!
//! Evaluating the trained network itself resized its caches from a training shard (16 rows) to
//! a chunk of test images (up to 1,000) and back at every evaluation: ~15 MB allocated and freed among
//! the checkpoints' copies, and the worker's wasm memory (which never shrinks) grew by each hole
//! it could not reuse. A session's clone (a checkpoint) also copied the chunk's test images' input
//! buffer, which the checkpoints' memory cap did not count. The copy here keeps its caches sized
//! for the chunks, takes the trained network's weights and buffers before each use (the same
//! forward code on the same numbers: the same bits), and a clone of its owner leaves it out.

use crate::layer::Layer;
use crate::parallel;
use crate::sequential::Sequential;
use crate::tensor::{self, Tensor};

/// A network's evaluation copy and the input buffers of its chunks; empty until first used and
/// in every clone.
#[derive(Default)]
pub struct EvalCopy(Option<EvalParts>);

/// What an evaluation works with: the copy, one chunk's inputs, targets and classes.
pub struct EvalParts {
    pub model: Sequential,
    pub x: Tensor,
    pub y: Tensor,
    pub classes: Vec<usize>,
    fingerprint: u64,
    weights: Vec<f32>,
}

/// The input buffers of evaluation chunks alone, for a lab that evaluates its trained networks
/// themselves; a clone of its owner (a checkpoint) gets empty ones.
pub struct EvalInputs {
    pub x: Tensor,
    pub y: Tensor,
    pub classes: Vec<usize>,
}

impl Default for EvalInputs {
    fn default() -> Self {
        EvalInputs { x: tensor::zeros(&[0]), y: tensor::zeros(&[0]), classes: Vec::new() }
    }
}

impl Clone for EvalInputs {
    fn clone(&self) -> Self {
        EvalInputs::default()
    }
}

impl Clone for EvalCopy {
    /// Empty: a checkpoint need not hold evaluation's caches (the next evaluation rebuilds them).
    fn clone(&self) -> Self {
        EvalCopy(None)
    }
}

impl EvalCopy {
    /// The copy holding `trained`'s current weights and buffers (rebuilt when its layers differ).
    pub fn sync(&mut self, trained: &mut Sequential) -> &mut EvalParts {
        let fingerprint = parallel::fingerprint(trained);
        if self.0.as_ref().is_none_or(|p| p.fingerprint != fingerprint) {
            self.0 = Some(EvalParts {
                model: trained.clone(),
                x: tensor::zeros(&[0]),
                y: tensor::zeros(&[0]),
                classes: Vec::new(),
                fingerprint,
                weights: Vec::new(),
            });
        }
        let parts = self.0.as_mut().expect("just made");
        parallel::read_params(trained, &mut parts.weights);
        let same = parallel::write_params(&mut parts.model, &parts.weights);
        debug_assert!(same, "the fingerprint covers every parameter's size");
        parts.weights.clear();
        trained.visit_buffers(&mut |_, b| parts.weights.extend_from_slice(tensor::slice(b)));
        let mut at = 0;
        parts.model.visit_buffers(&mut |_, b| {
            let n = b.len();
            tensor::slice_mut(b).copy_from_slice(&parts.weights[at..at + n]);
            at += n;
        });
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::ops::{
        activation::{Activation, ActivationKind},
        batchnorm::BatchNorm,
        dense::Dense,
    };
    use crate::rng::Rng;
    use crate::tensor::Mode;

    fn net(seed: u64, extra: bool) -> Sequential {
        let mut rng = Rng::new(seed);
        let mut m = Sequential::builder();
        m.push(Dense::new(3, 4, Init::He, 1.0, &mut rng));
        m.push(BatchNorm::new(4));
        m.push(Activation::new(ActivationKind::Relu, 0.0));
        m.push(Dense::new(4, 2, Init::He, 1.0, &mut rng));
        if extra {
            m.push(Activation::new(ActivationKind::Tanh, 0.0));
        }
        m.build()
    }

    #[test]
    fn the_copy_computes_the_trained_networks_bits_and_is_left_out_of_clones() {
        let mut trained = net(1, false);
        let x = crate::gradcheck::random_input(&[5, 3], 2, 0.0);
        // Training moves the weights and the running statistics.
        for _ in 0..3 {
            trained.forward(&x, Mode::Train);
            trained.zero_grad();
            trained.backward(&tensor::from_vec(&[5, 2], vec![1.0; 10]));
            trained.visit_params(&mut |_, _, w, g| tensor::slice_mut(w).iter_mut().zip(tensor::slice(g)).for_each(|(w, g)| *w -= 0.1 * g));
        }
        let mut copy = EvalCopy::default();
        let want = trained.forward(&x, Mode::Eval).clone();
        let got = copy.sync(&mut trained).model.forward(&x, Mode::Eval).clone();
        assert_eq!(tensor::slice(&got), tensor::slice(&want));
        // Another step: the next sync takes the new weights.
        trained.forward(&x, Mode::Train);
        trained.visit_params(&mut |_, _, w, _| tensor::slice_mut(w)[0] += 1.0);
        let want = trained.forward(&x, Mode::Eval).clone();
        assert_ne!(tensor::slice(&want), tensor::slice(&got));
        assert_eq!(tensor::slice(copy.sync(&mut trained).model.forward(&x, Mode::Eval)), tensor::slice(&want));
        assert!(copy.clone().0.is_none(), "a checkpoint does not carry the copy");
        let inputs = EvalInputs { x: x.clone(), ..Default::default() };
        assert_eq!(inputs.clone().x.len(), 0, "nor the inputs");
        // A network with other layers gets a new copy.
        let mut other = net(3, true);
        let want = other.forward(&x, Mode::Eval).clone();
        assert_eq!(tensor::slice(copy.sync(&mut other).model.forward(&x, Mode::Eval)), tensor::slice(&want));
    }
}
