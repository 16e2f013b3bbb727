//! `vector-worker`: serves `ml.embed`, embedding text with a local BERT model
//! into PostgreSQL + pgvector. See the crate README for configuration.

mod app;
mod config;
mod handler;
mod openai;
mod request;
mod service;

fn main() -> anyhow::Result<()> {
    ml_runtime::app::main::<app::VectorWorker>()
}
