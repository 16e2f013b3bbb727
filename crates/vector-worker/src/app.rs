//! Start-up and wiring: the database, the model and its thread, the HTTP
//! server (health, metrics, embeddings API), migrations, Redis, warm-up, and
//! the consume loop.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use ml_embedding::{ChunkConfig, Embedder, EmbedderConfig};
use ml_runtime::{Metrics, Readiness, ResultBackend, Router, Worker, WorkerSpec};
use ml_storage::Store;

use crate::config::Config;
use crate::handler::{EMBED_BATCH_TASK, EMBED_TASK, EmbedHandler};
use crate::openai;
use crate::service::EmbedService;

/// Runs the worker until SIGTERM/SIGINT.
///
/// # Errors
/// When start-up fails: model missing, database or Redis unreachable,
/// port taken, schema incompatible with the model.
pub async fn run(config: Config) -> Result<()> {
    let started = Instant::now();
    tracing::info!(?config, "starting vector-worker");
    let shutdown = ml_runtime::shutdown::on_signal();
    let metrics = Arc::new(Metrics::new("embed")?);

    let store_config = config.database.store_config();
    let store = Store::connect_with_retry(&store_config, &shutdown)
        .await
        .context("connecting to PostgreSQL")?;
    let readiness = Readiness::new(vec![Arc::new(store.clone())]);

    let model_path = config.model_path();
    let embedder = Embedder::load(&model_path, EmbedderConfig::default())
        .with_context(|| format!("loading the embedding model from {}", model_path.display()))?;
    let dimension = embedder.dimension();
    ml_runtime::cpu::report_compute_threads(
        "candle",
        ml_runtime::cpu::threads_from_env("CANDLE_NUM_THREADS")
            .unwrap_or_else(candle_core::utils::get_num_threads),
    );
    let model_name = embedder.model_name().to_owned();
    let max_tokens = embedder.max_content_tokens();
    let service = EmbedService::start(embedder, metrics.clone(), config.batch_limits())?;
    let address = ml_runtime::health::serve(
        &config.runtime.metrics_host,
        config.metrics_port,
        metrics.clone(),
        readiness.clone(),
        openai::routes(service.clone(), config.api_limits()),
        shutdown.clone(),
    )
    .await?;

    store
        .prepare(Some(dimension))
        .await
        .context("applying database migrations")?;
    let expires = std::time::Duration::from_secs(config.runtime.result_expires_secs);
    let results =
        ResultBackend::connect_with_retry(config.runtime.result_backend_url(), expires, &shutdown)
            .await
            .context("connecting to the Redis result backend")?;
    service
        .embed(vec!["warm-up".to_owned()])
        .await
        .context("warming up the model")?;
    readiness.set_model_loaded();

    let chunking = ChunkConfig {
        max_tokens: config
            .chunk_max_tokens
            .unwrap_or(max_tokens)
            .min(max_tokens),
        fixed_size: config.chunk_size.min(max_tokens),
        overlap: config.chunk_overlap,
    };
    chunking.validate().context("chunking settings")?;
    let handler = Arc::new(EmbedHandler::new(service, store, metrics.clone(), chunking));
    let router = Router::new()
        .route(EMBED_TASK, handler.clone())
        .route(EMBED_BATCH_TASK, handler);
    metrics.initialise(
        &[
            (config.queue.as_str(), EMBED_TASK),
            (config.queue.as_str(), EMBED_BATCH_TASK),
        ],
        &model_name,
    );
    tracing::info!(
        model = %model_name,
        dimension,
        %address,
        startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "model loaded; consuming"
    );
    let spec = WorkerSpec {
        name: "vector-worker".to_owned(),
        queues: vec![config.queue.clone()],
        router,
    };
    Worker::new(config.runtime, spec, results, metrics, readiness, shutdown)
        .run()
        .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
