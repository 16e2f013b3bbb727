//! Parsing and validating the embed tasks' arguments (CONTRACT section 3),
//! accepting both the gateway's camelCase and Python's snake_case.

use std::str::FromStr;

use ml_embedding::{ChunkStrategy, ContentType, Segment};
use ml_runtime::arguments::{invalid, optional_object, optional_str, parse_share_id};
use ml_runtime::{Task, TaskError};
use serde_json::{Map, Value};
use uuid::Uuid;

/// `embedding_type` values the old worker accepted.
const EMBEDDING_TYPES: [&str; 3] = ["content", "summary", "composite"];

/// Metadata keys that name a chapter; embeddings of different chapters of a
/// share are separate sets.
const CHAPTER_KEYS: [&str; 4] = ["chapter_id", "chapterId", "chapter_index", "chapterIndex"];

/// One validated request to embed a share's text.
#[derive(Debug, Clone)]
pub struct EmbedRequest {
    /// The share the vectors belong to.
    pub share_id: Uuid,
    /// The raw text to embed.
    pub text: String,
    /// What kind of text it is (drives clean-up and default chunking).
    pub content_type: ContentType,
    /// `content`, `summary` or `composite`.
    pub embedding_type: String,
    /// How to split the text.
    pub chunk_strategy: ChunkStrategy,
    /// Timed segments for the `transcript` strategy.
    pub segments: Option<Vec<Segment>>,
    /// Chapter discriminator ('' when the text is not a chapter).
    pub chunk_key: String,
    /// The producer's metadata, stored with every vector.
    pub metadata: Map<String, Value>,
    /// A model name the producer asked for (recorded, not obeyed).
    pub requested_model: Option<String>,
}

impl EmbedRequest {
    /// Reads the `share_id`, `content`, `options` arguments of `task`.
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the offending field.
    pub fn from_task(task: &Task) -> Result<Self, TaskError> {
        let share_id = task
            .argument("share_id", 0)
            .or_else(|| task.kwargs.get("shareId"));
        let content = task.argument("content", 1);
        let options = task.argument("options", 2);
        Self::parse(share_id, content, options)
    }

    /// Reads one item of the batch task (`{share_id, content, options}`).
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the offending field.
    pub fn from_batch_item(item: &Value) -> Result<Self, TaskError> {
        let Some(item) = item.as_object() else {
            return Err(invalid(
                "each batch item must be an object {share_id, content, options}",
            ));
        };
        Self::parse(
            item.get("share_id").or_else(|| item.get("shareId")),
            item.get("content"),
            item.get("options"),
        )
    }

    fn parse(
        share_id: Option<&Value>,
        content: Option<&Value>,
        options: Option<&Value>,
    ) -> Result<Self, TaskError> {
        let share_id = parse_share_id(share_id)?;
        let content =
            optional_object(content, "content")?.ok_or_else(|| invalid("content is required"))?;
        let text = match content.get("text") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => return Err(invalid("content.text is required")),
            Some(other) => {
                return Err(invalid(format!(
                    "content.text must be a string, got {other}"
                )));
            }
        };
        let content_type = match optional_str(content, &["type", "contentType", "content_type"])? {
            Some(name) => {
                ContentType::from_str(name).map_err(|e| invalid(format!("content.type: {e}")))?
            }
            None => ContentType::Caption,
        };
        let metadata = match content.get("metadata") {
            Some(Value::Object(metadata)) => metadata.clone(),
            Some(Value::Null) | None => Map::new(),
            Some(other) => {
                return Err(invalid(format!(
                    "content.metadata must be an object, got {other}"
                )));
            }
        };
        let empty = Map::new();
        let options = optional_object(options, "options")?.unwrap_or(&empty);
        let embedding_type = optional_str(options, &["embedding_type", "embeddingType"])?
            .unwrap_or("content")
            .to_owned();
        if !EMBEDDING_TYPES.contains(&embedding_type.as_str()) {
            return Err(invalid(format!(
                "options.embedding_type must be one of {}, got {embedding_type:?}",
                EMBEDDING_TYPES.join(", ")
            )));
        }
        let chunk_strategy = match optional_str(options, &["chunk_strategy", "chunkStrategy"])? {
            Some(name) => ChunkStrategy::from_str(name)
                .map_err(|e| invalid(format!("options.chunk_strategy: {e}")))?,
            None => ChunkStrategy::default_for(content_type),
        };
        let segments = match metadata.get("segments") {
            Some(Value::Null) | None => None,
            Some(value) => Some(
                serde_json::from_value::<Vec<Segment>>(value.clone()).map_err(|e| {
                    invalid(format!(
                        "content.metadata.segments must be a list of {{start, end, text}}: {e}"
                    ))
                })?,
            ),
        };
        let requested_model =
            optional_str(options, &["force_model", "forceModel", "model"])?.map(str::to_owned);
        Ok(Self {
            share_id,
            text,
            content_type,
            embedding_type,
            chunk_strategy,
            segments,
            chunk_key: chapter_key(&metadata),
            metadata,
            requested_model,
        })
    }
}

fn chapter_key(metadata: &Map<String, Value>) -> String {
    CHAPTER_KEYS
        .iter()
        .find_map(|key| match metadata.get(*key) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        })
        .map(|key| format!("chapter:{key}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(kwargs: Value) -> Result<EmbedRequest, TaskError> {
        EmbedRequest::from_batch_item(&kwargs)
    }

    #[test]
    fn defaults_and_spellings() {
        let request = parse(json!({
            "shareId": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f",
            "content": {"text": "hi there", "type": "Transcript", "metadata": {"chapterIndex": 2}},
            "options": {"embeddingType": "summary"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.content_type, ContentType::Transcript);
        assert_eq!(request.embedding_type, "summary");
        assert_eq!(request.chunk_strategy, ChunkStrategy::Transcript);
        assert_eq!(request.chunk_key, "chapter:2");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"share_id": "nope", "content": {"text": "x"}}),
                "share_id must be a UUID",
            ),
            (
                json!({"share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "content": {"type": "caption"}}),
                "content.text is required",
            ),
            (
                json!({"share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "content": {"text": 5}}),
                "content.text must be a string",
            ),
            (
                json!({"share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "content": {"text": "x", "type": "poem"}}),
                "content.type",
            ),
            (
                json!({"share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "content": {"text": "x"}, "options": {"chunk_strategy": "words"}}),
                "options.chunk_strategy",
            ),
            (
                json!({"share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "content": {"text": "x"}, "options": {"embedding_type": "raw"}}),
                "options.embedding_type",
            ),
            (
                json!({"share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f", "content": {"text": "x", "metadata": {"segments": [{"start": "a"}]}}}),
                "segments",
            ),
        ];
        for (kwargs, expected) in cases {
            let error = parse(kwargs.clone())
                .err()
                .unwrap_or_else(|| panic!("{kwargs} parsed"));
            assert!(error.to_string().contains(expected), "{kwargs}: {error}");
            assert!(!error.is_transient());
        }
    }
}
