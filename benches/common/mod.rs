//! Helpers the benchmarks share.

/// The median of `samples` (the upper one of an even count).
///
/// # Panics
/// When `samples` is empty.
#[allow(dead_code)] // not every benchmark takes medians
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Makes candle and rayon in this process compute with `threads` threads,
/// as many as the peer is given.
///
/// # Safety
/// Changes the process environment: call it first in `main`, before any
/// thread is started.
#[allow(unsafe_code, dead_code)] // not every benchmark runs candle
pub unsafe fn compute_with_threads(threads: usize) {
    for name in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        // SAFETY: the caller guarantees that no other thread runs yet.
        unsafe { std::env::set_var(name, threads.to_string()) };
    }
}
