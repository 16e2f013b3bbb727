//! Drives the real [`Worker`](ml_runtime::Worker) against the real RabbitMQ
//! (`CELERY_BROKER_URL`) and Redis (`REDIS_URL`) with a scripted
//! [`Handler`](ml_runtime::Handler), and reads back what the worker left
//! behind: queue contents, dead letters and Celery results.
//!
//! | module | what |
//! |---|---|
//! | [`stub`]: [`Stub`] | the handler: outcome chosen by the task's `outcome` kwarg, optionally held at a gate, every call and `on_failure` recorded |
//! | [`worker`]: [`Settings`], [`RunningWorker`] | the runtime settings a test varies; `Worker::new(..).run()` spawned on the test's runtime, stopped through its shutdown token |
//! | [`queue`]: [`TestQueue`], [`Drained`] | a fresh `<name>.test-<hex>` queue (and its `.dead`), publishing to it, counting and taking its messages, checking what is left and deleting it |
//! | [`scenario`]: [`Scenario`] | the queue, stub and running worker every test starts with |
//! | this file: [`TASK`], [`PATIENCE`], [`meta`], [`wait_state`], [`ensure_status`], [`ensure_no_result`], [`header`], [`ensure_header`], [`ensure_number_header`], [`death_reason`], [`body_json`], [`ensure_body_id`] | the stub's task name, the deadline of every wait, the `celery-task-meta-<id>` value in Redis, reading and checking received messages |
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

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use ml_testkit::broker::Received;
use serde_json::{Value, json};

mod queue;
pub mod relay;
mod scenario;
mod stub;
mod worker;

pub use queue::{Drained, TestQueue};
pub use scenario::Scenario;
pub use stub::Stub;
pub use worker::{RunningWorker, Settings};

/// The task name the stub is routed under.
pub const TASK: &str = "tests.process.stub";

/// How long a test waits for something the worker is about to do. Reaching
/// it fails the test; it is a deadline, never a measure of speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

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

/// Fails unless Redis holds a result in `state` for `task_id` right now
/// (no waiting: for results that must be there once the worker stopped).
///
/// # Errors
/// When there is no result, it is in another state, or Redis is
/// unreachable.
pub async fn ensure_status(task_id: &str, state: &str) -> Result<()> {
    let meta = meta(task_id)
        .await?
        .with_context(|| format!("no result for {task_id}"))?;
    ensure!(meta["status"] == state, "{meta}");
    Ok(())
}

/// Fails with `why` unless Redis holds no result for `task_id`.
///
/// # Errors
/// When there is one, or Redis is unreachable.
pub async fn ensure_no_result(task_id: &str, why: &str) -> Result<()> {
    let meta = meta(task_id).await?;
    ensure!(meta.is_none(), "{why}: {meta:?}");
    Ok(())
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

/// Fails unless the text header `name` of `message` is `expected`.
///
/// # Errors
/// When it is missing, not text, or another value.
pub fn ensure_header(message: &Received, name: &str, expected: &str) -> Result<()> {
    ensure!(
        header(message, name) == Some(expected),
        "{name} is not {expected:?}: {:?}",
        message.headers
    );
    Ok(())
}

/// Fails unless the numeric header `name` of `message` (e.g. `retries`)
/// is `expected`.
///
/// # Errors
/// When it is missing, not a number, or another value.
pub fn ensure_number_header(message: &Received, name: &str, expected: u32) -> Result<()> {
    ensure!(
        message.headers.get(name) == Some(&json!(expected)),
        "{name} is not {expected}: {:?}",
        message.headers
    );
    Ok(())
}

/// The `x-death-reason` header of a dead letter.
///
/// # Errors
/// When it has none.
pub fn death_reason(letter: &Received) -> Result<&str> {
    header(letter, "x-death-reason").context("no reason header")
}

/// Fails unless `message`'s body is the gateway-encoded task `task_id`
/// (its `id` field).
///
/// # Errors
/// When the body is not JSON or holds another id.
pub fn ensure_body_id(message: &Received, task_id: &str) -> Result<()> {
    let body = body_json(message)?;
    ensure!(body["id"] == json!(task_id), "{body}");
    Ok(())
}
