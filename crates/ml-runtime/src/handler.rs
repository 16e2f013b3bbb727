//! The [`Handler`] trait workers implement and the [`Router`] that maps task
//! names to handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::arguments::Request;
use crate::error::TaskError;
use crate::task::Task;

/// Runs one kind of task. Handlers must be idempotent: a redelivered task
/// runs again and must leave the same state.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The task's arguments, parsed before [`Handler::handle`] runs.
    type Request: Request;

    /// Runs the task and returns the (small) result stored in Redis.
    ///
    /// # Errors
    /// A [`TaskError`] saying whether the failure is worth retrying.
    async fn handle(&self, task: &Task, request: &Self::Request) -> Result<Value, TaskError>;

    /// Called once when the task has failed for good (bad arguments,
    /// permanent error or retries exhausted), before it is dead-lettered,
    /// with its request when the arguments parsed; e.g. to record the
    /// failure in the database. Must not overwrite an earlier success.
    async fn on_failure(&self, _task: &Task, _request: Option<&Self::Request>, _error: &TaskError) {
    }
}

/// A task's arguments parsed for its handler: what the delivery processing
/// runs, whatever the handler's request type.
#[async_trait]
pub(crate) trait Parsed: Send + Sync {
    /// Runs the handler (or fails with the arguments' error).
    async fn handle(&self, task: &Task) -> Result<Value, TaskError>;
    /// Tells the handler the task failed for good.
    async fn on_failure(&self, task: &Task, error: &TaskError);
}

/// A [`Handler`] with its request type erased, as the [`Router`] keeps it.
pub(crate) trait Route: Send + Sync {
    /// Parses `task`'s arguments for this handler.
    fn parse<'a>(&'a self, task: &Task) -> Box<dyn Parsed + 'a>;
}

struct ParsedFor<'a, H: Handler> {
    handler: &'a H,
    request: Result<H::Request, TaskError>,
}

#[async_trait]
impl<H: Handler> Parsed for ParsedFor<'_, H> {
    async fn handle(&self, task: &Task) -> Result<Value, TaskError> {
        match &self.request {
            Ok(request) => self.handler.handle(task, request).await,
            Err(error) => Err(error.clone()),
        }
    }

    async fn on_failure(&self, task: &Task, error: &TaskError) {
        let request = self.request.as_ref().ok();
        self.handler.on_failure(task, request, error).await;
    }
}

impl<H: Handler> Route for H {
    fn parse<'a>(&'a self, task: &Task) -> Box<dyn Parsed + 'a> {
        Box::new(ParsedFor {
            handler: self,
            request: H::Request::from_task(task),
        })
    }
}

/// Which handler serves which task name, and which queues the worker consumes.
#[derive(Clone, Default)]
pub struct Router {
    routes: BTreeMap<String, Arc<dyn Route>>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `task_name` to `handler`.
    #[must_use]
    pub fn route<H: Handler>(mut self, task_name: &str, handler: Arc<H>) -> Self {
        self.routes.insert(task_name.to_owned(), handler);
        self
    }

    /// The handler for `task_name`, if routed.
    pub(crate) fn get(&self, task_name: &str) -> Option<&Arc<dyn Route>> {
        self.routes.get(task_name)
    }

    /// Every routed task name.
    pub fn task_names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}
