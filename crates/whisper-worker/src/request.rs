//! The transcribe tasks' arguments (CONTRACT section 3) as serde types,
//! accepting both the gateway's camelCase and snake_case.

use ml_runtime::Arguments;
use ml_runtime::arguments::{Flag, NonBlank};
use ml_transcription::TranscribeOptions;
use serde::Deserialize;

/// One request to transcribe a share's media.
pub type TranscribeRequest = Arguments<Content, Options>;

/// The `content` argument.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(expecting = "an object {mediaUrl}")]
pub struct Content {
    /// A local path, `http(s)://…` or `s3://bucket/key`, trimmed.
    #[serde(rename = "mediaUrl", alias = "media_url")]
    pub media_url: NonBlank,
}

/// The `options` argument.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Options {
    /// Spoken language (ISO code); absent: detected.
    pub language: Option<String>,
    /// Loudness-normalise before transcribing (default true).
    pub normalize: Option<Flag>,
    /// Initial prompt for the decoder.
    #[serde(alias = "initial_prompt", alias = "initialPrompt")]
    pub prompt: Option<String>,
    /// The backend the producer asked for (recorded; this worker is local).
    pub backend: Option<String>,
}

impl Options {
    /// Whether to loudness-normalise.
    pub fn normalize(&self) -> bool {
        self.normalize.is_none_or(|flag| flag.0)
    }

    /// Language and initial prompt for whisper.
    pub fn transcribe_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: self.language.clone(),
            prompt: self.prompt.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_runtime::{Request, Task, TaskError};
    use serde_json::{Value, json};

    fn parse(kwargs: Value) -> Result<TranscribeRequest, TaskError> {
        let Value::Object(kwargs) = kwargs else {
            panic!("kwargs must be an object")
        };
        TranscribeRequest::from_task(&Task::with_kwargs(
            "t1",
            "whisper.tasks.transcribe_api",
            kwargs,
        ))
    }

    #[test]
    fn reads_both_spellings_and_defaults() {
        let request = parse(json!({
            "share_id": "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f",
            "content": {"media_url": " /tmp/bookmarkai-videos/a.mp4 "},
            "options": {"language": "en", "prompt": "Kubernetes"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(request.content.media_url.0, "/tmp/bookmarkai-videos/a.mp4");
        assert!(request.options.normalize());
        let options = request.options.transcribe_options();
        assert_eq!(options.language.as_deref(), Some("en"));
        assert_eq!(options.prompt.as_deref(), Some("Kubernetes"));
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
                json!({"share_id": id, "content": {"mediaUrl": "  "}}),
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
            let error = parse(kwargs.clone())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(expected), "{kwargs}: {error}");
        }
    }
}
