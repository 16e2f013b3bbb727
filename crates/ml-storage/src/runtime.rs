//! How the store plugs into the worker runtime: start-up connection with
//! backoff, the `/readyz` database check, storage errors as task errors,
//! and the `processed_at` timestamp every `result_data` carries.

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use ml_runtime::shutdown::CancellationToken;
use ml_runtime::{ReadinessCheck, TaskError};

use crate::config::StoreConfig;
use crate::error::{Result, StorageError};
use crate::store::Store;

impl Store {
    /// [`Store::connect`], waiting with backoff while PostgreSQL is
    /// unreachable or starting, until `shutdown`.
    ///
    /// # Errors
    /// A permanent connection error (bad URL, authentication), or the last
    /// transient one when shutdown came first.
    pub async fn connect_with_retry(
        config: &StoreConfig,
        shutdown: &CancellationToken,
    ) -> Result<Self> {
        ml_runtime::backoff::retry_transient(
            "PostgreSQL",
            shutdown,
            StorageError::is_transient,
            || Store::connect(config),
        )
        .await
    }
}

/// `/readyz` fails while the database does not answer.
#[async_trait]
impl ReadinessCheck for Store {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> std::result::Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

impl From<StorageError> for TaskError {
    /// Unavailable database: retried; anything else: dead-lettered.
    fn from(error: StorageError) -> Self {
        if error.is_transient() {
            TaskError::Transient(format!("database: {error}"))
        } else {
            TaskError::Permanent(format!("database: {error}"))
        }
    }
}

/// Now, as `result_data.processed_at` records it (RFC 3339, UTC, ms).
pub fn processed_at() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}
