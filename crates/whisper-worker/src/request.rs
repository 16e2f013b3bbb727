//! Parsing and validating the transcribe tasks' arguments (CONTRACT
//! section 3), accepting both the gateway's camelCase and snake_case.

use ml_runtime::arguments::{
    invalid, optional_bool, optional_object, optional_str, parse_share_id,
};
use ml_runtime::{Task, TaskError};
use ml_transcription::TranscribeOptions;
use serde_json::Map;
use uuid::Uuid;

/// One validated request to transcribe a share's media.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeRequest {
    /// The share the transcript belongs to.
    pub share_id: Uuid,
    /// Where the media is: a local path, `http(s)://…` or `s3://bucket/key`.
    pub media_url: String,
    /// Loudness-normalise before transcribing (default true).
    pub normalize: bool,
    /// Language and initial prompt.
    pub options: TranscribeOptions,
    /// The backend the producer asked for (recorded; this worker is local).
    pub requested_backend: Option<String>,
}

impl TranscribeRequest {
    /// Reads the `share_id`, `content`, `options` arguments of `task`.
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the offending field.
    pub fn from_task(task: &Task) -> Result<Self, TaskError> {
        let share_id = parse_share_id(
            task.argument("share_id", 0)
                .or_else(|| task.kwargs.get("shareId")),
        )?;
        let content = optional_object(task.argument("content", 1), "content")?
            .ok_or_else(|| invalid("content is required"))?;
        let media_url = optional_str(content, &["mediaUrl", "media_url"])?
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or_else(|| invalid("content.mediaUrl is required"))?
            .to_owned();
        let empty = Map::new();
        let options = optional_object(task.argument("options", 2), "options")?.unwrap_or(&empty);
        Ok(Self {
            share_id,
            media_url,
            normalize: optional_bool(options, &["normalize"])?.unwrap_or(true),
            options: TranscribeOptions {
                language: optional_str(options, &["language"])?.map(str::to_owned),
                prompt: optional_str(options, &["prompt", "initial_prompt", "initialPrompt"])?
                    .map(str::to_owned),
            },
            requested_backend: optional_str(options, &["backend"])?.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn task(kwargs: Value) -> Task {
        let Value::Object(kwargs) = kwargs else {
            panic!("kwargs must be an object")
        };
        Task::with_kwargs("t1", "whisper.tasks.transcribe_api", kwargs)
    }

    #[test]
    fn reads_both_spellings_and_defaults() {
        let request = TranscribeRequest::from_task(&task(json!({
            "share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f",
            "content": {"media_url": " /tmp/bookmarkai-videos/a.mp4 "},
            "options": {"language": "en", "prompt": "Kubernetes"}
        })))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.media_url, "/tmp/bookmarkai-videos/a.mp4");
        assert!(request.normalize);
        assert_eq!(request.options.language.as_deref(), Some("en"));
        assert_eq!(request.options.prompt.as_deref(), Some("Kubernetes"));
    }

    #[test]
    fn errors_name_the_field() {
        let id = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";
        for (kwargs, expected) in [
            (
                json!({"share_id": id, "content": {}}),
                "content.mediaUrl is required",
            ),
            (
                json!({"share_id": id, "content": {"mediaUrl": 3}}),
                "mediaUrl must be a string",
            ),
            (json!({"share_id": id}), "content is required"),
            (
                json!({"share_id": id, "content": {"mediaUrl": "/x"}, "options": {"normalize": "no"}}),
                "normalize must be true or false",
            ),
            (
                json!({"share_id": "x", "content": {"mediaUrl": "/x"}}),
                "share_id must be a UUID",
            ),
        ] {
            let error = TranscribeRequest::from_task(&task(kwargs.clone()))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(expected), "{kwargs}: {error}");
        }
    }
}
