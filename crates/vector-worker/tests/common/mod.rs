//! Shared set-up for the vector-worker's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use ml_testkit::{TestBroker, WorkerProcess, env};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// How long a worker may take to become ready (model load included).
pub const READY: Duration = Duration::from_secs(60);
/// How long a task may take end to end.
pub const TASK: Duration = Duration::from_secs(90);

/// The binary under test.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vector-worker"))
}

/// A worker consuming its own fresh queue, plus a broker connection and a
/// database pool for assertions.
pub struct Harness {
    pub worker: WorkerProcess,
    pub broker: TestBroker,
    pub db: PgPool,
    pub queue: String,
}

impl Harness {
    /// Starts a ready worker on a new queue, with `extra_env`.
    pub async fn start(extra_env: &[(&str, &str)]) -> Result<Self> {
        Self::start_with_database(&env::database_url(), extra_env).await
    }

    /// Like [`Harness::start`], against the database at `database_url`.
    pub async fn start_with_database(
        database_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Self> {
        let queue = TestBroker::unique_queue("ml.embed");
        let mut env_vars = vec![("DATABASE_URL", database_url)];
        env_vars.extend_from_slice(extra_env);
        let mut worker = WorkerProcess::spawn(binary(), &queue, &env_vars)?;
        worker.wait_ready(READY).await?;
        Ok(Self {
            worker,
            broker: TestBroker::connect().await?,
            db: PgPool::connect(database_url).await?,
            queue,
        })
    }

    /// Publishes an embed task in the gateway encoding.
    pub async fn publish_embed(&self, task_id: &str, kwargs: Value) -> Result<()> {
        self.broker
            .publish_gateway_task(
                &self.queue,
                task_id,
                "vector_service.tasks.generate_embeddings",
                kwargs,
                &[],
            )
            .await
    }

    /// Waits for the `ml_results` row of `share_id` and returns its `result_data`.
    pub async fn wait_result(&self, share_id: Uuid, timeout: Duration) -> Result<Value> {
        ml_testkit::wait::until(
            &format!("ml_results row of {share_id}"),
            timeout,
            || async { result_data(&self.db, share_id).await.ok().flatten() },
        )
        .await
    }

    /// Waits until the `ml_results` row of `share_id` has `status`.
    pub async fn wait_result_status(&self, share_id: Uuid, status: &str) -> Result<Value> {
        ml_testkit::wait::until(&format!("status {status} for {share_id}"), TASK, || async {
            result_data(&self.db, share_id)
                .await
                .ok()
                .flatten()
                .filter(|data| data["status"] == status)
        })
        .await
    }

    /// Waits for a message in the dead-letter queue and returns its headers
    /// and body.
    pub async fn wait_dead_letter(
        &self,
        timeout: Duration,
    ) -> Result<ml_testkit::broker::Received> {
        let dead = format!("{}.dead", self.queue);
        ml_testkit::wait::until(&format!("a message in {dead}"), timeout, || async {
            self.broker.get(&dead).await.ok().flatten()
        })
        .await
    }

    /// Deletes the test's queues.
    pub async fn cleanup(self) {
        self.broker.delete(&self.queue).await;
    }
}

/// `result_data` of the `embed_vectors` row of `share_id`, if any.
pub async fn result_data(db: &PgPool, share_id: Uuid) -> Result<Option<Value>> {
    Ok(sqlx::query_scalar(
        "SELECT result_data FROM ml_results WHERE share_id = $1 AND task_type = 'embed_vectors'",
    )
    .bind(share_id)
    .fetch_optional(db)
    .await?)
}

/// One stored vector row, as compared between runs.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorRow {
    pub embedding_type: String,
    pub content_type: String,
    pub chunk_index: i32,
    pub total_chunks: i32,
    pub content_hash: String,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub token_count: Option<i32>,
    pub embedding: Vec<f32>,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    embedding_type: String,
    content_type: String,
    chunk_index: i32,
    total_chunks: i32,
    content_hash: String,
    start_time: Option<f64>,
    end_time: Option<f64>,
    token_count: Option<i32>,
    embedding: pgvector::Vector,
}

/// Every vector row of `share_id`, ordered.
pub async fn vector_rows(db: &PgPool, share_id: Uuid) -> Result<Vec<VectorRow>> {
    let rows: Vec<StoredRow> = sqlx::query_as(
        "SELECT embedding_type, content_type, chunk_index, total_chunks, content_hash, \
                start_time, end_time, token_count, embedding \
         FROM embeddings WHERE share_id = $1 \
         ORDER BY embedding_type, content_type, chunk_key, chunk_index",
    )
    .bind(share_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| VectorRow {
            embedding_type: r.embedding_type,
            content_type: r.content_type,
            chunk_index: r.chunk_index,
            total_chunks: r.total_chunks,
            content_hash: r.content_hash,
            start_time: r.start_time,
            end_time: r.end_time,
            token_count: r.token_count,
            embedding: r.embedding.to_vec(),
        })
        .collect())
}

/// Removes every row of `share_ids` (fixtures use fixed ids).
pub async fn forget_shares(db: &PgPool, share_ids: &[Uuid]) -> Result<()> {
    for statement in [
        "DELETE FROM embeddings WHERE share_id = ANY($1)",
        "DELETE FROM ml_results WHERE share_id = ANY($1)",
    ] {
        sqlx::query(statement).bind(share_ids).execute(db).await?;
    }
    Ok(())
}

/// The Celery meta stored in Redis for `task_id`.
pub async fn celery_meta(task_id: &str) -> Result<Option<Value>> {
    let client = redis::Client::open(env::redis_url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let raw: Option<String> = redis::cmd("GET")
        .arg(format!("celery-task-meta-{task_id}"))
        .query_async(&mut connection)
        .await?;
    Ok(raw.map(|text| serde_json::from_str(&text)).transpose()?)
}

/// Deletes the Celery result of `task_id` (fixtures reuse their task ids).
pub async fn forget_task(task_id: &str) -> Result<()> {
    let client = redis::Client::open(env::redis_url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd("DEL")
        .arg(format!("celery-task-meta-{task_id}"))
        .query_async::<()>(&mut connection)
        .await?;
    Ok(())
}

/// Waits until Redis holds `status` for `task_id`.
pub async fn wait_celery_status(task_id: &str, status: &str, timeout: Duration) -> Result<Value> {
    ml_testkit::wait::until(
        &format!("{status} for task {task_id} in Redis"),
        timeout,
        || async {
            celery_meta(task_id)
                .await
                .ok()
                .flatten()
                .filter(|meta| meta["status"] == status)
        },
    )
    .await
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
