//! How a session spreads its trainers' steps over workers: helpers built for each trainer that
//! splits its batches (see [`crate::parallel`]), rebuilt when its model changes. One copy for
//! every lab (not generic over them: it is the same code, and the page's download counts it).

use super::trainer::Trainer;
use super::{HelperFactory, LabConfig, Workers};

#[derive(Clone)]
pub struct Parallel {
    /// Workers asked for (1: this one alone).
    pub workers: usize,
    make: Option<HelperFactory>,
    failure: Option<String>,
}

impl Default for Parallel {
    fn default() -> Self {
        Parallel { workers: 1, make: None, failure: None }
    }
}

impl Parallel {
    /// From the next step on: `workers`, helpers from `make`; every trainer's helpers are built anew.
    #[inline(never)]
    pub fn set(&mut self, workers: usize, make: Option<HelperFactory>, trainers: Vec<&mut Trainer>) {
        self.workers = workers.clamp(1, crate::parallel::MAX_WORKERS);
        self.make = make;
        trainers.into_iter().for_each(|t| t.set_helpers(None));
    }

    /// Gives every trainer that splits its batches helpers built for its current model (again
    /// when the model changed: a rebuild, another convolution implementation, a checkpoint).
    #[inline(never)]
    pub fn attach(&mut self, trainers: Vec<&mut Trainer>, config: &LabConfig) {
        let Some(make) = self.make.clone() else { return };
        if self.workers <= 1 {
            return;
        }
        for t in trainers {
            // More workers than shards would idle: a batch of 64 (4 shards) uses at most 4.
            let wanted = self.workers.min(t.shards()) - 1;
            if wanted == 0 {
                t.set_helpers(None);
                continue;
            }
            let key = (crate::parallel::fingerprint(&mut t.model), wanted);
            if t.helpers_key() == Some(key) {
                continue;
            }
            match make(&t.model, wanted, config) {
                Ok(helpers) => t.set_helpers(Some(helpers)),
                Err(why) => {
                    t.set_helpers(None);
                    self.failure = Some(format!("{why}: training continues on one worker"));
                    self.make = None;
                    return;
                }
            }
        }
    }

    /// What the lead trainer's steps ran on.
    #[inline(never)]
    pub fn report(&self, lead: &Trainer) -> Workers {
        let single = lead.why_single();
        Workers { requested: self.workers, training: lead.last_workers(), shards: lead.shards(), single }
    }

    /// Why a worker's share was computed here instead, once.
    #[inline(never)]
    pub fn take_failure(&mut self, trainers: Vec<&mut Trainer>) -> Option<String> {
        let mut failure = self.failure.take();
        for t in trainers {
            if let Some(why) = t.take_helper_failure() {
                failure.get_or_insert(why);
            }
        }
        failure
    }
}
