//! `--help` documents every setting under its contract environment name.

use std::process::Command;

#[test]
fn help_lists_every_environment_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_vector-worker"))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("running --help: {e}"));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
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
    ] {
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} missing from --help:\n{help}"
        );
    }
    assert!(
        help.contains("[default: 9093]"),
        "metrics port default shown"
    );
}

#[test]
fn secrets_never_reach_the_logs() {
    let output = Command::new(env!("CARGO_BIN_EXE_vector-worker"))
        .env("POSTGRES_PASSWORD", "s3cret-pw")
        .env_remove("DATABASE_URL")
        .env("POSTGRES_PORT", "1")
        .env("CELERY_BROKER_URL", "amqp://guest:hunter2@127.0.0.1:1/%2f")
        .env("PROMETHEUS_METRICS_PORT", "0")
        .output()
        .unwrap_or_else(|e| panic!("running the worker: {e}"));
    assert!(!output.status.success(), "nothing listens on port 1");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("PostgreSQL"),
        "a clear start-up error: {logs}"
    );
    assert!(
        !logs.contains("s3cret-pw") && !logs.contains("hunter2"),
        "{logs}"
    );
}
