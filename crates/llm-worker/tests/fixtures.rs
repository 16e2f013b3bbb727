//! Every summarize example message from the contract through a real worker,
//! the real model, RabbitMQ, PostgreSQL and Redis: each ends in a
//! `summarize_llm` row of the right shape; the bad one is dead-lettered.

mod common;

use anyhow::Result;
use common::{Summarizer, mentions_any, words};
use ml_testkit::{Fixture, results};
use serde_json::Value;
use uuid::Uuid;

const SHARE: &str = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";

/// The text a fixture asks to summarise and nouns a summary should name.
fn input_of(fixture: &Fixture) -> (String, &'static [&'static str]) {
    let kwargs = fixture.kwargs();
    if let Some(payload) = kwargs.get("task_data").map(|t| &t["payload"]) {
        let hashtags: Vec<&str> = payload["hashtags"]
            .as_array()
            .map(|tags| tags.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let text = format!(
            "{} {} {}",
            payload["caption"].as_str().unwrap_or_default(),
            payload["transcript"].as_str().unwrap_or_default(),
            hashtags.join(" ")
        );
        (text, &["tofu", "air fryer", "fryer", "vegan", "recipe"])
    } else {
        let text = kwargs["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (
            text,
            &[
                "rust",
                "ownership",
                "memory",
                "compiler",
                "garbage",
                "python",
                "borrow",
            ],
        )
    }
}

fn style_of(fixture: &Fixture) -> String {
    let kwargs = fixture.kwargs();
    kwargs["options"]["style"]
        .as_str()
        .unwrap_or("brief")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_summarize_fixture_ends_in_a_summary_row() -> Result<()> {
    let worker = Summarizer::start(&[]).await?;
    let harness = &worker.harness;
    let share = Uuid::parse_str(SHARE)?;
    let names = Fixture::names("summarize")?;
    assert_eq!(names.len(), 4, "{names:?}");
    for name in names {
        results::forget_shares(&harness.db, &[share]).await?;
        let fixture = Fixture::load(&name)?;
        let queue = worker.queue_for(&fixture.routing_key);
        let meta = harness.run_fixture(&fixture, queue, "SUCCESS").await?;

        let data = results::result_data(&harness.db, share, common::LLM_WORKER.task_type)
            .await?
            .unwrap_or_default();
        let summary = data["summary"].as_str().unwrap_or_default();
        let (input, nouns) = input_of(&fixture);
        eprintln!("{name}: {summary:?}");
        assert!(!summary.is_empty(), "{name}: {data}");
        assert!(
            words(summary) < words(&input),
            "{name}: the summary ({} words) is shorter than the input ({} words): {summary:?}",
            words(summary),
            words(&input)
        );
        assert!(
            mentions_any(summary, nouns),
            "{name}: {summary:?} names none of {nouns:?}"
        );
        assert_eq!(data["status"], "completed");
        assert_eq!(data["provider"], "local");
        assert_eq!(data["model"], meta["result"]["model"]);
        let (input_tokens, output_tokens) = (
            data["input_tokens"].as_u64().unwrap_or(0),
            data["output_tokens"].as_u64().unwrap_or(0),
        );
        assert!(input_tokens > 0 && output_tokens > 0, "{data}");
        assert_eq!(
            data["total_tokens"].as_u64(),
            Some(input_tokens + output_tokens)
        );
        assert!(data["processed_at"].is_string());
        let style = style_of(&fixture);
        assert_eq!(data["metadata"]["style"], style.as_str());
        assert!(data["metadata"]["word_count"].as_u64().unwrap_or(0) > 0);
        assert!(data["metadata"]["summary_word_count"].as_u64().unwrap_or(0) > 0);
        let key_points = data["key_points"].as_array().cloned().unwrap_or_default();
        if style == "bullets" {
            assert!(
                key_points.len() >= 2,
                "{name}: bullets give key points: {data}"
            );
        }
        assert!(key_points.iter().all(Value::is_string));
        assert_eq!(meta["result"]["summary"], summary);
        if fixture.routing_key == "ml.summarize_video_combined" {
            assert_eq!(data["metadata"]["content_type"], "video_combined");
        }
    }
    let content_types: Vec<String> = sqlx::query_scalar(
        "SELECT result_data->'metadata'->>'content_type' FROM ml_results \
         WHERE share_id = $1 AND task_type = 'summarize_llm'",
    )
    .bind(share)
    .fetch_all(&harness.db)
    .await?;
    assert_eq!(
        content_types.len(),
        1,
        "one row per share: {content_types:?}"
    );
    assert!(
        harness
            .worker
            .metric("ml_tokens_processed_total{direction=\"output\"")?
            > 0.0
    );
    assert!(
        harness
            .worker
            .metric("ml_summarization_duration_seconds_count")?
            >= 4.0
    );

    // The bad summarize fixture: dead-lettered with a reason, FAILURE in
    // Redis, and the earlier success kept.
    let fixture = Fixture::load("bad-share-id.json")?;
    harness
        .expect_refused(&fixture, "share_id must be a UUID")
        .await?;
    let data = results::result_data(&harness.db, share, common::LLM_WORKER.task_type)
        .await?
        .unwrap_or_default();
    assert_eq!(
        data["status"], "completed",
        "a failure never overwrites a success"
    );
    worker.cleanup().await;
    Ok(())
}
