//! The typed task both wire encodings decode into.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Which wire encoding a task arrived in (CONTRACT section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The API gateway's body-carried task (`{"id", "task", "args", "kwargs", ...}`).
    Gateway,
    /// Celery message protocol 2 (task name and id in AMQP headers).
    CeleryV2,
}

/// One task to run, independent of how it was encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Celery task id; also the Redis result key suffix.
    pub id: String,
    /// Task name, e.g. `vector_service.tasks.generate_embeddings`.
    pub name: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// How many times this task was retried already.
    pub retries: u32,
    /// Do not run before this instant.
    pub eta: Option<DateTime<Utc>>,
    /// Do not run after this instant; record REVOKED instead.
    pub expires: Option<DateTime<Utc>>,
    /// Id of the first task of the workflow this task belongs to.
    pub root_id: Option<String>,
    /// Id of the task that spawned this one.
    pub parent_id: Option<String>,
    /// W3C trace context, when the producer sent one.
    pub traceparent: Option<String>,
    /// The producer's `timelimit`.
    pub time_limit: TimeLimit,
    /// The encoding the task arrived in.
    pub encoding: Encoding,
}

/// Celery's `timelimit: [hard, soft]`: at the soft limit the handler is
/// asked to stop, at the hard one the task fails. Either may be unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeLimit {
    /// The task fails (`TimeLimitExceeded`) once it has run this long.
    pub hard: Option<Duration>,
    /// The handler is asked to stop once it has run this long.
    pub soft: Option<Duration>,
}

impl TimeLimit {
    /// The stricter of `self` and `other`, limit by limit; a soft limit not
    /// below the hard one is dropped.
    #[must_use]
    pub fn within(self, other: Self) -> Self {
        let stricter = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let hard = stricter(self.hard, other.hard);
        let soft =
            stricter(self.soft, other.soft).filter(|soft| hard.is_none_or(|hard| *soft < hard));
        Self { hard, soft }
    }
}

impl Task {
    /// A task called `name` with keyword arguments `kwargs` and nothing
    /// else set, as a fresh gateway message would carry it (for tests and
    /// tools that build tasks in code).
    pub fn with_kwargs(id: &str, name: &str, kwargs: Map<String, Value>) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            args: Vec::new(),
            kwargs,
            retries: 0,
            eta: None,
            expires: None,
            root_id: None,
            parent_id: None,
            traceparent: None,
            time_limit: TimeLimit::default(),
            encoding: Encoding::Gateway,
        }
    }

    /// The argument called `name`, looked up in kwargs first and then at
    /// `position` in the positional args (the contract allows both).
    pub fn argument(&self, name: &str, position: usize) -> Option<&Value> {
        self.kwargs
            .get(name)
            .or_else(|| self.args.get(position))
            .filter(|value| !value.is_null())
    }

    /// The share id the task is about, when it names one (for logs only;
    /// handlers validate it themselves).
    pub fn share_id_hint(&self) -> Option<&str> {
        self.argument("share_id", 0)
            .or_else(|| self.kwargs.get("shareId"))
            .and_then(Value::as_str)
    }

    /// The `share_id` argument, when it is a UUID (where a failure is
    /// recorded when the arguments did not parse).
    pub fn share_id(&self) -> Option<Uuid> {
        self.share_id_hint()
            .and_then(|text| Uuid::parse_str(text).ok())
    }

    /// The trace id carried in `traceparent` (`00-<trace id>-<span id>-<flags>`).
    pub fn trace_id(&self) -> Option<&str> {
        let mut parts = self.traceparent.as_deref()?.split('-');
        let _version = parts.next()?;
        parts
            .next()
            .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Whether the task expired before `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|expires| expires <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(args: Value, kwargs: Value) -> Task {
        Task {
            id: "id".into(),
            name: "name".into(),
            args: serde_json::from_value(args).unwrap_or_default(),
            kwargs: serde_json::from_value(kwargs).unwrap_or_default(),
            retries: 0,
            eta: None,
            expires: None,
            root_id: None,
            parent_id: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            time_limit: TimeLimit::default(),
            encoding: Encoding::Gateway,
        }
    }

    #[test]
    fn arguments_come_from_kwargs_then_args() {
        let t = task(
            json!(["a-share", {"text": "x"}]),
            json!({"content": {"text": "y"}}),
        );
        assert_eq!(t.argument("share_id", 0), Some(&json!("a-share")));
        assert_eq!(t.argument("content", 1), Some(&json!({"text": "y"})));
        assert_eq!(t.argument("options", 2), None);
        assert_eq!(t.share_id_hint(), Some("a-share"));
    }

    #[test]
    fn trace_id_is_parsed_from_traceparent() {
        let t = task(json!([]), json!({}));
        assert_eq!(t.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn the_stricter_limit_wins_and_a_soft_one_stays_below_the_hard() {
        let secs = |s| Some(Duration::from_secs(s));
        let limit = |hard, soft| TimeLimit { hard, soft };
        let worker = limit(secs(1500), secs(1440));
        assert_eq!(worker.within(TimeLimit::default()), worker);
        assert_eq!(
            worker.within(limit(secs(20), secs(15))),
            limit(secs(20), secs(15))
        );
        assert_eq!(worker.within(limit(secs(3000), None)), worker);
        // A soft limit at or past the hard one would never fire first.
        assert_eq!(worker.within(limit(secs(20), None)), limit(secs(20), None));
        assert_eq!(
            TimeLimit::default().within(limit(None, secs(5))),
            limit(None, secs(5))
        );
    }
}
