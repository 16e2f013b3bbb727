//! Media that cannot be transcribed, and a task without a media URL: each
//! ends as a clear permanent failure (a failed row and a dead letter with
//! its reason) or a skipped result, and the worker keeps serving.

mod common;

use std::collections::HashMap;

use anyhow::Result;
use common::http::{Route, TestServer};
use common::{JFK, MediaDir, TASK, normalise, publish, start, transcribe};
use ml_testkit::Harness;
use serde_json::json;
use uuid::Uuid;

/// Transcribes `url`, expects a failure row and a dead letter whose reason
/// contains `reason`.
async fn expect_failure(harness: &Harness, url: &str, reason: &str) -> Result<()> {
    let share_id = publish(harness, url, json!({})).await?;
    let data = harness.wait_result_status(share_id, "failed").await?;
    let error = data["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(reason),
        "{url}: {error:?} should mention {reason:?}"
    );
    let dead = harness.wait_dead_letter(TASK).await?;
    let got = dead.headers["x-death-reason"].as_str().unwrap_or_default();
    assert!(got.contains(reason), "{url}: dead-letter reason {got:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_media_fails_clearly_and_the_worker_keeps_serving() -> Result<()> {
    let media = MediaDir::new()?;
    let zero = media.write("empty.wav", b"")?;
    let text = media.write("notes.mp4", b"These are my meeting notes, not a video.\n")?;
    let mp3 = media.jfk_as("jfk.mp3", &["-c:a", "libmp3lame"])?;
    let corrupt_bytes: Vec<u8> = std::fs::read(media.path("jfk.mp3"))?
        .iter()
        .enumerate()
        .map(|(i, b)| if i % 7 == 0 { b ^ 0x5a } else { *b })
        .take(4096)
        .collect();
    let corrupt = media.write("corrupt.mp4", &corrupt_bytes)?;
    let harness = start(&media, &[]).await?;

    expect_failure(&harness, &zero, "empty").await?;
    expect_failure(&harness, &text, "not").await?;
    expect_failure(&harness, &corrupt, "decode").await?;
    // Arguments that do not parse still fail the share they name.
    expect_failure(&harness, "  ", "content.mediaUrl is required").await?;

    let data = transcribe(&harness, &mp3).await?;
    assert_eq!(data["status"], "completed", "still serving: {data}");
    assert_eq!(normalise(data["text"].as_str().unwrap_or_default()), JFK);
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn media_and_prompts_over_their_caps_are_refused() -> Result<()> {
    let media = MediaDir::new()?;
    let long = media.jfk_as("jfk.m4a", &["-c:a", "aac"])?;
    let caps = [
        ("MEDIA_MAX_DURATION_SECS", "5"),
        ("WHISPER_MAX_PROMPT_BYTES", "100"),
    ];
    let harness = start(&media, &caps).await?;
    expect_failure(&harness, &long, "over the 5.0 s cap").await?;

    let share_id = publish(&harness, &long, json!({"prompt": "p".repeat(101)})).await?;
    let data = harness.wait_result_status(share_id, "failed").await?;
    let error = data["error"].as_str().unwrap_or_default();
    assert_eq!(
        error,
        "invalid task arguments: options.prompt is 101 bytes, over the 100-byte cap (WHISPER_MAX_PROMPT_BYTES)"
    );
    let dead = harness.wait_dead_letter(TASK).await?;
    assert_eq!(dead.headers["x-death-reason"], error);
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn silence_is_skipped_and_short_clips_are_padded() -> Result<()> {
    let media = MediaDir::new()?;
    let silence = media.silence("silence.wav", 3.0)?;
    let speech = media.speak("hello.wav", "Hello there, good morning.")?;
    let short = media.cut(&speech, "short.wav", 0.5)?;
    let harness = start(&media, &[]).await?;

    let data = transcribe(&harness, &silence).await?;
    assert_eq!(data["status"], "skipped", "{data}");
    assert!(
        data["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("silent"),
        "{data}"
    );

    // Half a second of speech: whisper.cpp refuses under one second, so
    // the worker pads it; it ends as a transcript or a recorded skip,
    // never a failure.
    let data = transcribe(&harness, &short).await?;
    let status = data["status"].as_str().unwrap_or_default();
    assert!(status == "completed" || status == "skipped", "{data}");
    let duration = data["duration_seconds"].as_f64().unwrap_or_default();
    assert!(
        (0.4..0.6).contains(&duration),
        "the real length is kept: {duration}"
    );
    harness.cleanup().await;
    Ok(())
}

/// A server dripping a byte every half second never trips the read
/// timeout; the task's soft time limit (Celery's `timelimit: [hard, soft]`)
/// stops the download, and the task fails saying so.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_still_running_at_the_soft_time_limit_is_stopped() -> Result<()> {
    let media = MediaDir::new()?;
    let server = TestServer::start(HashMap::from([("/drip.mp3".to_owned(), Route::Drip)]))?;
    let harness = start(&media, &[("MEDIA_ALLOW_ADDRESSES", "127.0.0.1")]).await?;
    let share_id = Uuid::new_v4();
    let kwargs = json!({"share_id": share_id, "content": {"mediaUrl": server.url("/drip.mp3")}});
    harness
        .broker
        .publish_gateway_task(
            &harness.queue,
            &Uuid::new_v4().to_string(),
            "whisper.tasks.transcribe_api",
            kwargs,
            &[("timelimit", json!([120, 1]))],
        )
        .await?;
    let data = harness.wait_result_status(share_id, "failed").await?;
    assert_eq!(
        data["error"],
        "stopped at its soft time limit of 1 s: the media download was stopped"
    );
    harness.wait_dead_letter(TASK).await?;

    let mp3 = media.jfk_as("jfk.mp3", &["-c:a", "libmp3lame"])?;
    let data = transcribe(&harness, &mp3).await?;
    assert_eq!(data["status"], "completed", "still serving: {data}");
    harness.cleanup().await;
    Ok(())
}
