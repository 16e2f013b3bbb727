//! Sentence embeddings with a local BERT model, and the text preparation
//! rules of the vector worker.
//!
//! A text goes through three steps before it is stored as vectors:
//!
//! | step | module | public items |
//! |---|---|---|
//! | clean it for its content type, or decide to skip it | `clean`, `content_type` | [`clean()`], [`skip_reason`], [`ContentType`] |
//! | cut it into chunks that fit the model's window | `chunk` | [`chunk()`], [`Chunk`], [`ChunkStrategy`], [`ChunkConfig`], [`Segment`], [`TokenCounter`] |
//! | embed each chunk | `model` | [`Embedder`], [`EmbedderConfig`] |
//!
//! Many texts at once are embedded in passes that `passes` plans:
//! [`plan_passes`] under [`PassLimits`].
//!
//! Beside them, `hash` gives [`content_hash`] (the SHA-256 stored with each
//! vector) and `error` the crate's one error type, [`EmbeddingError`].
//!
//! Everything here is synchronous; the model is CPU-bound and belongs on a
//! blocking thread.

mod chunk;
mod clean;
mod content_type;
mod error;
mod hash;
mod model;
mod passes;

pub use chunk::{
    Chunk, ChunkConfig, ChunkStrategy, Segment, TokenCounter, WhitespaceCounter, chunk,
    transcript_text,
};
pub use clean::{clean, skip_reason};
pub use content_type::ContentType;
pub use error::EmbeddingError;
pub use hash::content_hash;
pub use model::{Embedder, EmbedderConfig};
pub use passes::{PassLimits, plan_passes};
