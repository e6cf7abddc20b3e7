//! Compute budgets: every lab estimates, from its config alone, the work and memory of one
//! training step and of one snapshot's evaluations, and refuses a config over budget with a
//! notice naming the key to change — so no link can ask for a step that freezes a tab or a model
//! that runs a wasm instance out of memory.
//!
//! The budgets assume a laptop-class core running our wasm at ~10 GFLOP/s on convolutions and
//! wide layers (LeNet-5 measures ~15 here) and ~3 on the small dense layers snapshots evaluate:
//! a step ≤ 0.5 GFLOP (≈ 50 ms), a snapshot's evaluations ≤ 0.3 GFLOP (≈ 100 ms), a chunk of a
//! test evaluation ≤ 0.25 GFLOP (the worker answers a command between chunks), and
//! ≤ 512 MB of tensors.

use super::params::Notice;

/// Most floating-point operations in one training step (forward + backward + update).
pub const STEP_FLOPS: f64 = 5e8;
/// Most floating-point operations a snapshot's evaluations take at once.
pub const SNAPSHOT_FLOPS: f64 = 3e8;
/// Most floating-point operations of one chunk of a scheduled test evaluation (the CNN's and
/// the Batch Norm lab's). Half a step's: a 1024-wide BN pair evaluates ~21 images per 0.5 GFLOP,
/// small matrices that ran at ~5 GFLOP/s natively, 90–200 ms per chunk on 2-core CI machines.
pub const EVAL_CHUNK_FLOPS: f64 = 2.5e8;
/// Most bytes of tensors (weights, gradients, optimiser state, activations, buffers).
pub const MEMORY_BYTES: f64 = 512.0 * 1024.0 * 1024.0;

/// The estimated cost of a config.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    pub step_flops: f64,
    pub snapshot_flops: f64,
    pub bytes: f64,
}

impl Cost {
    /// Forward + backward of a layer is about 3× its forward (dx and dW each cost a forward).
    pub const TRAIN_FACTOR: f64 = 3.0;
    /// What a snapshot spends per activation value it keeps (copies, statistics, histograms), in
    /// FLOP-equivalents: measured, a wide layer's statistics cost more than its forward pass.
    pub const PER_ACTIVATION: f64 = 30.0;

    /// Checks the budgets; `blame` names the key to change for each kind of excess
    /// (step work, snapshot work, memory).
    pub fn check(&self, blame: [&str; 3]) -> Result<(), Notice> {
        let over = |what: &str, key: &str, v: f64, max: f64, unit: &str, scale: f64| {
            Notice::new(key, format!("{what} would need about {:.1} {unit} (the limit is {:.1} {unit}): make {key} smaller", v / scale, max / scale))
        };
        if self.step_flops > STEP_FLOPS {
            return Err(over("one training step", blame[0], self.step_flops, STEP_FLOPS, "GFLOP", 1e9));
        }
        if self.snapshot_flops > SNAPSHOT_FLOPS {
            return Err(over("evaluating for one snapshot", blame[1], self.snapshot_flops, SNAPSHOT_FLOPS, "GFLOP", 1e9));
        }
        if self.bytes > MEMORY_BYTES {
            return Err(over("the model and its activations", blame[2], self.bytes, MEMORY_BYTES, "MB", 1024.0 * 1024.0));
        }
        Ok(())
    }
}

/// Costs of a stack of dense layers `widths[0] → widths[1] → …`: forward FLOPs per example,
/// parameters, and activations per example (every layer output, pre- and post-activation).
pub fn dense_stack(widths: &[usize]) -> (f64, f64, f64) {
    let pairs = widths.windows(2);
    let flops = pairs.clone().map(|w| 2.0 * w[0] as f64 * w[1] as f64).sum();
    let params = pairs.map(|w| (w[0] * w[1] + w[1]) as f64).sum();
    let activations = widths[1..].iter().map(|&u| 2.0 * u as f64).sum();
    (flops, params, activations)
}

/// Bytes of a model's parameters with their gradients and up to two optimiser moments.
pub fn parameter_bytes(params: f64) -> f64 {
    params * 4.0 * 4.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_costs_what_its_matrices_say() {
        // 2 → 8 → 1: forward 2·(2·8 + 8·1) = 48 FLOPs, 33 parameters, 2·(8 + 1) activations.
        assert_eq!(dense_stack(&[2, 8, 1]), (48.0, 33.0, 18.0));
        let c = Cost { step_flops: 6e8, ..Default::default() };
        let n = c.check(["bs", "n", "hidden"]).unwrap_err();
        assert_eq!(n.key, "bs");
        assert!(n.message.contains("0.6 GFLOP") && n.message.contains("0.5 GFLOP"), "{}", n.message);
        assert_eq!(Cost { bytes: 1e12, ..Default::default() }.check(["bs", "n", "hidden"]).unwrap_err().key, "hidden");
        assert!(Cost::default().check(["a", "b", "c"]).is_ok());
    }
}
