//! The one error type of this crate.

/// What went wrong loading or running the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// A model or tokenizer file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The GGUF file is malformed or lacks something the model needs.
    #[error("invalid GGUF model {path}: {reason}")]
    InvalidModel {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The GGUF declares an architecture this crate does not run.
    #[error("unsupported model architecture {architecture:?} in {path} (supported: llama, qwen2)")]
    UnsupportedArchitecture {
        /// The file.
        path: String,
        /// `general.architecture` as found.
        architecture: String,
    },
    /// The tokenizer could not be built or loaded.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template is not one this crate can render.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// The settings contradict the model (e.g. a context too small).
    #[error("configuration: {0}")]
    Config(String),
    /// The request cannot be served (empty prompt, no room in the context).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The model failed while running.
    #[error("inference: {0}")]
    Inference(#[from] candle_core::Error),
    /// The caller asked generation to stop.
    #[error("generation was stopped")]
    Stopped,
}

impl LlmError {
    /// Whether the failure is caused by the request rather than the model
    /// or the machine: retrying the same request cannot succeed either way,
    /// but only request errors are the caller's fault.
    pub fn is_request_error(&self) -> bool {
        matches!(self, Self::InvalidRequest(_))
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = LlmError> = std::result::Result<T, E>;

/// Turns any tokenizers error into [`LlmError::Tokenizer`].
pub(crate) fn tokenizer_error(context: &str, error: impl std::fmt::Display) -> LlmError {
    LlmError::Tokenizer(format!("{context}: {error}"))
}
