//! Locating the real models the tests run on.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use ml_llm::{Llm, LlmConfig};
use ml_testkit::env::models_dir;

/// The default model, SmolLM2-135M-Instruct Q4_1. Never skipped: its
/// absence fails the test.
pub fn smollm2_path() -> PathBuf {
    let path = models_dir().join("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models (the default model's tests never skip)",
        path.display()
    );
    path
}

/// The larger model, Qwen2.5-Coder-0.5B-Instruct Q4_K_M (in the default
/// set too: its absence fails the test).
pub fn qwen_path() -> PathBuf {
    let path =
        models_dir().join("qwen2.5-coder-0.5b-instruct/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models qwen2.5-coder-0.5b-instruct",
        path.display()
    );
    path
}

/// SmolLM2 loaded once per test binary, with a small context for speed.
pub fn smollm2() -> Arc<Llm> {
    static MODEL: OnceLock<Arc<Llm>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let mut config = LlmConfig::new(smollm2_path());
            config.context_tokens = Some(1024);
            Arc::new(Llm::load(&config).unwrap_or_else(|e| panic!("loading SmolLM2: {e}")))
        })
        .clone()
}
