//! How the PostgreSQL store plugs into the runtime: the start-up connection
//! with backoff, the `/readyz` database check, and storage errors as task
//! errors (retry when the database is unavailable, dead-letter otherwise).

use async_trait::async_trait;
use ml_storage::{Failure, MlResult, StorageError, Store, StoreConfig};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::arguments::Request;
use crate::error::{TaskError, bounded_reason};
use crate::health::ReadinessCheck;
use crate::task::Task;

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

/// Where a worker records the tasks that failed for good: one `failed`
/// `ml_results` row per share of the request, never over a success.
pub struct FailureLog {
    store: Store,
    task_type: &'static str,
    model: String,
    fields: Value,
}

impl FailureLog {
    /// Failure rows of `task_type` by `model` in `store`, each carrying the
    /// worker's own `fields` (an object, or null for none).
    pub fn new(store: Store, task_type: &'static str, model: &str, fields: Value) -> Self {
        Self {
            store,
            task_type,
            model: model.to_owned(),
            fields,
        }
    }

    /// Records `error` against the shares of `request`, or, when the
    /// arguments did not parse, against [`Request::unparsed_share_ids`]. A storage error is logged, not returned: the task is
    /// dead-lettered either way.
    pub async fn record<R: Request>(&self, task: &Task, request: Option<&R>, error: &TaskError) {
        let shares: Vec<Uuid> = match request {
            Some(request) => request.share_ids(),
            None => R::unparsed_share_ids(task),
        };
        let error = error.to_string();
        let failure = Failure {
            task_id: &task.id,
            error: &bounded_reason(&error),
        };
        for share_id in shares {
            let fields = self.fields.clone();
            let row = MlResult::failed(share_id, self.task_type, &self.model, &failure, fields);
            if let Err(error) = self.store.record_failure(&row).await {
                tracing::warn!(%share_id, %error, "could not record the failure");
            }
        }
    }
}
