//! Exponential backoff with jitter, for retries and reconnects.

use std::time::Duration;

/// Delay before attempt `attempt` (0-based): `base × 2^attempt`, capped at
/// `max`, then scaled by a random factor in [0.5, 1.0] so that a fleet does
/// not retry in lockstep.
pub(crate) fn delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exponential = base.saturating_mul(2u32.saturating_pow(attempt.min(30)));
    let capped = exponential.min(max);
    capped.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 0..4 {
            let nominal = Duration::from_secs(1 << attempt);
            let d = delay(attempt, base, max);
            assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
        }
        assert!(delay(40, base, max) <= max);
    }
}
