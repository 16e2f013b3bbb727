//! The embed tasks' arguments (CONTRACT section 3) as serde types,
//! accepting both the gateway's camelCase and Python's snake_case.

use ml_embedding::{ChunkStrategy, ContentType, Segment};
use ml_runtime::arguments::decode_value;
use ml_runtime::{Arguments, Request, TaskError};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Metadata keys that name a chapter; embeddings of different chapters of a
/// share are separate sets.
const CHAPTER_KEYS: [&str; 4] = ["chapter_id", "chapterId", "chapter_index", "chapterIndex"];

/// One validated request to embed a share's text.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Arguments<Content, Options>")]
pub struct EmbedRequest {
    /// The share the vectors belong to.
    pub share_id: Uuid,
    /// The raw text to embed.
    pub text: String,
    /// What kind of text it is (drives clean-up and default chunking).
    pub content_type: ContentType,
    /// Which of the share's embeddings this is.
    pub embedding_type: EmbeddingType,
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

/// `options.embedding_type`: the values the old worker accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingType {
    /// The share's own content (the default).
    #[default]
    Content,
    /// Its summary.
    Summary,
    /// Several fields together.
    Composite,
}

impl EmbeddingType {
    /// The name stored in `embeddings.embedding_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Content => "content",
            Self::Summary => "summary",
            Self::Composite => "composite",
        }
    }
}

impl Request for EmbedRequest {
    fn share_ids(&self) -> Vec<Uuid> {
        vec![self.share_id]
    }
}

/// The batch task: `tasks: [{share_id, content, options}, …]`, each item
/// read on its own so one bad item does not sink the others.
#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    /// The items, in order.
    #[serde(deserialize_with = "items")]
    pub tasks: Vec<BatchItem>,
}

/// One item of a batch, parsed or refused.
#[derive(Debug)]
pub struct BatchItem {
    /// The item's `share_id`, when it is a UUID.
    pub share_id: Option<Uuid>,
    /// The request, or why the item was refused.
    pub request: Result<EmbedRequest, TaskError>,
}

impl Request for BatchRequest {
    const POSITIONAL: &'static [&'static str] = &["tasks"];

    fn share_ids(&self) -> Vec<Uuid> {
        self.tasks.iter().filter_map(|item| item.share_id).collect()
    }
}

fn items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<BatchItem>, D::Error> {
    let items = Vec::<Value>::deserialize(deserializer)?;
    Ok(items
        .into_iter()
        .map(|item| BatchItem {
            share_id: ["share_id", "shareId"]
                .iter()
                .find_map(|key| item.get(*key)?.as_str())
                .and_then(|text| Uuid::parse_str(text).ok()),
            request: decode_value(item),
        })
        .collect())
}

/// The `content` argument as it arrives.
#[derive(Deserialize)]
#[serde(expecting = "an object {text, type?, metadata?}")]
struct Content {
    text: String,
    #[serde(rename = "type", alias = "contentType", alias = "content_type")]
    content_type: Option<ContentType>,
    metadata: Option<Map<String, Value>>,
}

/// The `options` argument as it arrives.
#[derive(Default, Deserialize)]
struct Options {
    #[serde(alias = "embeddingType")]
    embedding_type: Option<EmbeddingType>,
    #[serde(alias = "chunkStrategy")]
    chunk_strategy: Option<ChunkStrategy>,
    #[serde(alias = "forceModel", alias = "model")]
    force_model: Option<String>,
}

impl TryFrom<Arguments<Content, Options>> for EmbedRequest {
    type Error = String;

    /// Applies the defaults and reads the timed segments.
    fn try_from(arguments: Arguments<Content, Options>) -> Result<Self, String> {
        let Arguments {
            share_id,
            content,
            options,
        } = arguments;
        let content_type = content.content_type.unwrap_or_default();
        let metadata = content.metadata.unwrap_or_default();
        let segments = match metadata.get("segments") {
            Some(Value::Null) | None => None,
            Some(value) => Some(Vec::<Segment>::deserialize(value).map_err(|e| {
                format!("content.metadata.segments must be a list of {{start, end, text}}: {e}")
            })?),
        };
        Ok(Self {
            share_id: share_id.0,
            text: content.text,
            content_type,
            embedding_type: options.embedding_type.unwrap_or_default(),
            chunk_strategy: options
                .chunk_strategy
                .unwrap_or(ChunkStrategy::default_for(content_type)),
            segments,
            chunk_key: chapter_key(&metadata),
            metadata,
            requested_model: options.force_model,
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
    use ml_runtime::Task;
    use serde_json::json;

    fn parse(kwargs: Value) -> Result<EmbedRequest, TaskError> {
        decode_value(kwargs)
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
        assert_eq!(request.embedding_type, EmbeddingType::Summary);
        assert_eq!(request.chunk_strategy, ChunkStrategy::Transcript);
        assert_eq!(request.chunk_key, "chapter:2");
    }

    #[test]
    fn a_batch_keeps_bad_items_with_their_share() -> Result<(), TaskError> {
        let share = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";
        let task = Task::with_kwargs(
            "id",
            "batch",
            serde_json::from_value(json!({"tasks": [
                {"share_id": share, "content": {"text": "fine"}},
                {"share_id": share, "content": {}},
                "nonsense"
            ]}))
            .unwrap_or_default(),
        );
        let batch = BatchRequest::from_task(&task)?;
        let refused: Vec<String> = batch
            .tasks
            .iter()
            .filter_map(|item| item.request.as_ref().err().map(ToString::to_string))
            .collect();
        assert_eq!(batch.tasks.len(), 3);
        assert!(
            refused[0].contains("content.text is required"),
            "{refused:?}"
        );
        assert!(
            refused[1].contains("must be an object {share_id"),
            "{refused:?}"
        );
        assert_eq!(batch.share_ids().len(), 2);
        Ok(())
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
