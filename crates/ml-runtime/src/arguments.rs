//! Reading task arguments (CONTRACT section 3): `share_id`, `content` and
//! `options`, accepting both the gateway's camelCase and Python's
//! snake_case, with errors that name the offending field.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::TaskError;

/// An [`TaskError::InvalidArguments`] with `reason`.
pub fn invalid(reason: impl Into<String>) -> TaskError {
    TaskError::InvalidArguments(reason.into())
}

/// Parses the `share_id` argument, which must be a UUID string.
///
/// # Errors
/// [`TaskError::InvalidArguments`] when absent, not a string or not a UUID.
pub fn parse_share_id(value: Option<&Value>) -> Result<Uuid, TaskError> {
    match value {
        Some(Value::String(text)) => Uuid::parse_str(text)
            .map_err(|_| invalid(format!("share_id must be a UUID, got {text:?}"))),
        Some(Value::Null) | None => Err(invalid("share_id is required")),
        Some(other) => Err(invalid(format!(
            "share_id must be a UUID string, got {other}"
        ))),
    }
}

/// The argument `name` as a JSON object; `None` when absent or null.
///
/// # Errors
/// [`TaskError::InvalidArguments`] when present but not an object.
pub fn optional_object<'a>(
    value: Option<&'a Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, TaskError> {
    match value {
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(invalid(format!("{name} must be an object, got {other}"))),
    }
}

/// The first of `keys` present (and not null) in `object`, which must be a
/// string.
///
/// # Errors
/// [`TaskError::InvalidArguments`] when that key holds another type.
pub fn optional_str<'a>(
    object: &'a Map<String, Value>,
    keys: &[&str],
) -> Result<Option<&'a str>, TaskError> {
    match first_present(object, keys) {
        Some((_, Value::String(text))) => Ok(Some(text)),
        Some((key, other)) => Err(invalid(format!("{key} must be a string, got {other}"))),
        None => Ok(None),
    }
}

/// The first of `keys` present in `object`, which must be a boolean.
///
/// # Errors
/// [`TaskError::InvalidArguments`] when that key holds another type.
pub fn optional_bool(
    object: &Map<String, Value>,
    keys: &[&str],
) -> Result<Option<bool>, TaskError> {
    match first_present(object, keys) {
        Some((_, Value::Bool(flag))) => Ok(Some(*flag)),
        Some((key, other)) => Err(invalid(format!("{key} must be true or false, got {other}"))),
        None => Ok(None),
    }
}

/// The first of `keys` present in `object`, which must be a non-negative
/// integer.
///
/// # Errors
/// [`TaskError::InvalidArguments`] when that key holds another type.
pub fn optional_u64(object: &Map<String, Value>, keys: &[&str]) -> Result<Option<u64>, TaskError> {
    match first_present(object, keys) {
        Some((key, value)) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{key} must be a non-negative integer, got {value}"))),
        None => Ok(None),
    }
}

/// The first of `keys` whose value is present and not null.
fn first_present<'a, 'k>(
    object: &'a Map<String, Value>,
    keys: &[&'k str],
) -> Option<(&'k str, &'a Value)> {
    keys.iter()
        .find_map(|key| object.get(*key).filter(|v| !v.is_null()).map(|v| (*key, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => Map::new(),
        }
    }

    #[test]
    fn share_id_must_be_a_uuid_string() {
        let id = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";
        assert_eq!(
            parse_share_id(Some(&json!(id))).map(|u| u.to_string()).ok(),
            Some(id.to_owned())
        );
        for (value, expected) in [
            (Some(json!("nope")), "share_id must be a UUID"),
            (Some(json!(5)), "share_id must be a UUID string"),
            (None, "share_id is required"),
        ] {
            let error = parse_share_id(value.as_ref()).err().map(|e| e.to_string());
            assert!(error.is_some_and(|e| e.contains(expected)), "{value:?}");
        }
    }

    #[test]
    fn first_spelling_present_wins_and_types_are_checked() {
        let options = object(
            json!({"maxLength": 200, "max_length": null, "normalize": "yes", "style": "brief"}),
        );
        assert_eq!(
            optional_u64(&options, &["max_length", "maxLength"]).ok(),
            Some(Some(200))
        );
        assert_eq!(optional_str(&options, &["style"]).ok(), Some(Some("brief")));
        assert_eq!(optional_str(&options, &["absent"]).ok(), Some(None));
        let error = optional_bool(&options, &["normalize"])
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("normalize must be true or false")));
        let error = optional_object(Some(&json!([1])), "content")
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("content must be an object")));
    }
}
