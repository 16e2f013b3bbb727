//! Start-up and wiring: the database, the model, the health server,
//! migrations, Redis, warm-up, and the consume loop.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use ml_llm::{GenerationParams, Llm, Message};
use ml_runtime::backoff::retry_transient;
use ml_runtime::{Metrics, Readiness, ResultBackend, Router, Worker, WorkerSpec};
use ml_storage::Store;

use crate::config::Config;
use crate::handler::{SUMMARIZE_LOCAL_TASK, SUMMARIZE_TASK, SummarizeHandler, VIDEO_COMBINED_TASK};
use crate::metrics::SpeedMetrics;
use crate::summarizer::Summarizer;

/// Runs the worker until SIGTERM/SIGINT.
///
/// # Errors
/// When start-up fails: model missing or unsupported, database or Redis
/// unreachable, port taken.
pub async fn run(config: Config) -> Result<()> {
    let started = Instant::now();
    tracing::info!(?config, "starting llm-worker");
    let shutdown = ml_runtime::shutdown::on_signal();
    let metrics = Arc::new(Metrics::new("summarize")?);

    // The model first: a missing or unsupported model fails at once.
    let llm_config = config.llm_config()?;
    let model_path = llm_config.model_path.clone();
    let llm = tokio::task::spawn_blocking(move || Llm::load(&llm_config))
        .await
        .context("the model loading thread crashed")?
        .with_context(|| format!("loading the language model from {}", model_path.display()))?;
    let llm = Arc::new(llm);
    ml_runtime::cpu::report_compute_threads(
        "candle",
        ml_runtime::cpu::threads_from_env("CANDLE_NUM_THREADS")
            .unwrap_or_else(candle_core::utils::get_num_threads),
    );
    let store_config = config.database.store_config();
    let store = Store::connect_with_retry(&store_config, &shutdown)
        .await
        .context("connecting to PostgreSQL")?;
    let readiness = Readiness::new(vec![Arc::new(store.clone())]);

    let address = ml_runtime::health::serve(
        &config.runtime.metrics_host,
        config.metrics_port,
        metrics.clone(),
        readiness.clone(),
        ml_runtime::health::HttpRouter::new(),
        shutdown.clone(),
    )
    .await?;

    store
        .prepare(None)
        .await
        .context("applying database migrations")?;
    let expires = std::time::Duration::from_secs(config.runtime.result_expires_secs);
    let redis_unavailable =
        |e: &redis::RedisError| e.is_io_error() || e.is_connection_refusal() || e.is_timeout();
    let results = retry_transient("Redis", &shutdown, redis_unavailable, || {
        ResultBackend::connect(config.runtime.result_backend_url(), expires)
    })
    .await
    .context("connecting to the Redis result backend")?;
    warm_up(llm.clone()).await?;
    readiness.set_model_loaded();

    let summarizer = Summarizer::new(
        llm.clone(),
        config.parallel_generations,
        config.sampling(),
        config.max_input_words,
    );
    let handler = Arc::new(SummarizeHandler::new(
        summarizer,
        store,
        metrics.clone(),
        SpeedMetrics::register(&metrics)?,
        config.default_max_tokens,
    ));
    let routes = [
        (config.queue.as_str(), SUMMARIZE_TASK),
        (config.local_queue.as_str(), SUMMARIZE_LOCAL_TASK),
        (config.video_combined_queue.as_str(), VIDEO_COMBINED_TASK),
    ];
    let router = routes.iter().fold(Router::new(), |router, (_, task)| {
        router.route(task, handler.clone())
    });
    metrics.initialise(&routes, llm.name());
    tracing::info!(
        model = %llm.name(),
        architecture = llm.architecture().as_str(),
        context_tokens = llm.context_tokens(),
        requantized = llm.requantized(),
        %address,
        startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "model loaded; consuming"
    );
    let spec = WorkerSpec {
        name: "llm-worker".to_owned(),
        queues: routes
            .iter()
            .map(|(queue, _)| (*queue).to_owned())
            .collect(),
        router,
    };
    Worker::new(config.runtime, spec, results, metrics, readiness, shutdown)
        .run()
        .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// One token through the model, so the first task does not pay for
/// first-use set-up.
async fn warm_up(llm: Arc<Llm>) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let params = GenerationParams {
            max_new_tokens: 1,
            ..GenerationParams::default()
        };
        llm.generate(&[Message::user("Hello")], &params)
    })
    .await
    .context("the warm-up thread crashed")?
    .context("warming up the model")?;
    Ok(())
}
