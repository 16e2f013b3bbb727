//! `embeddings`: atomic per-set replacement, search, and lock timeouts.

mod common;

use std::time::Duration;

use common::{DIMENSION, TestResult, embed_result, fresh_seed, row, unit_vector};
use ml_storage::{EmbeddingRow, EmbeddingSet, StorageError, Store};
use sqlx::Connection;
use uuid::Uuid;

fn set(share_id: Uuid, content_type: &str) -> EmbeddingSet {
    EmbeddingSet {
        share_id,
        embedding_type: "content".into(),
        content_type: content_type.into(),
        chunk_key: String::new(),
    }
}

fn rows(count: i32, seed: u64) -> Vec<EmbeddingRow> {
    (0..count)
        .map(|i| row(i, count, unit_vector(seed + i as u64)))
        .collect()
}

type Snapshot = Vec<(
    String,
    i32,
    i32,
    String,
    String,
    Option<f64>,
    serde_json::Value,
)>;

/// The rows of a share, minus ids and timestamps.
async fn snapshot(store: &Store, share_id: Uuid) -> TestResult<Snapshot> {
    Ok(sqlx::query_as(
        "SELECT content_type::text, chunk_index, dimensions, content_hash::text, model::text,
                start_time, metadata
         FROM embeddings WHERE share_id = $1 ORDER BY content_type, chunk_index",
    )
    .bind(share_id)
    .fetch_all(store.pool())
    .await?)
}

#[tokio::test]
async fn replacing_a_set_is_idempotent_and_leaves_other_sets_alone() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    let seed = fresh_seed();
    let caption = set(share, "caption");
    let transcript = set(share, "transcript");

    store
        .replace_embeddings(&caption, "minilm", &rows(2, seed), &embed_result(share, 2))
        .await?;
    store
        .replace_embeddings(
            &transcript,
            "minilm",
            &rows(3, seed + 100),
            &embed_result(share, 3),
        )
        .await?;
    assert_eq!(store.count_embeddings(share).await?, 5);
    let before = snapshot(&store, share).await?;

    // A redelivered task: same input, same rows.
    store
        .replace_embeddings(
            &transcript,
            "minilm",
            &rows(3, seed + 100),
            &embed_result(share, 3),
        )
        .await?;
    assert_eq!(snapshot(&store, share).await?, before);

    // Re-embedding the transcript with fewer chunks replaces only its rows.
    store
        .replace_embeddings(
            &transcript,
            "minilm",
            &rows(1, seed + 200),
            &embed_result(share, 1),
        )
        .await?;
    let after = snapshot(&store, share).await?;
    assert_eq!(after.len(), 3);
    assert_eq!(after[..2], before[..2], "caption rows untouched");
    assert_eq!(after[2].0, "transcript");
    assert_eq!(after[2].2, DIMENSION as i32);

    // The result row was written in the same transaction.
    let result = store
        .get_result(share, "embed_vectors")
        .await?
        .ok_or("ml_results row missing")?;
    assert_eq!(result.result_data["embeddings_count"], 1);

    // Another chapter of the same content type is another set.
    let chapter = EmbeddingSet {
        chunk_key: "chapter-2".into(),
        ..transcript.clone()
    };
    store
        .replace_embeddings(
            &chapter,
            "minilm",
            &rows(2, seed + 300),
            &embed_result(share, 2),
        )
        .await?;
    assert_eq!(store.count_embeddings(share).await?, 5);
    Ok(())
}

#[tokio::test]
async fn wrong_lengths_are_refused_before_anything_is_written() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    let mut bad = rows(2, fresh_seed());
    bad[1].embedding.truncate(10);
    let error = store
        .replace_embeddings(
            &set(share, "caption"),
            "minilm",
            &bad,
            &embed_result(share, 2),
        )
        .await
        .err()
        .ok_or("a short vector was accepted")?;
    assert!(
        matches!(
            error,
            StorageError::VectorLength {
                index: 1,
                actual: 10,
                expected: DIMENSION
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(store.count_embeddings(share).await?, 0);
    assert!(store.get_result(share, "embed_vectors").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn search_ranks_the_nearest_first() -> TestResult {
    let store = common::store().await?;
    let seed = fresh_seed();
    let query = unit_vector(seed);
    let (exact, near, far) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

    let near_vector: Vec<f32> = query
        .iter()
        .zip(unit_vector(seed + 1))
        .map(|(q, noise)| q + 0.2 * noise)
        .collect();
    let far_vector: Vec<f32> = query.iter().map(|q| -q).collect();
    for (share, vector) in [
        (exact, query.clone()),
        (near, near_vector),
        (far, far_vector),
    ] {
        store
            .replace_embeddings(
                &set(share, "caption"),
                "minilm",
                &[row(0, 1, vector)],
                &embed_result(share, 1),
            )
            .await?;
    }

    let hits = store.search(&query, 10).await?;
    assert_eq!(hits.first().map(|hit| hit.0), Some(exact), "{hits:?}");
    assert!((hits[0].1 - 1.0).abs() < 1e-4, "{hits:?}");
    assert_eq!(hits.get(1).map(|hit| hit.0), Some(near), "{hits:?}");
    assert!(hits.iter().all(|hit| hit.0 != far), "{hits:?}");
    assert!(
        hits.windows(2).all(|pair| pair[0].1 >= pair[1].1),
        "{hits:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_gateway_query_uses_the_hnsw_index() -> TestResult {
    common::store().await?;
    let mut conn = common::raw_connection().await?;
    // The table is tiny in tests; without this the planner rightly prefers
    // a sequential scan.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await?;
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT share_id, 1 - (embedding <=> $1::vector) AS similarity
         FROM embeddings ORDER BY embedding <=> $1::vector LIMIT $2",
    )
    .bind(pgvector::Vector::from(unit_vector(fresh_seed())))
    .bind(5_i64)
    .fetch_all(&mut conn)
    .await?;
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Scan using embeddings_embedding_hnsw"),
        "{plan}"
    );
    conn.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_held_lock_is_a_transient_error_and_retrying_succeeds() -> TestResult {
    let mut config = common::config();
    config.lock_timeout = Duration::from_millis(200);
    let store = Store::connect(&config).await?;
    store.prepare(Some(DIMENSION)).await?;
    let share = Uuid::new_v4();
    let caption = set(share, "caption");
    let seed = fresh_seed();
    store
        .replace_embeddings(&caption, "minilm", &rows(2, seed), &embed_result(share, 2))
        .await?;

    // Another session holds the result row.
    let mut holder = common::raw_connection().await?;
    let mut tx = holder.begin().await?;
    sqlx::query("SELECT id FROM ml_results WHERE share_id = $1 FOR UPDATE")
        .bind(share)
        .fetch_one(&mut *tx)
        .await?;

    let error = store
        .replace_embeddings(
            &caption,
            "minilm",
            &rows(3, seed + 10),
            &embed_result(share, 3),
        )
        .await
        .err()
        .ok_or("the write did not wait for the lock")?;
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.sqlstate().as_deref(), Some("55P03"), "{error}");
    // Nothing of the failed attempt is visible.
    assert_eq!(store.count_embeddings(share).await?, 2);

    tx.rollback().await?;
    store
        .replace_embeddings(
            &caption,
            "minilm",
            &rows(3, seed + 10),
            &embed_result(share, 3),
        )
        .await?;
    assert_eq!(store.count_embeddings(share).await?, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redeliveries_of_one_set_do_not_collide() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    let seed = fresh_seed();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .replace_embeddings(
                    &set(share, "caption"),
                    "minilm",
                    &rows(4, seed),
                    &embed_result(share, 4),
                )
                .await
        });
    }
    while let Some(outcome) = tasks.join_next().await {
        outcome??;
    }
    assert_eq!(store.count_embeddings(share).await?, 4);
    Ok(())
}
