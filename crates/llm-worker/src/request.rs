//! Parsing and validating the summarize tasks' arguments (CONTRACT section
//! 3), accepting both the gateway's camelCase and Python's snake_case.

use ml_runtime::arguments::{
    invalid, optional_object as object, optional_str, optional_u64, parse_share_id,
};
use ml_runtime::{Task, TaskError};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::content::{ContentType, Style};

/// One validated request to summarise a share's content.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRequest {
    /// The share the summary belongs to.
    pub share_id: Uuid,
    /// The text to summarise.
    pub text: String,
    /// The content's title, when known.
    pub title: Option<String>,
    /// What kind of content it is (drives the prompt and the preflight).
    pub content_type: ContentType,
    /// brief, detailed or bullets.
    pub style: Style,
    /// Summary tokens at most (`maxLength`/`max_length`).
    pub max_tokens: usize,
    /// A model name the producer asked for (recorded, not obeyed).
    pub requested_model: Option<String>,
    /// The backend the gateway routed by (recorded).
    pub backend: Option<String>,
}

impl SummaryRequest {
    /// Reads `share_id`, `content`, `options` of a summarize task.
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the offending field.
    pub fn from_task(task: &Task, default_max_tokens: usize) -> Result<Self, TaskError> {
        let share_id = task
            .argument("share_id", 0)
            .or_else(|| task.kwargs.get("shareId"));
        let content = object(task.argument("content", 1), "content")?
            .ok_or_else(|| invalid("content is required"))?;
        let options = object(task.argument("options", 2), "options")?;
        let text = match content.get("text") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Null) | None => return Err(invalid("content.text is required")),
            Some(other) => {
                return Err(invalid(format!(
                    "content.text must be a string, got {other}"
                )));
            }
        };
        let content_type = optional_str(content, &["contentType", "content_type", "type"])?
            .map_or(ContentType::Text, ContentType::parse);
        Self::build(
            share_id,
            text,
            optional_str(content, &["title"])?.map(str::to_owned),
            content_type,
            options,
            default_max_tokens,
        )
    }

    /// Reads a `summarize_video_combined` task: either one `task_data`
    /// kwarg `{shareId, payload: {transcript, caption, hashtags, platform,
    /// title?}, options}` or plain `share_id` + `content` + `options`.
    ///
    /// # Errors
    /// [`TaskError::InvalidArguments`] naming the offending field.
    pub fn from_video_task(task: &Task, default_max_tokens: usize) -> Result<Self, TaskError> {
        let Some(task_data) = object(task.argument("task_data", 0), "task_data")? else {
            let mut request = Self::from_task(task, default_max_tokens)?;
            if request.content_type == ContentType::Text {
                request.content_type = ContentType::VideoCombined;
            }
            return Ok(request);
        };
        let share_id = task_data
            .get("shareId")
            .or_else(|| task_data.get("share_id"));
        let payload = object(task_data.get("payload"), "task_data.payload")?
            .ok_or_else(|| invalid("task_data.payload is required"))?;
        let text = combined_text(payload)?;
        Self::build(
            share_id,
            text,
            optional_str(payload, &["title"])?.map(str::to_owned),
            ContentType::VideoCombined,
            object(task_data.get("options"), "task_data.options")?,
            default_max_tokens,
        )
    }

    fn build(
        share_id: Option<&Value>,
        text: String,
        title: Option<String>,
        content_type: ContentType,
        options: Option<&Map<String, Value>>,
        default_max_tokens: usize,
    ) -> Result<Self, TaskError> {
        let share_id = parse_share_id(share_id)?;
        let empty = Map::new();
        let options = options.unwrap_or(&empty);
        let style = match optional_str(options, &["style"])? {
            Some(name) => Style::parse(name).ok_or_else(|| {
                invalid(format!(
                    "options.style must be brief, detailed or bullets, got {name:?}"
                ))
            })?,
            None => Style::Brief,
        };
        let max_tokens = match optional_u64(options, &["maxLength", "max_length"])? {
            None => default_max_tokens,
            Some(0) => {
                return Err(invalid(
                    "options.maxLength must be a positive integer, got 0",
                ));
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        Ok(Self {
            share_id,
            text,
            title,
            content_type,
            style,
            max_tokens,
            requested_model: optional_str(options, &["model"])?.map(str::to_owned),
            backend: optional_str(options, &["backend", "provider"])?.map(str::to_owned),
        })
    }
}

/// The share id of any summarize task, for recording failures.
pub fn share_id_of(task: &Task) -> Option<Uuid> {
    let text = task.share_id_hint().or_else(|| {
        task.argument("task_data", 0)?
            .get("shareId")
            .or_else(|| task.kwargs.get("task_data")?.get("share_id"))?
            .as_str()
    })?;
    Uuid::parse_str(text).ok()
}

/// The text a combined-video summary reads: transcript, caption, hashtags.
fn combined_text(payload: &Map<String, Value>) -> Result<String, TaskError> {
    let transcript = optional_str(payload, &["transcript"])?
        .unwrap_or_default()
        .trim();
    let caption = optional_str(payload, &["caption"])?
        .unwrap_or_default()
        .trim();
    let hashtags: Vec<String> = match payload.get("hashtags") {
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|tag| match tag {
                Value::String(tag) => Ok(format!("#{}", tag.trim_start_matches('#'))),
                other => Err(invalid(format!(
                    "task_data.payload.hashtags must hold strings, got {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::String(tags)) => tags
            .split_whitespace()
            .map(|tag| format!("#{}", tag.trim_start_matches('#')))
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            return Err(invalid(format!(
                "task_data.payload.hashtags must be a list of strings, got {other}"
            )));
        }
    };
    let mut parts = Vec::new();
    if !caption.is_empty() {
        parts.push(format!("Caption: {caption}"));
    }
    if !transcript.is_empty() {
        parts.push(format!("Transcript: {transcript}"));
    }
    if !hashtags.is_empty() {
        parts.push(format!("Hashtags: {}", hashtags.join(" ")));
    }
    if transcript.is_empty() && caption.is_empty() {
        return Err(invalid(
            "task_data.payload needs a transcript or a caption to summarise",
        ));
    }
    Ok(parts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHARE: &str = "6a1f0d0e-2b3c-4d5e-8f90-1a2b3c4d5e6f";

    fn task(name: &str, kwargs: Value) -> Task {
        Task::with_kwargs(
            "id",
            name,
            serde_json::from_value(kwargs).unwrap_or_default(),
        )
    }

    #[test]
    fn both_spellings_and_defaults() -> Result<(), TaskError> {
        let camel = SummaryRequest::from_task(
            &task(
                "s",
                json!({"share_id": SHARE, "content": {"text": "t", "contentType": "reddit"}, "options": {"maxLength": 120, "style": "bullets"}}),
            ),
            500,
        )?;
        assert_eq!(camel.content_type, ContentType::Reddit);
        assert_eq!((camel.style, camel.max_tokens), (Style::Bullets, 120));
        let snake = SummaryRequest::from_task(
            &task(
                "s",
                json!({"share_id": SHARE, "content": {"text": "t", "content_type": "article"}, "options": {"max_length": 80}}),
            ),
            500,
        )?;
        assert_eq!(
            (snake.content_type, snake.style, snake.max_tokens),
            (ContentType::Article, Style::Brief, 80)
        );
        let bare = SummaryRequest::from_task(
            &task("s", json!({"share_id": SHARE, "content": {"text": "t"}})),
            500,
        )?;
        assert_eq!(
            (bare.content_type, bare.max_tokens),
            (ContentType::Text, 500)
        );
        Ok(())
    }

    #[test]
    fn video_combined_builds_its_text() -> Result<(), TaskError> {
        let request = SummaryRequest::from_video_task(
            &task(
                "v",
                json!({"task_data": {"shareId": SHARE, "payload": {"transcript": "how to fry tofu", "caption": "Crispy tofu", "hashtags": ["vegan", "#recipe"], "platform": "tiktok"}, "options": {}}}),
            ),
            500,
        )?;
        assert_eq!(request.content_type, ContentType::VideoCombined);
        assert_eq!(
            request.text,
            "Caption: Crispy tofu\nTranscript: how to fry tofu\nHashtags: #vegan #recipe"
        );
        let plain = SummaryRequest::from_video_task(
            &task(
                "v",
                json!({"share_id": SHARE, "content": {"text": "words here"}}),
            ),
            500,
        )?;
        assert_eq!(plain.content_type, ContentType::VideoCombined);
        Ok(())
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"share_id": "x", "content": {"text": "t"}}),
                "share_id must be a UUID",
            ),
            (json!({"share_id": SHARE}), "content is required"),
            (
                json!({"share_id": SHARE, "content": {"text": 3}}),
                "content.text must be a string",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": "t"}, "options": {"style": "poem"}}),
                "options.style",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": "t"}, "options": {"maxLength": -1}}),
                "maxLength must be",
            ),
            (
                json!({"share_id": SHARE, "content": {"text": "t"}, "options": {"maxLength": "9"}}),
                "maxLength must be",
            ),
        ];
        for (kwargs, expected) in cases {
            let error = SummaryRequest::from_task(&task("s", kwargs.clone()), 500)
                .err()
                .unwrap_or_else(|| panic!("{kwargs} parsed"));
            assert!(error.to_string().contains(expected), "{kwargs}: {error}");
        }
        let error = SummaryRequest::from_video_task(
            &task(
                "v",
                json!({"task_data": {"shareId": SHARE, "payload": {"hashtags": ["a"]}}}),
            ),
            500,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(error.contains("transcript or a caption"), "{error}");
    }
}
