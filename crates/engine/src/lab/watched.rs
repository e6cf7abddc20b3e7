//! A trainer's network, counting the times it is lent out mutably.
//!
//! Every change to a weight needs `&mut Sequential`, and here that goes through
//! [`DerefMut`], which counts. A step started ahead (see [`super::trainer::Trainer`]) was handed
//! to the helpers with the weights the network had then; if the count has not moved since, no
//! code can have changed them, and the step is taken without comparing the weights again (W2:
//! 400 KB read on the lead's path, ~15 µs natively of a ~440 µs step that both threads wait
//! on). Any mutable borrow at all, even one that only reads (a forward pass for a preview), falls
//! back to the comparison: the count says "maybe changed", never "unchanged" wrongly.

use crate::sequential::Sequential;
use std::ops::{Deref, DerefMut};

#[derive(Clone)]
pub struct Watched {
    model: Sequential,
    lent: u64,
}

impl Watched {
    pub fn new(model: Sequential) -> Watched {
        Watched { model, lent: 0 }
    }

    /// How many times the network has been lent out mutably (wrapping).
    pub fn lent(&self) -> u64 {
        self.lent
    }

    /// The network, mutably, without counting: only for the trainer's own reads that need
    /// `&mut` to visit the parameters (its step records). Never to change a weight: a step
    /// started ahead would then be taken with stale ones (`tests/parallel.rs` compares every
    /// step's bits with a single worker's).
    pub(crate) fn reading(&mut self) -> &mut Sequential {
        &mut self.model
    }

    pub fn into_inner(self) -> Sequential {
        self.model
    }
}

impl Deref for Watched {
    type Target = Sequential;
    fn deref(&self) -> &Sequential {
        &self.model
    }
}

impl DerefMut for Watched {
    fn deref_mut(&mut self) -> &mut Sequential {
        self.lent = self.lent.wrapping_add(1);
        &mut self.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;

    #[test]
    fn every_mutable_borrow_counts_and_shared_ones_do_not() {
        let relu = crate::ops::Activation::new(crate::ops::ActivationKind::Relu, 0.0);
        let mut w = Watched::new(Sequential::new(vec![Box::new(relu)]));
        assert_eq!(w.lent(), 0);
        let _ = w.layers.len();
        assert_eq!(w.lent(), 0, "a shared borrow");
        w.zero_grad();
        let m: &mut Sequential = &mut w;
        m.zero_grad();
        assert_eq!(w.lent(), 2, "a method taking &mut self, and a coercion to &mut Sequential");
        w.reading().zero_grad();
        assert_eq!(w.lent(), 2, "the trainer's own reads");
    }
}
