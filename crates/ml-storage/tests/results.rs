//! `ml_results`: upserts, and failures that never overwrite a success.

mod common;

use common::TestResult;
use ml_storage::MlResult;
use serde_json::json;
use uuid::Uuid;

fn summary(share_id: Uuid, data: serde_json::Value) -> MlResult {
    MlResult {
        share_id,
        task_type: "summarize_llm".into(),
        result_data: data,
        model_version: Some("qwen2.5-0.5b".into()),
        processing_ms: Some(250),
    }
}

/// The stored row of `(share, task_type)`, which must exist.
async fn stored(
    store: &ml_storage::Store,
    share: Uuid,
    task_type: &str,
) -> TestResult<ml_storage::StoredResult> {
    Ok(store
        .get_result(share, task_type)
        .await?
        .ok_or("row missing")?)
}

#[tokio::test]
async fn upsert_writes_then_replaces_one_row() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    store
        .upsert_result(&summary(
            share,
            json!({"summary": "one", "status": "success"}),
        ))
        .await?;
    store
        .upsert_result(&summary(
            share,
            json!({"summary": "two", "status": "success"}),
        ))
        .await?;
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(row.result_data["summary"], "two");
    assert_eq!(row.model_version.as_deref(), Some("qwen2.5-0.5b"));
    assert_eq!(row.processing_ms, Some(250));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ml_results WHERE share_id = $1")
        .bind(share)
        .fetch_one(store.pool())
        .await?;
    assert_eq!(rows, 1);
    assert!(store.get_result(share, "transcription").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_failure_never_overwrites_a_success() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    store
        .upsert_result(&summary(
            share,
            json!({"summary": "good", "status": "success"}),
        ))
        .await?;
    let written = store
        .record_failure(&summary(share, json!({"error": "model crashed"})))
        .await?;
    assert!(!written);
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(row.result_data["summary"], "good");

    // A success without any status key (the transcription shape) counts too.
    let transcript = MlResult {
        task_type: "transcription".into(),
        ..summary(share, json!({"text": "hello", "segments": []}))
    };
    store.upsert_result(&transcript).await?;
    assert!(
        !store
            .record_failure(&MlResult {
                task_type: "transcription".into(),
                ..summary(share, json!({"error": "late failure"}))
            })
            .await?
    );
    let row = stored(&store, share, "transcription").await?;
    assert_eq!(row.result_data["text"], "hello");
    Ok(())
}

#[tokio::test]
async fn failures_are_written_when_nothing_better_exists() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    assert!(
        store
            .record_failure(&summary(share, json!({"error": "first"})))
            .await?
    );
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(
        row.result_data,
        json!({"error": "first", "status": "failed"})
    );

    // A later failure replaces an earlier failure.
    assert!(
        store
            .record_failure(&summary(share, json!({"error": "second"})))
            .await?
    );
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(row.result_data["error"], "second");

    // And a success replaces a failure.
    store
        .upsert_result(&summary(
            share,
            json!({"summary": "finally", "status": "success"}),
        ))
        .await?;
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(row.result_data["summary"], "finally");
    Ok(())
}

#[tokio::test]
async fn skips_keep_their_status_and_never_replace_a_success() -> TestResult {
    let store = common::store().await?;
    let share = Uuid::new_v4();
    assert!(
        store
            .record_skip(&summary(share, json!({"reason": "empty text"})))
            .await?
    );
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(
        row.result_data,
        json!({"reason": "empty text", "status": "skipped"})
    );

    // A failure may replace a skip; a skip may replace a failure.
    assert!(
        store
            .record_failure(&summary(share, json!({"error": "boom"})))
            .await?
    );
    assert!(
        store
            .record_skip(&summary(share, json!({"reason": "junk"})))
            .await?
    );

    // Neither replaces a success.
    store
        .upsert_result(&summary(
            share,
            json!({"summary": "done", "status": "success"}),
        ))
        .await?;
    assert!(
        !store
            .record_skip(&summary(share, json!({"reason": "junk"})))
            .await?
    );
    let row = stored(&store, share, "summarize_llm").await?;
    assert_eq!(row.result_data["summary"], "done");
    Ok(())
}
