//! Cutting cleaned text into chunks that fit the model's window.
//!
//! Every limit is counted in the model's own tokens, through a
//! [`TokenCounter`]. Units (sentences, paragraphs, transcript segments) are
//! packed greedily in order; a unit too long on its own is cut into token
//! windows. Chunks never overlap except in [`ChunkStrategy::Fixed`].

mod builder;
mod pack;
mod split;
mod strategy;
mod tokens;
mod transcript;

use serde::Serialize;

pub use strategy::ChunkStrategy;
pub use tokens::{TokenCounter, WhitespaceCounter};
pub use transcript::{Segment, transcript_text};

use crate::{EmbeddingError, content_hash};
use builder::Builder;
use pack::pack;
use tokens::{Span, Tokens, windows};

/// A piece of text to embed, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    /// Position among the text's chunks, from 0.
    pub index: usize,
    /// The chunk's text: non-empty, trimmed, exactly the characters
    /// `start_offset..end_offset` of the chunked text.
    pub text: String,
    /// Where the chunk starts in the chunked text, in characters (not bytes).
    pub start_offset: usize,
    /// Where the chunk ends (exclusive) in the chunked text, in characters.
    pub end_offset: usize,
    /// For transcript chunks, when the chunk's speech starts, in seconds.
    pub start_time: Option<f64>,
    /// For transcript chunks, when the chunk's speech ends, in seconds.
    pub end_time: Option<f64>,
    /// How many tokens the chunk has (special tokens not counted). With
    /// [`ChunkStrategy::None`] this may exceed what the model reads.
    pub token_count: usize,
}

impl Chunk {
    /// The [`content_hash`] of the chunk's text.
    #[must_use]
    pub fn content_hash(&self) -> String {
        content_hash(&self.text)
    }
}

/// Chunk sizes, in tokens as counted by the [`TokenCounter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkConfig {
    /// The most tokens in a chunk. Default 254: the model's 256-position
    /// window less its `[CLS]` and `[SEP]` tokens; use
    /// [`crate::Embedder::max_content_tokens`] for a loaded model.
    pub max_tokens: usize,
    /// The window size of [`ChunkStrategy::Fixed`] (capped at `max_tokens`).
    /// Default 200.
    pub fixed_size: usize,
    /// How many tokens consecutive [`ChunkStrategy::Fixed`] windows share.
    /// Default 40.
    pub overlap: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        Self {
            max_tokens: 254,
            fixed_size: 200,
            overlap: 40,
        }
    }
}

impl ChunkConfig {
    /// Checks that the sizes can work for every strategy: nothing zero,
    /// and the overlap smaller than the fixed window. Worth calling once at
    /// start-up; [`chunk()`] checks only what its strategy uses.
    ///
    /// # Errors
    ///
    /// [`EmbeddingError::InvalidChunkConfig`] saying which rule is broken.
    pub fn validate(&self) -> Result<(), EmbeddingError> {
        self.validate_for(ChunkStrategy::Fixed)
    }

    /// Checks the sizes `strategy` uses.
    fn validate_for(&self, strategy: ChunkStrategy) -> Result<(), EmbeddingError> {
        if self.max_tokens == 0 {
            return Err(EmbeddingError::InvalidChunkConfig(
                "max_tokens must be at least 1".into(),
            ));
        }
        if strategy != ChunkStrategy::Fixed {
            return Ok(());
        }
        if self.fixed_size == 0 {
            return Err(EmbeddingError::InvalidChunkConfig(
                "fixed_size must be at least 1".into(),
            ));
        }
        if self.overlap >= self.fixed_window() {
            return Err(EmbeddingError::InvalidChunkConfig(format!(
                "overlap ({}) must be smaller than the fixed window ({}: fixed_size capped at max_tokens)",
                self.overlap,
                self.fixed_window()
            )));
        }
        Ok(())
    }

    /// The window of [`ChunkStrategy::Fixed`]: never more than the model reads.
    fn fixed_window(&self) -> usize {
        self.fixed_size.min(self.max_tokens)
    }
}

/// Cuts `text` (already cleaned) into chunks with `strategy`.
///
/// - [`None`](ChunkStrategy::None): the whole text as one chunk.
/// - [`Sentence`](ChunkStrategy::Sentence) /
///   [`Paragraph`](ChunkStrategy::Paragraph): consecutive sentences or
///   paragraphs packed up to `config.max_tokens`; a longer one is cut into
///   windows of `max_tokens`.
/// - [`Fixed`](ChunkStrategy::Fixed): windows of `config.fixed_size` tokens
///   (at most `max_tokens`), each sharing `config.overlap` tokens with the
///   one before.
/// - [`Transcript`](ChunkStrategy::Transcript): consecutive `segments`
///   packed up to `max_tokens`, with times; offsets then index
///   [`transcript_text`]`(segments)` and `text` is not used. Without
///   segments (or only blank ones) it chunks `text` by sentence, without
///   times.
///
/// Chunks are numbered from 0, non-empty and trimmed; blank text gives no
/// chunks. The result depends only on the arguments.
///
/// # Errors
///
/// [`EmbeddingError::InvalidChunkConfig`] for sizes `strategy` cannot use,
/// or the token counter's error.
pub fn chunk(
    text: &str,
    strategy: ChunkStrategy,
    segments: Option<&[Segment]>,
    tokens: &dyn TokenCounter,
    config: &ChunkConfig,
) -> Result<Vec<Chunk>, EmbeddingError> {
    config.validate_for(strategy)?;
    if strategy == ChunkStrategy::Transcript
        && let Some(segments) = segments
        && segments
            .iter()
            .any(|segment| !segment.text.trim().is_empty())
    {
        return transcript::chunk(segments, tokens, config);
    }
    let Some(whole) = Span::trimmed(text, 0, text.len()) else {
        return Ok(Vec::new());
    };
    let tokens = Tokens::new(text, tokens)?;
    let mut builder = Builder::new(text);
    match strategy {
        ChunkStrategy::None => builder.push(whole, tokens.len(), None),
        ChunkStrategy::Sentence | ChunkStrategy::Transcript => {
            let units = split::sentences(text);
            let pieces = pack(&units, &tokens, config.max_tokens);
            builder.push_pieces(&units, &tokens, pieces, |_, _| None);
        }
        ChunkStrategy::Paragraph => {
            let units = split::paragraphs(text);
            let pieces = pack(&units, &tokens, config.max_tokens);
            builder.push_pieces(&units, &tokens, pieces, |_, _| None);
        }
        ChunkStrategy::Fixed => {
            let windows = windows(0..tokens.len(), config.fixed_window(), config.overlap);
            if windows.is_empty() {
                // Text the counter finds no tokens in still gets its chunk.
                builder.push(whole, 0, None);
            }
            for window in windows {
                if let Some(span) = tokens.cover(window.clone()) {
                    builder.push(span, window.len(), None);
                }
            }
        }
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_tokens: usize, fixed_size: usize, overlap: usize) -> ChunkConfig {
        ChunkConfig {
            max_tokens,
            fixed_size,
            overlap,
        }
    }

    fn run(text: &str, strategy: ChunkStrategy, config: ChunkConfig) -> Vec<Chunk> {
        match chunk(text, strategy, None, &WhitespaceCounter, &config) {
            Ok(chunks) => chunks,
            Err(err) => panic!("chunking failed: {err}"),
        }
    }

    fn texts(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    /// The invariants every strategy keeps.
    fn assert_well_formed(text: &str, chunks: &[Chunk]) {
        let chars: Vec<char> = text.chars().collect();
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.index, i);
            assert!(!chunk.text.is_empty());
            assert_eq!(chunk.text, chunk.text.trim());
            let slice: String = chars
                .get(chunk.start_offset..chunk.end_offset)
                .unwrap_or_default()
                .iter()
                .collect();
            assert_eq!(slice, chunk.text, "offsets of chunk {i}");
        }
    }

    #[test]
    fn none_is_one_trimmed_chunk() {
        let text = "  one two three  ";
        let chunks = run(text, ChunkStrategy::None, ChunkConfig::default());
        assert_eq!(texts(&chunks), ["one two three"]);
        assert_eq!((chunks[0].start_offset, chunks[0].end_offset), (2, 15));
        assert_eq!(chunks[0].token_count, 3);
        assert_eq!(chunks[0].start_time, None);
        assert_well_formed(text, &chunks);
    }

    #[test]
    fn blank_text_gives_no_chunks() {
        for strategy in ChunkStrategy::ALL {
            assert!(run(" \n ", strategy, ChunkConfig::default()).is_empty());
        }
    }

    #[test]
    fn sentences_pack_up_to_the_limit() {
        let text =
            "One two. Three four five. Six. Seven eight nine ten eleven twelve thirteen. End.";
        let chunks = run(text, ChunkStrategy::Sentence, config(5, 200, 40));
        assert_eq!(
            texts(&chunks),
            [
                "One two. Three four five.",
                "Six.",
                "Seven eight nine ten eleven",
                "twelve thirteen.",
                "End.",
            ]
        );
        let counts: Vec<_> = chunks.iter().map(|c| c.token_count).collect();
        assert_eq!(counts, [5, 1, 5, 2, 1]);
        assert_well_formed(text, &chunks);
    }

    #[test]
    fn short_text_is_one_sentence_chunk() {
        let text = "Best pasta ever. So good!";
        let chunks = run(text, ChunkStrategy::Sentence, ChunkConfig::default());
        assert_eq!(texts(&chunks), [text]);
    }

    #[test]
    fn paragraphs_pack_and_keep_breaks() {
        let text = "Para one is here.\n\nPara two.\n\nPara three is rather long indeed.";
        let chunks = run(text, ChunkStrategy::Paragraph, config(6, 200, 40));
        assert_eq!(
            texts(&chunks),
            [
                "Para one is here.\n\nPara two.",
                "Para three is rather long indeed."
            ]
        );
        assert_well_formed(text, &chunks);
    }

    #[test]
    fn fixed_windows_overlap() {
        let text = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9";
        let chunks = run(text, ChunkStrategy::Fixed, config(100, 4, 1));
        assert_eq!(
            texts(&chunks),
            ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
        );
        let offsets: Vec<_> = chunks
            .iter()
            .map(|c| (c.start_offset, c.end_offset, c.token_count))
            .collect();
        assert_eq!(offsets, [(0, 11, 4), (9, 20, 4), (18, 29, 4)]);
        assert_well_formed(text, &chunks);
    }

    #[test]
    fn fixed_window_is_capped_at_max_tokens() {
        let text = "a b c d e";
        let chunks = run(text, ChunkStrategy::Fixed, config(2, 200, 0));
        assert_eq!(texts(&chunks), ["a b", "c d", "e"]);
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "Ça va très bien. Über schön! Ende.";
        let chunks = run(text, ChunkStrategy::Sentence, config(3, 200, 0));
        assert_eq!(texts(&chunks), ["Ça va très", "bien.", "Über schön! Ende."]);
        assert_eq!((chunks[2].start_offset, chunks[2].end_offset), (17, 34));
        assert_well_formed(text, &chunks);
        let fixed = run(text, ChunkStrategy::Fixed, config(10, 3, 1));
        assert_well_formed(text, &fixed);
    }

    #[test]
    fn invalid_config_is_refused() {
        for bad in [
            config(0, 10, 0),
            config(10, 0, 0),
            config(10, 5, 5),
            config(3, 10, 3),
        ] {
            let result = chunk(
                "a b c",
                ChunkStrategy::Fixed,
                None,
                &WhitespaceCounter,
                &bad,
            );
            assert!(
                matches!(result, Err(EmbeddingError::InvalidChunkConfig(_))),
                "{bad:?}"
            );
        }
        assert!(ChunkConfig::default().validate().is_ok());
        // The fixed window's rules do not bind the other strategies.
        let sentence = chunk(
            "a b c",
            ChunkStrategy::Sentence,
            None,
            &WhitespaceCounter,
            &config(3, 10, 3),
        );
        assert!(sentence.is_ok());
        assert!(config(3, 10, 3).validate().is_err());
    }

    #[test]
    fn deterministic() {
        let text = "Alpha beta. Gamma delta epsilon.\n\nZeta eta theta. Iota.";
        for strategy in ChunkStrategy::ALL {
            let first = run(text, strategy, config(3, 3, 1));
            assert_eq!(first, run(text, strategy, config(3, 3, 1)));
            assert_well_formed(text, &first);
        }
    }

    #[test]
    fn chunk_hash_is_text_hash() {
        let chunks = run("hello", ChunkStrategy::None, ChunkConfig::default());
        assert_eq!(chunks[0].content_hash(), content_hash("hello"));
    }
}
