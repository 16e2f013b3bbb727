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

use anyhow::Result;
use clap::Parser;

#[allow(unsafe_code)]
fn main() -> Result<()> {
    // SAFETY: the first statement of `main`: no other thread runs yet.
    unsafe { ml_runtime::cpu::default_compute_threads() };
    let config = config::Config::parse();
    ml_runtime::telemetry::init(&config.runtime.log_level, &config.runtime.log_format)
        .map_err(anyhow::Error::msg)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(app::run(config))
}
