//! With an OTLP endpoint set, a delivery's `task` span reaches the collector
//! as a child of the message's W3C `traceparent`, with the task's fields as
//! attributes and the model thread's log line as one of its events.
//!
//! End to end: a real `Worker` with a stub handler consumes from the real
//! RabbitMQ (`CELERY_BROKER_URL`) and writes results to the real Redis
//! (`REDIS_URL`); the collector is an axum server in this test. Its own test
//! binary because the global tracing subscriber is installed once per process.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use clap::Parser;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions};
use lapin::types::ShortString;
use lapin::{Connection, ConnectionProperties};
use ml_runtime::{
    Handler, Metrics, Readiness, Request, ResultBackend, Router, RuntimeArgs, Task, TaskError,
    Worker, WorkerSpec,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";
const TASK_NAME: &str = "test.otlp.stub";
const SERVICE_NAME: &str = "otlp-test-worker";
const MODEL_LINE: &str = "model thread ran";

/// The workers' command line, as their `Config` flattens it.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Logs from a blocking thread (as a model would) and succeeds.
struct Stub {
    called: Arc<Notify>,
}

/// The stub reads no arguments.
#[derive(serde::Deserialize)]
struct NoArguments {}

impl Request for NoArguments {
    const POSITIONAL: &'static [&'static str] = &[];

    fn share_ids(&self) -> Vec<uuid::Uuid> {
        Vec::new()
    }
}

#[async_trait::async_trait]
impl Handler for Stub {
    type Request = NoArguments;

    async fn handle(&self, _task: &Task, _: &NoArguments) -> Result<Value, TaskError> {
        ml_runtime::telemetry::spawn_blocking_in_span(|| tracing::info!("{MODEL_LINE}"))
            .await
            .map_err(|e| TaskError::Transient(format!("model thread: {e}")))?;
        self.called.notify_one();
        Ok(json!({"ok": true}))
    }
}

/// Every request the collector received, decoded.
type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

async fn collector() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| async move {
            let request = ExportTraceServiceRequest::decode(body)
                .unwrap_or_else(|e| panic!("collector got a body that is not OTLP protobuf: {e}"));
            store
                .lock()
                .unwrap_or_else(|e| panic!("collector store: {e}"))
                .push(request);
            (
                [(CONTENT_TYPE, "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("binding the collector: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("collector address: {e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|AnyValue { value }| match value {
            Some(any_value::Value::StringValue(text)) => Some(text.as_str()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_span_is_exported_as_child_of_the_traceparent() {
    let (endpoint, received) = collector().await;
    let cli = Cli::parse_from([
        "otlp-test",
        "--otel-endpoint",
        endpoint.as_str(),
        "--result-expires-secs",
        "60",
        "--concurrency",
        "1",
    ]);
    ml_runtime::telemetry::init(&cli.runtime, SERVICE_NAME)
        .unwrap_or_else(|e| panic!("telemetry: {e}"));

    let id = uuid::Uuid::new_v4().simple().to_string();
    let queue = format!("ml.otlp.test-{}", &id[..12]);
    let connection = Connection::connect(&cli.runtime.broker_url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("connecting to RabbitMQ: {e}"));
    let channel = connection
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("channel: {e}"));
    ml_runtime::broker::declare_topology(&channel, std::slice::from_ref(&queue))
        .await
        .unwrap_or_else(|e| panic!("declaring {queue}: {e}"));

    let called = Arc::new(Notify::new());
    let router = Router::new().route(
        TASK_NAME,
        Arc::new(Stub {
            called: called.clone(),
        }),
    );
    let results = ResultBackend::connect(
        cli.runtime.result_backend_url(),
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("connecting to Redis: {e}"));
    let metrics = Arc::new(Metrics::new("test").unwrap_or_else(|e| panic!("metrics: {e}")));
    let shutdown = CancellationToken::new();
    let spec = WorkerSpec {
        name: SERVICE_NAME.to_owned(),
        queues: vec![queue.clone()],
        router,
    };
    let worker = Worker::new(
        cli.runtime.clone(),
        spec,
        results,
        metrics,
        Readiness::default(),
        shutdown.clone(),
    );
    let worker = tokio::spawn(worker.run());

    let task_id = uuid::Uuid::new_v4().to_string();
    let share_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "id": task_id,
        "task": TASK_NAME,
        "args": [],
        "kwargs": {"share_id": share_id, "content": {}, "options": {}},
        "retries": 0,
        "eta": null,
        "expires": null,
        "headers": {"traceparent": format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")},
        "priority": 0,
        "reply_to": null,
        "correlation_id": task_id,
    });
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_or_else(|e| panic!("confirms: {e}"));
    channel
        .basic_publish(
            ShortString::from(ml_runtime::EXCHANGE),
            ShortString::from(queue.as_str()),
            BasicPublishOptions::default(),
            body.to_string().as_bytes(),
            ml_runtime::broker::json_properties(),
        )
        .await
        .unwrap_or_else(|e| panic!("publishing: {e}"))
        .await
        .unwrap_or_else(|e| panic!("publish confirm: {e}"));

    // A bound on a hang, not on speed.
    tokio::time::timeout(std::time::Duration::from_secs(120), called.notified())
        .await
        .unwrap_or_else(|_| panic!("the worker never ran the task"));
    // Shutdown drains the in-flight task (result, ack, span closed), then the
    // telemetry shutdown flushes its span to the collector.
    shutdown.cancel();
    worker
        .await
        .unwrap_or_else(|e| panic!("worker task: {e}"))
        .unwrap_or_else(|e| panic!("worker: {e}"));
    tokio::task::spawn_blocking(ml_runtime::telemetry::shutdown)
        .await
        .unwrap_or_else(|e| panic!("telemetry shutdown: {e}"));

    for name in [format!("{queue}.dead"), queue.clone()] {
        channel
            .queue_delete(
                ShortString::from(name.as_str()),
                QueueDeleteOptions::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
    }
    let mut redis = redis::Client::open(cli.runtime.result_backend_url())
        .and_then(|client| client.get_connection())
        .unwrap_or_else(|e| panic!("redis: {e}"));
    let _: () = redis::cmd("DEL")
        .arg(ml_runtime::results::key(&task_id))
        .query(&mut redis)
        .unwrap_or_else(|e| panic!("deleting the result: {e}"));

    let requests = received
        .lock()
        .unwrap_or_else(|e| panic!("collector store: {e}"))
        .clone();
    let exported: Vec<(Option<&str>, &Span)> = requests
        .iter()
        .flat_map(|request| &request.resource_spans)
        .flat_map(|resource| {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| attribute(&r.attributes, "service.name"));
            resource
                .scope_spans
                .iter()
                .flat_map(move |scope| scope.spans.iter().map(move |span| (service, span)))
        })
        .collect();
    let (service, span) = exported
        .iter()
        .find(|(_, span)| span.name == "task")
        .unwrap_or_else(|| panic!("no `task` span among {} exported", exported.len()));

    assert_eq!(hex(&span.trace_id), TRACE_ID, "trace id from traceparent");
    assert_eq!(
        hex(&span.parent_span_id),
        PARENT_SPAN_ID,
        "parent is the traceparent's span"
    );
    assert_eq!(
        attribute(&span.attributes, "task_id"),
        Some(task_id.as_str())
    );
    assert_eq!(attribute(&span.attributes, "task_name"), Some(TASK_NAME));
    assert_eq!(attribute(&span.attributes, "queue"), Some(queue.as_str()));
    assert_eq!(
        attribute(&span.attributes, "share_id"),
        Some(share_id.as_str())
    );
    assert!(
        span.events.iter().any(|event| event.name == MODEL_LINE),
        "the blocking thread's log line is an event of the task span: {:?}",
        span.events.iter().map(|e| &e.name).collect::<Vec<_>>()
    );
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        assert_eq!(
            *service,
            Some(SERVICE_NAME),
            "service named after the worker"
        );
    }
}
