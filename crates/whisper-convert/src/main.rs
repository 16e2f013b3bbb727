//! `whisper-convert`: CTranslate2 Whisper `model.bin` → whisper.cpp ggml file.
//!
//! ```text
//! whisper-convert --ct2 model.bin --mel-filters mel_filters.npz \
//!     --vocab gpt2.tiktoken --out ggml-tiny.en.bin
//! ```
//!
//! Logs progress to stderr (`RUST_LOG`, default `info`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use whisper_convert::{Paths, convert_files};

/// Converts a CTranslate2 (faster-whisper) Whisper model into a whisper.cpp
/// ggml file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The CTranslate2 `model.bin` (float16, float32 or bfloat16 weights).
    #[arg(long, value_name = "FILE")]
    ct2: PathBuf,
    /// openai-whisper's `whisper/assets/mel_filters.npz`.
    #[arg(long, value_name = "FILE")]
    mel_filters: PathBuf,
    /// openai-whisper's `gpt2.tiktoken` (English-only models) or
    /// `multilingual.tiktoken` (multilingual models).
    #[arg(long, value_name = "FILE")]
    vocab: PathBuf,
    /// faster-whisper's `config.json` [default: the one next to --ct2, if any].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The ggml file to write (atomically: complete or not at all).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let paths = Paths {
        ct2: args.ct2,
        mel_filters: args.mel_filters,
        vocab: args.vocab,
        config: args.config,
        out: args.out,
    };
    match convert_files(&paths) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("whisper-convert: error: {err}");
            ExitCode::FAILURE
        }
    }
}
