//! `embeddings`: the vectors of one set of chunks, replaced atomically.

use std::collections::HashSet;

use pgvector::Vector;
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Result, StorageError};
use crate::migrate::read_dimension;
use crate::results::{MlResult, upsert_result};
use crate::store::Store;

/// Namespace (first key) of the two-key `pg_advisory_xact_lock` taken per
/// set; the two-key space never collides with the one-key locks of the
/// migrations ("mlem" in ASCII).
const SET_LOCK_NAMESPACE: i32 = 0x6d6c_656d;

/// Identifies the rows one embed task owns. A new task for the same set
/// replaces them; other sets of the same share (a caption next to a
/// transcript, or another chapter) are left alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmbeddingSet {
    /// The share.
    pub share_id: Uuid,
    /// `content`, `summary` or `composite` (at most 32 characters).
    pub embedding_type: String,
    /// `caption`, `transcript`, `article`, ... (at most 32 characters).
    pub content_type: String,
    /// Chapter or other discriminator within the content type; empty when
    /// the content is embedded whole (at most 200 characters).
    pub chunk_key: String,
}

/// One chunk's vector and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingRow {
    /// Position of the chunk in the set, unique within it.
    pub chunk_index: i32,
    /// Number of chunks in the set.
    pub total_chunks: i32,
    /// The vector; its length must be the table's dimension.
    pub embedding: Vec<f32>,
    /// Hex SHA-256 of the chunk text (64 characters).
    pub content_hash: String,
    /// The chunk text.
    pub chunk_text: String,
    /// Character offset of the chunk in the content.
    pub start_offset: Option<i32>,
    /// End character offset.
    pub end_offset: Option<i32>,
    /// Start time in seconds, for transcript chunks.
    pub start_time: Option<f64>,
    /// End time in seconds.
    pub end_time: Option<f64>,
    /// Tokens the model saw for this chunk.
    pub token_count: i32,
    /// Free-form metadata (chapter title, segment ids, ...).
    pub metadata: Value,
}

impl Store {
    /// Replaces the rows of `set` with `rows` and upserts `result` into
    /// `ml_results`, all in one transaction.
    ///
    /// Idempotent: running it again with the same input leaves the same rows,
    /// so a redelivered task is harmless. Concurrent calls for the same set
    /// are serialised by a transaction-level advisory lock, so the last one
    /// to commit wins and no chunk is duplicated.
    ///
    /// # Errors
    ///
    /// Permanent: [`StorageError::VectorLength`] when a vector does not have
    /// the table's dimension, [`StorageError::InvalidInput`] for non-finite
    /// values or duplicate chunk indexes, [`StorageError::SchemaMismatch`]
    /// when the table does not exist. [`StorageError::Database`] otherwise,
    /// transient when the database is unavailable or a lock wait exceeded
    /// `lock_timeout`; nothing is written in any error case.
    pub async fn replace_embeddings(
        &self,
        set: &EmbeddingSet,
        model: &str,
        rows: &[EmbeddingRow],
        result: &MlResult,
    ) -> Result<()> {
        let dimension = self.table_dimension().await?;
        validate_rows(rows, dimension)?;
        let columns = Columns::from_rows(rows);
        let dimensions = i32::try_from(dimension).map_err(|_| StorageError::InvalidInput {
            reason: format!("dimension {dimension} does not fit the dimensions column"),
        })?;

        let op = StorageError::database;
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(op("starting the embeddings transaction"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(SET_LOCK_NAMESPACE)
            .bind(format!(
                "{}/{}/{}/{}",
                set.share_id, set.embedding_type, set.content_type, set.chunk_key
            ))
            .execute(&mut *tx)
            .await
            .map_err(op("waiting for the embedding set lock"))?;

        sqlx::query(
            "DELETE FROM embeddings
             WHERE share_id = $1 AND embedding_type = $2 AND content_type = $3 AND chunk_key = $4",
        )
        .bind(set.share_id)
        .bind(&set.embedding_type)
        .bind(&set.content_type)
        .bind(&set.chunk_key)
        .execute(&mut *tx)
        .await
        .map_err(op("deleting the previous embeddings of the set"))?;

        if !rows.is_empty() {
            // One statement for the whole batch: each column travels as an
            // array and UNNEST zips them back into rows.
            sqlx::query(
                "INSERT INTO embeddings (
                     share_id, embedding_type, content_type, chunk_key, model, dimensions,
                     chunk_index, total_chunks, embedding, content_hash, chunk_text,
                     start_offset, end_offset, start_time, end_time, token_count, metadata)
                 SELECT $1, $2, $3, $4, $5, $6,
                        t.chunk_index, t.total_chunks, t.embedding, t.content_hash, t.chunk_text,
                        t.start_offset, t.end_offset, t.start_time, t.end_time, t.token_count,
                        t.metadata
                 FROM UNNEST($7::int4[], $8::int4[], $9::vector[], $10::text[], $11::text[],
                             $12::int4[], $13::int4[], $14::float8[], $15::float8[],
                             $16::int4[], $17::jsonb[])
                      AS t(chunk_index, total_chunks, embedding, content_hash, chunk_text,
                           start_offset, end_offset, start_time, end_time, token_count,
                           metadata)",
            )
            .bind(set.share_id)
            .bind(&set.embedding_type)
            .bind(&set.content_type)
            .bind(&set.chunk_key)
            .bind(model)
            .bind(dimensions)
            .bind(columns.chunk_index)
            .bind(columns.total_chunks)
            .bind(columns.embedding)
            .bind(columns.content_hash)
            .bind(columns.chunk_text)
            .bind(columns.start_offset)
            .bind(columns.end_offset)
            .bind(columns.start_time)
            .bind(columns.end_time)
            .bind(columns.token_count)
            .bind(columns.metadata)
            .execute(&mut *tx)
            .await
            .map_err(op("inserting embeddings"))?;
        }

        upsert_result(&mut *tx, result).await?;
        tx.commit()
            .await
            .map_err(op("committing the embeddings transaction"))?;
        Ok(())
    }

    /// Nearest shares to `query` by cosine similarity, best first, with the
    /// gateway's exact query shape (so it exercises the same HNSW plan). A
    /// share appears once per matching chunk.
    ///
    /// # Errors
    ///
    /// [`StorageError::VectorLength`] when `query` does not have the table's
    /// dimension; [`StorageError::Database`] otherwise.
    pub async fn search(&self, query: &[f32], limit: usize) -> Result<Vec<(Uuid, f64)>> {
        let dimension = self.table_dimension().await?;
        if query.len() != dimension {
            return Err(StorageError::VectorLength {
                index: 0,
                actual: query.len(),
                expected: dimension,
            });
        }
        sqlx::query_as(
            "SELECT share_id, 1 - (embedding <=> $1::vector) AS similarity
             FROM embeddings
             ORDER BY embedding <=> $1::vector
             LIMIT $2",
        )
        .bind(Vector::from(query.to_vec()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(StorageError::database("searching embeddings"))
    }

    /// Number of embedding rows stored for a share, across all its sets.
    ///
    /// # Errors
    ///
    /// [`StorageError::Database`].
    pub async fn count_embeddings(&self, share_id: Uuid) -> Result<i64> {
        sqlx::query_scalar("SELECT count(*) FROM embeddings WHERE share_id = $1")
            .bind(share_id)
            .fetch_one(self.pool())
            .await
            .map_err(StorageError::database("counting embeddings"))
    }

    /// The dimension of `embeddings.embedding`, from the cache or the catalog.
    async fn table_dimension(&self) -> Result<usize> {
        if let Some(dimension) = self.known_dimension() {
            return Ok(dimension);
        }
        let mut conn = self
            .pool()
            .acquire()
            .await
            .map_err(StorageError::database("acquiring a connection"))?;
        let dimension =
            read_dimension(&mut conn)
                .await?
                .ok_or_else(|| StorageError::SchemaMismatch {
                    reason: "the embeddings table does not exist; call Store::prepare with \
                             the model's dimension at start-up"
                        .into(),
                })?;
        self.remember_dimension(dimension);
        Ok(dimension)
    }
}

/// Rejects a batch the database would reject, with a clearer message.
fn validate_rows(rows: &[EmbeddingRow], dimension: usize) -> Result<()> {
    let mut seen = HashSet::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        if row.embedding.len() != dimension {
            return Err(StorageError::VectorLength {
                index,
                actual: row.embedding.len(),
                expected: dimension,
            });
        }
        if !row.embedding.iter().all(|value| value.is_finite()) {
            return Err(StorageError::InvalidInput {
                reason: format!("embedding {index} contains NaN or infinite values"),
            });
        }
        if !seen.insert(row.chunk_index) {
            return Err(StorageError::InvalidInput {
                reason: format!("chunk_index {} appears twice in the batch", row.chunk_index),
            });
        }
    }
    Ok(())
}

/// The batch turned inside out: one array per column, for UNNEST.
struct Columns {
    chunk_index: Vec<i32>,
    total_chunks: Vec<i32>,
    embedding: Vec<Vector>,
    content_hash: Vec<String>,
    chunk_text: Vec<String>,
    start_offset: Vec<Option<i32>>,
    end_offset: Vec<Option<i32>>,
    start_time: Vec<Option<f64>>,
    end_time: Vec<Option<f64>>,
    token_count: Vec<i32>,
    metadata: Vec<Value>,
}

impl Columns {
    fn from_rows(rows: &[EmbeddingRow]) -> Self {
        Self {
            chunk_index: rows.iter().map(|row| row.chunk_index).collect(),
            total_chunks: rows.iter().map(|row| row.total_chunks).collect(),
            embedding: rows
                .iter()
                .map(|row| Vector::from(row.embedding.clone()))
                .collect(),
            content_hash: rows.iter().map(|row| row.content_hash.clone()).collect(),
            chunk_text: rows.iter().map(|row| row.chunk_text.clone()).collect(),
            start_offset: rows.iter().map(|row| row.start_offset).collect(),
            end_offset: rows.iter().map(|row| row.end_offset).collect(),
            start_time: rows.iter().map(|row| row.start_time).collect(),
            end_time: rows.iter().map(|row| row.end_time).collect(),
            token_count: rows.iter().map(|row| row.token_count).collect(),
            metadata: rows.iter().map(|row| row.metadata.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(chunk_index: i32, embedding: Vec<f32>) -> EmbeddingRow {
        EmbeddingRow {
            chunk_index,
            total_chunks: 2,
            embedding,
            content_hash: "0".repeat(64),
            chunk_text: String::new(),
            start_offset: None,
            end_offset: None,
            start_time: None,
            end_time: None,
            token_count: 0,
            metadata: Value::Null,
        }
    }

    #[test]
    fn wrong_lengths_are_rejected_with_their_position() {
        let rows = [row(0, vec![0.0; 3]), row(1, vec![0.0; 4])];
        match validate_rows(&rows, 3) {
            Err(StorageError::VectorLength {
                index: 1,
                actual: 4,
                expected: 3,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn nan_and_duplicate_chunks_are_rejected() {
        assert!(validate_rows(&[row(0, vec![f32::NAN])], 1).is_err());
        assert!(validate_rows(&[row(0, vec![1.0]), row(0, vec![1.0])], 1).is_err());
        assert!(validate_rows(&[row(0, vec![1.0]), row(1, vec![1.0])], 1).is_ok());
    }
}
