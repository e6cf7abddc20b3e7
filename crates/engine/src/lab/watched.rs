//! A trainer's network, counting the times it is lent out mutably.
//!
//! Every change to a weight needs `&mut Sequential`, and here that goes through
//! [`DerefMut`], which counts. A step started ahead (see [`super::trainer::Trainer`]) was handed
//! to the helpers with the weights the network had then; if the count has not moved since, no
//! code can have changed them, and the step is taken without comparing the weights again (W2:
//! 400 KB read on the lead's path, ~15 µs natively of a ~440 µs step that both threads wait
//! on). Any mutable borrow at all, even one that only reads (a forward pass for a preview), falls
//! back to the comparison: the count says "maybe changed", never "unchanged" wrongly. A network
//! put in another's place (assigned, swapped, cloned) carries another identity, so equal counts
//! of two networks never pass for one unchanged.

use crate::sequential::Sequential;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Watched {
    model: Sequential,
    /// Unique to this value (no two `Watched` alive or not share one in a process).
    id: u64,
    lent: u64,
}

/// A fresh identity. The one process-wide counter here: identities must differ across every
/// trainer (the Batch Norm lab's two nets count their borrows in lockstep), and they touch no
/// number a run computes.
fn fresh_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Watched {
    pub fn new(model: Sequential) -> Watched {
        Watched { model, id: fresh_id(), lent: 0 }
    }

    /// This network's identity and how many times it has been lent out mutably (wrapping): equal
    /// versions mean the same network, not changed in between.
    pub fn version(&self) -> (u64, u64) {
        (self.id, self.lent)
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

impl Clone for Watched {
    fn clone(&self) -> Watched {
        Watched::new(self.model.clone())
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
        let start = w.version();
        let _ = w.layers.len();
        assert_eq!(w.version(), start, "a shared borrow");
        w.zero_grad();
        let m: &mut Sequential = &mut w;
        m.zero_grad();
        assert_eq!(w.version(), (start.0, start.1 + 2), "a method taking &mut self, and a coercion to &mut Sequential");
        w.reading().zero_grad();
        assert_eq!(w.version(), (start.0, start.1 + 2), "the trainer's own reads");
        // Another network in its place: never the same version, whatever its count.
        let mut other = w.clone();
        other.zero_grad();
        other.zero_grad();
        assert_eq!(other.version().1, w.version().1);
        assert_ne!(other.version(), w.version());
        let fresh = Watched::new(w.clone().into_inner());
        assert_ne!(fresh.version(), Watched::new(fresh.clone().into_inner()).version());
        std::mem::swap(&mut w, &mut other);
        assert_ne!(w.version(), (start.0, start.1 + 2));
    }
}
