//! `ml_results`: one row per `(share_id, task_type)`, read by the gateway.

use chrono::{NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::{Result, StorageError};
use crate::store::Store;

/// The `result_data.status` that marks a failure row. Any other status (or
/// none) is a success, which a later failure must not overwrite.
pub(crate) const FAILED_STATUS: &str = "failed";
/// `result_data.status` of input recorded but not processed (junk, empty).
pub(crate) const SKIPPED_STATUS: &str = "skipped";
/// Statuses that are not a success: a later failure or skip may replace them.
const REPLACEABLE_STATUSES: [&str; 2] = [FAILED_STATUS, SKIPPED_STATUS];

/// One task's outcome, as written to `ml_results`.
#[derive(Clone, Debug, PartialEq)]
pub struct MlResult {
    /// The share the task worked on.
    pub share_id: Uuid,
    /// `summarize_llm`, `transcription` or `embed_vectors` (CONTRACT.md 5).
    pub task_type: String,
    /// The JSON the gateway reads; failure rows carry `"status": "failed"`.
    pub result_data: Value,
    /// Model that produced the result.
    pub model_version: Option<String>,
    /// Wall time the task took.
    pub processing_ms: Option<i32>,
}

/// An `ml_results` row as stored.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredResult {
    /// Row id.
    pub id: Uuid,
    /// The share.
    pub share_id: Uuid,
    /// Task type.
    pub task_type: String,
    /// Stored JSON.
    pub result_data: Value,
    /// Model that produced it.
    pub model_version: Option<String>,
    /// Wall time the task took.
    pub processing_ms: Option<i32>,
    /// When the row was last written (UTC, server clock).
    pub created_at: NaiveDateTime,
}

/// Now, as `result_data.processed_at` records it (RFC 3339, UTC, ms).
pub fn processed_at() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Store {
    /// Inserts or replaces the row for `(share_id, task_type)`.
    ///
    /// Successes always win: this overwrites an earlier failure as well as an
    /// earlier success (a redelivered task writes the same row again).
    ///
    /// # Errors
    ///
    /// [`StorageError::Database`]; transient when the database is
    /// unavailable or a lock wait timed out.
    pub async fn upsert_result(&self, result: &MlResult) -> Result<()> {
        upsert_result(self.pool(), result).await
    }

    /// Records a failed task without ever replacing a success.
    ///
    /// `result_data` is stored with `"status": "failed"` (set here if the
    /// caller did not). The row is written when there is none yet or the
    /// existing one is itself a failure or a skip; an existing success
    /// (any other status, or none) is kept. Returns whether a row was written.
    ///
    /// # Errors
    ///
    /// [`StorageError::Database`], as for [`upsert_result`](Self::upsert_result).
    pub async fn record_failure(&self, result: &MlResult) -> Result<bool> {
        self.record_unless_succeeded(result, FAILED_STATUS, "recording a failed result")
            .await
    }

    /// Records input that was deliberately not processed (empty or junk
    /// text) with `"status": "skipped"`, under the same rule as
    /// [`record_failure`](Self::record_failure): never over a success.
    ///
    /// # Errors
    ///
    /// [`StorageError::Database`], as for [`upsert_result`](Self::upsert_result).
    pub async fn record_skip(&self, result: &MlResult) -> Result<bool> {
        self.record_unless_succeeded(result, SKIPPED_STATUS, "recording a skipped result")
            .await
    }

    async fn record_unless_succeeded(
        &self,
        result: &MlResult,
        status: &str,
        operation: &'static str,
    ) -> Result<bool> {
        let result_data = with_status(result.result_data.clone(), status);
        let outcome = sqlx::query(
            "INSERT INTO ml_results
                 (share_id, task_type, result_data, model_version, processing_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (share_id, task_type) DO UPDATE
             SET result_data = EXCLUDED.result_data,
                 model_version = EXCLUDED.model_version,
                 processing_ms = EXCLUDED.processing_ms,
                 created_at = now()
             WHERE ml_results.result_data->>'status' = ANY($6)",
        )
        .bind(result.share_id)
        .bind(&result.task_type)
        .bind(&result_data)
        .bind(&result.model_version)
        .bind(result.processing_ms)
        .bind(&REPLACEABLE_STATUSES[..])
        .execute(self.pool())
        .await
        .map_err(StorageError::database(operation))?;
        Ok(outcome.rows_affected() > 0)
    }

    /// Reads the row for `(share_id, task_type)`, if any.
    ///
    /// # Errors
    ///
    /// [`StorageError::Database`].
    pub async fn get_result(
        &self,
        share_id: Uuid,
        task_type: &str,
    ) -> Result<Option<StoredResult>> {
        sqlx::query_as(
            "SELECT id, share_id, task_type::text, result_data, model_version::text,
                    processing_ms, created_at
             FROM ml_results WHERE share_id = $1 AND task_type = $2",
        )
        .bind(share_id)
        .bind(task_type)
        .fetch_optional(self.pool())
        .await
        .map_err(StorageError::database("reading a result"))
    }
}

/// The success upsert, usable inside a caller's transaction.
pub(crate) async fn upsert_result<'e>(
    executor: impl PgExecutor<'e>,
    result: &MlResult,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ml_results
             (share_id, task_type, result_data, model_version, processing_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (share_id, task_type) DO UPDATE
         SET result_data = EXCLUDED.result_data,
             model_version = EXCLUDED.model_version,
             processing_ms = EXCLUDED.processing_ms,
             created_at = now()",
    )
    .bind(result.share_id)
    .bind(&result.task_type)
    .bind(&result.result_data)
    .bind(&result.model_version)
    .bind(result.processing_ms)
    .execute(executor)
    .await
    .map_err(StorageError::database("writing a result"))?;
    Ok(())
}

/// Forces `status: "failed"` so the row is recognisable as a failure.
fn with_status(data: Value, status: &str) -> Value {
    match data {
        Value::Object(mut map) => {
            map.insert("status".into(), Value::from(status));
            Value::Object(map)
        }
        other => serde_json::json!({ "status": status, "error": other }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failures_are_marked() {
        assert_eq!(
            with_status(json!({"error": "boom", "status": "FAILURE"}), FAILED_STATUS),
            json!({"error": "boom", "status": "failed"})
        );
        assert_eq!(
            with_status(json!("boom"), FAILED_STATUS),
            json!({"error": "boom", "status": "failed"})
        );
    }
}
