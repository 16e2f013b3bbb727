//! How the PostgreSQL store plugs into the runtime: the start-up connection
//! with backoff, the `/readyz` database check, and storage errors as task
//! errors (retry when the database is unavailable, dead-letter otherwise).

use async_trait::async_trait;
use ml_storage::{MlResult, StorageError, Store, StoreConfig};
use tokio_util::sync::CancellationToken;

use crate::error::TaskError;
use crate::health::ReadinessCheck;

/// [`Store::connect`], waiting with backoff while PostgreSQL is unreachable
/// or starting, until `shutdown`.
///
/// # Errors
/// A permanent connection error (bad URL, authentication), or the last
/// transient one when shutdown came first.
pub async fn connect_with_retry(
    config: &StoreConfig,
    shutdown: &CancellationToken,
) -> Result<Store, StorageError> {
    crate::backoff::retry_transient("PostgreSQL", shutdown, StorageError::is_transient, || {
        Store::connect(config)
    })
    .await
}

/// `/readyz` fails while the database does not answer.
#[async_trait]
impl ReadinessCheck for Store {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
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

/// Records a failure row ([`Store::record_failure`]: never over a success)
/// from a handler's `on_failure`. A storage error is logged, not returned:
/// the task is dead-lettered either way.
pub async fn record_failure(store: &Store, row: &MlResult) {
    if let Err(error) = store.record_failure(row).await {
        tracing::warn!(share_id = %row.share_id, %error, "could not record the failure");
    }
}
