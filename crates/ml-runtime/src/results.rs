//! The Celery result backend in Redis (CONTRACT section 5).
//!
//! Each state is stored as `celery-task-meta-<id>` with an expiry and
//! PUBLISHed on a channel of the same name, exactly like Celery's Redis
//! backend, so `AsyncResult(id).get()` in Python reads it.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use redis::aio::ConnectionManager;
use serde_json::{Value, json};

/// A Celery task state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// The task began (written only with `CELERY_TASK_TRACK_STARTED`).
    Started,
    /// The task finished; the result is its return value.
    Success,
    /// The task failed for good; the result describes the exception.
    Failure,
    /// The task failed transiently and was scheduled again.
    Retry,
    /// The task expired before it ran.
    Revoked,
}

impl TaskState {
    /// Celery's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "STARTED",
            Self::Success => "SUCCESS",
            Self::Failure => "FAILURE",
            Self::Retry => "RETRY",
            Self::Revoked => "REVOKED",
        }
    }
}

/// Writes task states to Redis. Cheap to clone.
#[derive(Clone)]
pub struct ResultBackend {
    connection: ConnectionManager,
    expires: Duration,
}

impl ResultBackend {
    /// Connects to Redis at `url`.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str, expires: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let connection = client.get_connection_manager().await?;
        Ok(Self {
            connection,
            expires,
        })
    }

    /// Connects to Redis at `url`, waiting with backoff while it is
    /// unreachable (a worker starting beside Redis) until `shutdown`.
    ///
    /// # Errors
    /// When the URL is invalid, or Redis is still unreachable at shutdown.
    pub async fn connect_with_retry(
        url: &str,
        expires: Duration,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Self, redis::RedisError> {
        let unreachable =
            |e: &redis::RedisError| e.is_io_error() || e.is_connection_refusal() || e.is_timeout();
        crate::backoff::retry_transient("Redis", shutdown, unreachable, || {
            Self::connect(url, expires)
        })
        .await
    }

    /// Records `state` for `task_id` with `result` (the return value, or an
    /// exception description from [`exception`]).
    ///
    /// # Errors
    /// When Redis is unavailable; callers treat that as transient.
    pub async fn store(
        &self,
        task_id: &str,
        state: TaskState,
        result: Value,
        traceback: Option<&str>,
    ) -> Result<(), redis::RedisError> {
        let key = key(task_id);
        let meta = json!({
            "status": state.as_str(),
            "result": result,
            "traceback": traceback,
            "children": [],
            "date_done": Utc::now().to_rfc3339_opts(SecondsFormat::Micros, false),
            "task_id": task_id,
        })
        .to_string();
        let mut connection = self.connection.clone();
        // One round trip; no MULTI/EXEC needed: a reader that misses the
        // PUBLISH still finds the key (Celery's client reads it on subscribe).
        redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(&meta)
            .arg("EX")
            .arg(self.expires.as_secs().max(1))
            .ignore()
            .cmd("PUBLISH")
            .arg(&key)
            .arg(&meta)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }

    /// Answers whether Redis responds (for readiness).
    ///
    /// # Errors
    /// When Redis is unavailable.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<()>(&mut connection).await
    }
}

/// The Redis key Celery uses for a task's result.
pub fn key(task_id: &str) -> String {
    format!("celery-task-meta-{task_id}")
}

/// An exception description in Celery's JSON format, which `AsyncResult.get()`
/// turns back into a Python exception of type `exc_type`.
pub fn exception(exc_type: &str, exc_module: &str, message: &str) -> Value {
    json!({
        "exc_type": exc_type,
        "exc_message": [message],
        "exc_module": exc_module,
    })
}
