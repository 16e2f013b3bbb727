//! `llm-worker`: serves `ml.summarize`, `ml.summarize_local` and
//! `ml.summarize_video_combined`, summarising with a local quantized GGUF
//! model on candle. See the README for configuration.

mod app;
mod config;
mod content;
mod handler;
mod metrics;
mod preflight;
mod prompt;
mod request;
mod summarizer;

fn main() -> anyhow::Result<()> {
    ml_runtime::app::main::<app::LlmWorker>()
}
