//! Logging and tracing set-up: JSON lines (default) or human-readable text on
//! stderr and, only when an OTLP endpoint is configured, the task spans
//! exported over OTLP/HTTP (protobuf) with the message's W3C `traceparent` as
//! their parent.
//!
//! A worker's `main` calls [`init`] once before building its runtime
//! and [`shutdown`] once the runtime has returned, so the last spans are
//! flushed. Blocking model code runs through [`spawn_blocking_in_span`] so
//! its log lines (and span events) carry the task's fields.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::RuntimeArgs;

/// The per-signal endpoint, used as is; wins over the base endpoint.
const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Export timeouts in milliseconds, per signal first (OTLP exporter spec).
const TIMEOUT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
];
/// The OTLP exporter spec's default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest collector response read (they are a few bytes; bounds a bad peer).
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// The exporting provider, kept for [`shutdown`]; unset when OTLP is off.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global tracing subscriber for a worker: logs as
/// `args.log_level`/`args.log_format` say and, when an OTLP endpoint is set
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, i.e. `args.otel_endpoint`, or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), the task spans exported to it.
///
/// Spans are exported as `service.name` = `OTEL_SERVICE_NAME` (or
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`), else `worker_name`. The
/// OpenTelemetry SDK also honours `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`,
/// `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_BSP_*`. Only the `http/protobuf`
/// protocol is built in. The `LOG_LEVEL` filter applies to exported spans
/// as to log lines (the task span is INFO).
///
/// Without an endpoint no exporter is built and no OpenTelemetry layer is
/// installed: logging is exactly as without this feature.
///
/// Call it once, before building the Tokio runtime; call [`shutdown`] when
/// the runtime has returned.
///
/// # Errors
/// When the filter does not parse, the format is unknown, the endpoint is
/// not a URL, or a global subscriber is already installed.
pub fn init(args: &RuntimeArgs, worker_name: &str) -> Result<(), String> {
    install(
        &args.log_level,
        &args.log_format,
        Otlp::resolve(args.otel_endpoint.as_deref(), worker_name),
    )
}

/// Flushes the spans not yet exported and stops the exporter; a no-op when
/// OTLP is off. Blocks until the collector answered or the export timeout
/// passed, so call it outside async code: after the runtime's `block_on`
/// returned (or from `spawn_blocking`). Spans ended after it are dropped.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(%error, "could not flush the last task spans to the OTLP collector");
    }
}

/// Runs `f` on Tokio's blocking pool with the caller's current span entered,
/// so log lines from model threads carry the task's fields (task id, share
/// id, queue) and count under its span. Otherwise as
/// [`tokio::task::spawn_blocking`].
///
/// # Panics
/// Outside a Tokio runtime, as `spawn_blocking` does.
pub fn spawn_blocking_in_span<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}

/// Makes the remote span in `traceparent` (W3C Trace Context) the parent of
/// `span`, which must not have been entered yet. Does nothing when OTLP is
/// off or `traceparent` does not parse (the span then starts a trace).
pub(crate) fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let (Some(traceparent), Some(_)) = (traceparent, PROVIDER.get()) else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if !parent.span().span_context().is_valid() {
        tracing::debug!(
            traceparent,
            "traceparent does not parse; the task starts a trace"
        );
        return;
    }
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "could not parent the task span");
    }
}

/// Where spans go and under which default service name.
struct Otlp {
    /// `None`: the SDK reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` itself.
    traces_endpoint: Option<String>,
    service_name: String,
}

impl Otlp {
    /// The export settings, or `None` (no export) when no endpoint is set.
    fn resolve(base_endpoint: Option<&str>, service_name: &str) -> Option<Self> {
        let traces_endpoint = if non_empty_var(TRACES_ENDPOINT_VAR).is_some() {
            None
        } else {
            Some(traces_url(
                base_endpoint.filter(|url| !url.trim().is_empty())?,
            ))
        };
        Some(Self {
            traces_endpoint,
            service_name: service_name.to_owned(),
        })
    }
}

/// The traces URL under a base OTLP/HTTP endpoint (OTLP exporter spec).
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim().trim_end_matches('/'))
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn install(filter: &str, format: &str, otlp: Option<Otlp>) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|e| format!("LOG_LEVEL {filter:?}: {e}"))?;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        "json" => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        "text" => fmt.boxed(),
        other => return Err(format!("LOG_FORMAT must be json or text, got {other:?}")),
    };
    let provider = otlp.map(|otlp| tracer_provider(&otlp)).transpose()?;
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(spans)
        .try_init()
        .map_err(|e| format!("tracing subscriber: {e}"))?;
    if let Some(provider) = provider
        && PROVIDER.set(provider).is_err()
    {
        return Err("telemetry initialised twice".to_owned());
    }
    Ok(())
}

fn tracer_provider(otlp: &Otlp) -> Result<SdkTracerProvider, String> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(BlockingClient::new(export_timeout())?);
    if let Some(endpoint) = &otlp.traces_endpoint {
        exporter = exporter.with_endpoint(endpoint);
    }
    let exporter = exporter
        .build()
        .map_err(|e| format!("OTLP trace exporter: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(&otlp.service_name))
        .build())
}

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, SDK
/// attributes), named `default_name` when neither names the service.
fn resource(default_name: &str) -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder()
            .with_service_name(default_name.to_owned())
            .build()
    }
}

fn export_timeout() -> Duration {
    TIMEOUT_VARS
        .iter()
        .find_map(|name| non_empty_var(name)?.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// The OTLP exporter's HTTP client: the workspace's reqwest (rustls on ring),
/// blocking, because the SDK's batch processor exports from its own thread
/// outside any Tokio runtime.
#[derive(Debug)]
struct BlockingClient(reqwest::blocking::Client);

impl BlockingClient {
    fn new(timeout: Duration) -> Result<Self, String> {
        // A blocking client must not be built on a runtime thread: build it
        // on a thread of its own whichever thread `init` runs on.
        std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| "building the OTLP HTTP client panicked".to_owned())?
        .map(Self)
        .map_err(|e| format!("OTLP HTTP client: {e}"))
    }
}

#[async_trait::async_trait]
impl HttpClient for BlockingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::blocking::Request::try_from(request)?;
        let response = self.0.execute(request).inspect_err(|error| {
            tracing::warn!(%error, "OTLP collector unreachable; task spans are retried, then dropped");
        })?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(
                status = status.as_u16(),
                "OTLP collector refused task spans"
            );
        }
        let headers = response.headers().clone();
        let mut body = Vec::new();
        response.take(MAX_RESPONSE_BYTES).read_to_end(&mut body)?;
        let mut answer = Response::builder().status(status).body(Bytes::from(body))?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_path_is_appended_to_the_base_endpoint() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/otlp/ "),
            "http://collector:4318/otlp/v1/traces"
        );
    }

    #[test]
    fn no_endpoint_means_no_export() {
        if non_empty_var(TRACES_ENDPOINT_VAR).is_none() {
            assert!(Otlp::resolve(None, "w").is_none());
            assert!(Otlp::resolve(Some(" "), "w").is_none());
            let otlp = Otlp::resolve(Some("http://c:4318"), "w");
            assert_eq!(
                otlp.and_then(|o| o.traces_endpoint).as_deref(),
                Some("http://c:4318/v1/traces")
            );
        }
    }
}
