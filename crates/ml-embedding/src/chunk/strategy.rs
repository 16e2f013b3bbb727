//! The ways a text can be cut into chunks.

use std::fmt;
use std::str::FromStr;

use crate::{ContentType, EmbeddingError};

/// How a text is cut into chunks before embedding; see [`crate::chunk()`].
///
/// Parsed from the task's `chunk_strategy` option, case-insensitively;
/// `fixed_size` is accepted as another name for [`ChunkStrategy::Fixed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum ChunkStrategy {
    /// One chunk holding the whole text; the model truncates what exceeds
    /// its window.
    None,
    /// Consecutive sentences packed up to the token limit.
    Sentence,
    /// Consecutive paragraphs (separated by blank lines) packed up to the
    /// token limit.
    Paragraph,
    /// Windows of a fixed number of tokens that overlap.
    Fixed,
    /// Consecutive timed transcript segments packed up to the token limit,
    /// each chunk carrying its start and end time.
    Transcript,
}

impl ChunkStrategy {
    /// Every strategy, in declaration order.
    pub const ALL: [Self; 5] = [
        Self::None,
        Self::Sentence,
        Self::Paragraph,
        Self::Fixed,
        Self::Transcript,
    ];

    /// The canonical lowercase name (`fixed` for both of its spellings).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Sentence => "sentence",
            Self::Paragraph => "paragraph",
            Self::Fixed => "fixed",
            Self::Transcript => "transcript",
        }
    }

    /// The strategy to use when a task names none: transcripts by segment,
    /// articles by paragraph, everything else by sentence (which gives a
    /// single chunk for short text and never lets the model truncate).
    #[must_use]
    pub const fn default_for(content_type: ContentType) -> Self {
        match content_type {
            ContentType::Transcript => Self::Transcript,
            ContentType::Article => Self::Paragraph,
            ContentType::Caption
            | ContentType::Comment
            | ContentType::Tweet
            | ContentType::Summary
            | ContentType::Composite
            | ContentType::Reddit
            | ContentType::VideoCombined
            | ContentType::Text => Self::Sentence,
        }
    }
}

impl fmt::Display for ChunkStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChunkStrategy {
    type Err = EmbeddingError;

    /// Parses a strategy name case-insensitively, ignoring surrounding
    /// whitespace.
    ///
    /// # Errors
    ///
    /// [`EmbeddingError::UnknownChunkStrategy`], listing the accepted names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        if wanted.eq_ignore_ascii_case("fixed_size") {
            return Ok(Self::Fixed);
        }
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| EmbeddingError::UnknownChunkStrategy(s.to_owned()))
    }
}

impl TryFrom<String> for ChunkStrategy {
    type Error = EmbeddingError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_alias() {
        let cases = [
            ("none", ChunkStrategy::None),
            ("sentence", ChunkStrategy::Sentence),
            ("paragraph", ChunkStrategy::Paragraph),
            ("fixed", ChunkStrategy::Fixed),
            ("fixed_size", ChunkStrategy::Fixed),
            ("FIXED_SIZE", ChunkStrategy::Fixed),
            (" Transcript ", ChunkStrategy::Transcript),
        ];
        for (name, expected) in cases {
            assert_eq!(name.parse::<ChunkStrategy>().ok(), Some(expected), "{name}");
        }
        for strategy in ChunkStrategy::ALL {
            assert_eq!(
                strategy.to_string().parse::<ChunkStrategy>().ok(),
                Some(strategy)
            );
        }
    }

    #[test]
    fn unknown_name_lists_accepted() {
        let message = "semantic"
            .parse::<ChunkStrategy>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("\"semantic\""), "{message}");
        assert!(
            message.contains("none, sentence, paragraph, fixed, fixed_size, transcript"),
            "{message}"
        );
    }

    #[test]
    fn defaults_per_content_type() {
        assert_eq!(
            ChunkStrategy::default_for(ContentType::Transcript),
            ChunkStrategy::Transcript
        );
        assert_eq!(
            ChunkStrategy::default_for(ContentType::Article),
            ChunkStrategy::Paragraph
        );
        assert_eq!(
            ChunkStrategy::default_for(ContentType::Caption),
            ChunkStrategy::Sentence
        );
    }
}
