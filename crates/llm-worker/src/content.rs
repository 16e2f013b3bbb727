//! How each kind of content is summarised: the noun the prompt uses, the
//! fewest words worth summarising, a combined video's text, and the
//! summary's style.

use ml_embedding::ContentType;
use serde::Deserialize;

/// How the prompt names content of `kind`.
pub fn noun(kind: ContentType) -> &'static str {
    match kind {
        ContentType::Article => "article",
        ContentType::Transcript => "video transcript",
        ContentType::VideoCombined => "short video (its caption, transcript and hashtags)",
        ContentType::Tweet => "social media post",
        ContentType::Reddit => "Reddit post",
        ContentType::Caption => "social media caption",
        ContentType::Comment => "comment",
        ContentType::Summary => "summary",
        ContentType::Composite | ContentType::Text => "text",
    }
}

/// Fewest words worth summarising. Short-form content is short by nature:
/// a 12-word caption is valid, a single word is not.
pub fn min_words(kind: ContentType) -> usize {
    match kind {
        ContentType::Article => 20,
        _ => 3,
    }
}

/// The text of a combined-video summary: the caption, the transcript and
/// the hashtags (each with one `#`), labelled, one per line, empty parts
/// left out; empty when caption and transcript both are.
pub fn video_text(caption: &str, transcript: &str, hashtags: &[String]) -> String {
    let (caption, transcript) = (caption.trim(), transcript.trim());
    if caption.is_empty() && transcript.is_empty() {
        return String::new();
    }
    let tags: Vec<String> = hashtags
        .iter()
        .map(|tag| format!("#{}", tag.trim_start_matches('#')))
        .collect();
    let parts = [
        ("Caption", caption),
        ("Transcript", transcript),
        ("Hashtags", &tags.join(" ")),
    ];
    let lines: Vec<String> = parts
        .iter()
        .filter(|(_, part)| !part.is_empty())
        .map(|(name, part)| format!("{name}: {part}"))
        .collect();
    lines.join("\n")
}

/// The summary's form, from `options.style`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Style {
    /// Two or three sentences.
    #[default]
    Brief,
    /// A paragraph or two covering the main points.
    Detailed,
    /// Bullet points.
    Bullets,
}

impl Style {
    /// The name recorded in `result_data.metadata.style`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Brief => "brief",
            Self::Detailed => "detailed",
            Self::Bullets => "bullets",
        }
    }
}

impl TryFrom<String> for Style {
    type Error = String;

    /// Reads a style name, case-insensitively, with a few synonyms.
    fn try_from(name: String) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "brief" | "short" => Ok(Self::Brief),
            "detailed" | "long" => Ok(Self::Detailed),
            "bullets" | "bullet" | "bullet_points" | "bullet-points" => Ok(Self::Bullets),
            _ => Err(format!("must be brief, detailed or bullets, got {name:?}")),
        }
    }
}
