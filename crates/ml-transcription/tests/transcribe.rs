//! The real tiny.en model on real speech.

use std::path::PathBuf;

use ml_transcription::{TranscribeError, TranscribeOptions, Transcriber, TranscriberConfig};

fn model() -> Transcriber {
    let path = ml_testkit::env::models_dir().join("whisper-tiny.en/ggml-tiny.en.bin");
    Transcriber::load(&path, TranscriberConfig::default())
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models)"))
}

/// jfk.wav's samples (16 kHz mono s16), read by hand.
fn jfk() -> Vec<f32> {
    let path: PathBuf = ml_testkit::env::models_dir().join("speech-samples/jfk.wav");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data = bytes
        .windows(4)
        .position(|w| w == b"data")
        .unwrap_or_else(|| panic!("no data chunk"));
    bytes[data + 8..]
        .chunks_exact(2)
        .map(|pair| f32::from(i16::from_le_bytes([pair[0], pair[1]])) / 32768.0)
        .collect()
}

fn words(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn jfk_word_for_word_with_timed_segments() {
    let transcript = model()
        .transcribe(&jfk(), &TranscribeOptions::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        words(&transcript.text),
        "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
    );
    assert_eq!(transcript.language, "en");
    let last = transcript.segments.last().map_or(0.0, |s| s.end);
    assert!(last > 10.0 && last <= 11.0, "{last}");
}

#[test]
fn clips_under_a_second_are_padded() {
    let samples = jfk();
    // 0.5 s from the middle of the speech.
    let clip = &samples[16_000 * 3..16_000 * 3 + 8_000];
    let result = model().transcribe(clip, &TranscribeOptions::default(), None);
    let transcript = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        transcript.segments.iter().all(|s| s.end <= 0.5),
        "{transcript:?}"
    );
}

#[test]
fn an_english_only_model_refuses_other_languages() {
    let options = TranscribeOptions {
        language: Some("de".into()),
        prompt: None,
    };
    let result = model().transcribe(&jfk(), &options, None);
    assert!(
        matches!(result, Err(TranscribeError::EnglishOnly { .. })),
        "{result:?}"
    );
    let options = TranscribeOptions {
        language: Some("xx-nope".into()),
        prompt: None,
    };
    let result = model().transcribe(&jfk(), &options, None);
    assert!(
        matches!(result, Err(TranscribeError::UnknownLanguage(_))),
        "{result:?}"
    );
}
