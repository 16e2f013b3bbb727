//! Schema set-up: idempotent, safe under concurrent start-up, and strict
//! about the vector dimension.

mod common;

use std::time::Duration;

use common::{DIMENSION, TempSchema, TestResult};
use ml_storage::{StorageError, Store, StoreConfig};

async fn embedding_dimension(store: &Store) -> TestResult<i32> {
    Ok(sqlx::query_scalar(
        "SELECT atttypmod FROM pg_attribute
         WHERE attrelid = to_regclass('embeddings') AND attname = 'embedding'",
    )
    .fetch_one(store.pool())
    .await?)
}

async fn prepare_concurrently(config: &StoreConfig, replicas: usize) -> TestResult {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..replicas {
        let config = config.clone();
        tasks.spawn(async move {
            let store = Store::connect(&config).await?;
            store.prepare(Some(DIMENSION)).await?;
            store.close().await;
            Ok::<_, StorageError>(())
        });
    }
    while let Some(outcome) = tasks.join_next().await {
        outcome??;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_schema_prepares_repeatedly_and_concurrently() -> TestResult {
    prepare_concurrently(&common::config(), 8).await?;
    let store = common::store().await?;
    store.prepare(Some(DIMENSION)).await?;
    store.migrate().await?;
    // The real model is 384-dimensional: the shared table must say so.
    assert_eq!(embedding_dimension(&store).await?, 384);
    store.ping().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_schema_is_created_once_by_racing_replicas() -> TestResult {
    let schema = TempSchema::create().await?;
    let config = schema.config();
    prepare_concurrently(&config, 8).await?;

    let store = Store::connect(&config).await?;
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _ml_workers_migrations WHERE success")
            .fetch_one(store.pool())
            .await?;
    assert_eq!(applied, 2, "each migration recorded exactly once");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY 1",
    )
    .bind(&schema.name)
    .fetch_all(store.pool())
    .await?;
    assert_eq!(
        tables,
        ["_ml_workers_migrations", "embeddings", "ml_results"]
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes
         WHERE schemaname = $1 AND tablename = 'embeddings' ORDER BY 1",
    )
    .bind(&schema.name)
    .fetch_all(store.pool())
    .await?;
    assert_eq!(
        indexes,
        [
            "embeddings_embedding_hnsw",
            "embeddings_pkey",
            "embeddings_set_chunk_key"
        ]
    );
    assert_eq!(embedding_dimension(&store).await?, 384);
    store.close().await;
    schema.drop().await
}

#[tokio::test]
async fn another_dimension_is_refused_with_advice() -> TestResult {
    let schema = TempSchema::create().await?;
    let store = Store::connect(&schema.config()).await?;
    store.prepare(Some(DIMENSION)).await?;

    let other = Store::connect(&schema.config()).await?;
    match other.prepare(Some(768)).await {
        Err(
            error @ StorageError::DimensionMismatch {
                table_dimension: 384,
                model_dimension: 768,
            },
        ) => {
            assert!(!error.is_transient());
            let message = error.to_string();
            assert!(message.contains("DROP TABLE embeddings"), "{message}");
        }
        other => return Err(format!("expected a dimension mismatch, got {other:?}").into()),
    }
    // The failed attempt changed nothing.
    assert_eq!(embedding_dimension(&store).await?, 384);

    let zero = other.ensure_embeddings_table(0).await;
    assert!(
        matches!(zero, Err(StorageError::InvalidInput { .. })),
        "{zero:?}"
    );

    store.close().await;
    other.close().await;
    schema.drop().await
}

#[tokio::test]
async fn a_foreign_embeddings_table_missing_columns_is_reported() -> TestResult {
    let schema = TempSchema::create().await?;
    let store = Store::connect(&schema.config()).await?;
    store.migrate().await?;
    sqlx::query(
        "CREATE TABLE embeddings (id uuid PRIMARY KEY, share_id uuid NOT NULL,
                                  embedding vector(384) NOT NULL)",
    )
    .execute(store.pool())
    .await?;
    match store.ensure_embeddings_table(DIMENSION).await {
        Err(StorageError::SchemaMismatch { reason }) => {
            assert!(reason.contains("chunk_key"), "{reason}");
        }
        other => return Err(format!("expected a schema mismatch, got {other:?}").into()),
    }
    store.close().await;
    schema.drop().await
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_and_transiently() -> TestResult {
    let mut config = StoreConfig::new("postgres://postgres:secret@127.0.0.1:1/nowhere");
    config.acquire_timeout = Duration::from_secs(2);
    match Store::connect(&config).await {
        Err(error) => {
            assert!(error.is_transient(), "{error}");
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        Ok(_) => return Err("connected to a closed port".into()),
    }
    let bad = Store::connect(&StoreConfig::new("not a url")).await;
    assert!(
        matches!(&bad, Err(StorageError::InvalidConfig { .. })),
        "{bad:?}"
    );
    Ok(())
}
