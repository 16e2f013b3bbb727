//! The embed tasks: clean, skip junk, chunk, embed, and store the vectors
//! and the `ml_results` row in one transaction per share.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ml_embedding::{
    Chunk, ChunkConfig, ChunkStrategy, ContentType, clean, content_hash, skip_reason,
    transcript_text,
};
use ml_runtime::app::Services;
use ml_runtime::metrics::Direction;
use ml_runtime::storage::FailureLog;
use ml_runtime::{Handler, Metrics, Task, TaskError};
use ml_storage::{EmbeddingRow, EmbeddingSet, MlResult, Store};
use serde::Serialize;
use serde_json::{Value, json};

use crate::limits::TaskLimits;
use crate::request::{BatchRequest, EmbedRequest};
use crate::service::{EmbedService, Lane};

/// Task name of a single embedding request.
pub const EMBED_TASK: &str = "vector_service.tasks.generate_embeddings";
/// Task name of a batch of embedding requests.
pub const EMBED_BATCH_TASK: &str = "vector_service.tasks.generate_embeddings_batch";
/// `ml_results.task_type` this worker writes (CONTRACT section 5).
pub const TASK_TYPE: &str = "embed_vectors";

/// The embed pipeline both task names run: clean, chunk, embed, store.
pub struct EmbedHandler {
    service: EmbedService,
    store: Store,
    failures: FailureLog,
    metrics: Arc<Metrics>,
    chunking: ChunkConfig,
    limits: TaskLimits,
}

/// Serves [`EMBED_TASK`].
pub struct EmbedOne(pub Arc<EmbedHandler>);

/// Serves [`EMBED_BATCH_TASK`].
pub struct EmbedBatch(pub Arc<EmbedHandler>);

/// A request after clean-up: either chunks to embed or a reason to skip.
enum Prepared {
    Chunks {
        request: EmbedRequest,
        chunks: Vec<Chunk>,
    },
    Skipped {
        request: EmbedRequest,
        reason: &'static str,
    },
}

impl EmbedHandler {
    /// A handler embedding with `service`, refusing tasks over `limits`,
    /// cutting texts as `chunking` says, and storing into the services'
    /// store.
    pub fn new(
        service: EmbedService,
        services: Services,
        chunking: ChunkConfig,
        limits: TaskLimits,
    ) -> Self {
        let model = service.embedder().model_name();
        let failures = FailureLog::new(services.store.clone(), TASK_TYPE, model, Value::Null);
        Self {
            service,
            store: services.store,
            failures,
            metrics: services.metrics,
            chunking,
            limits,
        }
    }

    /// Runs the whole pipeline for `requests`, embedding every chunk of every
    /// request in the same forward passes. Returns one Redis summary each.
    async fn embed_requests(&self, requests: Vec<EmbedRequest>) -> Result<Vec<Value>, TaskError> {
        let started = Instant::now();
        let prepared = self.prepare(requests).await?;
        let texts: Vec<String> = prepared
            .iter()
            .flat_map(|p| match p {
                Prepared::Chunks { chunks, .. } => chunks.iter().map(|c| c.text.clone()).collect(),
                Prepared::Skipped { .. } => Vec::new(),
            })
            .collect();
        let mut vectors = self.service.embed(Lane::Queue, texts).await?.into_iter();
        let mut summaries = Vec::with_capacity(prepared.len());
        for item in prepared {
            let processing_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
            let summary = match item {
                Prepared::Chunks { request, chunks } => {
                    let vectors: Vec<Vec<f32>> = vectors.by_ref().take(chunks.len()).collect();
                    self.store_vectors(&request, &chunks, vectors, processing_ms)
                        .await?
                }
                Prepared::Skipped { request, reason } => {
                    self.store_skip(&request, reason, processing_ms).await?
                }
            };
            summaries.push(summary);
        }
        Ok(summaries)
    }

    /// Cleans, applies the skip rules and chunks, on a blocking thread
    /// (tokenising long texts is CPU work).
    async fn prepare(&self, requests: Vec<EmbedRequest>) -> Result<Vec<Prepared>, TaskError> {
        let embedder = self.service.embedder().clone();
        let chunking = self.chunking;
        ml_runtime::telemetry::spawn_blocking_in_span(move || {
            requests
                .into_iter()
                .map(|mut request| {
                    if let Some(segments) = request.segments.as_mut() {
                        for segment in segments.iter_mut() {
                            segment.text = clean(&segment.text, ContentType::Transcript);
                        }
                    }
                    // Transcript chunks index the joined segments, so that
                    // text is the one stored and measured.
                    let cleaned = match (&request.segments, request.chunk_strategy) {
                        (Some(segments), ChunkStrategy::Transcript) => transcript_text(segments),
                        _ => clean(&request.text, request.content_type),
                    };
                    if let Some(reason) = skip_reason(&cleaned) {
                        return Ok(Prepared::Skipped { request, reason });
                    }
                    let chunks = ml_embedding::chunk(
                        &cleaned,
                        request.chunk_strategy,
                        request.segments.as_deref(),
                        embedder.as_ref(),
                        &chunking,
                    )
                    .map_err(|e| TaskError::Permanent(format!("chunking failed: {e}")))?;
                    if chunks.is_empty() {
                        return Ok(Prepared::Skipped {
                            request,
                            reason: "no text left after clean-up",
                        });
                    }
                    request.text = cleaned;
                    Ok(Prepared::Chunks { request, chunks })
                })
                .collect()
        })
        .await
        .map_err(|e| TaskError::Permanent(format!("text preparation crashed: {e}")))?
    }

    async fn store_vectors(
        &self,
        request: &EmbedRequest,
        chunks: &[Chunk],
        vectors: Vec<Vec<f32>>,
        processing_ms: i32,
    ) -> Result<Value, TaskError> {
        let model = self.service.embedder().model_name().to_owned();
        let dimensions = self.service.embedder().dimension();
        let total = chunks.len();
        let total_tokens: usize = chunks.iter().map(|c| c.token_count).sum();
        let rows: Vec<EmbeddingRow> = chunks
            .iter()
            .zip(vectors)
            .map(|(chunk, embedding)| EmbeddingRow {
                chunk_index: to_i32(chunk.index),
                total_chunks: to_i32(total),
                embedding,
                content_hash: content_hash(&chunk.text),
                chunk_text: chunk.text.clone(),
                start_offset: Some(to_i32(chunk.start_offset)),
                end_offset: Some(to_i32(chunk.end_offset)),
                start_time: chunk.start_time,
                end_time: chunk.end_time,
                token_count: to_i32(chunk.token_count),
                metadata: Value::Object(request.metadata.clone()),
            })
            .collect();
        let row = EmbedRow {
            embeddings_count: rows.len(),
            total_tokens,
            chunks: rows.iter().map(ChunkRow::from).collect(),
            ..EmbedRow::empty(request, &model, dimensions)
        };
        let set = EmbeddingSet {
            share_id: request.share_id,
            embedding_type: request.embedding_type.as_str().to_owned(),
            content_type: request.content_type.as_str().to_owned(),
            chunk_key: request.chunk_key.clone(),
        };
        let result = MlResult::completed(request.share_id, TASK_TYPE, &model, processing_ms, &row)?;
        self.store
            .replace_embeddings(&set, &model, &rows, &result)
            .await?;
        self.metrics.embeddings_generated.inc_by(rows.len() as u64);
        self.metrics.tokens(Direction::Input, total_tokens as u64);
        tracing::info!(share_id = %request.share_id, embeddings = rows.len(), total_tokens, "vectors stored");
        Ok(json!({
            "share_id": request.share_id,
            "status": "completed",
            "embeddings_count": rows.len(),
            "model": model,
            "dimensions": dimensions,
            "total_tokens": total_tokens,
        }))
    }

    /// Records junk input as `skipped` (never over an earlier success).
    async fn store_skip(
        &self,
        request: &EmbedRequest,
        reason: &str,
        processing_ms: i32,
    ) -> Result<Value, TaskError> {
        let embedder = self.service.embedder();
        let model = embedder.model_name();
        let row = EmbedRow::empty(request, model, embedder.dimension());
        let share_id = request.share_id;
        let result = MlResult::skipped(share_id, TASK_TYPE, model, reason, processing_ms, &row)?;
        self.store.record_skip(&result).await?;
        tracing::info!(share_id = %request.share_id, reason, "input skipped");
        Ok(
            json!({"share_id": request.share_id, "status": "skipped", "reason": reason, "embeddings_count": 0}),
        )
    }

    /// Embeds the batch's valid items; the refused ones are reported in
    /// the result, and the task fails only when no item is valid.
    async fn embed_batch(&self, batch: &BatchRequest) -> Result<Value, TaskError> {
        self.limits.check_batch(batch)?;
        let mut valid = Vec::new();
        let mut rejected = Vec::new();
        for (index, item) in batch.tasks.iter().enumerate() {
            let checked = item
                .request
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|request| self.limits.check(request).map(|()| request));
            match checked {
                Ok(request) => valid.push(request.clone()),
                Err(error) => {
                    tracing::warn!(index, %error, "batch item rejected");
                    rejected.push(
                        json!({"index": index, "status": "failed", "error": error.to_string()}),
                    );
                }
            }
        }
        if valid.is_empty() {
            return Err(TaskError::InvalidArguments(format!(
                "no valid item in the batch of {}: {}",
                batch.tasks.len(),
                Value::Array(rejected)
            )));
        }
        let succeeded = self.embed_requests(valid).await?;
        Ok(json!({
            "status": if rejected.is_empty() { "completed" } else { "partial" },
            "succeeded": succeeded.len(),
            "failed": rejected.len(),
            "results": succeeded,
            "errors": rejected,
        }))
    }
}

#[async_trait]
impl Handler for EmbedOne {
    type Request = EmbedRequest;

    async fn handle(&self, _task: &Task, request: &EmbedRequest) -> Result<Value, TaskError> {
        self.0.limits.check(request)?;
        let mut summaries = self.0.embed_requests(vec![request.clone()]).await?;
        Ok(summaries.pop().unwrap_or(Value::Null))
    }

    async fn on_failure(&self, task: &Task, request: Option<&EmbedRequest>, error: &TaskError) {
        self.0.failures.record(task, request, error).await;
    }
}

#[async_trait]
impl Handler for EmbedBatch {
    type Request = BatchRequest;

    async fn handle(&self, _task: &Task, batch: &BatchRequest) -> Result<Value, TaskError> {
        self.0.embed_batch(batch).await
    }

    async fn on_failure(&self, task: &Task, batch: Option<&BatchRequest>, error: &TaskError) {
        self.0.failures.record(task, batch, error).await;
    }
}

/// `result_data` of an `embed_vectors` row (CONTRACT section 5).
#[derive(Serialize)]
struct EmbedRow<'a> {
    embeddings_count: usize,
    model: &'a str,
    dimensions: usize,
    total_tokens: usize,
    chunks: Vec<ChunkRow<'a>>,
    embedding_type: &'static str,
    content_type: &'static str,
    chunk_strategy: &'static str,
    requested_model: Option<&'a str>,
}

impl<'a> EmbedRow<'a> {
    /// The row of `request` with no vectors (yet).
    fn empty(request: &'a EmbedRequest, model: &'a str, dimensions: usize) -> Self {
        Self {
            embeddings_count: 0,
            model,
            dimensions,
            total_tokens: 0,
            chunks: Vec::new(),
            embedding_type: request.embedding_type.as_str(),
            content_type: request.content_type.as_str(),
            chunk_strategy: request.chunk_strategy.as_str(),
            requested_model: request.requested_model.as_deref(),
        }
    }
}

/// Where one stored vector's chunk lies, as `result_data.chunks` lists it.
#[derive(Serialize)]
struct ChunkRow<'a> {
    chunk_index: i32,
    total_chunks: i32,
    token_count: i32,
    start_offset: Option<i32>,
    end_offset: Option<i32>,
    start_time: Option<f64>,
    end_time: Option<f64>,
    content_hash: &'a str,
}

impl<'a> From<&'a EmbeddingRow> for ChunkRow<'a> {
    fn from(row: &'a EmbeddingRow) -> Self {
        Self {
            chunk_index: row.chunk_index,
            total_chunks: row.total_chunks,
            token_count: row.token_count,
            start_offset: row.start_offset,
            end_offset: row.end_offset,
            start_time: row.start_time,
            end_time: row.end_time,
            content_hash: &row.content_hash,
        }
    }
}

fn to_i32(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
