//! `POST /v1/embeddings`: the same vector as the queue path, OpenAI's shapes
//! (float and base64), 4xx for bad requests, and the official Python client.

mod common;

use common::EmbedTasks as _;

use std::process::Command;

use anyhow::{Context, Result};
use base64::Engine as _;
use common::{TASK, cosine, vector_rows};
use ml_testkit::env;
use serde_json::{Value, json};
use uuid::Uuid;

const TEXT: &str = "Sourdough bread baking at home";

fn vector(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .map(|xs| {
            xs.iter()
                .filter_map(Value::as_f64)
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_api_matches_the_queue_path_and_rejects_bad_requests() -> Result<()> {
    let harness = common::start(&[
        ("EMBED_API_MAX_INPUTS", "4"),
        ("EMBED_API_MAX_BODY_BYTES", "4096"),
    ])
    .await?;
    let share = Uuid::new_v4();
    harness
        .publish_embed(
            &Uuid::new_v4().to_string(),
            json!({"share_id": share, "content": {"text": TEXT}}),
        )
        .await?;
    harness.wait_result(share, TASK).await?;
    let stored = vector_rows(&harness.db, share).await?.remove(0).embedding;

    let (status, body) = harness.worker.post_json(
        "/v1/embeddings",
        &json!({"model": "text-embedding-3-small", "input": [TEXT, "something else"]}).to_string(),
    )?;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body)?;
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "all-MiniLM-L6-v2");
    assert_eq!(answer["data"][1]["index"], 1);
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0);
    let served = vector(&answer["data"][0]["embedding"]);
    assert_eq!(served.len(), 384);
    assert!(cosine(&served, &stored) > 0.9999, "same model, same vector");

    let (status, body) = harness.worker.post_json(
        "/v1/embeddings",
        &json!({"input": TEXT, "encoding_format": "base64"}).to_string(),
    )?;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(answer["data"][0]["embedding"].as_str().unwrap_or_default())?;
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert!(cosine(&decoded, &stored) > 0.9999);

    let too_big = json!({"input": "x".repeat(5000)}).to_string();
    for (request, expected) in [
        ("{not json".to_owned(), 400),
        (json!({"model": "m"}).to_string(), 422),
        (json!({"input": []}).to_string(), 400),
        (json!({"input": ["a", "b", "c", "d", "e"]}).to_string(), 400),
        (json!({"input": [[1, 2, 3]]}).to_string(), 400),
        (json!({"input": "   "}).to_string(), 400),
        (
            json!({"input": "ok", "encoding_format": "int8"}).to_string(),
            400,
        ),
        (json!({"input": "ok", "dimensions": 1536}).to_string(), 400),
        (too_big, 413),
    ] {
        let (status, body) = harness.worker.post_json("/v1/embeddings", &request)?;
        assert_eq!(status, expected, "{request:.80}: {body}");
        if status == 400 {
            let error: Value = serde_json::from_str(&body).context("OpenAI error shape")?;
            assert!(error["error"]["message"].is_string(), "{body}");
        }
    }
    assert_eq!(harness.worker.get("/readyz")?.0, 200, "still serving");

    // The official OpenAI client library.
    let base_url = format!("http://{}/v1", harness.worker.address().unwrap_or_default());
    let output = Command::new(env::python())
        .arg(env::repo_root().join("tests/python/openai_client.py"))
        .args([base_url.as_str(), TEXT, "another text"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "openai client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())?;
    assert_eq!(answer["model"], "all-MiniLM-L6-v2");
    assert_eq!(answer["dimensions"], 384);
    assert_eq!(answer["count"], 2);
    let first = vector(&answer["first"]);
    for (a, b) in first.iter().zip(&stored) {
        assert!((a - b).abs() < 1e-4, "{first:?} vs stored");
    }
    harness.cleanup().await;
    Ok(())
}

/// Runs the official client against `base_url` with `OPENAI_API_KEY` = `key`.
fn official_client(base_url: &str, key: &str) -> Result<std::process::Output> {
    Ok(Command::new(env::python())
        .arg(env::repo_root().join("tests/python/openai_client.py"))
        .args([base_url, TEXT])
        .env("OPENAI_API_KEY", key)
        .output()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_api_key_only_requests_bearing_it_are_served() -> Result<()> {
    let key = "sk-test-6d1c0e";
    let harness = common::start(&[("EMBED_API_KEY", key)]).await?;
    let worker = &harness.worker;
    let request = json!({"input": TEXT}).to_string();
    let right = format!("Bearer {key}");
    let wrong = format!("Bearer {key}x");
    for headers in [vec![], vec![("Authorization", wrong.as_str())]] {
        let (status, body) = worker.post_json_with("/v1/embeddings", &request, &headers)?;
        assert_eq!(status, 401, "{headers:?}: {body}");
        let error: Value = serde_json::from_str(&body)?;
        assert_eq!(error["error"]["code"], "invalid_api_key", "{body}");
    }
    let headers = [("Authorization", right.as_str())];
    let (status, body) = worker.post_json_with("/v1/embeddings", &request, &headers)?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(worker.get("/readyz")?.0, 200, "probes need no key");

    let base_url = format!("http://{}/v1", worker.address().unwrap_or_default());
    let served = official_client(&base_url, key)?;
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    let refused = official_client(&base_url, "sk-wrong")?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("401"),
        "{stderr}"
    );
    let logs = serde_json::to_string(&worker.logs())?;
    assert!(!logs.contains(key), "the key is never logged");
    harness.cleanup().await;
    Ok(())
}
