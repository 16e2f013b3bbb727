//! Drives the real [`Worker`] against the real RabbitMQ (`CELERY_BROKER_URL`)
//! and Redis (`REDIS_URL`) with a scripted [`Handler`], and reads back what
//! the worker left behind: queue contents, dead letters and Celery results.
//!
//! | item | what |
//! |---|---|
//! | [`Stub`] | the handler: outcome chosen by the task's `outcome` kwarg, optionally held at a gate, every call and `on_failure` recorded |
//! | [`Settings`] | the runtime settings a test varies |
//! | [`RunningWorker`] | `Worker::new(..).run()` spawned on the test's runtime, stopped through its shutdown token |
//! | [`TestQueue`] | a fresh `<name>.test-<hex>` queue (and its `.dead`), publishing to it, counting and taking its messages |
//! | [`meta`], [`wait_state`] | the `celery-task-meta-<id>` value in Redis |
//! | [`relay`] | a relay in front of Redis that a test can cut |
//!
//! Waits use short real durations, not paused Tokio time:
//! `ResultBackend::connect` opens its Redis connection with redis-rs's
//! default 1 s connection and 500 ms response timeouts, which are Tokio
//! timers. With time paused the runtime jumps to the next timer whenever it
//! idles on a socket, so those fire while Redis is still answering (tried:
//! connecting fails, and once connected about two stores in three time
//! out). So the retry backoff is tens of milliseconds and `eta`s are a
//! second or two away; only the test whose path never touches Redis (a
//! far-future eta held for the ten-minute limit) pauses time.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clap::Parser;
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Connection, ConnectionProperties};
use ml_runtime::{
    Handler, Metrics, Readiness, ResultBackend, Router, RuntimeArgs, RuntimeError, Task, TaskError,
    Worker, WorkerSpec,
};
use ml_testkit::broker::Received;
use ml_testkit::{Fixture, TestBroker};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod relay;

/// The task name the stub is routed under.
pub const TASK: &str = "tests.process.stub";

/// How long a test waits for something the worker is about to do. Reaching
/// it fails the test; it is a deadline, never a measure of speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One call of [`Stub::handle`].
#[derive(Debug, Clone)]
pub struct Call {
    /// The task it was given.
    pub task: Task,
    /// Wall-clock time of the call (compared with the task's `eta`).
    pub at: DateTime<Utc>,
}

/// A handler whose result is chosen by the task's `outcome` kwarg
/// (see [`scripted`]), that records every call and every `on_failure`,
/// and that, when gated, holds each call until [`Stub::release`].
#[derive(Default)]
pub struct Stub {
    gate: Option<Semaphore>,
    calls: Mutex<Vec<Call>>,
    failures: Mutex<Vec<(String, TaskError)>>,
}

impl Stub {
    /// A stub that answers at once.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A stub whose calls each wait for one [`Stub::release`].
    pub fn gated() -> Arc<Self> {
        Arc::new(Self {
            gate: Some(Semaphore::new(0)),
            ..Self::default()
        })
    }

    /// Lets `calls` held (or future) calls of a gated stub finish.
    pub fn release(&self, calls: usize) {
        if let Some(gate) = &self.gate {
            gate.add_permits(calls);
        }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The task id and error of every `on_failure` so far, in order.
    pub fn failures(&self) -> Vec<(String, TaskError)> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the stub has been called `count` times.
    ///
    /// # Errors
    /// When it is not within [`PATIENCE`].
    pub async fn wait_calls(&self, count: usize) -> Result<Vec<Call>> {
        ml_testkit::wait::until(&format!("{count} handler calls"), PATIENCE, || async {
            let calls = self.calls();
            (calls.len() >= count).then_some(calls)
        })
        .await
    }
}

#[async_trait]
impl Handler for Stub {
    async fn handle(&self, task: &Task) -> Result<Value, TaskError> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Call {
                task: task.clone(),
                at: Utc::now(),
            });
        if let Some(gate) = &self.gate {
            let permit = gate
                .acquire()
                .await
                .map_err(|_| TaskError::Permanent("stub gate closed".into()))?;
            permit.forget();
        }
        scripted(task)
    }

    async fn on_failure(&self, task: &Task, error: &TaskError) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((task.id.clone(), error.clone()));
    }
}

/// The stub's answer to `task`, by its `outcome` kwarg: `transient`,
/// `permanent` and `invalid` fail that way; anything else (or none)
/// succeeds with `{"handled": <task id>}`.
pub fn scripted(task: &Task) -> Result<Value, TaskError> {
    match task.kwargs.get("outcome").and_then(Value::as_str) {
        Some("transient") => Err(TaskError::Transient("stub dependency is down".into())),
        Some("permanent") => Err(TaskError::Permanent("stub cannot read this input".into())),
        Some("invalid") => Err(TaskError::InvalidArguments("stub needs a share_id".into())),
        _ => Ok(json!({"handled": task.id})),
    }
}

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
}

impl Default for Settings {
    /// Two tasks at once, three retries 25–50 ms apart, 30 s of grace.
    fn default() -> Self {
        Self {
            concurrency: 2,
            prefetch_multiplier: 4,
            max_retries: 3,
            retry_backoff_secs: 0.05,
            shutdown_timeout_secs: 30,
            result_backend: None,
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
    /// eta wait and the concurrency permit).
    pub fn received(&self, queue: &TestQueue) -> u64 {
        self.metrics
            .task_received
            .with_label_values(&[queue.name.as_str(), TASK])
            .get()
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

/// A queue of the test's own, declared like the gateway does (with its
/// `.dead` queue). Names end in `.test-<hex>`, so `scripts/test` removes
/// any a failed test leaves behind; [`TestQueue::delete`] removes them.
pub struct TestQueue {
    /// The queue's name.
    pub name: String,
    broker: TestBroker,
    _connection: Connection,
    inspect: Channel,
}

impl TestQueue {
    /// Declares a fresh `ml.process.test-<hex>` and its dead-letter queue.
    ///
    /// # Errors
    /// When the broker is unreachable.
    pub async fn declare() -> Result<Self> {
        let name = TestBroker::unique_queue("ml.process");
        let broker = TestBroker::connect().await?;
        broker.declare_queue(&name).await?;
        let connection = Connection::connect(
            &ml_testkit::env::broker_url(),
            ConnectionProperties::default(),
        )
        .await?;
        let inspect = connection.create_channel().await?;
        Ok(Self {
            name,
            broker,
            _connection: connection,
            inspect,
        })
    }

    /// The dead-letter queue, `<name>.dead`.
    pub fn dead(&self) -> String {
        format!("{}{}", self.name, ml_runtime::DEAD_LETTER_SUFFIX)
    }

    /// Publishes a gateway-encoded [`TASK`] with `kwargs` and the body
    /// fields in `extra` (e.g. `eta`).
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish(&self, id: &str, kwargs: Value, extra: &[(&str, Value)]) -> Result<()> {
        self.publish_named(TASK, id, kwargs, extra).await
    }

    /// Publishes a gateway-encoded task called `task_name`.
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish_named(
        &self,
        task_name: &str,
        id: &str,
        kwargs: Value,
        extra: &[(&str, Value)],
    ) -> Result<()> {
        self.broker
            .publish_gateway_task(&self.name, id, task_name, kwargs, extra)
            .await
    }

    /// Publishes `body` as a JSON message with AMQP `headers`, exactly as
    /// given (for messages the worker cannot decode).
    ///
    /// # Errors
    /// When the broker does not confirm it.
    pub async fn publish_raw(&self, body: &[u8], headers: Map<String, Value>) -> Result<()> {
        let message = Fixture {
            name: "raw".into(),
            routing_key: self.name.clone(),
            properties: json!({"content_type": "application/json", "content_encoding": "utf-8"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            headers,
            body: body.to_vec(),
            json: None,
        };
        self.broker.publish_fixture(&message, &self.name).await
    }

    /// Ready messages and consumers of `queue`.
    async fn counts(&self, queue: &str) -> Result<(u32, u32)> {
        let declared = self
            .inspect
            .queue_declare(
                ShortString::from(queue),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok((declared.message_count(), declared.consumer_count()))
    }

    /// Waits until `queue` holds exactly `count` ready messages.
    ///
    /// # Errors
    /// When it does not within [`PATIENCE`].
    pub async fn wait_ready(&self, queue: &str, count: u32) -> Result<()> {
        self.wait_ready_within(queue, count, PATIENCE).await
    }

    /// [`TestQueue::wait_ready`] with a deadline of its own.
    ///
    /// # Errors
    /// When it does not within `deadline`.
    pub async fn wait_ready_within(
        &self,
        queue: &str,
        count: u32,
        deadline: Duration,
    ) -> Result<()> {
        ml_testkit::wait::until(
            &format!("{count} ready messages in {queue}"),
            deadline,
            || async { (self.counts(queue).await.ok()?.0 == count).then_some(()) },
        )
        .await
    }

    /// Waits until nothing consumes the source queue.
    ///
    /// # Errors
    /// When a consumer stays beyond [`PATIENCE`].
    pub async fn wait_no_consumer(&self) -> Result<()> {
        ml_testkit::wait::until(
            &format!("no consumer on {}", self.name),
            PATIENCE,
            || async { (self.counts(&self.name).await.ok()?.1 == 0).then_some(()) },
        )
        .await
    }

    /// Waits until the source queue has no consumer (so everything a
    /// stopped worker held unacknowledged is back), then takes every
    /// message of `queue`.
    ///
    /// # Errors
    /// When a consumer stays, or the broker is unreachable.
    pub async fn take_all(&self, queue: &str) -> Result<Vec<Received>> {
        self.wait_no_consumer().await?;
        let mut taken = Vec::new();
        while let Some(message) = self.broker.get(queue).await? {
            taken.push(message);
        }
        Ok(taken)
    }

    /// Like [`TestQueue::take_all`], failing unless exactly one message
    /// is there.
    ///
    /// # Errors
    /// When there is none or more than one.
    pub async fn take_one(&self, queue: &str) -> Result<Received> {
        let mut taken = self.take_all(queue).await?;
        ensure!(
            taken.len() == 1,
            "expected one message in {queue}, found {}: {:?}",
            taken.len(),
            bodies(&taken)
        );
        taken.pop().context("no message")
    }

    /// Fails unless the source queue and its dead-letter queue are both
    /// empty (after the worker stopped).
    ///
    /// # Errors
    /// When either holds a message.
    pub async fn assert_empty(&self) -> Result<()> {
        for queue in [self.name.clone(), self.dead()] {
            let left = self.take_all(&queue).await?;
            ensure!(left.is_empty(), "{queue} still holds {:?}", bodies(&left));
        }
        Ok(())
    }

    /// Deletes the queue and its dead-letter queue.
    pub async fn delete(self) {
        self.broker.delete(&self.name).await;
    }
}

/// Message bodies as text, for failure messages.
fn bodies(messages: &[Received]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

/// A fresh task id.
pub fn task_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The Celery result the worker stored in Redis for `task_id`, if any.
///
/// # Errors
/// When Redis is unreachable.
pub async fn meta(task_id: &str) -> Result<Option<Value>> {
    ml_testkit::celery::meta(task_id).await
}

/// Waits until Redis holds `state` for `task_id` and returns the meta.
///
/// # Errors
/// When it does not within [`PATIENCE`].
pub async fn wait_state(task_id: &str, state: &str) -> Result<Value> {
    ml_testkit::celery::wait_status(task_id, state, PATIENCE).await
}

/// A text header of a received message.
pub fn header<'m>(message: &'m Received, name: &str) -> Option<&'m str> {
    message.headers.get(name).and_then(Value::as_str)
}

/// The body of a received message as JSON.
///
/// # Errors
/// When it is not JSON.
pub fn body_json(message: &Received) -> Result<Value> {
    Ok(serde_json::from_slice(&message.body)?)
}
