//! Delivery guarantees against the real broker and database: kill -9 mid-task,
//! SIGTERM with tasks in flight, a transient database failure, eta/expires.

mod common;

use common::EmbedTasks as _;

use std::time::{Duration, Instant};

use anyhow::Result;
use common::{Harness, READY, TASK, binary, cosine, result_data, vector_rows, wait_celery_status};
use ml_testkit::{TestBroker, WorkerProcess};
use serde_json::{Value, json};
use uuid::Uuid;

/// A batch heavy enough (about a hundred full-length chunks) to still be
/// running when the test interrupts it.
fn heavy_batch(shares: &[Uuid]) -> Value {
    let paragraph = "Distributed systems fail in partial and surprising ways, so every \
        message handler must be idempotent, every acknowledgement must follow the commit, \
        and every retry must be bounded. Operators read the logs, the metrics and the \
        dead-letter queue to learn what went wrong and why it did not lose data. ";
    let text = paragraph.repeat(8);
    let tasks: Vec<Value> = shares
        .iter()
        .map(|share| {
            json!({
                "share_id": share,
                "content": {"text": text, "type": "article"},
                "options": {"chunk_strategy": "fixed"}
            })
        })
        .collect();
    json!({ "tasks": tasks })
}

/// Creates the `ml_results` row of `share` and holds it locked in an open
/// transaction, as a concurrent writer would: the worker's upsert then fails
/// on its lock timeout, a real transient database error.
async fn hold_result_row(
    db: &sqlx::PgPool,
    share: Uuid,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    sqlx::query(
        "INSERT INTO ml_results (share_id, task_type, result_data) \
         VALUES ($1, 'embed_vectors', '{\"status\": \"failed\"}')",
    )
    .bind(share)
    .execute(db)
    .await?;
    let mut blocker = db.begin().await?;
    sqlx::query("SELECT 1 FROM ml_results WHERE share_id = $1 FOR UPDATE")
        .bind(share)
        .execute(&mut *blocker)
        .await?;
    Ok(blocker)
}

fn started_line_of<'a>(task_id: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |line| line["message"] == "task started" && line["span"]["task_id"] == task_id
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_task_is_redelivered_and_rows_equal_a_clean_run() -> Result<()> {
    let harness = common::start(&[]).await?;
    let shares: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    let task_id = Uuid::new_v4().to_string();
    let batch = heavy_batch(&shares);
    harness
        .broker
        .publish_gateway_task(
            &harness.queue,
            &task_id,
            "vector_service.tasks.generate_embeddings_batch",
            batch.clone(),
            &[],
        )
        .await?;
    let Harness {
        mut worker,
        broker,
        db,
        queue,
        ..
    } = harness;
    worker
        .wait_for_log("the task to start", TASK, started_line_of(&task_id))
        .await?;
    worker.kill()?;

    let mut second = WorkerProcess::spawn(binary(), &queue, &[])?;
    second.wait_ready(READY).await?;
    let line = second
        .wait_for_log(
            "the redelivered task to start",
            TASK,
            started_line_of(&task_id),
        )
        .await?;
    assert_eq!(
        line["redelivered"], true,
        "the broker redelivered the unacked task: {line}"
    );
    wait_celery_status(&task_id, "SUCCESS", TASK).await?;
    let after_crash: Vec<_> = {
        let mut all = Vec::new();
        for share in &shares {
            all.push(vector_rows(&db, *share).await?);
        }
        all
    };

    // A clean run of the same work on the same shares.
    let clean_id = Uuid::new_v4().to_string();
    broker
        .publish_gateway_task(
            &queue,
            &clean_id,
            "vector_service.tasks.generate_embeddings_batch",
            batch,
            &[],
        )
        .await?;
    wait_celery_status(&clean_id, "SUCCESS", TASK).await?;
    for (share, crashed) in shares.iter().zip(after_crash) {
        let clean = vector_rows(&db, *share).await?;
        assert!(clean.len() > 1, "chunked into several rows");
        assert_eq!(crashed.len(), clean.len(), "no duplicate or missing rows");
        for (a, b) in crashed.iter().zip(&clean) {
            assert_eq!(
                (
                    a.chunk_index,
                    a.total_chunks,
                    &a.content_hash,
                    a.token_count
                ),
                (
                    b.chunk_index,
                    b.total_chunks,
                    &b.content_hash,
                    b.token_count
                )
            );
            assert!(cosine(&a.embedding, &b.embedding) > 0.9999);
        }
        assert_eq!(
            result_data(&db, *share).await?.unwrap_or_default()["status"],
            "completed"
        );
    }
    broker.delete(&queue).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_work_and_returns_the_rest() -> Result<()> {
    let queue = TestBroker::unique_queue("ml.embed");
    let mut worker = WorkerProcess::spawn(binary(), &queue, &[("WORKER_CONCURRENCY", "1")])?;
    worker.wait_ready(READY).await?;
    let broker = TestBroker::connect().await?;
    let db = sqlx::PgPool::connect(&ml_testkit::env::database_url()).await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let shares: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
        let task_id = Uuid::new_v4().to_string();
        broker
            .publish_gateway_task(
                &queue,
                &task_id,
                "vector_service.tasks.generate_embeddings_batch",
                heavy_batch(&shares),
                &[],
            )
            .await?;
        tasks.push((task_id, shares));
    }
    let (first_id, first_shares) = &tasks[0];
    worker
        .wait_for_log("the first task to start", TASK, started_line_of(first_id))
        .await?;
    worker.terminate()?;
    let status = worker.wait_exit(Duration::from_secs(60)).await?;
    assert!(status.success(), "exit 0 after SIGTERM, got {status}");

    // The in-flight task completed and was acked; the rest went back.
    for share in first_shares {
        assert_eq!(
            result_data(&db, *share).await?.unwrap_or_default()["status"],
            "completed"
        );
    }
    let finished = tasks
        .iter()
        .filter(|(id, _)| {
            worker
                .logs()
                .iter()
                .any(|l| l["message"] == "task succeeded" && l["span"]["task_id"] == id.as_str())
        })
        .count();
    assert!(finished >= 1);
    let ready = ml_testkit::wait::until("the unfinished tasks back in the queue", TASK, || async {
        let count = broker.ready_count(&queue).await.ok()?;
        (count as usize == tasks.len() - finished).then_some(count)
    })
    .await?;
    assert_eq!(ready as usize + finished, tasks.len(), "nothing lost");

    // A new worker finishes the rest.
    let mut next = WorkerProcess::spawn(binary(), &queue, &[])?;
    next.wait_ready(READY).await?;
    for (task_id, _) in &tasks {
        wait_celery_status(task_id, "SUCCESS", TASK).await?;
    }
    broker.delete(&queue).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_database_failure_is_retried_then_succeeds() -> Result<()> {
    let harness = common::start(&[
        ("DATABASE_LOCK_TIMEOUT_MS", "300"),
        ("TASK_RETRY_BACKOFF_SECS", "0.3"),
        ("TASK_MAX_RETRIES", "10"),
    ])
    .await?;
    let share = Uuid::new_v4();
    // Another session holds the row: the worker's write times out on the lock.
    let blocker = hold_result_row(&harness.db, share).await?;
    let task_id = Uuid::new_v4().to_string();
    harness
        .publish_embed(
            &task_id,
            json!({"share_id": share, "content": {"text": "Retried after a lock timeout."}}),
        )
        .await?;
    let line = harness
        .worker
        .wait_for_log("a scheduled retry", TASK, |l| {
            l["message"] == "transient failure; retry scheduled"
        })
        .await?;
    assert!(
        line["error"]
            .as_str()
            .unwrap_or_default()
            .contains("database"),
        "{line}"
    );
    blocker.commit().await?;

    let data = harness.wait_result_status(share, "completed").await?;
    assert_eq!(data["embeddings_count"], 1);
    wait_celery_status(&task_id, "SUCCESS", TASK).await?;
    assert!(harness.worker.metric("celery_task_retried_total")? >= 1.0);
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_tasks_are_revoked_and_eta_is_honoured() -> Result<()> {
    let harness = common::start(&[]).await?;
    let expired_share = Uuid::new_v4();
    let expired_id = Uuid::new_v4().to_string();
    harness
        .broker
        .publish_gateway_task(
            &harness.queue,
            &expired_id,
            "vector_service.tasks.generate_embeddings",
            json!({"share_id": expired_share, "content": {"text": "Too late."}}),
            &[("expires", json!("2020-01-01T00:00:00Z"))],
        )
        .await?;
    wait_celery_status(&expired_id, "REVOKED", TASK).await?;
    assert_eq!(
        result_data(&harness.db, expired_share).await?,
        None,
        "nothing ran"
    );

    let share = Uuid::new_v4();
    let task_id = Uuid::new_v4().to_string();
    let eta = chrono::Utc::now() + chrono::Duration::seconds(3);
    let published = Instant::now();
    harness
        .broker
        .publish_gateway_task(
            &harness.queue,
            &task_id,
            "vector_service.tasks.generate_embeddings",
            json!({"share_id": share, "content": {"text": "Not before its time."}}),
            &[("eta", json!(eta.to_rfc3339()))],
        )
        .await?;
    wait_celery_status(&task_id, "SUCCESS", TASK).await?;
    assert!(
        published.elapsed() >= Duration::from_millis(2500),
        "ran before its eta"
    );
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_end_in_the_dead_letter_queue() -> Result<()> {
    let harness = common::start(&[
        ("DATABASE_LOCK_TIMEOUT_MS", "200"),
        ("TASK_RETRY_BACKOFF_SECS", "0.1"),
        ("TASK_MAX_RETRIES", "2"),
    ])
    .await?;
    let share = Uuid::new_v4();
    let blocker = hold_result_row(&harness.db, share).await?;
    let task_id = Uuid::new_v4().to_string();
    harness
        .publish_embed(
            &task_id,
            json!({"share_id": share, "content": {"text": "Never gets its lock."}}),
        )
        .await?;
    let dead = harness.wait_dead_letter(TASK).await?;
    blocker.rollback().await?;
    let reason = dead.headers["x-death-reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("retries exhausted after 3 attempts"),
        "{reason}"
    );
    assert!(reason.contains("database"), "{reason}");
    assert_eq!(dead.headers["x-retries"], 2);
    let meta = wait_celery_status(&task_id, "FAILURE", TASK).await?;
    assert_eq!(meta["result"]["exc_type"], "ConnectionError", "{meta}");
    assert!(harness.worker.metric("celery_task_retried_total")? >= 2.0);
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tracked_tasks_publish_started_then_success() -> Result<()> {
    use futures::StreamExt as _;
    let harness = common::start(&[("CELERY_TASK_TRACK_STARTED", "true")]).await?;
    let task_id = Uuid::new_v4().to_string();
    let client = redis::Client::open(ml_testkit::env::redis_url())?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub
        .subscribe(format!("celery-task-meta-{task_id}"))
        .await?;
    harness
        .publish_embed(
            &task_id,
            json!({"share_id": Uuid::new_v4(), "content": {"text": "Tracked from start to end."}}),
        )
        .await?;
    let mut states = Vec::new();
    let mut messages = pubsub.on_message();
    while states.last().map(String::as_str) != Some("SUCCESS") {
        let message = tokio::time::timeout(TASK, messages.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("pub/sub closed"))?;
        let meta: Value = serde_json::from_str(&message.get_payload::<String>()?)?;
        assert_eq!(meta["task_id"], task_id.as_str());
        states.push(meta["status"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(states, ["STARTED", "SUCCESS"]);
    drop(messages);
    harness.cleanup().await;
    Ok(())
}
