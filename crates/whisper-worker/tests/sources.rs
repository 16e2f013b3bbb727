//! Where media comes from: HTTP(S) with address checks, the contract's
//! bad-media fixtures, and the gateway's and Celery's transcribe fixtures.

mod common;

use std::collections::HashMap;

use anyhow::Result;
use common::http::{Route, TestServer};
use common::{JFK, MediaDir, TASK, normalise, publish, start, transcribe};
use ml_testkit::Fixture;
use ml_testkit::s3::{KEY_ID, REGION, S3Server, SECRET};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn http_media_is_fetched_and_private_redirects_are_refused() -> Result<()> {
    let media = MediaDir::new()?;
    media.jfk_as("jfk.mp3", &["-c:a", "libmp3lame"])?;
    let server = TestServer::start(HashMap::from([
        (
            "/clip.mp3".to_owned(),
            Route::Body(std::fs::read(media.path("jfk.mp3"))?),
        ),
        (
            "/to-private".to_owned(),
            Route::Redirect("http://10.0.0.1/clip.mp3".to_owned()),
        ),
        (
            "/to-metadata".to_owned(),
            Route::Redirect("http://169.254.169.254/latest/meta-data/".to_owned()),
        ),
    ]))?;
    // Loopback is allowed for this test's server only; everything else
    // private stays refused.
    let harness = start(&media, &[("MEDIA_ALLOW_ADDRESSES", "127.0.0.1")]).await?;

    let data = transcribe(&harness, &server.url("/clip.mp3")).await?;
    assert_eq!(data["status"], "completed", "{data}");
    assert_eq!(normalise(data["text"].as_str().unwrap_or_default()), JFK);

    for path in ["/to-private", "/to-metadata"] {
        let share_id = publish(&harness, &server.url(path), json!({})).await?;
        let data = harness.wait_result_status(share_id, "failed").await?;
        let error = data["error"].as_str().unwrap_or_default();
        assert!(error.contains("refused"), "{path}: {error}");
        harness.wait_dead_letter(TASK).await?;
    }
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_media_fixtures_are_refused_with_clear_reasons() -> Result<()> {
    let media = MediaDir::new()?;
    let harness = start(&media, &[]).await?;
    for (name, reason) in [
        ("bad-media-outside-root.json", "outside the media roots"),
        ("bad-media-private-address.json", "169.254.169.254"),
        ("bad-media-scheme.json", "file"),
    ] {
        harness
            .expect_refused(&Fixture::load(name)?, reason)
            .await?;
    }
    harness.cleanup().await;
    Ok(())
}

/// The share every fixture names.
const FIXTURE_SHARE: &str = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";

/// Points the fixture's `mediaUrl` (gateway kwargs or Celery positional
/// args) at `url`.
fn retarget(fixture: &mut Fixture, url: &str) -> Result<()> {
    fixture.edit_body(|body| {
        let content = match body {
            Value::Array(parts) => &mut parts[0][1],
            other => &mut other["kwargs"]["content"],
        };
        content["mediaUrl"] = json!(url);
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn transcribe_fixtures_produce_rows_the_video_workflow_reads() -> Result<()> {
    let media = MediaDir::new()?;
    let mp4 = media.jfk_as("7301234567890.mp4", &["-c:a", "aac"])?;
    let mp3 = media.jfk_as("clip.mp3", &["-c:a", "libmp3lame"])?;
    let harness = start(&media, &[]).await?;
    for (name, url) in [
        ("transcribe.gateway.json", mp4),
        ("transcribe.celery-v2.json", mp3),
    ] {
        let mut fixture = Fixture::load(name)?;
        retarget(&mut fixture, &url)?;
        ml_testkit::results::forget_shares(&harness.db, &[FIXTURE_SHARE.parse()?]).await?;
        let meta = harness
            .run_fixture(&fixture, &harness.queue, "SUCCESS")
            .await?;
        let share_id = meta["result"]["share_id"]
            .as_str()
            .unwrap_or_default()
            .parse()?;
        // The gateway's video workflow polls ml_results for this row.
        let data = ml_testkit::results::wait_result_status(
            &harness.db,
            share_id,
            "transcription",
            "completed",
            TASK,
        )
        .await?;
        assert_eq!(
            normalise(data["text"].as_str().unwrap_or_default()),
            JFK,
            "{name}"
        );
        for key in [
            "segments",
            "language",
            "duration_seconds",
            "backend",
            "segment_count",
            "processed_at",
            "billing_usd",
        ] {
            assert!(data.get(key).is_some(), "{name}: result_data.{key} missing");
        }
    }
    harness.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_media_from_the_gateway_fixture_is_transcribed() -> Result<()> {
    let media = MediaDir::new()?;
    media.jfk_as("jfk.mp4", &["-c:a", "aac"])?;
    let s3 = S3Server::start()?;
    // The bucket and key the fixture names.
    s3.put(
        "bookmarkai-media-development",
        "temp/videos/7301234567890.mp4",
        std::fs::read(media.path("jfk.mp4"))?,
    )
    .await?;
    let endpoint = s3.endpoint.to_string();
    let harness = start(
        &media,
        &[
            ("S3_ENDPOINT", endpoint.as_str()),
            ("S3_FORCE_PATH_STYLE", "true"),
            ("AWS_ACCESS_KEY_ID", KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_REGION", REGION),
        ],
    )
    .await?;
    let fixture = Fixture::load("transcribe-s3.gateway.json")?;
    let meta = harness
        .run_fixture(&fixture, &harness.queue, "SUCCESS")
        .await?;
    assert_eq!(
        normalise(meta["result"]["text"].as_str().unwrap_or_default()),
        JFK
    );

    // A key that does not exist is a permanent, clearly named failure.
    let share_id = publish(
        &harness,
        "s3://bookmarkai-media-development/missing.mp4",
        json!({}),
    )
    .await?;
    let data = harness.wait_result_status(share_id, "failed").await?;
    assert!(
        data["error"]
            .as_str()
            .unwrap_or_default()
            .contains("NoSuchKey"),
        "{data}"
    );
    harness.cleanup().await;
    Ok(())
}
