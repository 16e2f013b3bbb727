//! Drives the real [`Worker`](ml_runtime::Worker) against the real RabbitMQ
//! (`CELERY_BROKER_URL`) and Redis (`REDIS_URL`) with a scripted
//! [`Handler`](ml_runtime::Handler), and reads back what the worker left
//! behind: queue contents, dead letters and Celery results.
//!
//! | module | what |
//! |---|---|
//! | [`stub`]: [`Stub`] | the handler: outcome chosen by the task's `outcome` kwarg, optionally held at a gate, every call and `on_failure` recorded |
//! | [`worker`]: [`Settings`], [`RunningWorker`] | the runtime settings a test varies; `Worker::new(..).run()` spawned on the test's runtime, stopped through its shutdown token |
//! | [`queue`]: [`TestQueue`] | a fresh `<name>.test-<hex>` queue (and its `.dead`), publishing to it, counting and taking its messages |
//! | this file: [`TASK`], [`PATIENCE`], [`meta`], [`wait_state`], [`header`], [`body_json`] | the stub's task name, the deadline of every wait, the `celery-task-meta-<id>` value in Redis, reading received messages |
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

use anyhow::Result;
use ml_testkit::broker::Received;
use serde_json::Value;

mod queue;
pub mod relay;
mod stub;
mod worker;

pub use queue::TestQueue;
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
