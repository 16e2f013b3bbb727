//! The [`Handler`] trait workers implement and the [`Router`] that maps task
//! names to handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::TaskError;
use crate::task::Task;

/// Runs one kind of task. Handlers must be idempotent: a redelivered task
/// runs again and must leave the same state.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs the task and returns the (small) result stored in Redis.
    ///
    /// # Errors
    /// A [`TaskError`] saying whether the failure is worth retrying.
    async fn handle(&self, task: &Task) -> Result<Value, TaskError>;

    /// Called once when the task has failed for good (permanent error or
    /// retries exhausted), before it is dead-lettered; e.g. to record the
    /// failure in the database. Must not overwrite an earlier success.
    async fn on_failure(&self, _task: &Task, _error: &TaskError) {}
}

/// Which handler serves which task name, and which queues the worker consumes.
#[derive(Clone, Default)]
pub struct Router {
    routes: BTreeMap<String, Arc<dyn Handler>>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `task_name` to `handler`.
    #[must_use]
    pub fn route(mut self, task_name: &str, handler: Arc<dyn Handler>) -> Self {
        self.routes.insert(task_name.to_owned(), handler);
        self
    }

    /// The handler for `task_name`, if routed.
    pub fn get(&self, task_name: &str) -> Option<&Arc<dyn Handler>> {
        self.routes.get(task_name)
    }

    /// Every routed task name.
    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}
