//! Helpers the benchmarks share.

/// The median of `samples` (the upper one of an even count).
///
/// # Panics
/// When `samples` is empty.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
