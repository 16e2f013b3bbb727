//! Start-up and wiring: the database, the model, the health server,
//! migrations, Redis, and the consume loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ml_runtime::{Metrics, Readiness, ResultBackend, Router, Worker, WorkerSpec};
use ml_storage::Store;
use ml_transcription::Transcriber;

use crate::config::Config;
use crate::handler::{TRANSCRIBE_API_TASK, TRANSCRIBE_LOCAL_TASK, TranscribeHandler};
use crate::progress::TranscriptionMetrics;

/// Runs the worker until SIGTERM/SIGINT.
///
/// # Errors
/// When start-up fails: model missing, database or Redis unreachable, port
/// taken, bad media settings.
pub async fn run(config: Config) -> Result<()> {
    let started = Instant::now();
    tracing::info!(?config, "starting whisper-worker");
    let shutdown = ml_runtime::shutdown::on_signal();
    let metrics = Arc::new(Metrics::new("transcribe")?);
    let transcription_metrics = TranscriptionMetrics::register(&metrics)?;

    let store = Store::connect_with_retry(&config.database.store_config(), &shutdown)
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

    let model_path = config.model_path();
    let transcriber_config = config.transcriber();
    let transcriber =
        tokio::task::spawn_blocking(move || Transcriber::load(&model_path, transcriber_config))
            .await
            .context("loading the whisper model crashed")??;
    let model_name = transcriber.model_name().to_owned();
    store
        .prepare(None)
        .await
        .context("applying database migrations")?;
    let expires = Duration::from_secs(config.runtime.result_expires_secs);
    let results =
        ResultBackend::connect_with_retry(config.runtime.result_backend_url(), expires, &shutdown)
            .await
            .context("connecting to the Redis result backend")?;
    readiness.set_model_loaded();

    let handler = Arc::new(
        TranscribeHandler::new(
            Arc::new(transcriber),
            config.media.clone(),
            store,
            metrics.clone(),
            transcription_metrics,
            config.silence_threshold_db,
        )
        .context("media settings")?,
    );
    let router = Router::new()
        .route(TRANSCRIBE_API_TASK, handler.clone())
        .route(TRANSCRIBE_LOCAL_TASK, handler);
    let routes: Vec<(&str, &str)> = config
        .queues
        .iter()
        .flat_map(|queue| {
            [TRANSCRIBE_API_TASK, TRANSCRIBE_LOCAL_TASK].map(|task| (queue.as_str(), task))
        })
        .collect();
    metrics.initialise(&routes, &model_name);
    tracing::info!(
        model = %model_name,
        %address,
        startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "model loaded; consuming"
    );
    let spec = WorkerSpec {
        name: "whisper-worker".to_owned(),
        queues: config.queues.clone(),
        router,
    };
    Worker::new(config.runtime, spec, results, metrics, readiness, shutdown)
        .run()
        .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
