//! One delivery's life: decode, route, honour `eta`/`expires`, run the
//! handler, then retry, dead-letter or succeed, and only then acknowledge
//! (CONTRACT section 4).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};

use crate::backoff;
use crate::decode::{DecodeError, RawMessage, decode};
use crate::error::{TaskError, bounded_reason};
use crate::handler::{Parsed, Route, Router};
use crate::headers::table_to_json;
use crate::metrics::{ErrorType, Metrics, Outcome};
use crate::publisher::{DeadLetter, Publisher};
use crate::results::{ResultBackend, TaskState, exception};
use crate::task::{Task, TimeLimit};
use crate::telemetry;

/// Label used for task names that no route knows (keeps labels bounded).
const UNKNOWN_TASK: &str = "unknown";

/// Everything deliveries share, built once per worker.
pub(crate) struct Context {
    pub router: Router,
    pub results: ResultBackend,
    pub metrics: Arc<Metrics>,
    pub permits: Arc<Semaphore>,
    pub concurrency: usize,
    pub track_started: bool,
    /// `TASK_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `TASK_TIME_LIMIT_SECS` and `TASK_SOFT_TIME_LIMIT_SECS`.
    pub time_limit: TimeLimit,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Longest time a future-`eta` delivery is held unacknowledged before it
    /// is published again (keeps it under RabbitMQ's consumer_timeout).
    pub max_eta_hold: Duration,
    pub shutdown: CancellationToken,
}

/// Processes one delivery from `queue` to its acknowledgement.
pub(crate) async fn process(
    context: Arc<Context>,
    publisher: Publisher,
    queue: String,
    delivery: Delivery,
) {
    let run = Delivered {
        context: &context,
        publisher: &publisher,
        queue: &queue,
        delivery: &delivery,
    };
    // Decoded before the span exists: its parent (the message's
    // `traceparent`) can only be set before the span is first entered.
    let decoded = run.decode();
    let span = tracing::info_span!(
        "task",
        queue = %queue,
        task_id = field::Empty,
        task_name = field::Empty,
        share_id = field::Empty,
        trace_id = field::Empty,
        retries = field::Empty,
    );
    match &decoded {
        Ok(task) => {
            span.record("task_id", task.id.as_str());
            span.record("task_name", task.name.as_str());
            span.record("retries", task.retries);
            if let Some(share_id) = task.share_id_hint() {
                span.record("share_id", share_id);
            }
            if let Some(trace_id) = task.trace_id() {
                span.record("trace_id", trace_id);
            }
            telemetry::set_remote_parent(&span, task.traceparent.as_deref());
        }
        Err(error) => {
            if let Some(id) = &error.task_id {
                span.record("task_id", id.as_str());
            }
        }
    }
    run.process(decoded).instrument(span).await;
}

struct Delivered<'a> {
    context: &'a Context,
    publisher: &'a Publisher,
    queue: &'a str,
    delivery: &'a Delivery,
}

impl Delivered<'_> {
    fn decode(&self) -> Result<Task, DecodeError> {
        let (size, max) = (self.delivery.data.len(), self.context.max_body_bytes);
        if size > max {
            return Err(DecodeError::body_too_large(size, max));
        }
        let headers = self
            .delivery
            .properties
            .headers()
            .as_ref()
            .map(table_to_json)
            .unwrap_or_default();
        let properties = &self.delivery.properties;
        let raw = RawMessage {
            body: &self.delivery.data,
            headers,
            content_type: properties.content_type().as_ref().map(|s| s.as_str()),
            content_encoding: properties.content_encoding().as_ref().map(|s| s.as_str()),
            correlation_id: properties.correlation_id().as_ref().map(|s| s.as_str()),
        };
        decode(&raw)
    }

    async fn process(&self, decoded: Result<Task, DecodeError>) {
        let task = match decoded {
            Ok(task) => task,
            Err(error) => {
                let label = self.task_label(error.task_name.as_deref());
                self.count_received(label);
                self.context.metrics.errored(label, ErrorType::Decode);
                let reason = format!("undecodable message: {}", error.reason);
                self.dead_letter(
                    error.task_id.as_deref(),
                    error.task_name.as_deref(),
                    0,
                    &reason,
                    "ValueError",
                )
                .await;
                return;
            }
        };
        let label = self.task_label(Some(&task.name));
        self.count_received(label);
        let Some(handler) = self.context.router.get(&task.name).cloned() else {
            let served: Vec<&str> = self.context.router.task_names().collect();
            let reason = format!(
                "unknown task name {:?} on queue {}: this worker serves {}",
                task.name,
                self.queue,
                served.join(", ")
            );
            self.context.metrics.errored(label, ErrorType::Decode);
            self.dead_letter(
                Some(&task.id),
                Some(&task.name),
                task.retries,
                &reason,
                "NotRegistered",
            )
            .await;
            return;
        };
        if task.is_expired(Utc::now()) {
            self.revoke(&task).await;
            return;
        }
        if !self.wait_for_eta(&task).await {
            return;
        }
        let permit = tokio::select! {
            permit = self.context.permits.clone().acquire_owned() => permit,
            () = self.context.shutdown.cancelled() => {
                tracing::info!("shutting down before the task started; returning it to the queue");
                self.requeue().await;
                return;
            }
        };
        let Ok(permit) = permit else {
            self.requeue().await;
            return;
        };
        // It may have expired while it waited for its eta or for a slot.
        if task.is_expired(Utc::now()) {
            drop(permit);
            self.revoke(&task).await;
            return;
        }
        self.run(&task, handler.as_ref(), permit).await;
    }

    /// Runs the handler and writes its result with a concurrency slot held,
    /// then gives the slot back and settles the delivery (the ack is broker
    /// I/O, not work: the next task need not wait for it; prefetch still
    /// bounds the unacknowledged deliveries).
    async fn run(&self, task: &Task, handler: &dyn Route, permit: OwnedSemaphorePermit) {
        let metrics = &self.context.metrics;
        metrics.active_tasks.inc();
        self.update_busy();
        if self.context.track_started {
            let started = json!({"pid": std::process::id()});
            if let Err(error) = self
                .context
                .results
                .store(&task.id, TaskState::Started, started, None)
                .await
            {
                tracing::warn!(%error, "could not record STARTED");
            }
        }
        tracing::info!(redelivered = self.delivery.redelivered, "task started");
        let started = Instant::now();
        let parsed = handler.parse(task);
        let limit = self.context.time_limit.within(task.time_limit);
        let handled = within_limit(parsed.handle(task), limit).await;
        let outcome = match handled {
            Ok(result) => self.store_success(task, result).await,
            Err(error) => Err(error),
        };
        let elapsed = started.elapsed();
        drop(permit);
        metrics.active_tasks.dec();
        self.update_busy();
        let label = self.task_label(Some(&task.name));
        metrics.task_took(label, elapsed.as_secs_f64());
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(()) => {
                if self.ack().await {
                    metrics.finished(self.queue, label, Outcome::Success);
                    tracing::info!(duration_ms, "task succeeded");
                }
            }
            Err(error) => {
                metrics.errored(label, ErrorType::from(&error));
                if error.is_transient() && task.retries < self.context.max_retries {
                    self.retry(task, &error, duration_ms).await;
                } else {
                    self.fail(task, parsed.as_ref(), &error, duration_ms).await;
                }
            }
        }
    }

    /// Stores the SUCCESS result, trying again in place with backoff (the
    /// work is done: a short Redis outage should not run it again) up to
    /// `TASK_MAX_RETRIES` times; past that the task is retried as a whole.
    async fn store_success(&self, task: &Task, result: Value) -> Result<(), TaskError> {
        let mut attempt = 0;
        loop {
            let stored = self
                .context
                .results
                .store(&task.id, TaskState::Success, result.clone(), None)
                .await;
            let Err(error) = stored else { return Ok(()) };
            if attempt >= self.context.max_retries {
                return Err(TaskError::Transient(format!("result backend: {error}")));
            }
            let delay = backoff::delay(attempt, self.context.retry_base, self.context.retry_max);
            tracing::warn!(%error, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "could not store SUCCESS; trying again");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn retry(&self, task: &Task, error: &TaskError, duration_ms: u64) {
        let delay = backoff::delay(
            task.retries,
            self.context.retry_base,
            self.context.retry_max,
        );
        let eta = Utc::now() + delay;
        if let Err(publish_error) = self
            .publisher
            .schedule(task, self.queue, task.retries.saturating_add(1), eta)
            .await
        {
            tracing::error!(%publish_error, %error, "could not publish the retry; returning the task to the queue");
            self.requeue().await;
            return;
        }
        let message = error.to_string();
        let retry_meta = exception(
            error.python_exception(),
            "builtins",
            &bounded_reason(&message),
        );
        if let Err(redis_error) = self
            .context
            .results
            .store(&task.id, TaskState::Retry, retry_meta, None)
            .await
        {
            tracing::warn!(%redis_error, "could not record RETRY");
        }
        if self.ack().await {
            let label = self.task_label(Some(&task.name));
            self.context
                .metrics
                .finished(self.queue, label, Outcome::Retry);
            tracing::warn!(
                %error,
                duration_ms,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                next_retry = task.retries.saturating_add(1),
                "transient failure; retry scheduled"
            );
        }
    }

    async fn fail(&self, task: &Task, parsed: &dyn Parsed, error: &TaskError, duration_ms: u64) {
        let reason = if error.is_transient() {
            format!(
                "retries exhausted after {} attempts: {error}",
                // `retries` comes from the message: any u32.
                task.retries.saturating_add(1)
            )
        } else {
            error.to_string()
        };
        parsed.on_failure(task, error).await;
        tracing::warn!(%reason, duration_ms, "task failed");
        self.dead_letter(
            Some(&task.id),
            Some(&task.name),
            task.retries,
            &reason,
            error.python_exception(),
        )
        .await;
    }

    /// Publishes the message to `<queue>.dead`, records FAILURE, then acks.
    /// If the dead-letter cannot be published the message goes back to the
    /// queue instead: it is never dropped.
    async fn dead_letter(
        &self,
        task_id: Option<&str>,
        task_name: Option<&str>,
        retries: u32,
        reason: &str,
        exc_type: &str,
    ) {
        let reason = &*bounded_reason(reason);
        let letter = DeadLetter {
            queue: self.queue,
            reason,
            task_id,
            task_name,
            retries,
        };
        if let Err(error) = self.publisher.dead_letter(self.delivery, &letter).await {
            tracing::error!(%error, %reason, "could not dead-letter the message; returning it to the queue");
            self.requeue().await;
            return;
        }
        if let Some(id) = task_id {
            let meta = exception(exc_type, "builtins", reason);
            if let Err(error) = self
                .context
                .results
                .store(id, TaskState::Failure, meta, None)
                .await
            {
                tracing::warn!(%error, "could not record FAILURE");
            }
        }
        if self.ack().await {
            let label = self.task_label(task_name);
            self.context
                .metrics
                .finished(self.queue, label, Outcome::Failure);
            tracing::warn!(%reason, dead_letter_queue = %format!("{}{}", self.queue, crate::DEAD_LETTER_SUFFIX), "message dead-lettered");
        }
    }

    async fn revoke(&self, task: &Task) {
        let meta = exception("TaskRevokedError", "celery.exceptions", "expired");
        if let Err(error) = self
            .context
            .results
            .store(&task.id, TaskState::Revoked, meta, None)
            .await
        {
            tracing::warn!(%error, "could not record REVOKED; returning the task to the queue");
            self.requeue().await;
            return;
        }
        if self.ack().await {
            let label = self.task_label(Some(&task.name));
            self.context
                .metrics
                .finished(self.queue, label, Outcome::Revoked);
            tracing::info!(expires = ?task.expires, "task expired before it ran; revoked");
        }
    }

    /// Holds a future-`eta` task until it is due. Returns false when the
    /// delivery was settled here instead (shutdown, or re-published because
    /// the eta lies beyond the hold limit).
    async fn wait_for_eta(&self, task: &Task) -> bool {
        let Some(eta) = task.eta else { return true };
        let Ok(wait) = (eta - Utc::now()).to_std() else {
            return true;
        };
        let hold = wait.min(self.context.max_eta_hold);
        tracing::info!(
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "eta in the future; holding the task"
        );
        tokio::select! {
            () = tokio::time::sleep(hold) => {}
            () = self.context.shutdown.cancelled() => {
                self.requeue().await;
                return false;
            }
        }
        if hold == wait {
            return true;
        }
        match self
            .publisher
            .schedule(task, self.queue, task.retries, eta)
            .await
        {
            Ok(()) => {
                self.ack().await;
            }
            Err(error) => {
                tracing::warn!(%error, "could not re-publish a far-future task; returning it to the queue");
                self.requeue().await;
            }
        }
        false
    }

    async fn ack(&self) -> bool {
        match self.delivery.acker.ack(BasicAckOptions::default()).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(%error, "ack failed (channel lost); the broker will redeliver");
                false
            }
        }
    }

    async fn requeue(&self) {
        let options = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        if let Err(error) = self.delivery.acker.nack(options).await {
            tracing::warn!(%error, "nack failed (channel lost); the broker will redeliver");
        }
    }

    fn task_label<'n>(&self, name: Option<&'n str>) -> &'n str {
        match name {
            Some(name) if self.context.router.get(name).is_some() => name,
            _ => UNKNOWN_TASK,
        }
    }

    fn count_received(&self, label: &str) {
        self.context.metrics.received(self.queue, label);
    }

    fn update_busy(&self) {
        let active = self.context.metrics.active_tasks.get();
        #[allow(clippy::cast_precision_loss)] // small counts
        let busy = active as f64 / self.context.concurrency.max(1) as f64;
        self.context.metrics.worker_busy.set(busy);
    }
}

/// Runs a handler's `work` within `limit`: at the soft limit the task's
/// [`crate::stop`] token is cancelled (the handler should wind down), at
/// the hard limit the work is dropped and the task fails. A panic in the
/// work fails the task like any permanent error, instead of leaving the
/// delivery unsettled.
async fn within_limit<F>(work: F, limit: TimeLimit) -> Result<Value, TaskError>
where
    F: Future<Output = Result<Value, TaskError>>,
{
    let stop = CancellationToken::new();
    let work = crate::stop::scope(stop.clone(), AssertUnwindSafe(work).catch_unwind());
    let (soft, hard) = (after(limit.soft), after(limit.hard));
    tokio::pin!(work, soft, hard);
    loop {
        tokio::select! {
            done = &mut work => {
                let result = done.unwrap_or_else(|panic| Err(TaskError::Permanent(panicked(panic.as_ref()))));
                return match (result, limit.soft) {
                    (Err(error), Some(soft)) if stop.is_cancelled() => Err(TaskError::Permanent(format!(
                        "stopped at its soft time limit of {} s: {error}",
                        soft.as_secs_f64()
                    ))),
                    (result, _) => result,
                };
            }
            () = &mut soft, if !stop.is_cancelled() => {
                tracing::warn!(soft_limit_s = limit.soft.map(|s| s.as_secs_f64()), "soft time limit reached; asking the task to stop");
                stop.cancel();
            }
            () = &mut hard => {
                stop.cancel();
                return Err(TaskError::TimeLimitExceeded(limit.hard.unwrap_or_default()));
            }
        }
    }
}

/// Sleeps for `duration`; for ever when there is none.
async fn after(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// The reason for a handler that panicked with `payload`.
fn panicked(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("the handler panicked: {message}")
}
