//! `vector-worker`: serves `ml.embed`, embedding text with a local BERT model
//! into PostgreSQL + pgvector. See the crate README for configuration.

mod app;
mod config;
mod handler;
mod openai;
mod request;
mod service;

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
