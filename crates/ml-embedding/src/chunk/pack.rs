//! Packing consecutive units (sentences, paragraphs, segments) into chunks
//! that fit a token budget.

use std::ops::Range;

use super::tokens::{Span, Tokens, windows};

/// One chunk-to-be, in terms of the units it was packed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// Whole consecutive units.
    Units(Range<usize>),
    /// A token window out of a single unit too long to fit the budget.
    Window {
        /// The unit the window lies in.
        unit: usize,
        /// The window's token indices.
        tokens: Range<usize>,
    },
}

/// Packs consecutive `units` greedily into pieces of at most `max_tokens`
/// tokens; a unit longer than that on its own is cut into windows of
/// `max_tokens` tokens without overlap.
pub(super) fn pack(units: &[Span], tokens: &Tokens, max_tokens: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    // The first unit and the token count of the piece being filled.
    let mut open: Option<(usize, usize)> = None;
    for (index, &unit) in units.iter().enumerate() {
        let unit_tokens = tokens.within(unit);
        let count = unit_tokens.len();
        if count > max_tokens {
            if let Some((first, _)) = open.take() {
                pieces.push(Piece::Units(first..index));
            }
            pieces.extend(
                windows(unit_tokens, max_tokens, 0)
                    .into_iter()
                    .map(|window| Piece::Window {
                        unit: index,
                        tokens: window,
                    }),
            );
            continue;
        }
        open = match open {
            Some((first, total)) if total + count <= max_tokens => Some((first, total + count)),
            Some((first, _)) => {
                pieces.push(Piece::Units(first..index));
                Some((index, count))
            }
            None => Some((index, count)),
        };
    }
    if let Some((first, _)) = open {
        pieces.push(Piece::Units(first..units.len()));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WhitespaceCounter;

    fn units_of(text: &str, words: &[&str]) -> Vec<Span> {
        let mut from = 0;
        words
            .iter()
            .filter_map(|unit| {
                let start = from + text.get(from..)?.find(unit)?;
                from = start + unit.len();
                Some(Span { start, end: from })
            })
            .collect()
    }

    #[test]
    fn packs_greedily_and_windows_long_units() {
        let text = "a b. c. d e f g h i. j k. l.";
        let units = units_of(text, &["a b.", "c.", "d e f g h i.", "j k.", "l."]);
        let tokens = Tokens::new(text, &WhitespaceCounter).ok();
        let pieces = tokens
            .map(|tokens| pack(&units, &tokens, 3))
            .unwrap_or_default();
        assert_eq!(
            pieces,
            vec![
                Piece::Units(0..2),
                Piece::Window {
                    unit: 2,
                    tokens: 3..6
                },
                Piece::Window {
                    unit: 2,
                    tokens: 6..9
                },
                Piece::Units(3..5),
            ]
        );
    }
}
