//! `whisper-worker`: serves `ml.transcribe` and `ml.transcribe_local`,
//! transcribing audio and video with whisper.cpp into `ml_results`.

mod app;
mod config;
mod handler;
mod progress;
mod request;

use std::time::Duration;

use anyhow::Result;
use clap::Parser;

fn main() -> Result<()> {
    let config = config::Config::parse();
    ml_runtime::telemetry::init(&config.runtime.log_level, &config.runtime.log_format)
        .map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(app::run(config));
    // A transcription still running on a blocking thread after the drain
    // deadline has been requeued by the broker: do not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}
