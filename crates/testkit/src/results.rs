//! Reading and clearing the rows workers write to `ml_results`.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// `result_data` of the `task_type` row of `share_id`, if any.
///
/// # Errors
/// When the query fails.
pub async fn result_data(db: &PgPool, share_id: Uuid, task_type: &str) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT result_data FROM ml_results WHERE share_id = $1 AND task_type = $2",
    )
    .bind(share_id)
    .bind(task_type)
    .fetch_optional(db)
    .await?)
}

/// Waits for the `task_type` row of `share_id`.
///
/// # Errors
/// When no row appears within `timeout`.
pub async fn wait_result(
    db: &PgPool,
    share_id: Uuid,
    task_type: &str,
    timeout: Duration,
) -> Result<Value> {
    crate::wait::until(
        &format!("{task_type} row of {share_id}"),
        timeout,
        || async { result_data(db, share_id, task_type).await.ok().flatten() },
    )
    .await
}

/// Waits until the `task_type` row of `share_id` has `status`.
///
/// # Errors
/// When it does not within `timeout`.
pub async fn wait_result_status(
    db: &PgPool,
    share_id: Uuid,
    task_type: &str,
    status: &str,
    timeout: Duration,
) -> Result<Value> {
    crate::wait::until(
        &format!("status {status} of the {task_type} row of {share_id}"),
        timeout,
        || async {
            result_data(db, share_id, task_type)
                .await
                .ok()
                .flatten()
                .filter(|data| data["status"] == status)
        },
    )
    .await
}

/// Removes every row (results and vectors) of `share_ids`; fixtures reuse
/// fixed ids. The `embeddings` table exists only once a vector-worker has
/// prepared the database.
///
/// # Errors
/// When a delete fails.
pub async fn forget_shares(db: &PgPool, share_ids: &[Uuid]) -> Result<()> {
    let has_embeddings: bool = sqlx::query_scalar("SELECT to_regclass('embeddings') IS NOT NULL")
        .fetch_one(db)
        .await?;
    if has_embeddings {
        sqlx::query("DELETE FROM embeddings WHERE share_id = ANY($1)")
            .bind(share_ids)
            .execute(db)
            .await?;
    }
    sqlx::query("DELETE FROM ml_results WHERE share_id = ANY($1)")
        .bind(share_ids)
        .execute(db)
        .await?;
    Ok(())
}
