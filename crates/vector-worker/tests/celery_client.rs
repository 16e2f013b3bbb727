//! A real Python Celery 5 client (installed by scripts/setup) sends the embed
//! task in protocol 2 and reads the outcome with `AsyncResult.get()`.

mod common;

use std::process::Command;

use anyhow::{Context, Result};
use common::vector_rows;
use ml_testkit::env;
use serde_json::Value;
use uuid::Uuid;

fn run_client(queue: &str, share_id: &str, text: &str) -> Result<Value> {
    let script = env::repo_root().join("tests/python/celery_client.py");
    let output = Command::new(env::python())
        .arg(&script)
        .args([queue, share_id, text])
        .env("CELERY_BROKER_URL", env::broker_url())
        .env("REDIS_URL", env::redis_url())
        .output()
        .with_context(|| {
            format!(
                "running {} (is scripts/setup done?)",
                env::python().display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "celery client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout
        .lines()
        .last()
        .context("no output from the celery client")?;
    Ok(serde_json::from_str(last)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn python_celery_client_reads_success_and_failure() -> Result<()> {
    let harness = common::start(&[]).await?;
    let share = Uuid::new_v4();
    let queue = harness.queue.clone();
    let share_text = share.to_string();
    let answer = tokio::task::spawn_blocking(move || {
        run_client(
            &queue,
            &share_text,
            "A Celery client asks for an embedding.",
        )
    })
    .await??;
    assert_eq!(answer["state"], "SUCCESS", "{answer}");
    assert_eq!(answer["result"]["status"], "completed", "{answer}");
    assert_eq!(answer["result"]["embeddings_count"], 1, "{answer}");
    assert_eq!(answer["result"]["dimensions"], 384, "{answer}");
    assert_eq!(vector_rows(&harness.db, share).await?.len(), 1);

    // A permanent failure surfaces in Python as the exception it describes.
    let queue = harness.queue.clone();
    let bad_share = Uuid::new_v4().to_string();
    let answer = tokio::task::spawn_blocking(move || run_client(&queue, &bad_share, "")).await??;
    assert_eq!(answer["state"], "FAILURE", "{answer}");
    assert_eq!(answer["error_type"], "ValueError", "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("content.text is required"),
        "{answer}"
    );
    harness.cleanup().await;
    Ok(())
}
