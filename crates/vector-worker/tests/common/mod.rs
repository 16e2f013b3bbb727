//! Shared set-up for the vector-worker's integration tests.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::path::Path;

use anyhow::Result;
use ml_testkit::WorkerKind;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub use ml_testkit::Harness;
pub use ml_testkit::celery::{forget as forget_task, wait_status as wait_celery_status};
pub use ml_testkit::harness::{READY, TASK};
pub use ml_testkit::results::forget_shares;

/// The worker under test.
pub const VECTOR_WORKER: WorkerKind = WorkerKind {
    binary: env!("CARGO_BIN_EXE_vector-worker"),
    queue_prefix: "ml.embed",
    queue_env: "EMBED_QUEUE",
    task_type: "embed_vectors",
};

/// The binary under test.
pub fn binary() -> &'static Path {
    Path::new(VECTOR_WORKER.binary)
}

/// Starts a ready vector-worker on a new queue, with `extra_env`.
pub async fn start(extra_env: &[(&str, &str)]) -> Result<Harness> {
    Harness::start(VECTOR_WORKER, extra_env).await
}

/// Publishing the embed task.
pub trait EmbedTasks {
    /// Publishes an embed task in the gateway encoding.
    async fn publish_embed(&self, task_id: &str, kwargs: Value) -> Result<()>;
}

impl EmbedTasks for Harness {
    async fn publish_embed(&self, task_id: &str, kwargs: Value) -> Result<()> {
        self.publish("vector_service.tasks.generate_embeddings", task_id, kwargs)
            .await
    }
}

/// `result_data` of the `embed_vectors` row of `share_id`, if any.
pub async fn result_data(db: &PgPool, share_id: Uuid) -> Result<Option<Value>> {
    ml_testkit::results::result_data(db, share_id, VECTOR_WORKER.task_type).await
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

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
