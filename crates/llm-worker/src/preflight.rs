//! Input checks before the model runs: binary junk, too few words, too
//! many words or bytes. Failures are permanent: the same input will never
//! pass.

use ml_embedding::ContentType;

use crate::content::min_words;

/// Why an input is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Nothing but whitespace.
    #[error("content.text is empty")]
    Empty,
    /// Control bytes or replacement characters: not text.
    #[error("content.text looks binary ({0} of its characters are control or invalid characters)")]
    Binary(String),
    /// Fewer words than the content type needs.
    #[error("content.text has {words} word(s); a {content_type} needs at least {min} to summarise")]
    TooShort {
        /// Words found.
        words: usize,
        /// Words needed.
        min: usize,
        /// The content type.
        content_type: &'static str,
    },
    /// More words than the worker accepts.
    #[error("content.text has {words} words, more than the limit of {max}")]
    TooLong {
        /// Words found.
        words: usize,
        /// The limit.
        max: usize,
    },
    /// More bytes than the worker reads.
    #[error("content.text is {bytes} bytes, over the {max}-byte cap (LLM_MAX_INPUT_BYTES)")]
    TooLarge {
        /// Bytes found.
        bytes: usize,
        /// The cap.
        max: usize,
    },
}

/// The most input a summary is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// `LLM_MAX_INPUT_WORDS`.
    pub max_words: usize,
    /// `LLM_MAX_INPUT_BYTES`, checked before anything else reads the text.
    pub max_bytes: usize,
}

/// Share of suspicious characters above which a text counts as binary.
const BINARY_RATIO: f64 = 0.05;

/// Checks `text` of `content_type`; returns its word count when it may be
/// summarised.
///
/// # Errors
/// A [`Refusal`] saying what is wrong.
pub fn check(text: &str, content_type: ContentType, limits: InputLimits) -> Result<usize, Refusal> {
    if text.len() > limits.max_bytes {
        return Err(Refusal::TooLarge {
            bytes: text.len(),
            max: limits.max_bytes,
        });
    }
    if text.trim().is_empty() {
        return Err(Refusal::Empty);
    }
    let total = text.chars().count();
    let suspicious = text
        .chars()
        .filter(|&c| c == '\u{FFFD}' || (c.is_control() && !c.is_whitespace()))
        .count();
    if text.contains('\0') || suspicious as f64 > total as f64 * BINARY_RATIO {
        let share = format!("{:.0}%", 100.0 * suspicious as f64 / total as f64);
        return Err(Refusal::Binary(share));
    }
    let words = word_count(text);
    if words < min_words(content_type) {
        return Err(Refusal::TooShort {
            words,
            min: min_words(content_type),
            content_type: content_type.as_str(),
        });
    }
    if words > limits.max_words {
        return Err(Refusal::TooLong {
            words,
            max: limits.max_words,
        });
    }
    Ok(words)
}

/// Words: whitespace-separated runs holding a letter or digit.
pub fn word_count(text: &str) -> usize {
    text.split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(max_words: usize) -> InputLimits {
        InputLimits {
            max_words,
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn short_content_types_accept_a_caption() {
        let caption =
            "Crispy air fryer tofu in ten minutes with only four simple pantry ingredients";
        assert_eq!(check(caption, ContentType::Caption, words(1000)), Ok(13));
        assert!(matches!(
            check("Hello", ContentType::Caption, words(1000)),
            Err(Refusal::TooShort { words: 1, .. })
        ));
        assert!(matches!(
            check(caption, ContentType::Article, words(1000)),
            Err(Refusal::TooShort { min: 20, .. })
        ));
    }

    #[test]
    fn empty_binary_and_long_inputs_are_refused() {
        assert_eq!(
            check(" \n\t", ContentType::Text, words(10)),
            Err(Refusal::Empty)
        );
        let binary: String = "PK\u{3}\u{4}\u{14}\0\u{8}\u{FFFD}\u{FFFD}abc".into();
        assert!(matches!(
            check(&binary, ContentType::Text, words(10)),
            Err(Refusal::Binary(_))
        ));
        assert!(matches!(
            check("one two three four", ContentType::Text, words(3)),
            Err(Refusal::TooLong { words: 4, max: 3 })
        ));
        let small = InputLimits {
            max_words: 10,
            max_bytes: 14,
        };
        assert_eq!(check("one two six", ContentType::Text, small), Ok(3));
        let refused = check("one two three four", ContentType::Text, small);
        assert_eq!(refused, Err(Refusal::TooLarge { bytes: 18, max: 14 }));
        assert_eq!(
            refused.err().map(|r| r.to_string()).unwrap_or_default(),
            "content.text is 18 bytes, over the 14-byte cap (LLM_MAX_INPUT_BYTES)"
        );
    }

    #[test]
    fn words_need_letters_or_digits() {
        assert_eq!(word_count("a - b -- 3 #tag"), 4);
    }
}
