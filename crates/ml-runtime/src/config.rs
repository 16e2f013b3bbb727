//! Settings every worker shares, read from the old deployment's environment
//! names (CONTRACT section 6) or CLI flags.

use std::time::Duration;

use ml_storage::DatabaseArgs;

use crate::health::HttpLimits;
use crate::task::TimeLimit;

/// Runtime settings; each worker flattens this into its own `Config`.
#[derive(Clone, clap::Args)]
pub struct RuntimeArgs {
    /// PostgreSQL.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Port of the /metrics, /healthz and /readyz server (0: any free port).
    // Each worker sets its own default (9091, 9092, 9093) with
    // `mut_arg("metrics_port", ..)`.
    #[arg(long, env = "PROMETHEUS_METRICS_PORT", default_value_t = 0)]
    pub metrics_port: u16,

    /// AMQP URL of the RabbitMQ broker.
    #[arg(
        long,
        env = "CELERY_BROKER_URL",
        hide_env_values = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub broker_url: String,

    /// Redis URL of the Celery result backend (falls back to REDIS_URL).
    #[arg(long, env = "CELERY_RESULT_BACKEND", hide_env_values = true)]
    pub result_backend: Option<String>,

    /// Redis URL, used for results when CELERY_RESULT_BACKEND is unset.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379/0"
    )]
    pub redis_url: String,

    /// Seconds a task result stays in Redis.
    #[arg(long, env = "CELERY_RESULT_EXPIRES", default_value_t = 3600)]
    pub result_expires_secs: u64,

    /// Write the STARTED state when a task begins (Celery's `task_track_started`).
    #[arg(long, env = "CELERY_TASK_TRACK_STARTED", default_value_t = false)]
    pub track_started: bool,

    /// Tasks processed at the same time.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,

    /// Unacknowledged deliveries held per unit of concurrency (prefetch = this × concurrency).
    #[arg(long, env = "WORKER_PREFETCH_MULTIPLIER", default_value_t = 4)]
    pub prefetch_multiplier: u16,

    /// Largest message body accepted, in bytes; a larger one is
    /// dead-lettered unread (bodies are decoded before a task gets a slot,
    /// so prefetch × this bounds the memory they hold).
    #[arg(long, env = "TASK_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,

    /// Seconds a task may run before it is failed (`TimeLimitExceeded`) and
    /// its slot freed; a message's own `timelimit` may only lower it. Keep
    /// below RabbitMQ's consumer_timeout (30 min). 0: no limit.
    #[arg(long, env = "TASK_TIME_LIMIT_SECS", default_value_t = 1500)]
    pub time_limit_secs: u64,

    /// Seconds after which a running task is asked to stop (the handler
    /// ends its model call or download early); a message's `timelimit`
    /// may only lower it. 0: no soft limit.
    #[arg(long, env = "TASK_SOFT_TIME_LIMIT_SECS", default_value_t = 1440)]
    pub soft_time_limit_secs: u64,

    /// Retries of a task that failed transiently before it is dead-lettered.
    #[arg(long, env = "TASK_MAX_RETRIES", default_value_t = 3)]
    pub max_retries: u32,

    /// First retry delay in seconds; doubles with every retry (with jitter).
    #[arg(long, env = "TASK_RETRY_BACKOFF_SECS", default_value_t = 1.0)]
    pub retry_backoff_secs: f64,

    /// Upper bound of a retry delay in seconds.
    #[arg(long, env = "TASK_RETRY_BACKOFF_MAX_SECS", default_value_t = 300.0)]
    pub retry_backoff_max_secs: f64,

    /// Seconds in-flight tasks get to finish after SIGTERM before they are
    /// abandoned to redelivery. Keep below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "WORKER_SHUTDOWN_TIMEOUT", default_value_t = 25)]
    pub shutdown_timeout_secs: u64,

    /// Seconds one HTTP request (metrics, health, a worker's API) may take
    /// before it is answered 408; also how long a client has to send its
    /// request headers before the connection is closed.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub http_request_timeout_secs: u64,

    /// HTTP requests served at once; more are answered 503 at once rather
    /// than queued.
    #[arg(long, env = "HTTP_MAX_CONCURRENT_REQUESTS", default_value_t = 64)]
    pub http_max_concurrent_requests: usize,

    /// HTTP connections open at once; more wait in the listen backlog
    /// until one closes.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 256)]
    pub http_max_connections: usize,

    /// Address the metrics and health server binds to.
    #[arg(long, env = "METRICS_HOST", default_value = "0.0.0.0")]
    pub metrics_host: String,

    /// Log filter (tracing EnvFilter syntax, e.g. `info` or `ml_runtime=debug`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "LOG_FORMAT", default_value = "json")]
    pub log_format: String,

    /// Base OTLP/HTTP endpoint (e.g. `http://otel-collector:4318`): when set,
    /// task spans are exported to `<endpoint>/v1/traces` as children of the
    /// message's `traceparent`; unset, nothing is exported. See
    /// `telemetry::init` for the other OTEL_* variables.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_endpoint: Option<String>,
}

impl RuntimeArgs {
    /// The Redis URL results are written to.
    pub fn result_backend_url(&self) -> &str {
        self.result_backend.as_deref().unwrap_or(&self.redis_url)
    }

    /// Broker prefetch: `prefetch_multiplier × concurrency`, at least 1.
    pub fn prefetch(&self) -> u16 {
        let concurrency = u16::try_from(self.concurrency).unwrap_or(u16::MAX);
        self.prefetch_multiplier.saturating_mul(concurrency).max(1)
    }

    /// The worker's own time limits (0 is none).
    pub fn time_limit(&self) -> TimeLimit {
        let limit = |secs| (secs > 0).then(|| Duration::from_secs(secs));
        TimeLimit {
            hard: limit(self.time_limit_secs),
            soft: limit(self.soft_time_limit_secs),
        }
    }

    /// Limits of the HTTP server.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            request_timeout: Duration::from_secs(self.http_request_timeout_secs.max(1)),
            max_concurrent_requests: self.http_max_concurrent_requests.max(1),
            max_connections: self.http_max_connections.max(1),
        }
    }

    /// Grace period for in-flight tasks on shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

impl std::fmt::Debug for RuntimeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeArgs")
            .field("database", &self.database)
            .field("metrics_port", &self.metrics_port)
            .field("broker_url", &redact_url(&self.broker_url))
            .field("result_backend", &redact_url(self.result_backend_url()))
            .field("result_expires_secs", &self.result_expires_secs)
            .field("track_started", &self.track_started)
            .field("concurrency", &self.concurrency)
            .field("prefetch", &self.prefetch())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("time_limit_secs", &self.time_limit_secs)
            .field("soft_time_limit_secs", &self.soft_time_limit_secs)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff_secs", &self.retry_backoff_secs)
            .field("retry_backoff_max_secs", &self.retry_backoff_max_secs)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("metrics_host", &self.metrics_host)
            .field("http_request_timeout_secs", &self.http_request_timeout_secs)
            .field(
                "http_max_concurrent_requests",
                &self.http_max_concurrent_requests,
            )
            .field("http_max_connections", &self.http_max_connections)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("otel_endpoint", &self.otel_endpoint)
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host/...` URL with `***`
/// so connection strings can be logged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_owned(),
    }
}

/// Where a worker looks for its models: `models_dir` (the `MODELS_DIR`
/// setting) when given, else `$HOME/.cache/ml-workers/models`, where
/// `scripts/fetch-models` puts them.
pub fn models_dir_or_default(models_dir: Option<&std::path::Path>) -> std::path::PathBuf {
    models_dir.map_or_else(
        || {
            let home = std::env::var_os("HOME")
                .map_or_else(|| std::path::PathBuf::from("/"), std::path::PathBuf::from);
            home.join(".cache/ml-workers/models")
        },
        std::path::Path::to_path_buf,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("amqp://guest:secret@rabbit:5672/%2f"),
            "amqp://guest:***@rabbit:5672/%2f"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("redis://:pw@host:6379"),
            "redis://:***@host:6379"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn models_dir_defaults_to_the_fetch_cache() {
        let given = std::path::Path::new("/srv/models");
        assert_eq!(super::models_dir_or_default(Some(given)), given);
        assert!(super::models_dir_or_default(None).ends_with(".cache/ml-workers/models"));
    }
}
