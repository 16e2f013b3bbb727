//! Shared helpers for the integration tests. They run against a real
//! PostgreSQL with pgvector (`DATABASE_URL`, default the local test database);
//! every test uses fresh random share ids so tests run in parallel and again.

#![allow(dead_code)]

use std::time::Duration;

use ml_storage::{EmbeddingRow, MlResult, Store, StoreConfig};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

/// Errors in tests are reported, not unwrapped.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The real model's dimension; the shared tables must stay vector(384).
pub const DIMENSION: usize = 384;

/// The test database.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/ml_workers_test".into())
}

/// A configuration for the test database with short waits.
pub fn config() -> StoreConfig {
    let mut config = StoreConfig::new(database_url());
    config.max_connections = 4;
    config.acquire_timeout = Duration::from_secs(10);
    config
}

/// A store on the shared schema, prepared for the real dimension.
pub async fn store() -> TestResult<Store> {
    let store = Store::connect(&config()).await?;
    store.prepare(Some(DIMENSION)).await?;
    Ok(store)
}

/// A plain connection outside any store's pool.
pub async fn raw_connection() -> TestResult<PgConnection> {
    Ok(PgConnection::connect(&database_url()).await?)
}

/// A schema of its own, for tests that must not touch the shared tables.
pub struct TempSchema {
    /// Its name.
    pub name: String,
}

impl TempSchema {
    /// Creates `ml_storage_test_<random>`.
    pub async fn create() -> TestResult<Self> {
        let name = format!("ml_storage_test_{}", Uuid::new_v4().simple());
        let mut conn = raw_connection().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await?;
        Ok(Self { name })
    }

    /// A configuration whose connections resolve tables in this schema
    /// first (pgvector's type stays reachable in `public`).
    pub fn config(&self) -> StoreConfig {
        let url = database_url();
        let separator = if url.contains('?') { '&' } else { '?' };
        let mut config = config();
        config.url = format!("{url}{separator}options[search_path]={},public", self.name);
        config
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) -> TestResult {
        let mut conn = raw_connection().await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        Ok(())
    }
}

/// A deterministic pseudo-random unit vector (splitmix64 from `seed`).
pub fn unit_vector(seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut values: Vec<f32> = (0..DIMENSION)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // Uniform in [-1, 1).
            (z >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        })
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    values.iter_mut().for_each(|v| *v /= norm);
    values
}

/// A seed no other test run will use.
pub fn fresh_seed() -> u64 {
    Uuid::new_v4().as_u64_pair().0
}

/// A chunk row with the given vector.
pub fn row(chunk_index: i32, total_chunks: i32, embedding: Vec<f32>) -> EmbeddingRow {
    EmbeddingRow {
        chunk_index,
        total_chunks,
        embedding,
        content_hash: format!("{chunk_index:064x}"),
        chunk_text: format!("chunk {chunk_index}"),
        start_offset: Some(chunk_index * 100),
        end_offset: Some(chunk_index * 100 + 99),
        start_time: Some(f64::from(chunk_index) * 1.5),
        end_time: None,
        token_count: 20,
        metadata: serde_json::json!({ "chunk": chunk_index }),
    }
}

/// An `embed_vectors` success result for `share_id`.
pub fn embed_result(share_id: Uuid, count: usize) -> MlResult {
    MlResult {
        share_id,
        task_type: "embed_vectors".into(),
        result_data: serde_json::json!({
            "embeddings_count": count,
            "model": "all-MiniLM-L6-v2",
            "dimensions": DIMENSION,
        }),
        model_version: Some("all-MiniLM-L6-v2".into()),
        processing_ms: Some(12),
    }
}
