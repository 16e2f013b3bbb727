//! The example messages in `tests/fixtures/messages` (copied from the
//! contract), loaded exactly as they are meant to go on the wire.

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::env::repo_root;

/// One example message.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// File name, e.g. `embed.gateway.json`.
    pub name: String,
    /// The routing key it is published with.
    pub routing_key: String,
    /// AMQP properties as JSON (`content_type`, `correlation_id`, ...).
    pub properties: Map<String, Value>,
    /// AMQP headers as JSON (empty for the gateway encoding).
    pub headers: Map<String, Value>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The parsed body, when it is JSON.
    pub json: Option<Value>,
}

impl Fixture {
    /// Loads `tests/fixtures/messages/<name>`.
    ///
    /// # Errors
    /// When the file is missing or malformed.
    pub fn load(name: &str) -> Result<Self> {
        let path = repo_root().join("tests/fixtures/messages").join(name);
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let file: Value =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        let (body, json) = match (file.get("body"), file.get("body_raw")) {
            (Some(body), _) => (serde_json::to_vec(body)?, Some(body.clone())),
            (None, Some(Value::String(raw))) => (raw.as_bytes().to_vec(), None),
            _ => anyhow::bail!("{name}: neither body nor body_raw"),
        };
        let object = |key: &str| {
            file.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        Ok(Self {
            name: name.to_owned(),
            routing_key: file["routing_key"].as_str().unwrap_or_default().to_owned(),
            properties: object("properties"),
            headers: object("headers"),
            body,
            json,
        })
    }

    /// Edits the JSON body (e.g. to point a media URL at test media) and
    /// re-encodes it.
    ///
    /// # Errors
    /// When the body is not JSON.
    pub fn edit_body(&mut self, edit: impl FnOnce(&mut Value)) -> Result<()> {
        let json = self
            .json
            .as_mut()
            .with_context(|| format!("{}: the body is not JSON", self.name))?;
        edit(json);
        self.body = serde_json::to_vec(json)?;
        Ok(())
    }

    /// Names of the fixtures whose file name starts with `prefix`, sorted.
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub fn names(prefix: &str) -> Result<Vec<String>> {
        let dir = repo_root().join("tests/fixtures/messages");
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(prefix) && name.ends_with(".json"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The task's keyword arguments: the body's `kwargs` (gateway
    /// encoding) or its second element (Celery protocol 2); `Null` when the
    /// body is not JSON.
    pub fn kwargs(&self) -> &Value {
        match &self.json {
            Some(Value::Array(parts)) => parts.get(1).unwrap_or(&Value::Null),
            Some(body) => &body["kwargs"],
            None => &Value::Null,
        }
    }

    /// The task id the message carries (body `id` or header `id`).
    pub fn task_id(&self) -> Option<String> {
        self.headers
            .get("id")
            .or_else(|| self.json.as_ref().and_then(|b| b.get("id")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}
