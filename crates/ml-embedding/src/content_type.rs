//! The kinds of content a share holds: one vocabulary for the summaries'
//! `metadata.content_type`, the embeddings' `content_type` column and the
//! clean-up rules.

use std::fmt;
use std::str::FromStr;

use crate::EmbeddingError;

/// What a text is, which decides how it is cleaned (see [`crate::clean`])
/// and how a summary prompt names it.
///
/// Parsed strictly by [`FromStr`] (and serde), case-insensitively, from the
/// names [`ContentType::as_str`] gives; [`ContentType::guess`] also reads
/// the looser names producers send a summary task. The embed task's default
/// is [`ContentType::Caption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum ContentType {
    /// A social-media post caption.
    #[default]
    Caption,
    /// Speech-to-text output.
    Transcript,
    /// A web article, possibly with HTML left in.
    Article,
    /// A user comment.
    Comment,
    /// A tweet.
    Tweet,
    /// A summary written by the summarising model.
    Summary,
    /// Several fields of a share put together.
    Composite,
    /// A Reddit post.
    Reddit,
    /// A short video's caption, transcript and hashtags together.
    VideoCombined,
    /// Text of no known kind.
    Text,
}

impl ContentType {
    /// Every content type, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Caption,
        Self::Transcript,
        Self::Article,
        Self::Comment,
        Self::Tweet,
        Self::Summary,
        Self::Composite,
        Self::Reddit,
        Self::VideoCombined,
        Self::Text,
    ];

    /// The lowercase name used on the wire and in the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Caption => "caption",
            Self::Transcript => "transcript",
            Self::Article => "article",
            Self::Comment => "comment",
            Self::Tweet => "tweet",
            Self::Summary => "summary",
            Self::Composite => "composite",
            Self::Reddit => "reddit",
            Self::VideoCombined => "video_combined",
            Self::Text => "text",
        }
    }

    /// Reads any name a producer may send: the strict names, common
    /// synonyms (`webpage`, `youtube`, `tiktok`, `twitter`, ...), and
    /// [`ContentType::Text`] for anything else.
    #[must_use]
    pub fn guess(name: &str) -> Self {
        if let Ok(kind) = name.parse() {
            return kind;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "webpage" | "web" | "blog" | "post" => Self::Article,
            "video" | "audio" | "youtube" => Self::Transcript,
            "videocombined" | "video-combined" | "combined" => Self::VideoCombined,
            "twitter" | "x" => Self::Tweet,
            "tiktok" | "instagram" => Self::Caption,
            _ => Self::Text,
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContentType {
    type Err = EmbeddingError;

    /// Parses a name case-insensitively, ignoring surrounding whitespace.
    ///
    /// # Errors
    ///
    /// [`EmbeddingError::UnknownContentType`], listing the accepted names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| EmbeddingError::UnknownContentType(s.to_owned()))
    }
}

impl TryFrom<String> for ContentType {
    type Error = EmbeddingError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_case_insensitively() {
        for kind in ContentType::ALL {
            assert_eq!(kind.as_str().parse::<ContentType>().ok(), Some(kind));
            let upper = kind.as_str().to_uppercase();
            assert_eq!(upper.parse::<ContentType>().ok(), Some(kind));
        }
        assert_eq!(
            " Transcript ".parse::<ContentType>().ok(),
            Some(ContentType::Transcript)
        );
    }

    #[test]
    fn unknown_name_lists_accepted() {
        let err = "video".parse::<ContentType>().err().map(|e| e.to_string());
        let message = err.unwrap_or_default();
        assert!(message.contains("\"video\""), "{message}");
        assert!(
            message.contains("caption, transcript, article"),
            "{message}"
        );
    }

    #[test]
    fn guessing_reads_synonyms_and_falls_back_to_text() {
        for (name, kind) in [
            ("Reddit", ContentType::Reddit),
            ("webpage", ContentType::Article),
            ("youtube", ContentType::Transcript),
            ("video-combined", ContentType::VideoCombined),
            ("tiktok", ContentType::Caption),
            ("poem", ContentType::Text),
        ] {
            assert_eq!(ContentType::guess(name), kind, "{name}");
        }
    }

    #[test]
    fn default_is_caption() {
        assert_eq!(ContentType::default(), ContentType::Caption);
        assert_eq!(ContentType::Tweet.to_string(), "tweet");
    }
}
