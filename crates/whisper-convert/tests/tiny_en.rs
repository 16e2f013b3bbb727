//! Converts the real Whisper tiny.en (CTranslate2 weights from
//! `$MODELS_DIR/whisper-tiny.en-ct2`) and has whisper.cpp (whisper-rs) load
//! the result and transcribe JFK's inaugural excerpt
//! (`$MODELS_DIR/speech-samples/jfk.wav`) word for word.
//!
//! `scripts/fetch-models` (run by `scripts/setup`) fetches both; without them
//! this test fails: it is the only proof the conversion is right.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use whisper_convert::{Paths, convert_files};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

const JFK: &str = "And so my fellow Americans ask not what your country can do for you \
                   ask what you can do for your country.";

/// `$MODELS_DIR`, default `$ML_WORKERS_CACHE/models` or
/// `$HOME/.cache/ml-workers/models` (as scripts/lib.sh and ml-testkit).
fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("ML_WORKERS_CACHE").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/ml-workers")
        },
        PathBuf::from,
    );
    cache.join("models")
}

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

/// 16 kHz mono 16-bit PCM WAV → f32 samples.
fn read_wav(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "not a WAV file"
    );
    let mut at = 12;
    let mut format = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            format = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
        } else if id == b"data" {
            assert_eq!(
                format,
                Some((1, 1, 16_000, 16)),
                "expected PCM, mono, 16 kHz, 16-bit"
            );
            return body
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
                .collect();
        }
        at += 8 + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// Lower case, letters, digits and single spaces only.
fn normalise(text: &str) -> String {
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

    let audio = read_wav(&wav);
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
    assert_eq!(normalise(&text), normalise(JFK), "transcript: {text}");

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
