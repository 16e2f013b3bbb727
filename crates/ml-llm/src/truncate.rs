//! Fitting a text into a token budget, cut at a sentence boundary.

use crate::error::Result;
use crate::tokenizer::LlmTokenizer;

/// A text cut to fit a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// The text kept.
    pub text: String,
    /// Its tokens.
    pub tokens: usize,
    /// Whether anything was cut.
    pub truncated: bool,
}

/// Keeps at most `max_tokens` tokens of `text`, ending at the last sentence
/// end (`.`, `!`, `?`, or a line break) inside the budget; falls back to the
/// last word boundary when the budget holds no sentence end.
///
/// # Errors
/// When the tokenizer fails.
pub fn truncate_to_tokens(
    text: &str,
    max_tokens: usize,
    tokenizer: &LlmTokenizer,
) -> Result<Truncated> {
    let tokens = tokenizer.encode_with_ends(text)?;
    if tokens.len() <= max_tokens {
        return Ok(Truncated {
            text: text.to_owned(),
            tokens: tokens.len(),
            truncated: false,
        });
    }
    let limit = match max_tokens.checked_sub(1).and_then(|i| tokens.get(i)) {
        Some((_, end)) => *end,
        None => 0,
    };
    let head = &text[..floor_char_boundary(text, limit)];
    let cut = sentence_end(head)
        .or_else(|| head.rfind(char::is_whitespace))
        .unwrap_or(head.len());
    let kept = head[..cut].trim_end().to_owned();
    let count = tokenizer.encode(&kept)?.len();
    Ok(Truncated {
        text: kept,
        tokens: count,
        truncated: true,
    })
}

/// Byte index just after the last sentence end in `text`.
fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).rev().find_map(|i| {
        let c = bytes[i];
        let followed_by_space = bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        match c {
            b'\n' => Some(i),
            b'.' | b'!' | b'?' if followed_by_space && i > 0 => Some(i + 1),
            _ => None,
        }
        .filter(|&end| end > 0)
    })
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_sentence_end() {
        assert_eq!(sentence_end("One. Two. Thr"), Some(9));
        assert_eq!(sentence_end("One! Two"), Some(4));
        assert_eq!(sentence_end("e.g.x no end"), None);
        assert_eq!(sentence_end("line one\nline"), Some(8));
        assert_eq!(sentence_end("no end at all"), None);
    }

    #[test]
    fn char_boundaries_are_respected() {
        let text = "héllo";
        assert_eq!(floor_char_boundary(text, 2), 1);
        assert_eq!(floor_char_boundary(text, 99), text.len());
    }
}
