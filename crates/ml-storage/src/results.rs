//! `ml_results`: one row per `(share_id, task_type)`, read by the gateway.

use chrono::{NaiveDateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::{Result, StorageError};
use crate::store::Store;

/// The `result_data.status` of a success.
const COMPLETED_STATUS: &str = "completed";
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

impl MlResult {
    /// The row of a task that succeeded: `result_data` is the worker's
    /// typed `data` plus `status: completed` and `processed_at`.
    ///
    /// # Errors
    /// [`StorageError::InvalidInput`] when `data` cannot be written as JSON.
    pub fn completed<T: Serialize>(
        share_id: Uuid,
        task_type: &str,
        model: &str,
        processing_ms: i32,
        data: &T,
    ) -> Result<Self> {
        let data = marked(to_json(task_type, data)?, COMPLETED_STATUS, []);
        let row = Self::row(share_id, task_type, model, data, Some(processing_ms));
        Ok(row)
    }

    /// The row of a task that failed for good, for
    /// [`Store::record_failure`]: `result_data` holds the worker's own
    /// `fields` plus `status: failed`, the `error`, the `task_id` and
    /// `processed_at`.
    pub fn failed(
        share_id: Uuid,
        task_type: &str,
        model: &str,
        failure: &Failure<'_>,
        fields: Value,
    ) -> Self {
        let extra = [
            ("error", failure.error.into()),
            ("task_id", failure.task_id.into()),
        ];
        let data = marked(fields, FAILED_STATUS, extra);
        Self::row(share_id, task_type, model, data, None)
    }

    /// The row of input deliberately not processed (junk text, silent
    /// media), for [`Store::record_skip`]: `result_data` holds the worker's
    /// typed `fields` plus `status: skipped`, the `reason`, the `model` and
    /// `processed_at`.
    ///
    /// # Errors
    /// [`StorageError::InvalidInput`] when `fields` cannot be written as JSON.
    pub fn skipped<T: Serialize>(
        share_id: Uuid,
        task_type: &str,
        model: &str,
        reason: &str,
        processing_ms: i32,
        fields: &T,
    ) -> Result<Self> {
        let extra = [("reason", reason.into()), ("model", model.into())];
        let data = marked(to_json(task_type, fields)?, SKIPPED_STATUS, extra);
        let row = Self::row(share_id, task_type, model, data, Some(processing_ms));
        Ok(row)
    }

    fn row(
        share_id: Uuid,
        task_type: &str,
        model: &str,
        result_data: Value,
        processing_ms: Option<i32>,
    ) -> Self {
        Self {
            share_id,
            task_type: task_type.to_owned(),
            result_data,
            model_version: Some(model.to_owned()),
            processing_ms,
        }
    }
}

/// The worker's `fields` with `status`, `processed_at` and `extra` added.
fn marked<const N: usize>(fields: Value, status: &str, extra: [(&str, Value); N]) -> Value {
    let mut data = object(fields);
    data.extend(extra.map(|(key, value)| (key.to_owned(), value)));
    data.insert("status".into(), status.into());
    data.insert("processed_at".into(), processed_at().into());
    Value::Object(data)
}

/// A worker's typed result fields as JSON.
fn to_json<T: Serialize>(task_type: &str, fields: &T) -> Result<Value> {
    serde_json::to_value(fields).map_err(|e| StorageError::InvalidInput {
        reason: format!("{task_type} result: {e}"),
    })
}

/// Which task failed and why, as [`MlResult::failed`] records it.
#[derive(Clone, Copy, Debug)]
pub struct Failure<'a> {
    /// The Celery task id.
    pub task_id: &'a str,
    /// The reason, as dead-lettered.
    pub error: &'a str,
}

/// `fields` as an object (anything else is kept under `fields`).
fn object(fields: Value) -> Map<String, Value> {
    match fields {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => Map::from_iter([("fields".to_owned(), other)]),
    }
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
    fn completed_failed_and_skipped_rows_carry_the_common_fields_beside_the_workers() {
        let share = Uuid::nil();
        let failure = Failure {
            task_id: "t1",
            error: "boom",
        };
        let failed = MlResult::failed(share, "x", "m1", &failure, json!({"backend": "local"}));
        let data = &failed.result_data;
        assert_eq!(
            (
                &data["status"],
                &data["error"],
                &data["task_id"],
                &data["backend"]
            ),
            (
                &json!("failed"),
                &json!("boom"),
                &json!("t1"),
                &json!("local")
            )
        );
        assert!(data["processed_at"].is_string());
        assert_eq!(failed.model_version.as_deref(), Some("m1"));
        assert_eq!(failed.processing_ms, None);

        let skipped = MlResult::skipped(share, "x", "m1", "empty", 7, &json!({"status": "ok"}))
            .unwrap_or_else(|e| panic!("{e}"));
        let data = &skipped.result_data;
        assert_eq!(
            (&data["status"], &data["reason"], &data["model"]),
            (&json!("skipped"), &json!("empty"), &json!("m1"))
        );
        assert_eq!(skipped.processing_ms, Some(7));

        let done = MlResult::completed(share, "x", "m1", 9, &json!({"text": "t"}))
            .unwrap_or_else(|e| panic!("{e}"));
        let data = &done.result_data;
        assert_eq!(
            (&data["status"], &data["text"]),
            (&json!("completed"), &json!("t"))
        );
        assert!(data["processed_at"].is_string());
        assert_eq!(
            (done.processing_ms, done.model_version.as_deref()),
            (Some(9), Some("m1"))
        );
    }

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
