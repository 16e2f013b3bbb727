//! The converter's errors: one variant per way an input can be wrong, each
//! saying what was found and what was expected.

use std::io;
use std::path::PathBuf;

/// Result with the converter's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// Reading from an already open input failed (e.g. it ended early).
    #[error("{what}: {source}")]
    Read {
        /// What was being read.
        what: String,
        /// The underlying error.
        source: io::Error,
    },

    /// The CTranslate2 binary version is not the one this tool reads.
    #[error(
        "CTranslate2 model: binary version {found}, expected {expected} \
         (is this a CTranslate2 `model.bin`?)"
    )]
    Ct2Version {
        /// The version in the file.
        found: u32,
        /// The version supported.
        expected: u32,
    },

    /// The CTranslate2 model is not a Whisper model.
    #[error("CTranslate2 model: spec `{found}`, expected `WhisperSpec` (not a Whisper model)")]
    Ct2Spec {
        /// The spec name in the file.
        found: String,
    },

    /// The CTranslate2 file is structurally invalid.
    #[error("CTranslate2 model: {0}")]
    Ct2Format(String),

    /// A tensor the conversion needs is not in the CTranslate2 model.
    #[error("CTranslate2 model: missing tensor `{0}`")]
    MissingTensor(String),

    /// A tensor's element type cannot be converted.
    #[error(
        "CTranslate2 model: tensor `{name}` is {dtype}; only float16, bfloat16 and float32 \
         weights convert (a quantized model, e.g. int8, cannot: use the float16 model)"
    )]
    UnsupportedDtype {
        /// The tensor.
        name: String,
        /// Its element type.
        dtype: String,
    },

    /// A tensor's shape is not the one the hyper-parameters imply.
    #[error("CTranslate2 model: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    BadShape {
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<usize>,
        /// The shape expected.
        expected: Vec<usize>,
    },

    /// A key projection has a non-zero bias, which whisper.cpp cannot hold.
    #[error(
        "CTranslate2 model: the key bias in `{name}` is not zero \
         (Whisper has no key bias; whisper.cpp cannot represent this model)"
    )]
    NonZeroKeyBias {
        /// The fused bias tensor.
        name: String,
    },

    /// The model's hyper-parameters are inconsistent or unsupported.
    #[error("model: {0}")]
    Model(String),

    /// The mel filter file (`.npz` / `.npy`) is invalid.
    #[error("mel filters: {0}")]
    MelFilters(String),

    /// The vocabulary (`.tiktoken`) is invalid or does not fit the model.
    #[error("vocabulary: {0}")]
    Vocab(String),

    /// `config.json` is invalid or contradicts the weights.
    #[error("config.json: {0}")]
    Config(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Read`] while reading `what`.
    pub fn read(what: impl Into<String>, source: io::Error) -> Self {
        Self::Read {
            what: what.into(),
            source,
        }
    }
}
