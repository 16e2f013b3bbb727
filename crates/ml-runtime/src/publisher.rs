//! Confirmed publishing of retries and dead-letters: the copy is confirmed
//! by the broker before the original delivery is acknowledged.

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::Channel;
use lapin::types::{AMQPValue, LongString, ShortString};
use serde_json::{Value, json};

use crate::broker::{PublishError, json_properties, publish_confirmed};
use crate::headers::json_to_table;
use crate::task::Task;
use crate::{DEAD_LETTER_SUFFIX, EXCHANGE};

/// Why a message is dead-lettered, carried in its headers.
pub(crate) struct DeadLetter<'a> {
    pub queue: &'a str,
    pub reason: &'a str,
    pub task_id: Option<&'a str>,
    pub task_name: Option<&'a str>,
    pub retries: u32,
}

/// Publishes on a channel in confirm mode. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Publisher {
    channel: Channel,
}

impl Publisher {
    pub(crate) fn new(channel: Channel) -> Self {
        Self { channel }
    }

    /// Publishes `task` again in Celery protocol 2 to the queue it came from,
    /// with `retries` and `eta` (a retry, or a far-future task put back).
    pub(crate) async fn schedule(
        &self,
        task: &Task,
        queue: &str,
        retries: u32,
        eta: DateTime<Utc>,
    ) -> Result<(), PublishError> {
        let body = json!([
            task.args,
            task.kwargs,
            {"callbacks": null, "errbacks": null, "chain": null, "chord": null}
        ]);
        let mut headers = serde_json::Map::new();
        headers.insert("lang".into(), json!("py"));
        headers.insert("task".into(), json!(task.name));
        headers.insert("id".into(), json!(task.id));
        headers.insert("retries".into(), json!(retries));
        headers.insert(
            "eta".into(),
            json!(eta.to_rfc3339_opts(SecondsFormat::Micros, false)),
        );
        headers.insert(
            "expires".into(),
            json!(
                task.expires
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, false))
            ),
        );
        headers.insert(
            "root_id".into(),
            json!(task.root_id.as_deref().unwrap_or(&task.id)),
        );
        headers.insert("parent_id".into(), json!(task.parent_id));
        headers.insert("group".into(), Value::Null);
        let seconds = |limit: Option<std::time::Duration>| limit.map(|d| d.as_secs_f64());
        let limit = task.time_limit;
        headers.insert(
            "timelimit".into(),
            json!([seconds(limit.hard), seconds(limit.soft)]),
        );
        headers.insert("origin".into(), json!(origin()));
        if let Some(traceparent) = &task.traceparent {
            headers.insert("traceparent".into(), json!(traceparent));
        }
        let properties = json_properties()
            .with_correlation_id(ShortString::from(task.id.as_str()))
            .with_headers(json_to_table(&headers));
        publish_confirmed(
            &self.channel,
            EXCHANGE,
            queue,
            body.to_string().as_bytes(),
            properties,
        )
        .await
    }

    /// Publishes the original message bytes to `<queue>.dead` with the reason
    /// and origin in its headers.
    pub(crate) async fn dead_letter(
        &self,
        original: &lapin::message::Delivery,
        letter: &DeadLetter<'_>,
    ) -> Result<(), PublishError> {
        let mut headers = original.properties.headers().clone().unwrap_or_default();
        let mut put = |key: &str, value: &str| {
            headers.insert(
                ShortString::from(key),
                AMQPValue::LongString(LongString::from(value)),
            );
        };
        put("x-death-reason", letter.reason);
        put("x-original-queue", letter.queue);
        put("x-original-exchange", original.exchange.as_str());
        put("x-original-routing-key", original.routing_key.as_str());
        put(
            "x-failed-at",
            &Utc::now().to_rfc3339_opts(SecondsFormat::Micros, false),
        );
        put("x-failed-by", &origin());
        if let Some(id) = letter.task_id {
            put("x-task-id", id);
        }
        if let Some(name) = letter.task_name {
            put("x-task-name", name);
        }
        headers.insert(
            ShortString::from("x-retries"),
            AMQPValue::LongLongInt(i64::from(letter.retries)),
        );
        let properties = original
            .properties
            .clone()
            .with_delivery_mode(2)
            .with_headers(headers);
        let dead_queue = format!("{}{DEAD_LETTER_SUFFIX}", letter.queue);
        publish_confirmed(&self.channel, "", &dead_queue, &original.data, properties).await
    }
}

/// `<program>@<host>`, as Celery's `origin` header.
fn origin() -> String {
    let program = std::env::args()
        .next()
        .and_then(|path| {
            std::path::Path::new(&path)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "ml-worker".to_owned());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{program}@{host}")
}
