//! The kinds of text the vector worker embeds.

use std::fmt;
use std::str::FromStr;

use crate::EmbeddingError;

/// What a text is, which decides how it is cleaned (see [`crate::clean`]).
///
/// Parsed from the task's `type` argument, case-insensitively; the contract's
/// default is [`ContentType::Caption`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
}

impl ContentType {
    /// Every content type, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::Caption,
        Self::Transcript,
        Self::Article,
        Self::Comment,
        Self::Tweet,
        Self::Summary,
        Self::Composite,
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
    fn default_is_caption() {
        assert_eq!(ContentType::default(), ContentType::Caption);
        assert_eq!(ContentType::Tweet.to_string(), "tweet");
    }
}
