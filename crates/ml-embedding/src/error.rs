//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading the model, embedding, or
/// preparing text.
///
/// None of these are worth retrying: a missing or broken model stays broken,
/// and bad input stays bad. See [`EmbeddingError::is_transient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddingError {
    /// A model file or the model directory does not exist.
    #[error(
        "model not found: {path} does not exist; run `scripts/setup` to fetch the models, \
         or set MODELS_DIR (or the model's path override) to the directory that holds them"
    )]
    ModelMissing {
        /// The file or directory that was looked for.
        path: PathBuf,
    },

    /// A model file exists but could not be read.
    #[error("cannot read model file {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A configuration file of the model is malformed or asks for something
    /// this crate does not support.
    #[error("bad model configuration in {path}: {reason}")]
    BadConfig {
        /// The configuration file (or the model directory).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer failed while {context}: {source}")]
    Tokenizer {
        /// What was being done: loading, encoding a batch, …
        context: &'static str,
        /// The tokenizer's error.
        source: tokenizers::Error,
    },

    /// The weights could not be loaded into the model.
    #[error("cannot load model weights from {path}: {source}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// The tensor library's error.
        source: candle_core::Error,
    },

    /// The threads that run forward passes side by side could not start.
    #[error("cannot start the embedding threads: {0}")]
    Threads(#[source] rayon::ThreadPoolBuildError),

    /// The forward pass or pooling failed.
    #[error("model inference failed: {0}")]
    Inference(#[from] candle_core::Error),

    /// A chunking strategy name that is not one of the accepted ones.
    #[error(
        "unknown chunk strategy {0:?}; accepted: none, sentence, paragraph, fixed, fixed_size, transcript"
    )]
    UnknownChunkStrategy(String),

    /// A content type name that is not one of the accepted ones.
    #[error(
        "unknown content type {0:?}; accepted: caption, transcript, article, comment, tweet, summary, composite, reddit, video_combined, text"
    )]
    UnknownContentType(String),

    /// Chunk sizes that cannot work (zero sizes, overlap not below the window).
    #[error("invalid chunk configuration: {0}")]
    InvalidChunkConfig(String),
}

impl EmbeddingError {
    /// Whether retrying the same work later could succeed.
    ///
    /// Always `false`: model files, configurations and inputs do not fix
    /// themselves, so a failing task belongs in the dead-letter queue rather
    /// than back on the work queue.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ModelMissing { .. }
            | Self::Io { .. }
            | Self::BadConfig { .. }
            | Self::Tokenizer { .. }
            | Self::Weights { .. }
            | Self::Threads(_)
            | Self::Inference(_)
            | Self::UnknownChunkStrategy(_)
            | Self::UnknownContentType(_)
            | Self::InvalidChunkConfig(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_message_says_how_to_fix_it() {
        let err = EmbeddingError::ModelMissing {
            path: PathBuf::from("/models/all-MiniLM-L6-v2/model.safetensors"),
        };
        let message = err.to_string();
        assert!(message.contains("/models/all-MiniLM-L6-v2/model.safetensors"));
        assert!(message.contains("scripts/setup"));
        assert!(message.contains("MODELS_DIR"));
        assert!(!err.is_transient());
    }

    #[test]
    fn nothing_is_transient() {
        assert!(!EmbeddingError::UnknownChunkStrategy("x".into()).is_transient());
        assert!(!EmbeddingError::InvalidChunkConfig("x".into()).is_transient());
    }
}
