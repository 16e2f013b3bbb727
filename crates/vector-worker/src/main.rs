//! `vector-worker`: serves `ml.embed`, embedding text with a local BERT model
//! into PostgreSQL + pgvector. See the crate README for configuration.

mod config;
mod handler;
mod limits;
mod openai;
mod request;
mod service;

use std::sync::Arc;

use anyhow::Context as _;
use ml_embedding::{Embedder, EmbedderConfig};
use ml_runtime::app::{Services, Serving, WorkerApp};

use crate::config::Config;
use crate::handler::{EMBED_BATCH_TASK, EMBED_TASK, EmbedBatch, EmbedHandler, EmbedOne};
use crate::service::EmbedService;

fn main() -> anyhow::Result<()> {
    ml_runtime::app::main::<Config>()
}

impl WorkerApp for Config {
    const WORKER_TYPE: &'static str = "embed";
    type Model = Embedder;

    /// The chunk sizes, before the model caps them.
    fn check(&self) -> anyhow::Result<()> {
        self.chunking(usize::MAX)
            .validate()
            .context("chunking settings")
    }

    fn load(&self) -> anyhow::Result<Embedder> {
        let path = self.model_path();
        Embedder::load(&path, EmbedderConfig::default())
            .with_context(|| format!("loading the embedding model from {}", path.display()))
    }

    fn warm_up(embedder: &Embedder) -> anyhow::Result<()> {
        Ok(embedder.warm_up()?)
    }

    fn embedding_dimension(embedder: &Embedder) -> Option<usize> {
        Some(embedder.dimension())
    }

    fn build(&self, embedder: Embedder, services: Services) -> anyhow::Result<Serving> {
        let serving = Serving::new(embedder.model_name());
        let chunking = self.chunking(embedder.max_content_tokens());
        chunking.validate().context("chunking settings")?;
        let service = EmbedService::start(embedder, services.metrics.clone(), self.batch_limits())?;
        let http = openai::routes(service.clone(), self.api_limits(), self.api_key.clone());
        let limits = self.task_limits();
        let handler = Arc::new(EmbedHandler::new(service, services, chunking, limits));
        let (one, batch) = (EmbedOne(handler.clone()), EmbedBatch(handler));
        Ok(serving
            .http(http)
            .route(&self.queue, &[EMBED_TASK], &Arc::new(one))
            .route(&self.queue, &[EMBED_BATCH_TASK], &Arc::new(batch)))
    }
}
