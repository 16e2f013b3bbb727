//! Every example message from the contract through a real worker, broker,
//! database and Redis: embed fixtures end in the expected rows, bad ones in
//! the dead-letter queue with a reason, and the worker keeps serving.

mod common;

use common::EmbedTasks as _;

use anyhow::Result;
use common::{Harness, TASK, forget_shares, result_data, vector_rows};
use ml_testkit::Fixture;
use serde_json::Value;
use uuid::Uuid;

const SHARE_A: &str = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";
const SHARE_B: &str = "7b2e1f0d-3c4d-4e5f-9a01-2b3c4d5e6f70";

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).unwrap_or_default()
}

async fn publish_and_wait(harness: &Harness, name: &str, status: &str) -> Result<Value> {
    let fixture = Fixture::load(name)?;
    harness.run_fixture(&fixture, &harness.queue, status).await
}

#[tokio::test(flavor = "multi_thread")]
async fn fixtures_end_in_rows_or_dead_letters() -> Result<()> {
    let harness = common::start(&[]).await?;
    let (a, b) = (uuid(SHARE_A), uuid(SHARE_B));
    forget_shares(&harness.db, &[a, b]).await?;

    // Gateway encoding, one caption.
    let meta = publish_and_wait(&harness, "embed.gateway.json", "SUCCESS").await?;
    assert_eq!(meta["result"]["embeddings_count"], 1, "{meta}");
    let rows = vector_rows(&harness.db, a).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].embedding_type.as_str(),
            rows[0].content_type.as_str()
        ),
        ("content", "caption")
    );
    assert_eq!(rows[0].embedding.len(), 384);
    let norm: f32 = rows[0].embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-3,
        "vectors are L2-normalised, norm {norm}"
    );
    let data = result_data(&harness.db, a).await?.unwrap_or_default();
    assert_eq!(data["status"], "completed");
    assert_eq!(data["model"], "all-MiniLM-L6-v2");
    assert_eq!(data["dimensions"], 384);
    assert_eq!(
        data["chunks"][0]["content_hash"].as_str().map(str::len),
        Some(64)
    );

    // Celery protocol 2, a transcript chunked in fixed windows: it coexists
    // with the caption vectors of the same share.
    publish_and_wait(&harness, "embed-transcript.celery-v2.json", "SUCCESS").await?;
    let rows = vector_rows(&harness.db, a).await?;
    let transcript: Vec<_> = rows
        .iter()
        .filter(|r| r.content_type == "transcript")
        .collect();
    let captions = rows.iter().filter(|r| r.content_type == "caption").count();
    assert_eq!(captions, 1, "the caption set is untouched");
    assert!(
        transcript.len() >= 2,
        "fixed chunking splits the long transcript: {}",
        transcript.len()
    );
    for (index, row) in transcript.iter().enumerate() {
        assert_eq!(row.chunk_index, i32::try_from(index)?);
        assert_eq!(row.total_chunks, i32::try_from(transcript.len())?);
        assert!(
            row.token_count.unwrap_or(0) <= 200,
            "window of 200 tokens: {row:?}"
        );
    }
    let data = result_data(&harness.db, a).await?.unwrap_or_default();
    assert_eq!(
        data["embeddings_count"].as_u64(),
        Some(transcript.len() as u64)
    );

    // The batch task: both shares, the caption set of A replaced.
    let meta = publish_and_wait(&harness, "embed-batch.gateway.json", "SUCCESS").await?;
    assert_eq!(meta["result"]["succeeded"], 2, "{meta}");
    let rows_a = vector_rows(&harness.db, a).await?;
    assert_eq!(
        rows_a
            .iter()
            .filter(|r| r.content_type == "caption")
            .count(),
        1
    );
    assert_eq!(
        rows_a
            .iter()
            .filter(|r| r.content_type == "transcript")
            .count(),
        transcript.len()
    );
    let rows_b = vector_rows(&harness.db, b).await?;
    assert_eq!(rows_b.len(), 1);
    assert_eq!(
        (
            rows_b[0].embedding_type.as_str(),
            rows_b[0].content_type.as_str()
        ),
        ("summary", "tweet")
    );

    // Every bad fixture: dead-lettered with a reason, FAILURE in Redis when
    // it has an id, and no earlier success overwritten.
    let expected_reasons = [
        ("bad-media-outside-root.json", "unknown task name"),
        ("bad-media-private-address.json", "unknown task name"),
        ("bad-media-scheme.json", "unknown task name"),
        ("bad-missing-text.json", "content.text is required"),
        ("bad-not-json.json", "not valid JSON"),
        ("bad-share-id.json", "unknown task name"),
        ("bad-unknown-task.json", "unknown task name"),
    ];
    assert_eq!(
        Fixture::names("bad-")?,
        expected_reasons
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>(),
        "every bad fixture is covered"
    );
    for (name, reason) in expected_reasons {
        harness
            .expect_refused(&Fixture::load(name)?, reason)
            .await?;
    }
    let data = result_data(&harness.db, a).await?.unwrap_or_default();
    assert_eq!(
        data["status"], "completed",
        "a failure never overwrites a success"
    );

    // Still serving.
    let share = Uuid::new_v4();
    harness
        .publish_embed(
            &Uuid::new_v4().to_string(),
            serde_json::json!({"share_id": share, "content": {"text": "Still alive after bad input."}}),
        )
        .await?;
    harness.wait_result(share, TASK).await?;
    assert!(harness.worker.metric("ml_dead_letters_total")? >= 7.0);
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_metrics_and_task_logs() -> Result<()> {
    let harness = common::start(&[]).await?;
    assert_eq!(harness.worker.get("/healthz")?.0, 200);
    assert_eq!(harness.worker.get("/readyz")?.0, 200);
    let share = Uuid::new_v4();
    let task_id = Uuid::new_v4().to_string();
    harness
        .publish_embed(
            &task_id,
            serde_json::json!({"share_id": share, "content": {"text": "Metrics and logs", "type": "caption"}}),
        )
        .await?;
    harness.wait_result(share, TASK).await?;
    let line = harness
        .worker
        .wait_for_log("the task's success line", TASK, |l| {
            l["message"] == "task succeeded"
        })
        .await?;
    let span = &line["span"];
    assert_eq!(span["task_id"], task_id.as_str(), "{line}");
    assert_eq!(span["share_id"], share.to_string().as_str(), "{line}");
    assert_eq!(span["queue"], harness.queue.as_str(), "{line}");
    assert!(line["duration_ms"].is_u64(), "{line}");
    let queue_label = format!("celery_task_succeeded_total{{queue=\"{}\"", harness.queue);
    ml_testkit::wait::until("the success counter", TASK, || {
        let value = harness.worker.metric(&queue_label).unwrap_or(0.0);
        async move { (value >= 1.0).then_some(()) }
    })
    .await?;
    assert!(harness.worker.metric("ml_embeddings_generated_total")? >= 1.0);
    assert!(harness.worker.metric("ml_embedding_batch_size")? >= 1.0);
    assert!(harness.worker.metric("process_resident_memory_bytes")? > 0.0);
    assert_eq!(harness.worker.metric("ml_worker_info")?, 1.0);
    harness.cleanup().await;
    Ok(())
}
