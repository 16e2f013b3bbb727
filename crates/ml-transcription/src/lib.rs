//! Speech to text with whisper.cpp through whisper-rs.
//!
//! One [`Transcriber`] holds the model (a whisper.cpp ggml file) once per
//! process; every call to [`Transcriber::transcribe`] creates its own
//! decoding state, so concurrent transcriptions share the weights and
//! nothing else. Calls block: run them on a blocking thread.
//!
//! | module | concern |
//! |---|---|
//! | [`model`] | loading the model, its name and language abilities |
//! | [`transcribe`] | one transcription: options, padding, segments, progress, cancellation |
//! | [`language`] | ISO language codes the model knows |

pub mod language;
pub mod model;
pub mod transcribe;

pub use model::{ModelError, Transcriber, TranscriberConfig};
pub use transcribe::{Progress, Segment, TranscribeError, TranscribeOptions, Transcript};

/// Sample rate whisper.cpp expects (mono f32).
pub const SAMPLE_RATE: u32 = 16_000;
