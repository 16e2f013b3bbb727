//! Cross-task micro-batching: a burst of tasks all end in rows, forward
//! passes really hold texts of several tasks, and a vector embedded in a
//! shared pass equals the same text embedded alone.

mod common;

use common::EmbedTasks as _;

use std::time::Duration;

use anyhow::Result;
use common::{cosine, vector_rows};
use ml_embedding::{Embedder, EmbedderConfig};
use serde_json::json;
use uuid::Uuid;

const TASKS: usize = 2000;

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_tasks_is_batched_across_tasks_and_nothing_is_lost() -> Result<()> {
    let harness = common::start(&[]).await?;
    let shares: Vec<Uuid> = (0..TASKS).map(|_| Uuid::new_v4()).collect();
    for (i, share) in shares.iter().enumerate() {
        let text = format!(
            "Caption {i}: a short video about cooking, travel and music number {}",
            i % 97
        );
        harness
            .publish_embed(
                &Uuid::new_v4().to_string(),
                json!({"share_id": share, "content": {"text": text}}),
            )
            .await?;
    }

    // Watch the batch-size gauge while the burst drains.
    let mut largest = 0.0_f64;
    let counted = ml_testkit::wait::until(
        "every task's ml_results row",
        Duration::from_secs(300),
        || {
            largest = largest.max(
                harness
                    .worker
                    .metric("ml_embedding_batch_size")
                    .unwrap_or(0.0),
            );
            let db = harness.db.clone();
            let shares = shares.clone();
            async move {
                let count: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM ml_results WHERE share_id = ANY($1) \
                 AND task_type = 'embed_vectors' AND result_data->>'status' = 'completed'",
                )
                .bind(&shares)
                .fetch_one(&db)
                .await
                .ok()?;
                (usize::try_from(count).ok()? == TASKS).then_some(count)
            }
        },
    )
    .await?;
    assert_eq!(usize::try_from(counted)?, TASKS, "none lost");
    assert!(
        largest > 1.0,
        "forward passes held several tasks' texts (largest seen {largest})"
    );
    // The histogram sees every pass, not only the last one.
    let passes = harness.worker.metric("ml_embedding_pass_texts_count")?;
    let single = harness
        .worker
        .metric(r#"ml_embedding_pass_texts_bucket{le="1"}"#)?;
    let texts = harness.worker.metric("ml_embedding_pass_texts_sum")?;
    assert!(
        texts >= TASKS as f64,
        "every caption went through a pass: {texts} texts in {passes} passes"
    );
    assert!(
        single < passes && passes < TASKS as f64,
        "passes of several texts counted: {single} of {passes} held one text"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM embeddings WHERE share_id = ANY($1)")
        .bind(&shares)
        .fetch_one(&harness.db)
        .await?;
    assert_eq!(
        usize::try_from(rows)?,
        TASKS,
        "one vector per caption, no duplicates"
    );

    // A vector from a shared pass equals the text embedded alone.
    let embedder = Embedder::load(
        &ml_testkit::env::models_dir().join("all-MiniLM-L6-v2"),
        EmbedderConfig::default(),
    )?;
    for i in [0, 777, TASKS - 1] {
        let text = format!(
            "Caption {i}: a short video about cooking, travel and music number {}",
            i % 97
        );
        let alone = embedder.embed(&[text.as_str()])?.remove(0);
        let stored = vector_rows(&harness.db, shares[i])
            .await?
            .remove(0)
            .embedding;
        let similarity = cosine(&alone, &stored);
        assert!(similarity > 0.9999, "task {i}: {similarity}");
    }
    harness.cleanup().await;
    Ok(())
}
