//! Turning byte spans of the chunked text into numbered [`Chunk`]s.

use super::Chunk;
use super::pack::Piece;
use super::tokens::{Span, Tokens};

/// Collects chunks of one text, numbering them and converting byte spans to
/// character offsets.
pub(super) struct Builder<'a> {
    text: &'a str,
    /// The byte position of every character, or `None` for ASCII text,
    /// where bytes and characters coincide.
    char_starts: Option<Vec<usize>>,
    chunks: Vec<Chunk>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let char_starts = (!text.is_ascii()).then(|| text.char_indices().map(|(i, _)| i).collect());
        Self {
            text,
            char_starts,
            chunks: Vec::new(),
        }
    }

    /// The character offset of byte position `byte` (a character boundary).
    pub(super) fn char_offset(&self, byte: usize) -> usize {
        match &self.char_starts {
            Some(starts) => starts.partition_point(|&start| start < byte),
            None => byte,
        }
    }

    /// Adds the chunk at `span` (trimmed; skipped if blank).
    pub(super) fn push(&mut self, span: Span, token_count: usize, times: Option<(f64, f64)>) {
        let Some(span) = Span::trimmed(self.text, span.start, span.end) else {
            return;
        };
        let Some(text) = self.text.get(span.start..span.end) else {
            return;
        };
        self.chunks.push(Chunk {
            index: self.chunks.len(),
            text: text.to_owned(),
            start_offset: self.char_offset(span.start),
            end_offset: self.char_offset(span.end),
            start_time: times.map(|(start, _)| start),
            end_time: times.map(|(_, end)| end),
            token_count,
        });
    }

    /// Adds a chunk per packed piece of `units`, timed by `times`.
    pub(super) fn push_pieces(
        &mut self,
        units: &[Span],
        tokens: &Tokens,
        pieces: Vec<Piece>,
        times: impl Fn(&Piece, Span) -> Option<(f64, f64)>,
    ) {
        for piece in pieces {
            let (span, count) = match &piece {
                Piece::Units(range) => {
                    let (Some(first), Some(last)) = (
                        units.get(range.start),
                        range.end.checked_sub(1).and_then(|last| units.get(last)),
                    ) else {
                        continue;
                    };
                    let span = Span {
                        start: first.start,
                        end: last.end,
                    };
                    (span, tokens.within(span).len())
                }
                Piece::Window { tokens: window, .. } => {
                    let Some(span) = tokens.cover(window.clone()) else {
                        continue;
                    };
                    (span, window.len())
                }
            };
            self.push(span, count, times(&piece, span));
        }
    }

    pub(super) fn finish(self) -> Vec<Chunk> {
        self.chunks
    }
}
