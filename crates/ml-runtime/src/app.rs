//! The worker skeleton: one start-up and shutdown order for every worker.
//!
//! A worker's settings type implements [`WorkerApp`] (how its model loads
//! and which handlers serve which queues) and its `main` calls [`main`].
//! The order is fixed here, once:
//!
//! 1. settings parsed and checked ([`WorkerApp::check`]): a bad setting
//!    fails before anything loads or connects;
//! 2. the model loaded and warmed up on a blocking thread (the async
//!    threads stay free for signals);
//! 3. PostgreSQL connected, waiting with backoff while it starts;
//! 4. the handlers built ([`WorkerApp::build`]) and the HTTP server started
//!    (`/metrics`, `/healthz`, `/readyz` and the worker's own routes);
//! 5. migrations applied; Redis connected, with backoff;
//! 6. `/readyz` passes once the broker channel is open; tasks are consumed
//!    until SIGTERM or Ctrl-C;
//! 7. in-flight tasks drain within the grace period, then the process exits
//!    without waiting for a model thread the broker has already requeued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ml_storage::Store;

use crate::config::RuntimeArgs;
use crate::handler::{Handler, Router};
use crate::health::{self, HttpRouter, Readiness};
use crate::metrics::Metrics;
use crate::results::ResultBackend;
use crate::worker::{Worker, WorkerSpec};

/// What the skeleton hands to [`WorkerApp::build`].
pub struct Services {
    /// The connected database (migrations are applied before the first task).
    pub store: Store,
    /// The worker's metrics registry.
    pub metrics: Arc<Metrics>,
}

/// What a built worker serves: its queues and task names, their handlers,
/// and extra HTTP routes.
pub struct Serving {
    model_name: String,
    /// `(queue, task name)`, in the order routed.
    routes: Vec<(String, &'static str)>,
    router: Router,
    http: HttpRouter,
}

impl Serving {
    /// Nothing served yet by the model called `model_name` (for logs and
    /// `ml_worker_info`).
    pub fn new(model_name: impl Into<String>) -> Self {
        Self {
            model_name: model_name.into(),
            routes: Vec::new(),
            router: Router::new(),
            http: HttpRouter::new(),
        }
    }

    /// Consumes `queue` and runs `tasks` arriving on it with `handler`.
    #[must_use]
    pub fn route<H: Handler>(
        mut self,
        queue: &str,
        tasks: &[&'static str],
        handler: &Arc<H>,
    ) -> Self {
        for &task in tasks {
            self.routes.push((queue.to_owned(), task));
            self.router = self.router.route(task, handler.clone());
        }
        self
    }

    /// Serves `http` beside `/metrics`, `/healthz` and `/readyz`.
    #[must_use]
    pub fn http(mut self, http: HttpRouter) -> Self {
        self.http = http;
        self
    }
}

/// A worker, implemented by its settings type (command line and
/// environment): how its model loads and warms up, and the handlers it
/// builds. The settings flatten [`RuntimeArgs`]; their command name
/// (`vector-worker`) names the program in logs and on the AMQP connection.
pub trait WorkerApp: clap::Parser + std::fmt::Debug + Send + Sync + 'static {
    /// The `worker_type` label of its metrics: `embed`, `summarize` or
    /// `transcribe`.
    const WORKER_TYPE: &'static str;
    /// The loaded model.
    type Model: Send + 'static;

    /// Checks the settings that need no model and no connection.
    ///
    /// # Errors
    /// The setting that is wrong, and why.
    fn check(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Loads the model (on a blocking thread).
    ///
    /// # Errors
    /// When the model is missing, unreadable or unsupported; the error
    /// names the file.
    fn load(&self) -> anyhow::Result<Self::Model>;

    /// The library that computes and with how many threads, reported (and
    /// warned about when over the CPU limit) once the model is loaded.
    fn compute_threads(&self) -> (&'static str, usize) {
        ("candle", crate::cpu::candle_threads())
    }

    /// Runs the model once (on a blocking thread) so that the first task
    /// does not pay for first-use set-up.
    ///
    /// # Errors
    /// When the model fails on the warm-up input.
    fn warm_up(model: &Self::Model) -> anyhow::Result<()>;

    /// The vector dimension the `embeddings` table must have, for a worker
    /// that stores vectors.
    fn embedding_dimension(_model: &Self::Model) -> Option<usize> {
        None
    }

    /// Builds the handlers and HTTP routes (inside the Tokio runtime).
    ///
    /// # Errors
    /// When a setting that depends on the model is wrong, or a thread
    /// cannot be started.
    fn build(&self, model: Self::Model, services: Services) -> anyhow::Result<Serving>;
}

/// The whole `main` of a worker binary: compute threads, settings, logging
/// and trace export, the Tokio runtime, [`run`], and an exit that flushes
/// the last spans but does not wait for a model thread still busy after the
/// drain deadline.
///
/// Call it as the first statement of `main`.
///
/// # Errors
/// When start-up fails (see [`run`]).
#[allow(unsafe_code)]
pub fn main<A: WorkerApp>() -> anyhow::Result<()> {
    // SAFETY: called first in `main` (documented above): no other thread
    // runs yet to read or write the environment.
    unsafe { crate::cpu::default_compute_threads() };
    let (config, args) = parse::<A>();
    crate::telemetry::init(&args, &name::<A>()).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(run(Arc::new(config), args));
    // A task still running on a blocking thread after the drain deadline has
    // been requeued by the broker: do not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    crate::telemetry::shutdown();
    outcome
}

/// The program's name: its settings' command name.
fn name<A: WorkerApp>() -> String {
    A::command().get_name().to_owned()
}

/// The worker's settings and, read from the same matches, the
/// [`RuntimeArgs`] flattened into them; exits as clap does on a bad flag.
fn parse<A: WorkerApp>() -> (A, RuntimeArgs) {
    use clap::FromArgMatches as _;
    let matches = A::command().get_matches();
    let parsed = A::from_arg_matches(&matches)
        .and_then(|config| Ok((config, RuntimeArgs::from_arg_matches(&matches)?)));
    parsed.unwrap_or_else(|error| error.format(&mut A::command()).exit())
}

/// Starts the worker with its settings `config` (whose shared part is
/// `args`) in the order the module documents and consumes until SIGTERM
/// or Ctrl-C.
///
/// # Errors
/// When start-up fails: a bad setting, the model missing, PostgreSQL or
/// Redis refusing (not merely unreachable: that is waited out), the port
/// taken, the schema incompatible with the model.
pub async fn run<A: WorkerApp>(config: Arc<A>, args: RuntimeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let name = name::<A>();
    tracing::info!(config = ?*config, "starting {name}");
    config.check().context("checking the settings")?;
    let shutdown = crate::shutdown::on_signal();
    let metrics = Arc::new(Metrics::new(A::WORKER_TYPE)?);

    let model = load_and_warm_up::<A>(config.clone()).await?;
    let (library, threads) = config.compute_threads();
    crate::cpu::report_compute_threads(library, threads);
    let dimension = A::embedding_dimension(&model);
    let store = crate::storage::connect_with_retry(&args.database.store_config(), &shutdown)
        .await
        .context("connecting to PostgreSQL")?;
    let readiness = Readiness::new(vec![Arc::new(store.clone())]);
    let services = Services {
        store: store.clone(),
        metrics: metrics.clone(),
    };
    let serving = config.build(model, services)?;
    let address = health::serve(
        &args.metrics_host,
        args.metrics_port,
        args.http_limits(),
        metrics.clone(),
        readiness.clone(),
        serving.http,
        shutdown.clone(),
    )
    .await?;
    store
        .prepare(dimension)
        .await
        .context("applying database migrations")?;
    let results = ResultBackend::connect_with_retry(
        args.result_backend_url(),
        Duration::from_secs(args.result_expires_secs),
        &shutdown,
    )
    .await
    .context("connecting to the Redis result backend")?;
    readiness.set_model_loaded();

    let pairs: Vec<(&str, &str)> = serving
        .routes
        .iter()
        .map(|(queue, task)| (queue.as_str(), *task))
        .collect();
    metrics.initialise(&pairs, &serving.model_name);
    let mut queues: Vec<String> = Vec::new();
    for (queue, _) in &serving.routes {
        if !queues.contains(queue) {
            queues.push(queue.clone());
        }
    }
    tracing::info!(
        model = %serving.model_name,
        %address,
        startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "model loaded; consuming"
    );
    let spec = WorkerSpec {
        name,
        queues,
        router: serving.router,
    };
    Worker::new(args, spec, results, metrics, readiness, shutdown)
        .run()
        .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// [`WorkerApp::load`] then [`WorkerApp::warm_up`], on a blocking thread.
async fn load_and_warm_up<A: WorkerApp>(config: Arc<A>) -> anyhow::Result<A::Model> {
    tokio::task::spawn_blocking(move || {
        let model = config.load()?;
        A::warm_up(&model).context("warming up the model")?;
        Ok(model)
    })
    .await
    .context("the model loading thread crashed")?
}
