//! `--help` documents every setting under its environment name, and a bad
//! model configuration stops the worker at once with a clear message.

use std::process::Command;

fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-worker"))
}

#[test]
fn help_lists_every_environment_name() {
    let help = ml_testkit::cli::assert_help_lists(
        env!("CARGO_BIN_EXE_llm-worker"),
        &[
            "CELERY_BROKER_URL",
            "CELERY_RESULT_BACKEND",
            "REDIS_URL",
            "DATABASE_URL",
            "POSTGRES_HOST",
            "PROMETHEUS_METRICS_PORT",
            "WORKER_CONCURRENCY",
            "WORKER_PREFETCH_MULTIPLIER",
            "MODELS_DIR",
            "LLM_MODEL",
            "LLM_MODEL_PATH",
            "LLM_TOKENIZER_PATH",
            "LLM_TEMPERATURE",
            "LLM_TOP_P",
            "LLM_SEED",
            "LLM_REPEAT_PENALTY",
            "LLM_CONTEXT_TOKENS",
            "LLM_PARALLEL_GENERATIONS",
            "SUMMARIZE_QUEUE",
            "SUMMARIZE_LOCAL_QUEUE",
            "SUMMARIZE_VIDEO_COMBINED_QUEUE",
        ],
    );
    assert!(
        help.contains("[default: 9091]"),
        "metrics port default shown"
    );
}

#[test]
fn a_missing_model_stops_the_worker_with_its_path() {
    let output = worker()
        .env("LLM_MODEL_PATH", "/nonexistent/model.gguf")
        .env("PROMETHEUS_METRICS_PORT", "0")
        .output()
        .unwrap_or_else(|e| panic!("running the worker: {e}"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/model.gguf"), "{stderr}");

    let output = worker()
        .env_remove("LLM_MODEL_PATH")
        .env("MODELS_DIR", "/nonexistent-models")
        .env("LLM_MODEL", "no-such-model")
        .output()
        .unwrap_or_else(|e| panic!("running the worker: {e}"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent-models/no-such-model"),
        "{stderr}"
    );
}
