//! Exponential backoff with jitter, for retries and reconnects.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// First delay of [`retry_transient`].
const START_DELAY: Duration = Duration::from_secs(1);
/// Longest delay of [`retry_transient`].
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds, fails with an error `is_transient`
/// calls permanent, or `shutdown` fires; between attempts it logs a warning
/// naming `what` and waits 1 s, 2 s, 4 s, ... up to 30 s (jittered). Used for
/// start-up connections, so a worker waits for a database that is still
/// starting instead of crash-looping.
///
/// # Errors
/// The permanent error, or the last transient one when shutdown came first.
pub async fn retry_transient<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    is_transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = 0u32;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if is_transient(&error) && !shutdown.is_cancelled() => error,
            Err(error) => return Err(error),
        };
        let wait = delay(failures, START_DELAY, MAX_DELAY);
        failures = failures.saturating_add(1);
        tracing::warn!(
            %error,
            attempt = failures,
            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "cannot reach {what}; retrying"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return Err(error),
        }
    }
}

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
