//! Converts a Whisper model from CTranslate2 (faster-whisper's `model.bin`)
//! into the ggml file whisper.cpp (and so `whisper-rs`) loads, taking the mel
//! filter bank from openai-whisper's `mel_filters.npz` and the vocabulary
//! from its `gpt2.tiktoken` / `multilingual.tiktoken`.
//!
//! The conversion is lossless: float16 weights are copied as they are, and
//! the 1-D tensors whisper.cpp wants in float32 are widened. The output
//! matches what whisper.cpp's `models/convert-pt-to-ggml.py` writes from the
//! original PyTorch checkpoint (same names, order, types and shapes).
//!
//! ```no_run
//! use whisper_convert::{Paths, convert_files};
//! let summary = convert_files(&Paths {
//!     ct2: "model.bin".into(),
//!     mel_filters: "mel_filters.npz".into(),
//!     vocab: "gpt2.tiktoken".into(),
//!     config: None,
//!     out: "ggml-tiny.en.bin".into(),
//! })?;
//! assert_eq!(summary.hparams.model_type(), "tiny");
//! # Ok::<(), whisper_convert::Error>(())
//! ```

pub mod convert;
pub mod ct2;
pub mod error;
pub mod ggml;
pub mod npz;
pub mod tiktoken;

pub use convert::{ModelConfig, Paths, Summary, convert, convert_files, hparams, plan};
pub use error::{Error, Result};
pub use ggml::HParams;
