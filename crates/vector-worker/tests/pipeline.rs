//! The text pipeline through the real worker: junk recorded as skipped,
//! transcript segments chunked with their times, chapters as separate sets.

mod common;

use common::EmbedTasks as _;

use anyhow::Result;
use common::{TASK, result_data, vector_rows, wait_celery_status};
use serde_json::json;
use uuid::Uuid;

/// Task name of `embed_batch`.
const BATCH: &str = "vector_service.tasks.generate_embeddings_batch";

#[tokio::test(flavor = "multi_thread")]
async fn junk_input_is_recorded_as_skipped_not_embedded() -> Result<()> {
    let harness = common::start(&[]).await?;
    for junk in ["   ", "!!!! ??? ...", "aaaaaaaaaaaaaaaa"] {
        let share = Uuid::new_v4();
        let task_id = Uuid::new_v4().to_string();
        harness
            .publish_embed(
                &task_id,
                json!({"share_id": share, "content": {"text": junk}}),
            )
            .await?;
        let meta = wait_celery_status(&task_id, "SUCCESS", TASK).await?;
        assert_eq!(meta["result"]["status"], "skipped", "{junk:?}: {meta}");
        let data = result_data(&harness.db, share).await?.unwrap_or_default();
        assert_eq!(data["status"], "skipped", "{junk:?}: {data}");
        assert!(data["reason"].is_string());
        assert!(vector_rows(&harness.db, share).await?.is_empty());
    }
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_over_their_size_caps_are_refused_naming_the_setting() -> Result<()> {
    let caps = [
        ("EMBED_MAX_TEXT_BYTES", "1000"),
        ("EMBED_MAX_METADATA_BYTES", "500"),
        ("EMBED_MAX_BATCH_TASKS", "2"),
    ];
    let harness = common::start(&caps).await?;
    let long_text = "word ".repeat(200) + "x";
    let big_metadata = json!({"note": "n".repeat(500)});
    for (content, reason) in [
        (
            json!({"text": long_text}),
            "content.text is 1001 bytes, over the 1000-byte cap (EMBED_MAX_TEXT_BYTES)",
        ),
        (
            json!({"text": "A short caption about tofu.", "metadata": big_metadata}),
            "content.metadata is 511 bytes of JSON, over the 500-byte cap (EMBED_MAX_METADATA_BYTES)",
        ),
    ] {
        let share = Uuid::new_v4();
        let task_id = Uuid::new_v4().to_string();
        harness
            .publish_embed(&task_id, json!({"share_id": share, "content": content}))
            .await?;
        let meta = wait_celery_status(&task_id, "FAILURE", TASK).await?;
        assert!(meta.to_string().contains(reason), "{meta}");
        let data = harness.wait_result_status(share, "failed").await?;
        assert!(data["error"].to_string().contains(reason), "{data}");
    }

    let item = |text: &str| json!({"share_id": Uuid::new_v4(), "content": {"text": text}});
    let fine = "Three brokers compared under load, with latency figures.";
    let three = json!({"tasks": [item(fine), item(fine), item(fine)]});
    let task_id = Uuid::new_v4().to_string();
    harness.publish(BATCH, &task_id, three).await?;
    let meta = wait_celery_status(&task_id, "FAILURE", TASK).await?;
    let reason = "tasks has 3 items, over the cap of 2 (EMBED_MAX_BATCH_TASKS)";
    assert!(meta.to_string().contains(reason), "{meta}");

    let two = json!({"tasks": [item(fine), item(&long_text)]});
    let task_id = Uuid::new_v4().to_string();
    harness.publish(BATCH, &task_id, two).await?;
    let meta = wait_celery_status(&task_id, "SUCCESS", TASK).await?;
    assert_eq!(meta["result"]["status"], "partial", "{meta}");
    assert_eq!(meta["result"]["failed"], 1, "{meta}");
    assert!(meta.to_string().contains("EMBED_MAX_TEXT_BYTES"), "{meta}");
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn transcript_segments_and_chapters() -> Result<()> {
    let harness = common::start(&[]).await?;
    let share = Uuid::new_v4();
    let sentence = "We compare three message brokers and measure their latency under load. ";
    let segments: Vec<_> = (0..12)
        .map(|i| json!({"start": f64::from(i) * 10.0, "end": f64::from(i + 1) * 10.0, "text": format!("[Music] {}", sentence.repeat(3))}))
        .collect();
    let task_id = Uuid::new_v4().to_string();
    harness
        .publish_embed(
            &task_id,
            json!({
                "share_id": share,
                "content": {"text": "full transcript", "type": "transcript", "metadata": {"segments": segments}},
                "options": {"chunk_strategy": "transcript"}
            }),
        )
        .await?;
    wait_celery_status(&task_id, "SUCCESS", TASK).await?;
    let rows = vector_rows(&harness.db, share).await?;
    assert!(
        rows.len() >= 2,
        "12 segments of ~45 tokens need several chunks: {}",
        rows.len()
    );
    assert_eq!(rows[0].start_time, Some(0.0));
    assert_eq!(rows.last().and_then(|r| r.end_time), Some(120.0));
    for pair in rows.windows(2) {
        assert!(
            pair[0].end_time <= pair[1].start_time,
            "chunks follow the timeline"
        );
    }
    let text: Option<String> = sqlx::query_scalar(
        "SELECT chunk_text FROM embeddings WHERE share_id = $1 AND chunk_index = 0",
    )
    .bind(share)
    .fetch_one(&harness.db)
    .await?;
    assert!(
        !text.unwrap_or_default().contains("[Music]"),
        "cues are cleaned out"
    );

    // Two chapters of the same share are separate sets: both survive.
    for chapter in [1, 2] {
        let id = Uuid::new_v4().to_string();
        harness
            .publish_embed(
                &id,
                json!({
                    "share_id": share,
                    "content": {"text": format!("Chapter {chapter} is about brokers."), "type": "summary", "metadata": {"chapter_index": chapter}},
                    "options": {"embedding_type": "summary"}
                }),
            )
            .await?;
        wait_celery_status(&id, "SUCCESS", TASK).await?;
    }
    let rows = vector_rows(&harness.db, share).await?;
    assert_eq!(
        rows.iter()
            .filter(|r| r.embedding_type == "summary")
            .count(),
        2
    );
    assert!(
        rows.iter().any(|r| r.content_type == "transcript"),
        "transcript set untouched"
    );
    harness.cleanup().await;
    Ok(())
}
