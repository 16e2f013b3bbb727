//! The Prometheus registry with every metric name CONTRACT section 7 fixes.
//!
//! Every worker registers every name, so dashboards, alerts and KEDA
//! triggers find them on any worker; label sets a worker will use are
//! initialised up front so the series exist before the first task.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Outcome labels of `ml_tasks_total{status}`.
pub const STATUSES: [&str; 4] = ["success", "failure", "retry", "revoked"];

/// Error labels of `ml_task_errors_total{error_type}`.
pub const ERROR_TYPES: [&str; 4] = ["decode", "invalid_arguments", "permanent", "transient"];

/// Buckets for task and model durations in seconds (10 ms to 30 min).
const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// All metrics of one worker process.
#[allow(missing_docs)] // each field's help text is its Prometheus description
pub struct Metrics {
    registry: Registry,
    worker_type: String,
    pub task_received: IntCounterVec,
    pub task_succeeded: IntCounterVec,
    pub task_failed: IntCounterVec,
    pub task_retried: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub worker_busy: Gauge,
    pub tasks: IntCounterVec,
    pub task_duration: HistogramVec,
    pub task_errors: IntCounterVec,
    pub active_tasks: IntGauge,
    pub summarization_duration: Histogram,
    pub transcription_duration: Histogram,
    pub embedding_duration: Histogram,
    pub embedding_batch_size: IntGauge,
    pub tokens_processed: IntCounterVec,
    pub audio_duration: prometheus::Counter,
    pub embeddings_generated: IntCounter,
    pub model_latency: HistogramVec,
    pub worker_info: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric for a worker of `worker_type` (`embed`,
    /// `summarize`, `transcribe`) plus the process collector.
    ///
    /// # Errors
    /// When a metric cannot be registered (a programming error).
    pub fn new(worker_type: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let queue_task = &["queue", "task"];
        let metrics = Self {
            task_received: counter_vec(
                &registry,
                "celery_task_received_total",
                "Tasks received from the broker.",
                queue_task,
            )?,
            task_succeeded: counter_vec(
                &registry,
                "celery_task_succeeded_total",
                "Tasks that succeeded.",
                queue_task,
            )?,
            task_failed: counter_vec(
                &registry,
                "celery_task_failed_total",
                "Tasks that failed for good (dead-lettered).",
                queue_task,
            )?,
            task_retried: counter_vec(
                &registry,
                "celery_task_retried_total",
                "Tasks scheduled again after a transient failure.",
                queue_task,
            )?,
            dead_lettered: counter_vec(
                &registry,
                "ml_dead_letters_total",
                "Messages published to a dead-letter queue.",
                &["queue"],
            )?,
            // worker_type as a constant label, so that
            // `sum(celery_worker_busy) by (worker_type)` gives one series per
            // kind of worker (k8s/README.md) without relabelling.
            worker_busy: register(
                &registry,
                Gauge::with_opts(
                    Opts::new(
                        "celery_worker_busy",
                        "Tasks in flight divided by concurrency.",
                    )
                    .const_label("worker_type", worker_type),
                )?,
            )?,
            tasks: counter_vec(
                &registry,
                "ml_tasks_total",
                "Finished tasks by outcome.",
                &["task_name", "status", "worker_type"],
            )?,
            task_duration: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("ml_task_duration_seconds", "Task run time.")
                        .buckets(DURATION_BUCKETS.to_vec()),
                    &["task_name", "worker_type"],
                )?,
            )?,
            task_errors: counter_vec(
                &registry,
                "ml_task_errors_total",
                "Task errors by kind.",
                &["task_name", "error_type", "worker_type"],
            )?,
            active_tasks: register(
                &registry,
                IntGauge::new("ml_active_tasks", "Tasks running now.")?,
            )?,
            summarization_duration: histogram(
                &registry,
                "ml_summarization_duration_seconds",
                "Time to summarise one input.",
            )?,
            transcription_duration: histogram(
                &registry,
                "ml_transcription_duration_seconds",
                "Time to transcribe one media file.",
            )?,
            embedding_duration: histogram(
                &registry,
                "ml_embedding_duration_seconds",
                "Time of one embedding forward pass.",
            )?,
            embedding_batch_size: register(
                &registry,
                IntGauge::new(
                    "ml_embedding_batch_size",
                    "Texts in the last embedding forward pass.",
                )?,
            )?,
            tokens_processed: counter_vec(
                &registry,
                "ml_tokens_processed_total",
                "Model tokens processed, by direction (input or output).",
                &["direction"],
            )?,
            audio_duration: register(
                &registry,
                prometheus::Counter::new(
                    "ml_audio_duration_seconds_total",
                    "Seconds of audio transcribed.",
                )?,
            )?,
            embeddings_generated: register(
                &registry,
                IntCounter::new("ml_embeddings_generated_total", "Vectors produced.")?,
            )?,
            model_latency: register(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("ml_model_latency_seconds", "Latency of one model call.")
                        .buckets(DURATION_BUCKETS.to_vec()),
                    &["model"],
                )?,
            )?,
            worker_info: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "ml_worker_info",
                        "Constant 1, labelled with the worker's build.",
                    ),
                    &["worker_type", "version", "model"],
                )?,
            )?,
            worker_type: worker_type.to_owned(),
            registry,
        };
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        for direction in ["input", "output"] {
            metrics.tokens_processed.with_label_values(&[direction]);
        }
        Ok(metrics)
    }

    /// Creates the labelled series a worker will use, so they are exported
    /// (at zero) before the first task, and records `ml_worker_info`.
    pub fn initialise(&self, routes: &[(&str, &str)], model: &str) {
        for (queue, task) in routes {
            for counter in [
                &self.task_received,
                &self.task_succeeded,
                &self.task_failed,
                &self.task_retried,
            ] {
                counter.with_label_values(&[queue, task]);
            }
            self.dead_lettered.with_label_values(&[queue]);
            for status in STATUSES {
                self.tasks
                    .with_label_values(&[task, status, self.worker_type.as_str()]);
            }
            self.task_duration
                .with_label_values(&[task, self.worker_type.as_str()]);
            for error_type in ERROR_TYPES {
                self.task_errors
                    .with_label_values(&[task, error_type, self.worker_type.as_str()]);
            }
        }
        self.model_latency.with_label_values(&[model]);
        self.worker_info
            .with_label_values(&[self.worker_type.as_str(), env!("CARGO_PKG_VERSION"), model])
            .set(1);
    }

    /// Registers a worker-specific metric (beyond the contract's names)
    /// in the same registry, so `/metrics` exports it too.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn register<M: prometheus::core::Collector + Clone + 'static>(
        &self,
        metric: M,
    ) -> Result<M, prometheus::Error> {
        register(&self.registry, metric)
    }

    /// The worker type label (`embed`, `summarize`, `transcribe`).
    pub fn worker_type(&self) -> &str {
        &self.worker_type
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "could not encode metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, prometheus::Error> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn histogram(registry: &Registry, name: &str, help: &str) -> Result<Histogram, prometheus::Error> {
    register(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec()))?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name CONTRACT section 7 lists.
    const CONTRACT_NAMES: &[&str] = &[
        "celery_task_received_total",
        "celery_task_succeeded_total",
        "celery_task_failed_total",
        "celery_task_retried_total",
        "celery_worker_busy",
        "ml_tasks_total",
        "ml_task_duration_seconds",
        "ml_task_errors_total",
        "ml_active_tasks",
        "ml_summarization_duration_seconds",
        "ml_transcription_duration_seconds",
        "ml_embedding_duration_seconds",
        "ml_embedding_batch_size",
        "ml_tokens_processed_total",
        "ml_audio_duration_seconds_total",
        "ml_embeddings_generated_total",
        "ml_model_latency_seconds",
        "ml_worker_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ];

    #[test]
    fn every_contract_name_is_exported_before_the_first_task() {
        let metrics = Metrics::new("embed").unwrap_or_else(|e| panic!("{e}"));
        metrics.initialise(
            &[("ml.embed", "vector_service.tasks.generate_embeddings")],
            "all-MiniLM-L6-v2",
        );
        let text = metrics.render();
        for name in CONTRACT_NAMES {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} missing from /metrics"
            );
        }
    }

    #[test]
    fn busy_ratio_carries_the_worker_type() {
        let metrics = Metrics::new("summarize").unwrap_or_else(|e| panic!("{e}"));
        metrics.worker_busy.set(0.5);
        let text = metrics.render();
        assert!(
            text.lines()
                .any(|l| l == r#"celery_worker_busy{worker_type="summarize"} 0.5"#),
            "no labelled celery_worker_busy sample in:\n{text}"
        );
    }
}
