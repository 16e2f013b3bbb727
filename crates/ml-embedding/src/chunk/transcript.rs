//! Chunking timed transcript segments.

use serde::{Deserialize, Serialize};

use super::builder::Builder;
use super::pack::{Piece, pack};
use super::tokens::{Span, TokenCounter, Tokens};
use super::{Chunk, ChunkConfig};
use crate::EmbeddingError;

/// One timed piece of a transcript, as the transcription worker stores it
/// (`{"start": 0.0, "end": 2.5, "text": "…"}`, times in seconds). Other
/// fields in the JSON are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// When the segment starts, in seconds.
    pub start: f64,
    /// When the segment ends, in seconds.
    pub end: f64,
    /// What was said.
    pub text: String,
}

/// The text that transcript chunks index into: each segment's trimmed text,
/// blank ones left out, joined by single spaces.
///
/// Clean the segments' texts first if the chunks should be clean.
#[must_use]
pub fn transcript_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|segment| segment.text.trim())
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Packs consecutive segments into chunks of at most `config.max_tokens`
/// tokens. A chunk runs from its first segment's start to its last one's
/// end; a window cut out of one over-long segment gets times interpolated
/// by its position in the segment's text. Offsets index
/// [`transcript_text`]`(segments)`.
pub(super) fn chunk(
    segments: &[Segment],
    counter: &dyn TokenCounter,
    config: &ChunkConfig,
) -> Result<Vec<Chunk>, EmbeddingError> {
    let kept: Vec<&Segment> = segments
        .iter()
        .filter(|segment| !segment.text.trim().is_empty())
        .collect();
    let text = transcript_text(segments);
    let mut units = Vec::with_capacity(kept.len());
    let mut position = 0;
    for segment in &kept {
        let length = segment.text.trim().len();
        units.push(Span {
            start: position,
            end: position + length,
        });
        position += length + 1;
    }

    let tokens = Tokens::new(&text, counter)?;
    let pieces = pack(&units, &tokens, config.max_tokens);
    let mut builder = Builder::new(&text);
    builder.push_pieces(&units, &tokens, pieces, |piece, span| match piece {
        Piece::Units(range) => {
            let first = kept.get(range.start)?;
            let last = kept.get(range.end.checked_sub(1)?)?;
            Some((first.start, last.end))
        }
        Piece::Window { unit, .. } => {
            let segment = kept.get(*unit)?;
            let unit = units.get(*unit)?;
            Some((
                interpolate(segment, *unit, span.start),
                interpolate(segment, *unit, span.end),
            ))
        }
    });
    Ok(builder.finish())
}

/// The time at byte `at` of a segment's text, assuming speech at an even
/// pace through the segment.
fn interpolate(segment: &Segment, unit: Span, at: usize) -> f64 {
    let length = unit.end.saturating_sub(unit.start);
    if length == 0 {
        return segment.start;
    }
    #[allow(clippy::cast_precision_loss, reason = "texts are far below 2^52 bytes")]
    let fraction = at.saturating_sub(unit.start).min(length) as f64 / length as f64;
    segment.start + (segment.end - segment.start) * fraction
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChunkStrategy, WhitespaceCounter, chunk};

    fn segment(start: f64, end: f64, text: &str) -> Segment {
        Segment {
            start,
            end,
            text: text.to_owned(),
        }
    }

    fn config(max_tokens: usize) -> ChunkConfig {
        ChunkConfig {
            max_tokens,
            ..ChunkConfig::default()
        }
    }

    #[test]
    fn deserialises_from_metadata_json() {
        let json = r#"[{"id": 0, "start": 0.0, "end": 1.5, "text": " Hi", "tokens": [1]}]"#;
        let segments: Vec<Segment> = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(segments, vec![segment(0.0, 1.5, " Hi")]);
    }

    #[test]
    fn groups_segments_with_times() {
        let segments = [
            segment(0.0, 2.0, " one two "),
            segment(2.0, 4.0, "three"),
            segment(4.0, 5.0, "   "),
            segment(5.0, 7.0, "four five"),
            segment(7.0, 9.0, "six"),
        ];
        let chunks = chunk(
            "ignored",
            ChunkStrategy::Transcript,
            Some(&segments),
            &WhitespaceCounter,
            &config(3),
        )
        .unwrap_or_default();
        let text = transcript_text(&segments);
        assert_eq!(text, "one two three four five six");
        let summary: Vec<_> = chunks
            .iter()
            .map(|c| {
                (
                    c.index,
                    c.text.as_str(),
                    c.start_offset,
                    c.end_offset,
                    c.start_time,
                    c.end_time,
                    c.token_count,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, "one two three", 0, 13, Some(0.0), Some(4.0), 3),
                (1, "four five six", 14, 27, Some(5.0), Some(9.0), 3),
            ]
        );
    }

    #[test]
    fn long_segment_is_windowed_with_interpolated_times() {
        let segments = [segment(10.0, 20.0, "aaaa bbbb cccc dddd")];
        let chunks = chunk(
            "",
            ChunkStrategy::Transcript,
            Some(&segments),
            &WhitespaceCounter,
            &config(2),
        )
        .unwrap_or_default();
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["aaaa bbbb", "cccc dddd"]);
        // 19 bytes over 10 s: "aaaa bbbb" is bytes 0..9, "cccc dddd" 10..19.
        let expected = [(10.0, 10.0 + 90.0 / 19.0), (10.0 + 100.0 / 19.0, 20.0)];
        for (chunk, (start, end)) in chunks.iter().zip(expected) {
            let (Some(got_start), Some(got_end)) = (chunk.start_time, chunk.end_time) else {
                panic!("chunk without times: {chunk:?}");
            };
            assert!((got_start - start).abs() < 1e-9, "{got_start} vs {start}");
            assert!((got_end - end).abs() < 1e-9, "{got_end} vs {end}");
        }
    }

    #[test]
    fn without_segments_falls_back_to_sentences() {
        for segments in [None, Some(&[][..]), Some(&[segment(0.0, 1.0, " ")][..])] {
            let chunks = chunk(
                "First one. Second one.",
                ChunkStrategy::Transcript,
                segments,
                &WhitespaceCounter,
                &config(2),
            )
            .unwrap_or_default();
            let texts: Vec<_> = chunks
                .iter()
                .map(|c| (c.text.as_str(), c.start_time))
                .collect();
            assert_eq!(texts, vec![("First one.", None), ("Second one.", None)]);
        }
    }
}
