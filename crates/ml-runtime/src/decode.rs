//! Decoding both wire encodings (CONTRACT section 2) into one [`Task`].
//!
//! * Gateway ("protocol 1 hybrid"): AMQP headers empty, the body is an object
//!   carrying `id`, `task`, `args`, `kwargs`, `retries`, `eta`, `expires` and
//!   a `headers` object with the W3C trace context.
//! * Celery protocol 2: AMQP headers carry `task`, `id`, `retries`, `eta`,
//!   `expires`, ...; the body is `[args, kwargs, embed]`.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::task::{Encoding, Task, TimeLimit};

/// The parts of an AMQP message decoding looks at.
#[derive(Debug, Default)]
pub(crate) struct RawMessage<'a> {
    pub body: &'a [u8],
    pub headers: Map<String, Value>,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

/// Why a message could not become a task. It keeps whatever identity could be
/// read so the failure can still be reported under the task's id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodeError {
    pub reason: String,
    pub task_id: Option<String>,
    pub task_name: Option<String>,
}

impl DecodeError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            task_id: None,
            task_name: None,
        }
    }

    /// A body of `size` bytes, over the `max` of `TASK_MAX_BODY_BYTES`: not
    /// read, so nothing identifies the task.
    pub(crate) fn body_too_large(size: usize, max: usize) -> Self {
        Self::new(format!(
            "the body is {size} bytes, over the {max}-byte cap (TASK_MAX_BODY_BYTES)"
        ))
    }

    /// Keeps the task's `id` and `name`, each only when it is short enough
    /// to be reported under ([`MAX_IDENTITY_BYTES`]).
    fn about(mut self, id: Option<&str>, name: Option<&str>) -> Self {
        let short = |text: &str| (text.len() <= MAX_IDENTITY_BYTES).then(|| text.to_owned());
        self.task_id = id.and_then(short);
        self.task_name = name.and_then(short);
        self
    }
}

/// The most bytes of a task id or name: an AMQP short string (a Celery id
/// is a 36-byte UUID). Longer ones cannot be republished as a
/// `correlation_id`, and would be copied into every header.
pub(crate) const MAX_IDENTITY_BYTES: usize = 255;

/// Decodes a message in either encoding.
pub(crate) fn decode(message: &RawMessage<'_>) -> Result<Task, DecodeError> {
    let task = decode_any(message)?;
    let too_long = |what: &str, text: &str| {
        let reason = format!(
            "the task {what} is {} bytes, over {MAX_IDENTITY_BYTES}",
            text.len()
        );
        DecodeError::new(reason).about(Some(&task.id), Some(&task.name))
    };
    if task.id.len() > MAX_IDENTITY_BYTES {
        return Err(too_long("id", &task.id));
    }
    if task.name.len() > MAX_IDENTITY_BYTES {
        return Err(too_long("name", &task.name));
    }
    Ok(task)
}

fn decode_any(message: &RawMessage<'_>) -> Result<Task, DecodeError> {
    if let Some(content_type) = message.content_type
        && !content_type.is_empty()
        && content_type != "application/json"
    {
        return Err(DecodeError::new(format!(
            "unsupported content type {content_type:?}: only application/json is accepted"
        )));
    }
    if let Some(encoding) = message.content_encoding
        && !encoding.is_empty()
        && !encoding.eq_ignore_ascii_case("utf-8")
    {
        return Err(DecodeError::new(format!(
            "unsupported content encoding {encoding:?}: only utf-8 is accepted"
        )));
    }
    let body: Value = serde_json::from_slice(message.body)
        .map_err(|e| DecodeError::new(format!("body is not valid JSON: {e}")))?;
    if message.headers.contains_key("task") {
        decode_celery_v2(message, body)
    } else {
        decode_gateway(body)
    }
}

fn decode_gateway(body: Value) -> Result<Task, DecodeError> {
    let Value::Object(mut object) = body else {
        return Err(DecodeError::new(
            "body must be a JSON object with `task` and `id` (gateway encoding) \
             or the AMQP headers must carry `task` (Celery protocol 2)",
        ));
    };
    let id = object.get("id").and_then(Value::as_str).map(str::to_owned);
    let name = object
        .get("task")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let fail = |reason: String| DecodeError::new(reason).about(id.as_deref(), name.as_deref());
    let (Some(task_id), Some(task_name)) = (id.clone(), name.clone()) else {
        return Err(fail(
            "gateway message must carry string fields `id` and `task`".into(),
        ));
    };
    let args = take_args(object.remove("args")).map_err(&fail)?;
    let kwargs = take_kwargs(object.remove("kwargs")).map_err(&fail)?;
    let retries = read_retries(object.get("retries")).map_err(&fail)?;
    let eta = read_time("eta", object.get("eta")).map_err(&fail)?;
    let expires = read_time("expires", object.get("expires")).map_err(&fail)?;
    let inner_headers = object.get("headers").and_then(Value::as_object);
    let time_limit = object
        .get("timelimit")
        .or_else(|| inner_headers.and_then(|h| h.get("timelimit")));
    let time_limit = read_time_limit(time_limit).map_err(&fail)?;
    let header = |key: &str| {
        inner_headers
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(Task {
        root_id: header("root_id"),
        parent_id: header("parent_id"),
        traceparent: header("traceparent"),
        id: task_id,
        name: task_name,
        args,
        kwargs,
        retries,
        eta,
        expires,
        time_limit,
        encoding: Encoding::Gateway,
    })
}

fn decode_celery_v2(message: &RawMessage<'_>, body: Value) -> Result<Task, DecodeError> {
    let headers = &message.headers;
    let text = |key: &str| headers.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text("task");
    let id = text("id").or_else(|| message.correlation_id.map(str::to_owned));
    let fail = |reason: String| DecodeError::new(reason).about(id.as_deref(), name.as_deref());
    let (Some(task_id), Some(task_name)) = (id.clone(), name.clone()) else {
        return Err(fail(
            "Celery protocol 2 message must carry string headers `task` and `id`".into(),
        ));
    };
    let Value::Array(mut parts) = body else {
        return Err(fail(
            "Celery protocol 2 body must be the array [args, kwargs, embed]".into(),
        ));
    };
    if !(2..=3).contains(&parts.len()) {
        return Err(fail(format!(
            "Celery protocol 2 body must be [args, kwargs, embed], got {} items",
            parts.len()
        )));
    }
    let mut parts = parts.drain(..);
    let args = take_args(parts.next()).map_err(&fail)?;
    let kwargs = take_kwargs(parts.next()).map_err(&fail)?;
    Ok(Task {
        retries: read_retries(headers.get("retries")).map_err(&fail)?,
        eta: read_time("eta", headers.get("eta")).map_err(&fail)?,
        expires: read_time("expires", headers.get("expires")).map_err(&fail)?,
        time_limit: read_time_limit(headers.get("timelimit")).map_err(&fail)?,
        root_id: text("root_id"),
        parent_id: text("parent_id"),
        traceparent: text("traceparent"),
        id: task_id,
        name: task_name,
        args,
        kwargs,
        encoding: Encoding::CeleryV2,
    })
}

fn take_args(value: Option<Value>) -> Result<Vec<Value>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("`args` must be a JSON array, got {}", kind(&other))),
    }
}

fn take_kwargs(value: Option<Value>) -> Result<Map<String, Value>, String> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(format!(
            "`kwargs` must be a JSON object, got {}",
            kind(&other)
        )),
    }
}

fn read_retries(value: Option<&Value>) -> Result<u32, String> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("`retries` must be a non-negative integer, got {v}")),
    }
}

/// Reads `eta`/`expires`: an ISO 8601 timestamp (offset optional, UTC assumed) or null.
fn read_time(field: &str, value: Option<&Value>) -> Result<Option<DateTime<Utc>>, String> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!(
                "`{field}` must be an ISO 8601 timestamp or null, got {}",
                kind(other)
            ));
        }
    };
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(time.with_timezone(&Utc)));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|naive| Some(naive.and_utc()))
        .map_err(|_| format!("`{field}` is not an ISO 8601 timestamp: {}", excerpt(text)))
}

/// Reads `timelimit`: `[hard, soft]` in seconds, each a positive number or
/// null; absent or null is no limit.
fn read_time_limit(value: Option<&Value>) -> Result<TimeLimit, String> {
    let seconds = |value: &Value| match value {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(Some)
            .ok_or_else(|| format!("`timelimit` seconds must be positive, got {n}")),
        other => Err(format!(
            "`timelimit` must be [hard, soft] in seconds, got {} in it",
            kind(other)
        )),
    };
    match value {
        None | Some(Value::Null) => Ok(TimeLimit::default()),
        Some(Value::Array(pair)) if pair.len() == 2 => Ok(TimeLimit {
            hard: seconds(&pair[0])?,
            soft: seconds(&pair[1])?,
        }),
        Some(other) => Err(format!(
            "`timelimit` must be [hard, soft] in seconds, got {}",
            kind(other)
        )),
    }
}

/// `text` quoted, its first 64 characters at most.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((end, _)) => format!("{:?}… ({} bytes)", &text[..end], text.len()),
        None => format!("{text:?}"),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Loads a fixture from tests/fixtures/messages as a `RawMessage`.
    fn fixture(name: &str) -> (Vec<u8>, Map<String, Value>, Option<String>) {
        let path = format!(
            "{}/../../tests/fixtures/messages/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = match (value.get("body"), value.get("body_raw")) {
            (Some(body), _) => serde_json::to_vec(body).unwrap_or_default(),
            (None, Some(raw)) => raw.as_str().unwrap_or_default().as_bytes().to_vec(),
            _ => panic!("{path}: no body"),
        };
        let headers = value["headers"].as_object().cloned().unwrap_or_default();
        let correlation = value["properties"]["correlation_id"]
            .as_str()
            .map(str::to_owned);
        (body, headers, correlation)
    }

    fn decode_fixture(name: &str) -> Result<Task, DecodeError> {
        let (body, headers, correlation) = fixture(name);
        decode(&RawMessage {
            body: &body,
            headers,
            content_type: Some("application/json"),
            content_encoding: Some("utf-8"),
            correlation_id: correlation.as_deref(),
        })
    }

    #[test]
    fn gateway_fixture_decodes_with_trace_context() {
        let task = decode_fixture("embed.gateway.json").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(task.encoding, Encoding::Gateway);
        assert_eq!(task.name, "vector_service.tasks.generate_embeddings");
        assert_eq!(task.id, "c9d2e1f0-a3b4-4c5d-9e6f-7a8b9c0d1e2f");
        assert_eq!(
            task.share_id_hint(),
            Some("6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f")
        );
        assert_eq!(task.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(task.retries, 0);
        assert_eq!(task.eta, None);
    }

    #[test]
    fn celery_v2_fixture_decodes() {
        let task =
            decode_fixture("embed-transcript.celery-v2.json").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(task.encoding, Encoding::CeleryV2);
        assert_eq!(task.id, "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b");
        assert_eq!(
            task.argument("content", 1).and_then(|c| c.get("type")),
            Some(&json!("transcript"))
        );
    }

    #[test]
    fn time_limits_are_read_as_hard_then_soft() {
        let secs = Duration::from_secs;
        assert_eq!(read_time_limit(None), Ok(TimeLimit::default()));
        assert_eq!(
            read_time_limit(Some(&json!([null, null]))),
            Ok(TimeLimit::default())
        );
        assert_eq!(
            read_time_limit(Some(&json!([20, 15]))),
            Ok(TimeLimit {
                hard: Some(secs(20)),
                soft: Some(secs(15))
            })
        );
        assert_eq!(
            read_time_limit(Some(&json!([null, 0.5]))),
            Ok(TimeLimit {
                hard: None,
                soft: Some(Duration::from_millis(500))
            })
        );
        for bad in [
            json!(20),
            json!([20]),
            json!([-1, null]),
            json!(["20", null]),
        ] {
            assert!(read_time_limit(Some(&bad)).is_err(), "{bad}");
        }
        let headers = json!({"lang": "py", "task": "t", "id": "i", "timelimit": [20, 15]});
        let task = decode(&RawMessage {
            body: br#"[[], {}, {}]"#,
            headers: headers.as_object().cloned().unwrap_or_default(),
            ..RawMessage::default()
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(task.time_limit.hard, Some(secs(20)));
        let gateway = gateway(&json!({"id": "i", "task": "t", "timelimit": [null, 3]}))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(gateway.time_limit.soft, Some(secs(3)));
    }

    #[test]
    fn every_good_fixture_decodes() {
        let dir = format!(
            "{}/../../tests/fixtures/messages",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !name.starts_with("bad-") {
                decode_fixture(&name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                seen += 1;
            }
        }
        assert!(seen >= 8, "expected the good fixtures, found {seen}");
    }

    #[test]
    fn malformed_body_is_a_clear_error() {
        let err = decode_fixture("bad-not-json.json")
            .err()
            .unwrap_or_else(|| panic!("decoded"));
        assert!(err.reason.contains("not valid JSON"), "{}", err.reason);
        assert_eq!(err.task_id, None);
    }

    #[test]
    fn wrong_shapes_keep_the_task_identity() {
        let body = serde_json::to_vec(&json!({"id": "t1", "task": "x", "args": {"no": 1}}))
            .unwrap_or_default();
        let err = decode(&RawMessage {
            body: &body,
            ..RawMessage::default()
        })
        .err()
        .unwrap_or_else(|| panic!("decoded"));
        assert!(
            err.reason.contains("`args` must be a JSON array"),
            "{}",
            err.reason
        );
        assert_eq!(err.task_id.as_deref(), Some("t1"));
        assert_eq!(err.task_name.as_deref(), Some("x"));
    }

    fn gateway(body: &Value) -> Result<Task, DecodeError> {
        let body = serde_json::to_vec(body).unwrap_or_default();
        decode(&RawMessage {
            body: &body,
            ..RawMessage::default()
        })
    }

    #[test]
    fn overlong_ids_and_names_are_refused_and_never_reported_under() {
        let long = "x".repeat(MAX_IDENTITY_BYTES + 1);
        let err = gateway(&json!({"id": long, "task": "t"}))
            .err()
            .unwrap_or_else(|| panic!("decoded"));
        assert_eq!(err.reason, "the task id is 256 bytes, over 255");
        assert_eq!((err.task_id, err.task_name.as_deref()), (None, Some("t")));
        let err = gateway(&json!({"id": "i", "task": long}))
            .err()
            .unwrap_or_else(|| panic!("decoded"));
        assert_eq!(err.reason, "the task name is 256 bytes, over 255");
        assert_eq!((err.task_id.as_deref(), err.task_name), (Some("i"), None));
        let ok = "y".repeat(MAX_IDENTITY_BYTES);
        assert!(gateway(&json!({"id": ok, "task": ok})).is_ok());
    }

    #[test]
    fn bad_times_are_quoted_in_part() {
        let eta = "9".repeat(300_000);
        let err = gateway(&json!({"id": "i", "task": "t", "eta": eta}))
            .err()
            .unwrap_or_else(|| panic!("decoded"));
        assert!(
            err.reason
                .starts_with("`eta` is not an ISO 8601 timestamp: \"9999"),
            "{}",
            err.reason
        );
        assert!(err.reason.ends_with("\"… (300000 bytes)"), "{}", err.reason);
        assert!(err.reason.len() < 200, "{}", err.reason);
    }

    #[test]
    fn celery_v2_body_must_be_a_triple() {
        let mut headers = Map::new();
        headers.insert("task".into(), json!("t"));
        headers.insert("id".into(), json!("i"));
        let body = br#"{"args": []}"#;
        let err = decode(&RawMessage {
            body,
            headers,
            ..RawMessage::default()
        })
        .err()
        .unwrap_or_else(|| panic!("decoded"));
        assert!(
            err.reason.contains("[args, kwargs, embed]"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn times_accept_iso_with_or_without_offset() {
        let with_z = read_time("eta", Some(&json!("2026-01-02T03:04:05.678Z")));
        let with_offset = read_time("eta", Some(&json!("2026-01-02T03:04:05.678000+00:00")));
        let naive = read_time("eta", Some(&json!("2026-01-02T03:04:05.678")));
        assert_eq!(with_z, with_offset);
        assert_eq!(with_z, naive);
        assert!(read_time("eta", Some(&json!(12))).is_err());
        assert!(read_time("eta", Some(&json!("tomorrow"))).is_err());
    }

    #[test]
    fn non_json_content_type_is_refused() {
        let err = decode(&RawMessage {
            body: b"[]",
            content_type: Some("application/x-python-serialize"),
            ..RawMessage::default()
        })
        .err()
        .unwrap_or_else(|| panic!("decoded"));
        assert!(err.reason.contains("unsupported content type"));
    }
}
