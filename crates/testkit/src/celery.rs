//! Reading the Celery results the workers write to Redis.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::env;

/// Waits until every task of `ids` has a SUCCESS result, then returns the
/// drain rate in tasks/s from the first to the last `date_done` (so start-up
/// and publishing do not count).
///
/// # Errors
/// When Redis is unreachable or not all tasks finish within `timeout`.
pub async fn drain_rate(ids: &[String], timeout: Duration) -> Result<f64> {
    let client = redis::Client::open(env::redis_url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = ids
        .iter()
        .map(|id| format!("celery-task-meta-{id}"))
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let metas: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut connection)
            .await?;
        let done: Vec<DateTime<Utc>> = metas
            .iter()
            .flatten()
            .filter_map(|text| serde_json::from_str::<Value>(text).ok())
            .filter(|meta| meta["status"] == "SUCCESS")
            .filter_map(|meta| {
                meta["date_done"]
                    .as_str()
                    .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            })
            .map(|d| d.with_timezone(&Utc))
            .collect();
        if done.len() == ids.len() {
            let first = done.iter().min().context("no results")?;
            let last = done.iter().max().context("no results")?;
            let seconds = (*last - *first).as_seconds_f64().max(1e-6);
            #[allow(clippy::cast_precision_loss)]
            return Ok(ids.len().saturating_sub(1) as f64 / seconds);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {}/{} tasks finished",
            done.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Celery meta stored in Redis for `task_id`.
///
/// # Errors
/// When Redis is unreachable or the value is not JSON.
pub async fn meta(task_id: &str) -> Result<Option<Value>> {
    let client = redis::Client::open(env::redis_url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let raw: Option<String> = redis::cmd("GET")
        .arg(format!("celery-task-meta-{task_id}"))
        .query_async(&mut connection)
        .await?;
    Ok(raw.map(|text| serde_json::from_str(&text)).transpose()?)
}

/// Deletes the Celery result of `task_id` (fixtures reuse their task ids).
///
/// # Errors
/// When Redis is unreachable.
pub async fn forget(task_id: &str) -> Result<()> {
    let client = redis::Client::open(env::redis_url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd("DEL")
        .arg(format!("celery-task-meta-{task_id}"))
        .query_async::<()>(&mut connection)
        .await?;
    Ok(())
}

/// Waits until Redis holds `status` for `task_id`.
///
/// # Errors
/// When it does not within `timeout`.
pub async fn wait_status(task_id: &str, status: &str, timeout: Duration) -> Result<Value> {
    crate::wait::until(
        &format!("{status} for task {task_id} in Redis"),
        timeout,
        || async {
            meta(task_id)
                .await
                .ok()
                .flatten()
                .filter(|meta| meta["status"] == status)
        },
    )
    .await
}
