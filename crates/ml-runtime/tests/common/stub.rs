//! The scripted [`Handler`] the tests route [`TASK`](super::TASK) to.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Result, ensure};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ml_runtime::{Handler, Request, Task, TaskError};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::PATIENCE;

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

    /// Fails with `why` unless the stub has been called exactly `count`
    /// times, and returns the calls.
    ///
    /// # Errors
    /// When it was called more or fewer times.
    pub fn ensure_calls(&self, count: usize, why: &str) -> Result<Vec<Call>> {
        let calls = self.calls();
        ensure!(
            calls.len() == count,
            "{why}: {count} calls expected, {} made: {calls:?}",
            calls.len()
        );
        Ok(calls)
    }

    /// Fails unless the calls so far were the attempts with these
    /// `retries`, in order (`[0, 1]`: the first run and one retry).
    ///
    /// # Errors
    /// When other attempts ran.
    pub fn ensure_attempts(&self, retries: &[u32]) -> Result<()> {
        let attempts: Vec<u32> = self.calls().iter().map(|call| call.task.retries).collect();
        ensure!(attempts == retries, "attempts by retries: {attempts:?}");
        Ok(())
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

/// The stub's arguments: the `outcome` kwarg (see [`scripted`]).
#[derive(Debug, Deserialize)]
pub struct Script {
    outcome: Option<String>,
}

impl Request for Script {
    const POSITIONAL: &'static [&'static str] = &[];

    fn share_ids(&self) -> Vec<Uuid> {
        Vec::new()
    }
}

#[async_trait]
impl Handler for Stub {
    type Request = Script;

    async fn handle(&self, task: &Task, script: &Script) -> Result<Value, TaskError> {
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
        match script.outcome.as_deref() {
            // Ignores the stop token: only the hard limit ends it.
            Some("hang") => std::future::pending().await,
            // Winds down when asked to stop.
            Some("until_stopped") => {
                ml_runtime::stop::token().cancelled().await;
                Err(TaskError::Permanent("stub stopped as asked".into()))
            }
            _ => scripted(task, script),
        }
    }

    async fn on_failure(&self, task: &Task, _script: Option<&Script>, error: &TaskError) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((task.id.clone(), error.clone()));
    }
}

/// The stub's answer to `task`, by its `outcome` kwarg: `transient`,
/// `permanent` and `invalid` fail that way, `panic` panics (and, in the
/// handler, `hang` never ends, `until_stopped` ends when asked); anything else (or none)
/// succeeds with `{"handled": <task id>}`.
pub fn scripted(task: &Task, script: &Script) -> Result<Value, TaskError> {
    match script.outcome.as_deref() {
        Some("transient") => Err(TaskError::Transient("stub dependency is down".into())),
        Some("permanent") => Err(TaskError::Permanent("stub cannot read this input".into())),
        Some("invalid") => Err(TaskError::InvalidArguments("stub needs a share_id".into())),
        Some("panic") => std::panic::panic_any(format!("stub told to panic by {}", task.id)),
        _ => Ok(json!({"handled": task.id})),
    }
}
