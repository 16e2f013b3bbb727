//! `--help` documents every setting under its contract environment name.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn help_lists_every_environment_name() {
    let help = ml_testkit::cli::assert_help_lists(
        env!("CARGO_BIN_EXE_vector-worker"),
        &[
            "CELERY_BROKER_URL",
            "CELERY_RESULT_BACKEND",
            "REDIS_URL",
            "DATABASE_URL",
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_DB",
            "POSTGRES_USER",
            "POSTGRES_PASSWORD",
            "PROMETHEUS_METRICS_PORT",
            "WORKER_PREFETCH_MULTIPLIER",
            "WORKER_CONCURRENCY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "MODELS_DIR",
            "EMBEDDING_MODEL_PATH",
            "CELERY_RESULT_EXPIRES",
        ],
    );
    assert!(
        help.contains("[default: 9093]"),
        "metrics port default shown"
    );
}

/// A database that is not up yet is waited for (with backoff, not a crash
/// loop), and neither the password nor the broker URL's password is logged.
#[test]
fn unreachable_database_is_retried_and_secrets_never_reach_the_logs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vector-worker"))
        .env("POSTGRES_PASSWORD", "s3cret-pw")
        .env_remove("DATABASE_URL")
        .env("POSTGRES_PORT", "1")
        .env("CELERY_BROKER_URL", "amqp://guest:hunter2@127.0.0.1:1/%2f")
        .env("PROMETHEUS_METRICS_PORT", "0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running the worker: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("stderr"));
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs = Vec::new();
    let mut retries = 0;
    while retries < 2 {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no retry line; logs so far: {logs:#?}"));
        if line.contains("cannot reach PostgreSQL; retrying") {
            retries += 1;
        }
        logs.push(line);
    }
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "still waiting, not crashed"
    );
    let _ = child.kill();
    let _ = child.wait();
    let text = logs.join("\n");
    assert!(
        text.contains("127.0.0.1:1"),
        "the error names the target: {text}"
    );
    assert!(
        !text.contains("s3cret-pw") && !text.contains("hunter2"),
        "{text}"
    );
}

/// Settings are checked before anything loads or connects: a chunk overlap
/// as large as the chunk is refused at once, naming the setting, although
/// the model does not exist and the database is unreachable.
#[test]
fn bad_settings_fail_before_the_model_and_the_database() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vector-worker"))
        .env("EMBED_CHUNK_SIZE", "50")
        .env("EMBED_CHUNK_OVERLAP", "50")
        .env("EMBEDDING_MODEL_PATH", "/nonexistent/embedding-model")
        .env_remove("DATABASE_URL")
        .env("POSTGRES_PORT", "1")
        .env("PROMETHEUS_METRICS_PORT", "0")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running the worker: {e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => {
                let _ = child.kill();
                panic!("the worker did not stop on bad settings: {other:?}");
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(!status.success(), "{stderr}");
    let error = stderr.split_once("Error:").map_or("", |(_, error)| error);
    assert!(
        error.contains("chunking settings") && error.contains("overlap"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("loading the embedding model")
            && !stderr.contains("cannot reach PostgreSQL"),
        "checked after the model or the database: {stderr}"
    );
}
