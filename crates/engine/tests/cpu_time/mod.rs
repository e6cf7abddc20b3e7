//! This thread's CPU time, for the tests that hold work to a time budget. Wall time grows when
//! other tests or processes share the cores (the fuzz tests run one per lab side by side, on a CI
//! machine that may be loaded); the CPU time a step spends grows only with the step's work.

/// A point on this thread's CPU clock.
#[derive(Clone, Copy)]
pub struct CpuClock(f64);

impl CpuClock {
    pub fn now() -> Self {
        CpuClock(thread_cpu_ms())
    }

    /// CPU milliseconds this thread has spent since `self`.
    pub fn ms(self) -> f64 {
        thread_cpu_ms() - self.0
    }
}

#[cfg(unix)]
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec, and the clock id is the platform's constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "reading this thread's CPU clock");
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Elsewhere: wall time (the best-of-three timings still absorb a busy moment).
#[cfg(not(unix))]
fn thread_cpu_ms() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
}

#[test]
fn the_cpu_clock_counts_work_not_sleep() {
    let t = CpuClock::now();
    std::thread::sleep(std::time::Duration::from_millis(60));
    let slept = t.ms();
    let t = CpuClock::now();
    let mut x = 0u64;
    while t.ms() < 30.0 {
        x = x.wrapping_add(std::hint::black_box(1));
    }
    assert!(x > 0);
    if cfg!(unix) {
        assert!(slept < 20.0, "{slept} CPU ms counted while sleeping 60 ms");
    }
}
