//! The training worker's speed: milliseconds per optimiser step, measured over the calls that
//! trained. A call that evaluated the test set instead is left out: the readout "n workers · x
//! examples/s" says what the workers compute, and the CNN lab's evaluation of 10,000 images every
//! 500 steps swung it tenfold when it counted (2 workers: 1,226 to 17,475 examples/s from one
//! half-second to the next). The steps/s beside it is the wall rate, evaluations included.

/// Smoothing of the per-step time from one chunk of calls to the next (the newest weighs this).
const NEWEST: f64 = 0.3;
/// Least training time a chunk must hold to be measured, in ms: workers' clocks are coarse
/// (≥ 0.1 ms), so shorter spans say little.
const LEAST_MS: f64 = 1.0;

#[derive(Clone, Debug, Default)]
pub struct StepRate {
    ms_per_step: f64,
    /// This chunk's training calls so far: their time and their steps.
    chunk_ms: f64,
    chunk_steps: u64,
}

impl StepRate {
    /// Milliseconds per step (0: not measured yet).
    pub fn ms_per_step(&self) -> f64 {
        self.ms_per_step
    }

    /// Forgets the speed (a new or rebuilt session may be far slower per step).
    pub fn reset(&mut self) {
        *self = StepRate::default();
    }

    /// One call of a chunk: it took `ms` and trained `steps`; `evaluated`: the session was
    /// evaluating when it began, so the call evaluated (and took no step).
    pub fn call(&mut self, ms: f64, steps: u64, evaluated: bool) {
        if !evaluated && ms.is_finite() && ms >= 0.0 {
            self.chunk_ms += ms;
            self.chunk_steps += steps;
        }
    }

    /// Ends a chunk: the time per step of its training calls, when they trained long enough to
    /// be measured (the smoothed speed takes it in).
    pub fn finish_chunk(&mut self) -> Option<f64> {
        let (ms, steps) = (std::mem::take(&mut self.chunk_ms), std::mem::take(&mut self.chunk_steps));
        if ms < LEAST_MS || steps == 0 {
            return None;
        }
        let per_step = ms / steps as f64;
        self.ms_per_step = if self.ms_per_step > 0.0 { (1.0 - NEWEST) * self.ms_per_step + NEWEST * per_step } else { per_step };
        Some(per_step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn evaluating_calls_leave_the_speed_as_it_is() {
        let mut r = StepRate::default();
        assert_eq!(r.finish_chunk(), None, "nothing measured");
        // 12 ms chunks of 0.5 ms steps.
        for _ in 0..3 {
            (0..4).for_each(|_| r.call(3.0, 6, false));
            assert_eq!(r.finish_chunk(), Some(0.5));
        }
        assert_eq!(r.ms_per_step(), 0.5);
        // A chunk spent evaluating, then a chunk half training half evaluating.
        r.call(12.0, 0, true);
        assert_eq!(r.finish_chunk(), None);
        r.call(6.0, 12, false);
        r.call(6.0, 0, true);
        assert_eq!(r.finish_chunk(), Some(0.5));
        assert_eq!(r.ms_per_step(), 0.5, "the evaluation's 18 ms count for nothing");
    }

    #[wasm_bindgen_test]
    fn the_speed_follows_a_change_smoothly_and_ignores_what_cannot_be_measured() {
        let mut r = StepRate::default();
        r.call(10.0, 10, false);
        r.finish_chunk();
        r.call(20.0, 10, false);
        assert_eq!(r.finish_chunk(), Some(2.0));
        assert!((r.ms_per_step() - 1.3).abs() < 1e-12, "{}", r.ms_per_step());
        // Too short to read on a coarse clock, no step (a GPU call waiting for the device), a
        // clock gone wrong: nothing changes.
        r.call(0.5, 3, false);
        assert_eq!(r.finish_chunk(), None);
        r.call(5.0, 0, false);
        assert_eq!(r.finish_chunk(), None);
        r.call(f64::NAN, 3, false);
        r.call(-4.0, 3, false);
        assert_eq!(r.finish_chunk(), None);
        assert!((r.ms_per_step() - 1.3).abs() < 1e-12);
        r.reset();
        assert_eq!(r.ms_per_step(), 0.0);
    }
}
