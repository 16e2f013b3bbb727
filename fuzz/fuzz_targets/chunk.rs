//! Chunking (`ml_embedding::chunk`) of any text with every strategy: chunks
//! are numbered from 0, non-empty, trimmed, and exactly the characters
//! `start_offset..end_offset` of the text they came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ml_embedding::{ChunkConfig, ChunkStrategy, WhitespaceCounter, chunk};

const STRATEGIES: [ChunkStrategy; 4] = [
    ChunkStrategy::None,
    ChunkStrategy::Sentence,
    ChunkStrategy::Paragraph,
    ChunkStrategy::Fixed,
];

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else {
        return;
    };
    let strategy = STRATEGIES[usize::from(choice) % STRATEGIES.len()];
    // Small chunks (sized by the byte's high bits) so short inputs split too.
    let size = 2 + usize::from(choice >> 4);
    let config = ChunkConfig {
        max_tokens: size,
        fixed_size: size,
        overlap: usize::from(choice >> 6) % size,
    };
    let text = String::from_utf8_lossy(text);
    let Ok(chunks) = chunk(&text, strategy, None, &WhitespaceCounter, &config) else {
        return;
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, piece) in chunks.iter().enumerate() {
        assert_eq!(piece.index, i, "numbered from 0");
        assert!(!piece.text.is_empty(), "non-empty");
        assert_eq!(piece.text, piece.text.trim(), "trimmed");
        let span: String = chars[piece.start_offset..piece.end_offset].iter().collect();
        assert_eq!(piece.text, span, "the chunk is its span of the text");
    }
});
