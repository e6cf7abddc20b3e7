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
            // Read without counting a change: a replicating helper keeps the weights it holds.
            let key = (crate::parallel::fingerprint(t.model.reading()), wanted);
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
        Workers { requested: self.workers, training: lead.last_workers(), shards: lead.shards(), single, split: lead.last_step_split() }
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

impl Workers {
    /// What the page says about them: `n workers · x examples/s`, why one when one must, and
    /// why fewer than asked when the batch has fewer shards than workers were asked for.
    pub fn readout(&self, examples_per_s: Option<f32>) -> String {
        if let Some(why) = &self.single {
            return format!("1 worker ({why})");
        }
        let n = self.training.max(1);
        let mut text = format!("{n} worker{}", if n == 1 { "" } else { "s" });
        if let Some(e) = examples_per_s.filter(|e| e.is_finite() && *e >= 0.5) {
            text += &format!(" · {} examples/s", thousands(e.round() as u64));
        }
        if self.split && n > 1 {
            text += " · first layer split between them";
        }
        if self.shards > 1 && self.requested > self.shards && n >= self.shards {
            text += &format!(" ({} asked: a mini-batch splits into {} shards, one worker each at most)", self.requested, self.shards);
        }
        text
    }
}

/// `12345` as `12,345` (the page's and the CLI's large counts).
pub fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(requested: usize, training: usize, shards: usize) -> Workers {
        Workers { requested, training, shards, single: None, split: false }
    }

    #[test]
    fn the_readout_counts_the_workers_and_says_why_fewer_than_asked_train() {
        assert_eq!(workers(2, 2, 4).readout(Some(17_475.4)), "2 workers · 17,475 examples/s");
        assert_eq!(workers(1, 1, 4).readout(Some(999.0)), "1 worker · 999 examples/s");
        assert_eq!(workers(4, 4, 4).readout(Some(1_234_567.0)), "4 workers · 1,234,567 examples/s");
        // Paused (no speed), a speed that is no number: the count alone.
        assert_eq!(workers(3, 3, 3).readout(None), "3 workers");
        let split = Workers { split: true, ..workers(2, 2, 4) };
        assert_eq!(split.readout(Some(160_000.0)), "2 workers · 160,000 examples/s · first layer split between them");
        assert_eq!(workers(3, 3, 3).readout(Some(f32::NAN)), "3 workers");
        // 16 asked for a batch of 32 (2 shards of 16 rows): why only 2 train.
        assert_eq!(
            workers(16, 2, 2).readout(Some(12_000.0)),
            "2 workers · 12,000 examples/s (16 asked: a mini-batch splits into 2 shards, one worker each at most)"
        );
        // Still starting (or one lost: the page says so beside): no reason claimed.
        assert_eq!(workers(16, 1, 2).readout(None), "1 worker");
        assert_eq!(workers(4, 2, 4).readout(None), "2 workers");
        let single = Workers { single: Some("batch norm needs the statistics of the whole mini-batch".into()), ..workers(4, 1, 1) };
        assert_eq!(single.readout(Some(5.0)), "1 worker (batch norm needs the statistics of the whole mini-batch)");
    }
}
