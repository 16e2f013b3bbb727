//! Typed task arguments (CONTRACT section 3): a handler's [`Request`] is a
//! serde struct read from the task's kwargs, with its positional `args`
//! named first, so `serde(alias)` accepts both the gateway's camelCase and
//! Python's snake_case; a bad argument is an
//! [`TaskError::InvalidArguments`] that names the field
//! (`content.text must be a string, got integer 3`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde_json::Value;
use uuid::Uuid;

use crate::error::TaskError;
use crate::task::Task;

/// A task's parsed arguments: what a [`crate::Handler`] is given.
pub trait Request: DeserializeOwned + Send + Sync + 'static {
    /// The names of the positional `args`, in order (CONTRACT section 3).
    const POSITIONAL: &'static [&'static str] = &["share_id", "content", "options"];

    /// Reads the request from `task` (by default: [`decode`]).
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the offending field.
    fn from_task(task: &Task) -> Result<Self, TaskError> {
        decode(task, Self::POSITIONAL)
    }

    /// The shares whose `ml_results` rows this request writes (where a
    /// failure is recorded).
    fn share_ids(&self) -> Vec<Uuid>;

    /// The shares a failure is recorded against when the arguments did
    /// not parse: by default the `share_id` argument, when it is a UUID.
    fn unparsed_share_ids(task: &Task) -> Vec<Uuid> {
        task.share_id().into_iter().collect()
    }
}

/// Deserialises `T` from `task`'s kwargs, the positional `args` taking
/// the names in `positional` where the kwargs do not hold them.
///
/// # Errors
/// [`TaskError::InvalidArguments`] naming the offending field.
pub fn decode<T: DeserializeOwned>(task: &Task, positional: &[&str]) -> Result<T, TaskError> {
    let mut arguments = task.kwargs.clone();
    for (name, value) in positional.iter().zip(&task.args) {
        arguments.entry(*name).or_insert_with(|| value.clone());
    }
    decode_value(Value::Object(arguments))
}

/// Deserialises `T` from `value`, with errors that name the field.
///
/// # Errors
/// [`TaskError::InvalidArguments`] naming the offending field.
pub fn decode_value<T: DeserializeOwned>(value: Value) -> Result<T, TaskError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        invalid(describe(&path, &error.into_inner().to_string()))
    })
}

/// The `(share_id, content, options)` arguments most tasks take (CONTRACT
/// section 3); `C` and `O` are the worker's own `content` and `options`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(expecting = "an object {share_id, content, options?}")]
pub struct Arguments<C, O> {
    /// The share the result belongs to.
    #[serde(alias = "shareId")]
    pub share_id: ShareId,
    /// What to work on.
    pub content: C,
    /// How; every option has a default.
    #[serde(default)]
    pub options: O,
}

impl<C, O> Request for Arguments<C, O>
where
    C: DeserializeOwned + Send + Sync + 'static,
    O: DeserializeOwned + Default + Send + Sync + 'static,
{
    fn share_ids(&self) -> Vec<Uuid> {
        vec![self.share_id.0]
    }
}

/// An [`TaskError::InvalidArguments`] with `reason`.
pub fn invalid(reason: impl Into<String>) -> TaskError {
    TaskError::InvalidArguments(reason.into())
}

/// Words serde's `message` about the field at `path` as one sentence:
/// `<path> is required`, `<path> must be <expected>, got <found>`.
fn describe(path: &str, message: &str) -> String {
    let path = if path == "." { "" } else { path };
    let field = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{} is required", field(name));
    }
    let subject = if path.is_empty() {
        "the arguments"
    } else {
        path
    };
    let mismatch = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "));
    match mismatch {
        Some((found, expected)) => format!("{subject} must be {expected}, got {found}"),
        None if path.is_empty() => message.to_owned(),
        None if message.starts_with("must ") || message.starts_with("is ") => {
            format!("{subject} {message}")
        }
        None => format!("{subject}: {message}"),
    }
}

/// The `share_id` argument: a UUID string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareId(pub Uuid);

impl<'de> Deserialize<'de> for ShareId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UuidString;
        impl Visitor<'_> for UuidString {
            type Value = ShareId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UUID string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<ShareId, E> {
                Uuid::parse_str(text)
                    .map(ShareId)
                    .map_err(|_| E::invalid_value(Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(UuidString)
    }
}

/// A positive integer argument (a count or a length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positive(pub u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PositiveInteger;
        impl Visitor<'_> for PositiveInteger {
            type Value = Positive;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Positive, E> {
                if n == 0 {
                    return Err(E::invalid_value(Unexpected::Unsigned(0), &self));
                }
                Ok(Positive(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Positive, E> {
                u64::try_from(n)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        deserializer.deserialize_u64(PositiveInteger)
    }
}

/// A string argument that must hold more than white space, read trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonBlank(pub String);

impl<'de> Deserialize<'de> for NonBlank {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim() {
            "" => Err(de::Error::custom("is required")),
            trimmed => Ok(Self(trimmed.to_owned())),
        }
    }
}

/// A `true`/`false` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TrueOrFalse;
        impl Visitor<'_> for TrueOrFalse {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Flag, E> {
                Ok(Flag(flag))
            }
        }
        deserializer.deserialize_bool(TrueOrFalse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Args = Arguments<Content, Options>;

    #[derive(Debug, Deserialize)]
    #[serde(expecting = "an object {text}")]
    struct Content {
        text: NonBlank,
    }

    #[derive(Debug, Default, Deserialize)]
    struct Options {
        #[serde(alias = "maxLength")]
        max_length: Option<Positive>,
        normalize: Option<Flag>,
    }

    const SHARE: &str = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";

    fn task(args: Value, kwargs: Value) -> Task {
        let mut task = Task::with_kwargs(
            "id",
            "name",
            serde_json::from_value(kwargs).unwrap_or_default(),
        );
        task.args = serde_json::from_value(args).unwrap_or_default();
        task
    }

    fn error(kwargs: Value) -> String {
        decode::<Args>(&task(json!([]), kwargs), &["share_id"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn positional_args_take_their_names_and_kwargs_win() -> Result<(), TaskError> {
        let positional = &["share_id", "content", "options"];
        let args: Args = decode(
            &task(
                json!([SHARE, {"text": "a"}, {"maxLength": 7, "normalize": false}]),
                json!({}),
            ),
            positional,
        )?;
        assert_eq!(args.share_id.0.to_string(), SHARE);
        assert_eq!(args.content.text.0, "a");
        assert_eq!(args.options.max_length, Some(Positive(7)));
        assert_eq!(args.options.normalize, Some(Flag(false)));
        let args: Args = decode(
            &task(
                json!([SHARE, {"text": "a"}]),
                json!({"content": {"text": "b"}}),
            ),
            positional,
        )?;
        assert_eq!(args.content.text.0, "b");
        assert_eq!(args.share_ids(), [args.share_id.0]);
        Ok(())
    }

    #[test]
    fn errors_name_the_field_and_what_it_must_be() {
        for (kwargs, expected) in [
            (json!({"content": {"text": "t"}}), "share_id is required"),
            (
                json!({"share_id": "nope", "content": {"text": "t"}}),
                "share_id must be a UUID string, got string \"nope\"",
            ),
            (
                json!({"share_id": 5, "content": {"text": "t"}}),
                "share_id must be a UUID string, got integer `5`",
            ),
            (json!({"share_id": SHARE}), "content is required"),
            (
                json!({"share_id": SHARE, "content": {"text": " \n "}}),
                "content.text is required",
            ),
            (
                json!({"share_id": SHARE, "content": {}}),
                "content.text is required",
            ),
            (
                json!({"share_id": SHARE, "content": "words"}),
                "content must be an object {text}, got string \"words\"",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": 3}}),
                "content.text must be a string, got integer `3`",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": "t"}, "options": {"maxLength": 0}}),
                "options.maxLength must be a positive integer, got integer `0`",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": "t"}, "options": {"max_length": -1}}),
                "options.max_length must be a positive integer, got integer `-1`",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": "t"}, "options": {"normalize": "no"}}),
                "options.normalize must be true or false, got string \"no\"",
            ),
        ] {
            assert_eq!(
                error(kwargs.clone()),
                format!("invalid task arguments: {expected}"),
                "{kwargs}"
            );
        }
        let whole = decode_value::<Args>(json!("words"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            whole.as_deref(),
            Some(
                "invalid task arguments: the arguments must be an object {share_id, content, options?}, got string \"words\""
            )
        );
    }
}
