//! Service addresses and paths, from the environment `scripts/test` exports.

use std::path::PathBuf;

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `CELERY_BROKER_URL`, default the local RabbitMQ.
pub fn broker_url() -> String {
    var_or("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
}

/// `DATABASE_URL`, default the local test database.
pub fn database_url() -> String {
    var_or(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/ml_workers_test",
    )
}

/// `REDIS_URL`, default the local Redis.
pub fn redis_url() -> String {
    var_or("REDIS_URL", "redis://127.0.0.1:6379/0")
}

/// The cache folder set-up writes to (`$HOME/.cache/ml-workers`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("ML_WORKERS_CACHE").map_or_else(
        || PathBuf::from(var_or("HOME", "/root")).join(".cache/ml-workers"),
        PathBuf::from,
    )
}

/// `MODELS_DIR`, default `$HOME/.cache/ml-workers/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR").map_or_else(|| cache_dir().join("models"), PathBuf::from)
}

/// The Python with Celery installed (`ML_WORKERS_PYTHON`, default set-up's venv).
pub fn python() -> PathBuf {
    std::env::var_os("ML_WORKERS_PYTHON")
        .map_or_else(|| cache_dir().join("venv/bin/python"), PathBuf::from)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A release binary of this workspace (`$CARGO_TARGET_DIR/release/<name>`),
/// when built: the benchmarks run the workers as users do.
pub fn release_binary(name: &str) -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let binary = target.join("release").join(name);
    if binary.is_file() {
        Some(binary)
    } else {
        println!(
            "{} missing (cargo build --release --bin {name})",
            binary.display()
        );
        None
    }
}
