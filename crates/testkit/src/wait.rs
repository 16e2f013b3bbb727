//! Polling until a condition holds, with a deadline and a clear failure.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` every 100 ms until it yields `Some`, or fails after
/// `timeout` with `what` in the message.
///
/// # Errors
/// When the deadline passes first.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
