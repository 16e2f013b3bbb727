//! Errors: what a handler reports about a task, and what stops the runtime.

use std::borrow::Cow;

/// Why a task did not succeed; decides between retry and dead-letter.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task's arguments are wrong (missing field, wrong type, bad id).
    /// Never retried.
    #[error("invalid task arguments: {0}")]
    InvalidArguments(String),
    /// The input cannot be processed (unsupported media, model refused it).
    /// Never retried.
    #[error("{0}")]
    Permanent(String),
    /// A dependency (database, Redis, broker, remote fetch) failed in a way
    /// that may pass. Retried with backoff up to the retry limit.
    #[error("transient failure: {0}")]
    Transient(String),
    /// The task ran past its hard time limit and was stopped. Never
    /// retried (as Celery's `TimeLimitExceeded`).
    #[error("the task ran past its hard time limit of {} s", .0.as_secs_f64())]
    TimeLimitExceeded(std::time::Duration),
}

impl TaskError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// The Python exception type a Celery client sees for this error.
    pub(crate) fn python_exception(&self) -> &'static str {
        match self {
            Self::InvalidArguments(_) => "ValueError",
            Self::Permanent(_) => "RuntimeError",
            Self::Transient(_) => "ConnectionError",
            Self::TimeLimitExceeded(_) => "TimeLimitExceeded",
        }
    }
}

/// The most bytes of a failure reason written anywhere: dead-letter
/// headers (which must fit the broker's frame with room to spare), the
/// Redis result and the `ml_results` row. Reasons can quote input.
pub const MAX_REASON_BYTES: usize = 2048;

/// `reason` cut to [`MAX_REASON_BYTES`] at a character boundary, saying
/// how much was cut.
pub fn bounded_reason(reason: &str) -> Cow<'_, str> {
    if reason.len() <= MAX_REASON_BYTES {
        return Cow::Borrowed(reason);
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let cut = reason.len() - end;
    Cow::Owned(format!("{}… ({cut} more bytes)", &reason[..end]))
}

/// Errors that stop the runtime itself (not a single task).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The broker refused or dropped a topology or consume operation.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// The Redis result backend URL is invalid or Redis is unreachable.
    #[error("result backend: {0}")]
    ResultBackend(#[from] redis::RedisError),
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The metrics/health server could not bind its address.
    #[error("health server on {address}: {source}")]
    HealthServer {
        /// The address it tried to bind.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration is contradictory.
    #[error("configuration: {0}")]
    Config(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_at_a_character_boundary() {
        assert_eq!(bounded_reason("short"), "short");
        let exact = "a".repeat(MAX_REASON_BYTES);
        assert_eq!(bounded_reason(&exact), exact);
        let long = format!("a{}", "é".repeat(MAX_REASON_BYTES));
        let bounded = bounded_reason(&long);
        let kept = bounded.split('…').next().unwrap_or_default();
        assert_eq!(kept.len(), MAX_REASON_BYTES - 1);
        assert!(
            bounded.ends_with(&format!("… ({} more bytes)", long.len() - kept.len())),
            "{bounded}"
        );
    }
}
