//! Token positions, which every size limit of chunking is counted in.

use std::ops::Range;

use crate::EmbeddingError;

/// Where the tokens of a text are, so chunks can be sized in the model's own
/// units. [`crate::Embedder`] implements it with its word-piece tokenizer;
/// [`WhitespaceCounter`] is a model-free stand-in.
pub trait TokenCounter {
    /// The byte range `(start, end)` in `text` of each token, in order,
    /// without special tokens and without truncation.
    ///
    /// # Errors
    ///
    /// Whatever the tokenizer reports.
    fn offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbeddingError>;
}

/// Counts each whitespace-separated word as one token: for tests, and for
/// callers that want chunks sized in words.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhitespaceCounter;

impl TokenCounter for WhitespaceCounter {
    fn offsets(&self, text: &str) -> Result<Vec<(usize, usize)>, EmbeddingError> {
        let mut offsets = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    offsets.push((s, i));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        if let Some(s) = start {
            offsets.push((s, text.len()));
        }
        Ok(offsets)
    }
}

/// A byte range of the text being chunked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Span {
    /// The span of `text[start..end]` without surrounding whitespace, or
    /// `None` if nothing is left.
    pub(super) fn trimmed(text: &str, start: usize, end: usize) -> Option<Self> {
        let slice = text.get(start..end)?;
        let leading = slice.len() - slice.trim_start().len();
        let trailing = slice.len() - slice.trim_end().len();
        (leading < slice.len()).then_some(Self {
            start: start + leading,
            end: end - trailing,
        })
    }
}

/// The tokens of one text, checked to lie on character boundaries inside it
/// and sorted by start.
#[derive(Debug)]
pub(super) struct Tokens {
    spans: Vec<Span>,
}

impl Tokens {
    /// Tokenizes `text` with `counter`, dropping any offsets that do not
    /// address a non-empty slice of `text`.
    pub(super) fn new(text: &str, counter: &dyn TokenCounter) -> Result<Self, EmbeddingError> {
        let mut spans: Vec<Span> = counter
            .offsets(text)?
            .into_iter()
            .filter(|&(start, end)| start < end && text.get(start..end).is_some())
            .map(|(start, end)| Span { start, end })
            .collect();
        spans.sort_by_key(|span| span.start);
        Ok(Self { spans })
    }

    /// How many tokens there are.
    pub(super) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The indices of the tokens that start inside `span`.
    pub(super) fn within(&self, span: Span) -> Range<usize> {
        let first = self.spans.partition_point(|t| t.start < span.start);
        let last = self.spans.partition_point(|t| t.start < span.end);
        first..last.max(first)
    }

    /// The byte span from the start of the first to the end of the last
    /// token of `range`, or `None` for an empty range.
    pub(super) fn cover(&self, range: Range<usize>) -> Option<Span> {
        let first = self.spans.get(range.start)?;
        let last = self.spans.get(range.end.checked_sub(1)?)?;
        (range.start < range.end).then_some(Span {
            start: first.start,
            end: last.end.max(first.end),
        })
    }
}

/// Cuts `range` into windows of at most `size` items, each starting
/// `size - overlap` after the one before; the last window ends at the end
/// of `range`. Needs `overlap < size`.
pub(super) fn windows(range: Range<usize>, size: usize, overlap: usize) -> Vec<Range<usize>> {
    let step = size.saturating_sub(overlap).max(1);
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start + size).min(range.end);
        out.push(start..end);
        if end == range.end {
            break;
        }
        start += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_counter_offsets() {
        let offsets = WhitespaceCounter.offsets("  héllo wörld\n!").ok();
        assert_eq!(offsets, Some(vec![(2, 8), (9, 15), (16, 17)]));
    }

    #[test]
    fn windows_overlap_and_end_at_the_end() {
        assert_eq!(windows(0..10, 4, 1), vec![0..4, 3..7, 6..10]);
        assert_eq!(windows(0..11, 4, 1), vec![0..4, 3..7, 6..10, 9..11]);
        assert_eq!(windows(5..7, 4, 1), vec![5..7]);
        assert_eq!(windows(0..0, 4, 1), Vec::<Range<usize>>::new());
        assert_eq!(windows(0..6, 3, 0), vec![0..3, 3..6]);
    }

    #[test]
    fn bad_offsets_are_dropped() {
        struct Broken;
        impl TokenCounter for Broken {
            fn offsets(&self, _: &str) -> Result<Vec<(usize, usize)>, EmbeddingError> {
                Ok(vec![(5, 7), (0, 3), (1, 2), (3, 3), (5, 99)])
            }
        }
        // "é" occupies bytes 1..3, so (1, 2) splits a character.
        let tokens = Tokens::new("aéb cd", &Broken).ok();
        assert_eq!(tokens.as_ref().map(Tokens::len), Some(2));
        let spans = tokens.map(|t| t.spans).unwrap_or_default();
        assert_eq!(
            spans,
            vec![Span { start: 0, end: 3 }, Span { start: 5, end: 7 }]
        );
    }

    #[test]
    fn trimmed_span() {
        assert_eq!(
            Span::trimmed("  ab  ", 0, 6),
            Some(Span { start: 2, end: 4 })
        );
        assert_eq!(Span::trimmed("    ", 0, 4), None);
    }
}
