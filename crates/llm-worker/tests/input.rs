//! Input checks: empty, binary and one-word inputs, and a combined-video
//! task that does not parse, are clear permanent failures (dead-lettered,
//! a failed row) while the worker keeps serving; a
//! 12-word caption is summarised; a 20,000-word article is cut to fit the
//! context and still summarised.

mod common;

use anyhow::Result;
use common::{SUMMARIZE_TASK, Summarizer, VIDEO_COMBINED_TASK, mentions_any, words};
use ml_testkit::harness::TASK;
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_clearly_and_short_captions_pass() -> Result<()> {
    let worker = Summarizer::start(&[]).await?;
    let harness = &worker.harness;
    let binary = String::from_utf8_lossy(&[
        0x50, 0x4b, 0x03, 0x04, 0x00, 0xff, 0xfe, 0x00, 0x9c, 0x13, 0x88, 0xde, 0xad, 0xbe, 0xef,
    ])
    .into_owned();
    let cases = [
        ("   \n ", "caption", "content.text is empty"),
        (binary.as_str(), "article", "looks binary"),
        ("Hello", "caption", "1 word(s)"),
    ];
    for (text, content_type, reason) in cases {
        let share = Uuid::new_v4();
        harness
            .publish(
                SUMMARIZE_TASK,
                &Uuid::new_v4().to_string(),
                json!({"share_id": share, "content": {"text": text, "contentType": content_type}}),
            )
            .await?;
        let dead = harness.wait_dead_letter(TASK).await?;
        let got = dead.headers["x-death-reason"].as_str().unwrap_or_default();
        assert!(
            got.contains(reason),
            "{text:?}: {got:?} should mention {reason:?}"
        );
        let failed = harness.wait_result_status(share, "failed").await?;
        assert!(
            failed["error"]
                .as_str()
                .unwrap_or_default()
                .contains(reason),
            "{failed}"
        );
    }

    // A combined-video task whose `task_data` does not parse still fails the
    // share it names.
    let share = Uuid::new_v4();
    let task_data = json!({"shareId": share, "payload": "not an object"});
    harness
        .broker
        .publish_gateway_task(
            &worker.video_queue,
            &Uuid::new_v4().to_string(),
            VIDEO_COMBINED_TASK,
            json!({"task_data": task_data}),
            &[],
        )
        .await?;
    let failed = harness.wait_result_status(share, "failed").await?;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("task_data.payload must be"), "{failed}");

    // Still serving: a 12-word caption is short but valid.
    let caption = "Crispy air fryer tofu with garlic soy glaze, ready in fifteen minutes";
    assert_eq!(words(caption), 12);
    let share = worker.summarize(caption, "caption", "brief").await?;
    let summary = worker.wait_summary(share).await?;
    assert!(!summary.is_empty());
    assert!(
        mentions_any(&summary, &["tofu", "air fryer", "fryer", "glaze"]),
        "{summary:?}"
    );
    assert!(harness.worker.metric("ml_dead_letters_total")? >= 3.0);
    worker.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20000_word_input_is_truncated_and_summarised_within_the_context() -> Result<()> {
    let worker = Summarizer::start(&[("LLM_CONTEXT_TOKENS", "1024")]).await?;
    let sentences = [
        "The lighthouse keeper recorded the weather every morning at six.",
        "Storms from the north brought waves that reached the lighthouse door.",
        "Ships passing the lighthouse signalled the keeper with their horns.",
        "In winter the keeper repaired the great lamp and polished its lens.",
    ];
    let mut text = String::new();
    while words(&text) < 20_000 {
        for sentence in sentences {
            text.push_str(sentence);
            text.push(' ');
        }
    }
    let share = worker.summarize(&text, "article", "brief").await?;
    let data = worker
        .harness
        .wait_result_status(share, "completed")
        .await?;
    let summary = data["summary"].as_str().unwrap_or_default();
    assert!(!summary.is_empty());
    assert!(
        mentions_any(summary, &["lighthouse", "keeper", "storm", "ship", "lamp"]),
        "{summary:?}"
    );
    assert_eq!(data["metadata"]["truncated"], true, "{data}");
    assert!(data["metadata"]["word_count"].as_u64().unwrap_or(0) >= 20_000);
    let total = data["total_tokens"].as_u64().unwrap_or(u64::MAX);
    assert!(total <= 1024, "prompt and summary fit the context: {data}");
    // The input fills what the answer's room (max_tokens, 500) leaves of
    // the context, less the prompt's own few dozen tokens.
    assert!(
        data["input_tokens"].as_u64().unwrap_or(0) >= 1024 - 500 - 40,
        "the context is used: {data}"
    );
    worker.cleanup().await;
    Ok(())
}

/// Celery's `timelimit: [hard, soft]` on a long article: at the soft limit
/// the generation stops between forward passes and the task fails saying
/// so; at the hard limit the task fails as `TimeLimitExceeded`; the
/// worker goes on serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_summary_still_running_at_its_time_limits_is_stopped() -> Result<()> {
    let worker = Summarizer::start(&[]).await?;
    let harness = &worker.harness;
    let sentence = "The river ferry carried cyclists, farmers and their goats across at dawn. ";
    let article = sentence.repeat(150);
    for (limit, reason) in [
        (
            json!([600, 0.2]),
            "stopped at its soft time limit of 0.2 s: ",
        ),
        (
            json!([0.2, null]),
            "the task ran past its hard time limit of 0.2 s",
        ),
    ] {
        let share = Uuid::new_v4();
        harness
            .broker
            .publish_gateway_task(
                &harness.queue,
                &Uuid::new_v4().to_string(),
                SUMMARIZE_TASK,
                json!({"share_id": share, "content": {"text": article, "contentType": "article"}}),
                &[("timelimit", limit)],
            )
            .await?;
        let failed = harness.wait_result_status(share, "failed").await?;
        let error = failed["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(reason), "{error}");
        let dead = harness.wait_dead_letter(TASK).await?;
        assert_eq!(dead.headers["x-death-reason"], error);
    }
    let share = worker.summarize(sentence, "caption", "brief").await?;
    assert!(
        !worker.wait_summary(share).await?.is_empty(),
        "still serving"
    );
    worker.cleanup().await;
    Ok(())
}
