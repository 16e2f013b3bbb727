//! The consume loop: connect (with backoff), consume every queue with a
//! bounded prefetch, hand each delivery to `process`, reconnect after the
//! broker goes away, and drain in-flight work on shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions};
use lapin::types::{FieldTable, ShortString};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff;
use crate::broker::{self, Session};
use crate::config::RuntimeArgs;
use crate::error::RuntimeError;
use crate::handler::Router;
use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::process::{self, Context};
use crate::results::ResultBackend;

/// Longest delay between two connection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Longest time a future-`eta` task is held before being published again.
const MAX_ETA_HOLD: Duration = Duration::from_secs(600);

/// What a worker serves.
pub struct WorkerSpec {
    /// Program name, used as the AMQP connection name (e.g. `vector-worker`).
    pub name: String,
    /// Queues to consume (each bound to the exchange under its own name).
    pub queues: Vec<String>,
    /// Task names and their handlers.
    pub router: Router,
}

/// A running consumer; see [`Worker::run`].
pub struct Worker {
    args: RuntimeArgs,
    spec: WorkerSpec,
    readiness: Readiness,
    context: Arc<Context>,
}

impl Worker {
    /// Assembles a worker from its settings and shared services.
    pub fn new(
        args: RuntimeArgs,
        spec: WorkerSpec,
        results: ResultBackend,
        metrics: Arc<Metrics>,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Self {
        let concurrency = args.concurrency.max(1);
        let context = Arc::new(Context {
            router: spec.router.clone(),
            results,
            metrics,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            track_started: args.track_started,
            max_body_bytes: args.max_body_bytes,
            time_limit: args.time_limit(),
            max_retries: args.max_retries,
            retry_base: Duration::from_secs_f64(args.retry_backoff_secs.max(0.0)),
            retry_max: Duration::from_secs_f64(args.retry_backoff_max_secs.max(0.0)),
            max_eta_hold: MAX_ETA_HOLD,
            shutdown,
        });
        Self {
            args,
            spec,
            readiness,
            context,
        }
    }

    /// Consumes until the shutdown token fires, then stops taking
    /// deliveries, lets in-flight tasks finish and ack within the grace
    /// period, and closes the connection. Broker outages are survived by
    /// reconnecting with backoff.
    ///
    /// # Errors
    /// Only for failures no reconnect can fix (none today: broker errors
    /// are retried until shutdown).
    pub async fn run(self) -> Result<(), RuntimeError> {
        let shutdown = self.context.shutdown.clone();
        let tracker = TaskTracker::new();
        let mut attempt = 0u32;
        while !shutdown.is_cancelled() {
            let opened = tokio::select! {
                opened = broker::open(
                    &self.args.broker_url,
                    &self.spec.name,
                    &self.spec.queues,
                    self.args.prefetch(),
                ) => opened,
                () = shutdown.cancelled() => break,
            };
            let session = match opened {
                Ok(session) => session,
                Err(error) => {
                    let delay = backoff::delay(attempt, Duration::from_secs(1), RECONNECT_MAX);
                    attempt = attempt.saturating_add(1);
                    tracing::warn!(%error, attempt, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "cannot reach the broker; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            };
            attempt = 0;
            tracing::info!(queues = ?self.spec.queues, prefetch = self.args.prefetch(), concurrency = self.context.concurrency, "consuming");
            let consumed = self.consume(&session, &tracker).await;
            self.readiness.set_broker(false);
            match consumed {
                Ok(()) => {
                    self.drain(&tracker).await;
                    close(&session).await;
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(%error, "broker connection lost; in-flight deliveries will be redelivered; reconnecting");
                    close(&session).await;
                }
            }
        }
        self.drain(&tracker).await;
        Ok(())
    }

    /// Consumes every queue until shutdown (Ok) or a broker error (Err).
    async fn consume(&self, session: &Session, tracker: &TaskTracker) -> Result<(), lapin::Error> {
        let mut streams = Vec::new();
        let mut tags = Vec::new();
        for queue in &self.spec.queues {
            let tag = format!(
                "{}-{}-{}",
                self.spec.name,
                queue,
                uuid::Uuid::new_v4().simple()
            );
            let consumer = session
                .consumer
                .basic_consume(
                    ShortString::from(queue.as_str()),
                    ShortString::from(tag.as_str()),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tags.push(tag);
            let queue = queue.clone();
            streams.push(
                consumer
                    .map(move |delivery| (queue.clone(), delivery))
                    .boxed(),
            );
        }
        let mut deliveries = futures::stream::select_all(streams);
        self.readiness.set_broker(true);
        let shutdown = self.context.shutdown.clone();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    for tag in tags {
                        let cancelled = session
                            .consumer
                            .basic_cancel(ShortString::from(tag), BasicCancelOptions::default())
                            .await;
                        if let Err(error) = cancelled {
                            tracing::warn!(%error, "could not cancel a consumer");
                        }
                    }
                    return Ok(());
                }
                next = deliveries.next() => match next {
                    Some((queue, Ok(delivery))) => {
                        tracker.spawn(process::process(
                            self.context.clone(),
                            session.publisher.clone(),
                            queue,
                            delivery,
                        ));
                    }
                    Some((_, Err(error))) => return Err(error),
                    None => {
                        return Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                            lapin::ChannelState::Closed,
                            "consumer cancelled by the broker",
                        )));
                    }
                }
            }
        }
    }

    /// Waits for in-flight tasks, at most the shutdown grace period.
    async fn drain(&self, tracker: &TaskTracker) {
        tracker.close();
        let grace = self.args.shutdown_timeout();
        tracing::info!(
            in_flight = tracker.len(),
            grace_secs = grace.as_secs(),
            "draining in-flight tasks"
        );
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                unfinished = tracker.len(),
                "grace period over; unfinished tasks will be redelivered"
            );
        }
    }
}

async fn close(session: &Session) {
    if let Err(error) = session
        .connection
        .close(200, ShortString::from("worker stopping"))
        .await
    {
        tracing::debug!(%error, "connection close");
    }
}
