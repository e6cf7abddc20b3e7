//! How often the charts are redrawn while training runs, adapted to what the machine keeps up
//! with. A redrawn canvas is rasterised when the frame is committed (Chromium's "Commit"): on a
//! 2-core machine, where the training worker takes one core, four charts redrawn with every
//! 30 Hz snapshot dropped the fit lab to ~50 fps. So each half second the page looks at the frames
//! it dropped: some dropped double the time between two draws of a chart, none shortens it again.

/// Fastest chart redraws: one per snapshot (snapshots come at 30 Hz).
pub const MIN_MS: f64 = 1000.0 / 30.0;
/// Slowest: one every two seconds, still live, and the numbers twice as often. (At 1 s, CI's
/// 2-core machines still dropped the fit lab to ~52 fps: every redraw, every update of the
/// numbers costs a frame or two there.)
pub const MAX_MS: f64 = 2000.0;
/// The numbers (a snapshot's stats, histograms) are shown at least this often, in ms, while
/// the charts' interval is up to twice as long.
pub const PUBLISH_MS: f64 = 500.0;
/// How long frames are counted before the pace changes.
const WINDOW_MS: f64 = 500.0;

#[derive(Clone, Debug)]
pub struct ChartPacing {
    interval: f64,
    window_start: f64,
    last_frame: Option<f64>,
    /// The gaps between this window's frames, in ms.
    gaps: Vec<f64>,
}

impl Default for ChartPacing {
    fn default() -> Self {
        ChartPacing { interval: MIN_MS, window_start: 0.0, last_frame: None, gaps: Vec::new() }
    }
}

impl ChartPacing {
    /// Least time between two draws of one chart, in ms.
    pub fn interval(&self) -> f64 {
        self.interval
    }

    /// Least time between two updates of the page's numbers, in ms: the charts' interval, but
    /// half of it (down to [`PUBLISH_MS`]) when that is longer — the numbers stay the livelier.
    pub fn publish_interval(&self) -> f64 {
        self.interval.min(PUBLISH_MS.max(self.interval / 2.0))
    }

    /// Whether the machine keeps up with charts at full pace.
    pub fn at_full_pace(&self) -> bool {
        self.interval <= MIN_MS
    }

    /// Called once per animation frame at `now` (ms) while training runs.
    pub fn frame(&mut self, now: f64) {
        let Some(last) = self.last_frame.replace(now) else {
            self.window_start = now;
            return;
        };
        let gap = now - last;
        if !(gap > 0.0) || gap > 250.0 {
            // A hidden tab, a paused debugger: not a dropped frame, and a fresh window.
            self.window_start = now;
            self.gaps.clear();
            return;
        }
        self.gaps.push(gap);
        if now - self.window_start >= WINDOW_MS {
            // The display's period is the window's lower-quartile gap (whatever its refresh
            // rate); a frame that took n periods dropped n − 1. Two dropped in a window (a
            // frame rate under ~58 of 60) slow the charts down, none speeds them up, one (a
            // garbage collection) changes nothing.
            let mut sorted = self.gaps.clone();
            sorted.sort_by(f64::total_cmp);
            let period = sorted[sorted.len() / 4];
            let dropped: f64 = self.gaps.iter().map(|&g| (g / period).round() - 1.0).sum();
            if dropped >= 2.0 {
                self.interval = (self.interval * 2.0).min(MAX_MS);
            } else if dropped == 0.0 {
                self.interval = (self.interval * 0.8).max(MIN_MS);
            }
            self.window_start = now;
            self.gaps.clear();
        }
    }

    /// Training stopped: the next run starts its own measurement.
    pub fn pause(&mut self) {
        self.last_frame = None;
        self.gaps.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn run(p: &mut ChartPacing, from: f64, ms: f64, gap: f64) -> f64 {
        let mut t = from;
        while t < from + ms {
            t += gap;
            p.frame(t);
        }
        t
    }

    #[wasm_bindgen_test]
    fn dropped_frames_slow_the_charts_down_and_smooth_ones_speed_them_up() {
        let mut p = ChartPacing::default();
        let t = run(&mut p, 0.0, 1000.0, 1000.0 / 60.0);
        assert!(p.at_full_pace(), "{p:?}");
        assert_eq!(p.publish_interval(), MIN_MS);
        // A frame in three takes two periods: the pace halves each half second, to the floor.
        let mut t2 = t;
        for i in 0..300 {
            t2 += if i % 3 == 0 { 2000.0 / 60.0 } else { 1000.0 / 60.0 };
            p.frame(t2);
        }
        assert_eq!(p.interval(), MAX_MS);
        assert_eq!(p.publish_interval(), MAX_MS / 2.0);
        // Smooth again: back to full pace within a few seconds, never faster.
        run(&mut p, t2, 10_000.0, 1000.0 / 60.0);
        assert_eq!(p.interval(), MIN_MS);
        // A long gap (a hidden tab) is not a dropped frame.
        let mut q = ChartPacing::default();
        q.frame(0.0);
        q.frame(16.7);
        q.frame(5000.0);
        run(&mut q, 5000.0, 2000.0, 1000.0 / 60.0);
        assert!(q.at_full_pace());
        // On a 120 Hz display, or a 30 Hz one, steady frames are not drops.
        for hz in [120.0, 30.0] {
            let mut r = ChartPacing::default();
            run(&mut r, 0.0, 2000.0, 1000.0 / hz);
            assert!(r.at_full_pace(), "{hz} Hz");
        }
    }
}
