//! Text clean-up for embedding (`ml_embedding::clean`) on any text of any
//! content type: it must not panic, and what it returns is trimmed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ml_embedding::{ContentType, clean};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, text)) = data.split_first() else {
        return;
    };
    let content_type = ContentType::ALL[usize::from(kind) % ContentType::ALL.len()];
    let text = String::from_utf8_lossy(text);
    let cleaned = clean(&text, content_type);
    assert_eq!(cleaned, cleaned.trim(), "cleaned text is trimmed");
});
