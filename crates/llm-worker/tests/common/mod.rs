//! Shared set-up for the llm-worker's integration tests: a real worker on
//! fresh queues (one per contract queue), the real model, RabbitMQ,
//! PostgreSQL and Redis.

#![allow(dead_code)] // each test binary uses a different subset

use anyhow::Result;
use ml_testkit::{Harness, TestBroker, WorkerKind};
use serde_json::json;
use uuid::Uuid;

/// The worker under test; `queue_env` is its `ml.summarize` queue.
pub const LLM_WORKER: WorkerKind = WorkerKind {
    binary: env!("CARGO_BIN_EXE_llm-worker"),
    queue_prefix: "ml.summarize",
    queue_env: "SUMMARIZE_QUEUE",
    task_type: "summarize_llm",
};

/// Task name of `ml.summarize`.
pub const SUMMARIZE_TASK: &str = "llm_service.tasks.summarize_content";
/// Task name of `ml.summarize_video_combined`.
pub const VIDEO_COMBINED_TASK: &str = "summarize_video_combined";

/// A ready llm-worker whose three queues are fresh test queues.
pub struct Summarizer {
    /// The worker on its `ml.summarize` stand-in.
    pub harness: Harness,
    /// Stands for `ml.summarize_local`.
    pub local_queue: String,
    /// Stands for `ml.summarize_video_combined`.
    pub video_queue: String,
}

impl Summarizer {
    /// Starts the worker with `extra_env`.
    pub async fn start(extra_env: &[(&str, &str)]) -> Result<Self> {
        let local_queue = TestBroker::unique_queue("ml.summarize_local");
        let video_queue = TestBroker::unique_queue("ml.summarize_video_combined");
        let mut env_vars = vec![
            ("SUMMARIZE_LOCAL_QUEUE", local_queue.as_str()),
            ("SUMMARIZE_VIDEO_COMBINED_QUEUE", video_queue.as_str()),
            ("LLM_CONTEXT_TOKENS", "2048"),
        ];
        env_vars.extend_from_slice(extra_env);
        Ok(Self {
            harness: Harness::start(LLM_WORKER, &env_vars).await?,
            local_queue,
            video_queue,
        })
    }

    /// The test queue standing for the contract queue `routing_key`.
    pub fn queue_for(&self, routing_key: &str) -> &str {
        match routing_key {
            "ml.summarize_local" => &self.local_queue,
            "ml.summarize_video_combined" => &self.video_queue,
            _ => &self.harness.queue,
        }
    }

    /// Publishes a summary request of `text` for a new share; returns it.
    pub async fn summarize(&self, text: &str, content_type: &str, style: &str) -> Result<Uuid> {
        let share = Uuid::new_v4();
        self.harness
            .publish(
                SUMMARIZE_TASK,
                &Uuid::new_v4().to_string(),
                json!({
                    "share_id": share,
                    "content": {"text": text, "contentType": content_type},
                    "options": {"style": style},
                }),
            )
            .await?;
        Ok(share)
    }

    /// Waits for the completed row of `share_id` and returns its summary.
    pub async fn wait_summary(&self, share_id: Uuid) -> Result<String> {
        let data = self
            .harness
            .wait_result_status(share_id, "completed")
            .await?;
        Ok(data["summary"].as_str().unwrap_or_default().to_owned())
    }

    /// Deletes the test's queues.
    pub async fn cleanup(self) {
        for queue in [&self.local_queue, &self.video_queue] {
            self.harness.broker.delete(queue).await;
        }
        self.harness.cleanup().await;
    }
}

/// Words of `text` (whitespace-separated).
pub fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Whether `summary` names at least one of `nouns` (case-insensitive).
pub fn mentions_any(summary: &str, nouns: &[&str]) -> bool {
    let lower = summary.to_lowercase();
    nouns
        .iter()
        .any(|noun| lower.contains(&noun.to_lowercase()))
}
