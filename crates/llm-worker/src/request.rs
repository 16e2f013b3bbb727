//! The summarize tasks' arguments (CONTRACT section 3) as serde types,
//! accepting both the gateway's camelCase and Python's snake_case.

use ml_embedding::ContentType;
use ml_runtime::arguments::{Positive, decode, invalid};
use ml_runtime::{Arguments, Request, ShareId, Task, TaskError};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use crate::content::{Style, video_text};
use crate::handler::VIDEO_COMBINED_TASK;

/// One request to summarise a share's content: `summarize_content(share_id,
/// content, options)`, or a `summarize_video_combined` task in either of
/// its shapes ([`Request::from_task`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SummaryRequest(pub Arguments<Content, Options>);

/// The `content` argument.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(expecting = "an object {text, title?, contentType?}")]
pub struct Content {
    /// The text to summarise.
    pub text: String,
    /// The content's title, when known.
    pub title: Option<String>,
    /// What kind of content it is (drives the prompt and the preflight);
    /// any name is read ([`ContentType::guess`]), none is plain text.
    #[serde(
        default = "plain_text",
        alias = "contentType",
        alias = "type",
        deserialize_with = "guessed"
    )]
    pub content_type: ContentType,
}

/// The `options` argument.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Options {
    /// brief (the default), detailed or bullets.
    pub style: Option<Style>,
    /// Summary tokens at most.
    #[serde(alias = "maxLength")]
    pub max_length: Option<Positive>,
    /// A model name the producer asked for (recorded, not obeyed).
    pub model: Option<String>,
    /// The backend the gateway routed by (recorded).
    #[serde(alias = "provider")]
    pub backend: Option<String>,
}

impl Options {
    /// The summary's style.
    pub fn style(&self) -> Style {
        self.style.unwrap_or_default()
    }

    /// Summary tokens at most, `default` when the task does not say.
    pub fn max_tokens(&self, default: usize) -> usize {
        self.max_length
            .map_or(default, |n| usize::try_from(n.0).unwrap_or(usize::MAX))
    }
}

impl Request for SummaryRequest {
    /// Reads the plain shape, or for `summarize_video_combined` one
    /// `task_data` kwarg `{shareId, payload: {transcript, caption,
    /// hashtags, platform, title?}, options}`.
    fn from_task(task: &Task) -> Result<Self, TaskError> {
        let video = task.name == VIDEO_COMBINED_TASK;
        if video
            && (task.kwargs.contains_key("task_data")
                || task.args.first().is_some_and(Value::is_object))
        {
            let VideoTask { task_data } = decode(task, &["task_data"])?;
            return task_data.into_request();
        }
        let mut request: Self = decode(task, Self::POSITIONAL)?;
        if video && request.0.content.content_type == ContentType::Text {
            request.0.content.content_type = ContentType::VideoCombined;
        }
        Ok(request)
    }

    fn share_ids(&self) -> Vec<Uuid> {
        self.0.share_ids()
    }

    /// The `share_id` argument, or `task_data.shareId` of a combined-video
    /// task.
    fn unparsed_share_ids(task: &Task) -> Vec<Uuid> {
        let task_data = task.argument("task_data", 0);
        let nested = ["shareId", "share_id"]
            .iter()
            .find_map(|key| task_data?.get(*key)?.as_str());
        task.share_id()
            .or_else(|| nested.and_then(|text| Uuid::parse_str(text).ok()))
            .into_iter()
            .collect()
    }
}

/// The `summarize_video_combined` task's `task_data` shape.
#[derive(Deserialize)]
struct VideoTask {
    task_data: TaskData,
}

#[derive(Deserialize)]
#[serde(expecting = "an object {shareId, payload, options?}")]
struct TaskData {
    #[serde(rename = "shareId", alias = "share_id")]
    share_id: ShareId,
    payload: Payload,
    #[serde(default)]
    options: Options,
}

#[derive(Deserialize)]
#[serde(expecting = "an object {transcript?, caption?, hashtags?, title?}")]
struct Payload {
    transcript: Option<String>,
    caption: Option<String>,
    hashtags: Option<Hashtags>,
    title: Option<String>,
}

/// A list of tags, or one string of space-separated tags.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "must be a list of strings or one string of tags"
)]
enum Hashtags {
    List(Vec<String>),
    Spaced(String),
}

impl TaskData {
    /// The summary request of the combined text: caption, transcript,
    /// hashtags.
    fn into_request(self) -> Result<SummaryRequest, TaskError> {
        let payload = self.payload;
        let caption = payload.caption.unwrap_or_default();
        let transcript = payload.transcript.unwrap_or_default();
        let hashtags: Vec<String> = match payload.hashtags {
            Some(Hashtags::List(tags)) => tags,
            Some(Hashtags::Spaced(tags)) => tags.split_whitespace().map(str::to_owned).collect(),
            None => Vec::new(),
        };
        let text = video_text(&caption, &transcript, &hashtags);
        if text.is_empty() {
            return Err(invalid(
                "task_data.payload needs a transcript or a caption to summarise",
            ));
        }
        Ok(SummaryRequest(Arguments {
            share_id: self.share_id,
            content: Content {
                text,
                title: payload.title,
                content_type: ContentType::VideoCombined,
            },
            options: self.options,
        }))
    }
}

fn plain_text() -> ContentType {
    ContentType::Text
}

fn guessed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ContentType, D::Error> {
    let name = Option::<String>::deserialize(deserializer)?;
    Ok(name.map_or(ContentType::Text, |name| ContentType::guess(&name)))
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

    fn parse(name: &str, kwargs: Value) -> Result<SummaryRequest, TaskError> {
        SummaryRequest::from_task(&task(name, kwargs))
    }

    #[test]
    fn both_spellings_and_defaults() -> Result<(), TaskError> {
        let camel = parse(
            "s",
            json!({"share_id": SHARE, "content": {"text": "t", "contentType": "reddit"}, "options": {"maxLength": 120, "style": "bullets"}}),
        )?;
        assert_eq!(camel.0.content.content_type, ContentType::Reddit);
        assert_eq!(
            (camel.0.options.style(), camel.0.options.max_tokens(500)),
            (Style::Bullets, 120)
        );
        let snake = parse(
            "s",
            json!({"share_id": SHARE, "content": {"text": "t", "content_type": "article"}, "options": {"max_length": 80}}),
        )?;
        let Arguments {
            content, options, ..
        } = snake.0;
        assert_eq!(
            (
                content.content_type,
                options.style(),
                options.max_tokens(500)
            ),
            (ContentType::Article, Style::Brief, 80)
        );
        let bare = parse("s", json!({"share_id": SHARE, "content": {"text": "t"}}))?;
        assert_eq!(
            (bare.0.content.content_type, bare.0.options.max_tokens(500)),
            (ContentType::Text, 500)
        );
        Ok(())
    }

    #[test]
    fn video_combined_builds_its_text() -> Result<(), TaskError> {
        let request = parse(
            VIDEO_COMBINED_TASK,
            json!({"task_data": {"shareId": SHARE, "payload": {"transcript": "how to fry tofu", "caption": "Crispy tofu", "hashtags": ["vegan", "#recipe"], "platform": "tiktok"}, "options": {}}}),
        )?;
        assert_eq!(request.0.content.content_type, ContentType::VideoCombined);
        assert_eq!(
            request.0.content.text,
            "Caption: Crispy tofu\nTranscript: how to fry tofu\nHashtags: #vegan #recipe"
        );
        let plain = parse(
            VIDEO_COMBINED_TASK,
            json!({"share_id": SHARE, "content": {"text": "words here"}}),
        )?;
        assert_eq!(plain.0.content.content_type, ContentType::VideoCombined);
        Ok(())
    }

    #[test]
    fn a_video_task_that_does_not_parse_still_names_its_share() {
        let bad = task(
            VIDEO_COMBINED_TASK,
            json!({"task_data": {"shareId": SHARE, "payload": "not an object"}}),
        );
        assert!(SummaryRequest::from_task(&bad).is_err());
        let shares: Vec<String> = SummaryRequest::unparsed_share_ids(&bad)
            .iter()
            .map(Uuid::to_string)
            .collect();
        assert_eq!(shares, [SHARE]);
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
            let error = parse("s", kwargs.clone())
                .err()
                .unwrap_or_else(|| panic!("{kwargs} parsed"));
            assert!(error.to_string().contains(expected), "{kwargs}: {error}");
        }
        let error = parse(
            VIDEO_COMBINED_TASK,
            json!({"task_data": {"shareId": SHARE, "payload": {"hashtags": ["a"]}}}),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(error.contains("transcript or a caption"), "{error}");
        let error = parse(
            VIDEO_COMBINED_TASK,
            json!({"task_data": {"shareId": SHARE, "payload": {"caption": "c", "hashtags": [1]}}}),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            error.contains("task_data.payload.hashtags must be a list of strings"),
            "{error}"
        );
    }
}
