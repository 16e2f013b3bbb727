//! Converts the real Whisper tiny.en (CTranslate2 weights from
//! `$MODELS_DIR/whisper-tiny.en-ct2`) and has whisper.cpp (whisper-rs) load
//! the result and transcribe JFK's inaugural excerpt
//! (`$MODELS_DIR/speech-samples/jfk.wav`) word for word.
//!
//! `scripts/fetch-models` (run by `scripts/setup`) fetches both; without them
//! this test fails: it is the only proof the conversion is right.

use std::path::{Path, PathBuf};

use ml_testkit::env::models_dir;
use ml_testkit::speech::{JFK, normalise, read_wav_pcm16};
use sha2::{Digest, Sha256};
use whisper_convert::{Paths, convert_files};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

/// A fetched input, or a failure that says how to get it.
fn input(model: &str, file: &str) -> PathBuf {
    let dir = models_dir();
    let path = dir.join(model).join(file);
    if !path.is_file() {
        panic!(
            "{} is missing: run `scripts/fetch-models {model}` (MODELS_DIR={}; \
             scripts/setup fetches every default model)",
            path.display(),
            dir.display()
        );
    }
    path
}

/// The sha256 `scripts/fetch-models` pins for `file`.
fn pinned_sha256(file: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-models");
    let text =
        std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    // A `SHA256  FILE` line of a sums block (the last one ends the string).
    let suffix = format!("  {file}");
    let Some(line) = text
        .lines()
        .find(|l| l.trim_end_matches('"').ends_with(&suffix))
    else {
        panic!("no sha256 pinned for {file} in {}", script.display());
    };
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn converted_tiny_en_loads_in_whisper_cpp_and_transcribes_jfk() {
    let paths = Paths {
        ct2: input("whisper-tiny.en-ct2", "model.bin"),
        mel_filters: input("whisper-tiny.en-ct2", "mel_filters.npz"),
        vocab: input("whisper-tiny.en-ct2", "gpt2.tiktoken"),
        config: Some(input("whisper-tiny.en-ct2", "config.json")),
        out: PathBuf::new(),
    };
    let wav = input("speech-samples", "jfk.wav");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let paths = Paths {
        out: dir.path().join("ggml-tiny.en.bin"),
        ..paths
    };

    let summary = convert_files(&paths).unwrap_or_else(|e| panic!("conversion failed: {e}"));
    let bytes = std::fs::read(&paths.out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        bytes.len(),
        77_704_698,
        "size of a correct tiny.en conversion"
    );
    assert_eq!(summary.bytes, 77_704_698);
    assert_eq!(
        summary.hparams.to_array(),
        [51_864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]
    );

    let out = paths.out.to_string_lossy().into_owned();
    let ctx = WhisperContext::new_with_params(&out, WhisperContextParameters::default())
        .unwrap_or_else(|e| panic!("whisper.cpp cannot load the conversion: {e}"));
    assert_eq!(ctx.model_type(), 1, "whisper.cpp's type 1 (tiny)");
    assert_eq!(ctx.model_type_readable_str().ok(), Some("tiny"));
    assert!(!ctx.is_multilingual());
    assert_eq!(ctx.n_vocab(), 51_864);

    let (rate, audio) = read_wav_pcm16(&wav).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rate, 16_000);
    assert!(audio.len() > 16_000 * 10, "jfk.wav is about 11 s");
    let mut state = ctx.create_state().unwrap_or_else(|e| panic!("state: {e}"));
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_n_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(8)) as i32);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    state
        .full(params, &audio)
        .unwrap_or_else(|e| panic!("transcription failed: {e}"));
    let text: String = state
        .as_iter()
        .map(|segment| {
            segment
                .to_str_lossy()
                .map(|s| s.into_owned())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("transcript: {text}");
    assert_eq!(normalise(&text), JFK, "transcript: {text}");

    // The file scripts/fetch-models installs is this very (proven) conversion.
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        sha256,
        pinned_sha256("ggml-tiny.en.bin"),
        "the pin in scripts/fetch-models"
    );
}
