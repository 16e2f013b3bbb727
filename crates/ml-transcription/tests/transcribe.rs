//! The real tiny.en model on real speech.

use ml_testkit::speech::{self, JFK, normalise};
use ml_transcription::{TranscribeError, TranscribeOptions, Transcriber, TranscriberConfig};

fn model() -> Transcriber {
    let path = ml_testkit::env::models_dir().join("whisper-tiny.en/ggml-tiny.en.bin");
    Transcriber::load(&path, TranscriberConfig::default())
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models)"))
}

/// jfk.wav's samples.
fn jfk() -> Vec<f32> {
    speech::jfk_samples().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn jfk_word_for_word_with_timed_segments() {
    let transcript = model()
        .transcribe(&jfk(), &TranscribeOptions::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(normalise(&transcript.text), JFK);
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

/// The multilingual base model (`scripts/fetch-models whisper-base`, in the
/// default set).
fn base_model() -> Transcriber {
    let path = ml_testkit::env::models_dir().join("whisper-base/ggml-base.bin");
    Transcriber::load(&path, TranscriberConfig::default())
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models whisper-base)"))
}

/// German speech by espeak-ng, as 16 kHz mono samples.
fn german_speech() -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (spoken, wav) = (dir.path().join("de.wav"), dir.path().join("de-16k.wav"));
    speech::espeak(
        "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen mit dem Hund in den Park.",
        "de",
        &spoken,
    )
    .and_then(|()| {
        speech::ffmpeg([
            "-i".as_ref(),
            spoken.as_os_str(),
            "-ar".as_ref(),
            "16000".as_ref(),
            "-ac".as_ref(),
            "1".as_ref(),
            wav.as_os_str(),
        ])
    })
    .and_then(|()| speech::read_wav_pcm16(&wav))
    .map(|(_, samples)| samples)
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_multilingual_model_detects_the_language() {
    let model = base_model();
    let german = model
        .transcribe(&german_speech(), &TranscribeOptions::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(german.language, "de", "{german:?}");
    let text = normalise(&german.text);
    for word in ["morgen", "heute", "park"] {
        assert!(text.contains(word), "{word:?} missing from {text:?}");
    }
    let english = model
        .transcribe(&jfk(), &TranscribeOptions::default(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(english.language, "en", "{english:?}");
    assert!(normalise(&english.text).contains("fellow americans"));
}

#[test]
fn a_given_language_is_used_instead_of_detection() {
    // A regional form names its base language, which whisper is told.
    let options = TranscribeOptions {
        language: Some("de-AT".into()),
        prompt: None,
    };
    let transcript = base_model()
        .transcribe(&german_speech(), &options, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(transcript.language, "de");
    assert!(
        normalise(&transcript.text).contains("heute"),
        "{transcript:?}"
    );
}
