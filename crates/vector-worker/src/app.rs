//! vector-worker on the worker skeleton: the BERT model, the embed handler
//! and the embeddings API.

use std::sync::Arc;

use anyhow::Context as _;
use ml_embedding::{Embedder, EmbedderConfig};
use ml_runtime::RuntimeArgs;
use ml_runtime::app::{Services, Serving, WorkerApp};

use crate::config::Config;
use crate::handler::{EMBED_BATCH_TASK, EMBED_TASK, EmbedBatch, EmbedHandler, EmbedOne};
use crate::{openai, service::EmbedService};

/// Embeddings with a local BERT model into PostgreSQL + pgvector.
pub struct VectorWorker;

impl WorkerApp for VectorWorker {
    const NAME: &'static str = "vector-worker";
    const WORKER_TYPE: &'static str = "embed";
    type Config = Config;
    type Model = Embedder;

    fn runtime(config: &Config) -> &RuntimeArgs {
        &config.runtime
    }

    /// The chunk sizes, before the model caps them.
    fn check(config: &Config) -> anyhow::Result<()> {
        let chunking = config.chunking(usize::MAX);
        chunking.validate().context("chunking settings")
    }

    fn load(config: &Config) -> anyhow::Result<Embedder> {
        let path = config.model_path();
        Embedder::load(&path, EmbedderConfig::default())
            .with_context(|| format!("loading the embedding model from {}", path.display()))
    }

    fn warm_up(embedder: &Embedder) -> anyhow::Result<()> {
        Ok(embedder.warm_up()?)
    }

    fn embedding_dimension(embedder: &Embedder) -> Option<usize> {
        Some(embedder.dimension())
    }

    fn build(config: &Config, embedder: Embedder, services: Services) -> anyhow::Result<Serving> {
        let serving = Serving::new(embedder.model_name());
        let chunking = config.chunking(embedder.max_content_tokens());
        chunking.validate().context("chunking settings")?;
        let service =
            EmbedService::start(embedder, services.metrics.clone(), config.batch_limits())?;
        let http = openai::routes(service.clone(), config.api_limits());
        let handler = Arc::new(EmbedHandler::new(
            service,
            services.store,
            services.metrics,
            chunking,
        ));
        Ok(serving
            .http(http)
            .route(
                &config.queue,
                &[EMBED_TASK],
                &Arc::new(EmbedOne(handler.clone())),
            )
            .route(
                &config.queue,
                &[EMBED_BATCH_TASK],
                &Arc::new(EmbedBatch(handler)),
            ))
    }
}
