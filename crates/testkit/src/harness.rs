//! A worker under test on its own fresh queue, with a broker connection
//! and a database pool for assertions: the set-up every worker's
//! integration tests share.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::broker::Received;
use crate::{Fixture, TestBroker, WorkerProcess, celery, env, results};

/// How long a worker may take to become ready (model load included).
pub const READY: Duration = Duration::from_secs(120);
/// How long one task may take end to end.
pub const TASK: Duration = Duration::from_secs(120);

/// Which worker to start and how it is told its queue.
#[derive(Debug, Clone, Copy)]
pub struct WorkerKind {
    /// The binary (`env!("CARGO_BIN_EXE_<name>")`).
    pub binary: &'static str,
    /// Prefix of the fresh queue's name (e.g. `ml.transcribe`).
    pub queue_prefix: &'static str,
    /// The environment name of the worker's queue setting.
    pub queue_env: &'static str,
    /// The `ml_results.task_type` the worker writes.
    pub task_type: &'static str,
}

/// A ready worker consuming its own fresh queue.
pub struct Harness {
    /// The worker process.
    pub worker: WorkerProcess,
    /// A broker connection for publishing and reading.
    pub broker: TestBroker,
    /// The database the worker writes.
    pub db: PgPool,
    /// The worker's queue.
    pub queue: String,
    kind: WorkerKind,
}

impl Harness {
    /// Starts a ready `kind` worker on a new queue, with `extra_env`.
    ///
    /// # Errors
    /// When the worker does not start or become ready in time.
    pub async fn start(kind: WorkerKind, extra_env: &[(&str, &str)]) -> Result<Self> {
        Self::start_with_database(kind, &env::database_url(), extra_env).await
    }

    /// Like [`Harness::start`], against the database at `database_url`.
    ///
    /// # Errors
    /// When the worker does not start or become ready in time.
    pub async fn start_with_database(
        kind: WorkerKind,
        database_url: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Self> {
        let queue = TestBroker::unique_queue(kind.queue_prefix);
        let mut env_vars = vec![
            ("DATABASE_URL", database_url),
            (kind.queue_env, queue.as_str()),
        ];
        env_vars.extend_from_slice(extra_env);
        let mut worker = WorkerProcess::spawn(Path::new(kind.binary), &queue, &env_vars)?;
        worker.wait_ready(READY).await?;
        Ok(Self {
            worker,
            broker: TestBroker::connect().await?,
            db: PgPool::connect(database_url).await?,
            queue,
            kind,
        })
    }

    /// Publishes task `task_name` with `kwargs` in the gateway encoding.
    ///
    /// # Errors
    /// When the broker refuses the message.
    pub async fn publish(&self, task_name: &str, task_id: &str, kwargs: Value) -> Result<()> {
        self.broker
            .publish_gateway_task(&self.queue, task_id, task_name, kwargs, &[])
            .await
    }

    /// Waits for the worker's `ml_results` row of `share_id` and returns
    /// its `result_data`.
    ///
    /// # Errors
    /// When no row appears within `timeout`.
    pub async fn wait_result(&self, share_id: Uuid, timeout: Duration) -> Result<Value> {
        results::wait_result(&self.db, share_id, self.kind.task_type, timeout).await
    }

    /// Waits until the worker's `ml_results` row of `share_id` has `status`.
    ///
    /// # Errors
    /// When it does not within [`TASK`].
    pub async fn wait_result_status(&self, share_id: Uuid, status: &str) -> Result<Value> {
        results::wait_result_status(&self.db, share_id, self.kind.task_type, status, TASK).await
    }

    /// Waits for a message in the queue's dead-letter queue.
    ///
    /// # Errors
    /// When none arrives within `timeout`.
    pub async fn wait_dead_letter(&self, timeout: Duration) -> Result<Received> {
        let dead = format!("{}.dead", self.queue);
        crate::wait::until(&format!("a message in {dead}"), timeout, || async {
            self.broker.get(&dead).await.ok().flatten()
        })
        .await
    }

    /// Publishes `fixture` to `queue`, its task's Celery result forgotten
    /// first (fixtures reuse their task ids), and waits for `status` in
    /// Redis; returns the task's result meta.
    ///
    /// # Errors
    /// When the fixture has no task id, or the status does not come within
    /// [`TASK`].
    pub async fn run_fixture(&self, fixture: &Fixture, queue: &str, status: &str) -> Result<Value> {
        let task_id = fixture
            .task_id()
            .with_context(|| format!("{} has no task id", fixture.name))?;
        celery::forget(&task_id).await?;
        self.broker.publish_fixture(fixture, queue).await?;
        celery::wait_status(&task_id, status, TASK).await
    }

    /// Publishes `fixture` and checks that it is refused for good: it reaches
    /// the dead-letter queue with its body intact and a reason mentioning
    /// `reason`, and a task with an id has a FAILURE in Redis saying so.
    ///
    /// # Errors
    /// When any of that does not happen within [`TASK`].
    pub async fn expect_refused(&self, fixture: &Fixture, reason: &str) -> Result<()> {
        let name = &fixture.name;
        let task_id = fixture.task_id();
        if let Some(task_id) = &task_id {
            celery::forget(task_id).await?;
        }
        self.broker.publish_fixture(fixture, &self.queue).await?;
        let dead = self.wait_dead_letter(TASK).await?;
        let got = dead.headers["x-death-reason"].as_str().unwrap_or_default();
        ensure!(
            got.contains(reason),
            "{name}: reason {got:?} should mention {reason:?}"
        );
        ensure!(
            dead.headers["x-original-queue"] == self.queue.as_str(),
            "{name}: x-original-queue is {}",
            dead.headers["x-original-queue"]
        );
        ensure!(
            dead.body == fixture.body,
            "{name}: the original body is kept"
        );
        if let Some(task_id) = task_id {
            let meta = celery::wait_status(&task_id, "FAILURE", TASK).await?;
            let message = meta["result"]["exc_message"].to_string();
            ensure!(message.contains(reason), "{name}: FAILURE says {message}");
        }
        Ok(())
    }

    /// Deletes the test's queues.
    pub async fn cleanup(self) {
        self.broker.delete(&self.queue).await;
    }
}
