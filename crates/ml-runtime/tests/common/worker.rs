//! The real [`Worker`] on the test's runtime, and the settings it gets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use ml_runtime::{
    Metrics, Readiness, ResultBackend, Router, RuntimeArgs, RuntimeError, Worker, WorkerSpec,
};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{PATIENCE, Stub, TASK, TestQueue, wait_state};

/// The runtime settings tests vary; everything else is the default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `WORKER_CONCURRENCY`.
    pub concurrency: usize,
    /// `WORKER_PREFETCH_MULTIPLIER`.
    pub prefetch_multiplier: u16,
    /// `TASK_MAX_RETRIES`.
    pub max_retries: u32,
    /// `TASK_RETRY_BACKOFF_SECS`, also used as the backoff cap.
    pub retry_backoff_secs: f64,
    /// `WORKER_SHUTDOWN_TIMEOUT`.
    pub shutdown_timeout_secs: u64,
    /// `CELERY_RESULT_BACKEND`, when not the Redis of the environment.
    pub result_backend: Option<String>,
    /// `TASK_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
}

impl Default for Settings {
    /// Two tasks at once, three retries 25–50 ms apart, 30 s of grace,
    /// bodies up to 1 MiB.
    fn default() -> Self {
        Self {
            concurrency: 2,
            prefetch_multiplier: 4,
            max_retries: 3,
            retry_backoff_secs: 0.05,
            shutdown_timeout_secs: 30,
            result_backend: None,
            max_body_bytes: 1 << 20,
        }
    }
}

/// Parses [`RuntimeArgs`] the way a worker does, so that broker and Redis
/// addresses come from the environment like everywhere else.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl Settings {
    fn runtime_args(&self) -> Result<RuntimeArgs> {
        let backoff = self.retry_backoff_secs.to_string();
        let mut cli = Cli::try_parse_from([
            "process-test",
            "--concurrency",
            &self.concurrency.to_string(),
            "--prefetch-multiplier",
            &self.prefetch_multiplier.to_string(),
            "--max-retries",
            &self.max_retries.to_string(),
            "--retry-backoff-secs",
            &backoff,
            "--retry-backoff-max-secs",
            &backoff,
            "--shutdown-timeout-secs",
            &self.shutdown_timeout_secs.to_string(),
            "--result-expires-secs",
            "600",
            "--max-body-bytes",
            &self.max_body_bytes.to_string(),
        ])?;
        if let Some(url) = &self.result_backend {
            cli.runtime.result_backend = Some(url.clone());
        }
        Ok(cli.runtime)
    }
}

/// `Worker::run` on a task of the test's runtime, consuming one queue with
/// the stub routed under [`TASK`].
pub struct RunningWorker {
    shutdown: CancellationToken,
    run: JoinHandle<Result<(), RuntimeError>>,
    readiness: Readiness,
    /// The worker's metrics (its own registry).
    pub metrics: Arc<Metrics>,
}

impl RunningWorker {
    /// Starts a worker on `queue` with `settings`.
    ///
    /// # Errors
    /// When the settings do not parse or Redis is unreachable.
    pub async fn start(queue: &TestQueue, stub: Arc<Stub>, settings: &Settings) -> Result<Self> {
        let args = settings.runtime_args()?;
        let results = ResultBackend::connect(
            args.result_backend_url(),
            Duration::from_secs(args.result_expires_secs),
        )
        .await
        .context("connecting to Redis (is scripts/setup done?)")?;
        let metrics = Arc::new(Metrics::new("test")?);
        let shutdown = CancellationToken::new();
        let spec = WorkerSpec {
            name: "process-test".into(),
            queues: vec![queue.name.clone()],
            router: Router::new().route(TASK, stub),
        };
        // No model here: readiness then hangs on the broker channel alone.
        let readiness = Readiness::default();
        readiness.set_model_loaded();
        let worker = Worker::new(
            args,
            spec,
            results,
            metrics.clone(),
            readiness.clone(),
            shutdown.clone(),
        );
        Ok(Self {
            shutdown,
            run: tokio::spawn(worker.run()),
            readiness,
            metrics,
        })
    }

    /// Fires the shutdown token (what SIGTERM does).
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Whether `run` has returned.
    pub fn is_finished(&self) -> bool {
        self.run.is_finished()
    }

    /// Waits until the worker no longer consumes: its consumers are
    /// cancelled (the broker confirmed it) and readiness reports the broker
    /// channel closed. A quorum queue still counts a cancelled consumer
    /// while it holds unacknowledged deliveries, so the queue's consumer
    /// count cannot tell this.
    ///
    /// # Errors
    /// When it still consumes after [`PATIENCE`].
    pub async fn wait_not_consuming(&self) -> Result<()> {
        ml_testkit::wait::until("the worker to stop consuming", PATIENCE, || async {
            self.readiness.evaluate().await.is_err().then_some(())
        })
        .await
    }

    /// Deliveries of [`TASK`] taken from `queue` so far (counted before the
    /// eta wait and the concurrency permit), read from `/metrics` as
    /// Prometheus would.
    pub fn received(&self, queue: &TestQueue) -> u64 {
        let queue_label = format!("queue=\"{}\"", queue.name);
        let task_label = format!("task=\"{TASK}\"");
        self.metrics
            .render()
            .lines()
            .filter(|line| line.starts_with("celery_task_received_total{"))
            .filter(|line| line.contains(&queue_label) && line.contains(&task_label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until `count` deliveries of [`TASK`] were taken from `queue`.
    ///
    /// # Errors
    /// When they are not within [`PATIENCE`].
    pub async fn wait_received(&self, queue: &TestQueue, count: u64) -> Result<()> {
        ml_testkit::wait::until(&format!("{count} deliveries"), PATIENCE, || async {
            (self.received(queue) >= count).then_some(())
        })
        .await
    }

    /// Waits until Redis holds `state` for `task_id`, then stops the worker
    /// as [`RunningWorker::stop`] does; returns the task's meta.
    ///
    /// # Errors
    /// When the state is not reached within [`PATIENCE`], or stopping fails.
    pub async fn stop_at_state(self, task_id: &str, state: &str) -> Result<Value> {
        let meta = wait_state(task_id, state).await?;
        self.stop().await?;
        Ok(meta)
    }

    /// Shuts the worker down and waits until `run` has returned Ok (the
    /// in-flight tasks drained and the connection closed).
    ///
    /// # Errors
    /// When `run` fails or panics, or has not returned within [`PATIENCE`]
    /// (whatever the grace period: tests that set a longer one expect the
    /// worker not to need it).
    pub async fn stop(self) -> Result<()> {
        self.begin_shutdown();
        match tokio::time::timeout(PATIENCE, self.run).await {
            Ok(joined) => Ok(joined??),
            Err(_) => bail!("the worker did not stop within {PATIENCE:?}"),
        }
    }
}
