//! Loading a whisper.cpp model once per process.

use std::path::{Path, PathBuf};

use whisper_rs::{WhisperContext, WhisperContextParameters, WhisperError};

/// How the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscriberConfig {
    /// CPU threads one transcription uses.
    pub threads: usize,
    /// whisper.cpp's flash attention (off by default: slower on these CPUs).
    pub flash_attention: bool,
}

impl Default for TranscriberConfig {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            flash_attention: false,
        }
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No file at the configured path.
    #[error(
        "no whisper model at {0}: run scripts/fetch-models, or point WHISPER_MODEL_PATH at a whisper.cpp ggml file"
    )]
    Missing(PathBuf),
    /// whisper.cpp refused the file (not a ggml whisper model, truncated).
    #[error("whisper.cpp could not load {path}: {source}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What whisper.cpp said.
        source: WhisperError,
    },
}

/// A loaded model, shared by every concurrent transcription (`Send + Sync`).
pub struct Transcriber {
    pub(crate) context: WhisperContext,
    pub(crate) config: TranscriberConfig,
    name: String,
    size: String,
}

impl Transcriber {
    /// Loads the whisper.cpp ggml model at `path`.
    ///
    /// # Errors
    /// [`ModelError`] when the file is missing or not a whisper.cpp model.
    pub fn load(path: &Path, config: TranscriberConfig) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Missing(path.to_owned()));
        }
        // whisper.cpp's own log lines go to `tracing` (target whisper_rs).
        whisper_rs::install_logging_hooks();
        let mut parameters = WhisperContextParameters::default();
        parameters.flash_attn(config.flash_attention);
        let context = WhisperContext::new_with_params(path, parameters).map_err(|source| {
            ModelError::Load {
                path: path.to_owned(),
                source,
            }
        })?;
        let size = context
            .model_type_readable_str_lossy()
            .map(|s| s.into_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let name = model_name(path);
        tracing::info!(
            model = %name,
            size = %size,
            multilingual = context.is_multilingual(),
            threads = config.threads,
            "whisper model loaded"
        );
        Ok(Self {
            context,
            config: TranscriberConfig {
                threads: config.threads.max(1),
                ..config
            },
            name,
            size,
        })
    }

    /// The model's name, from its file name (`ggml-tiny.en.bin` → `tiny.en`).
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// whisper.cpp's size class of the model (`tiny`, `base`, …).
    pub fn model_size(&self) -> &str {
        &self.size
    }

    /// Whether the model knows languages other than English (and can detect
    /// the language).
    pub fn is_multilingual(&self) -> bool {
        self.context.is_multilingual()
    }
}

/// `…/ggml-tiny.en.bin` → `tiny.en`; other names keep their stem.
fn model_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file.strip_suffix(".bin").unwrap_or(&file);
    stem.strip_prefix("ggml-").unwrap_or(stem).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_name() {
        assert_eq!(model_name(Path::new("/m/ggml-tiny.en.bin")), "tiny.en");
        assert_eq!(
            model_name(Path::new("/m/whisper-base.gguf")),
            "whisper-base.gguf"
        );
    }

    #[test]
    fn a_missing_file_says_how_to_get_one() {
        let error = Transcriber::load(
            Path::new("/nonexistent/ggml.bin"),
            TranscriberConfig::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(error.contains("scripts/fetch-models"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_model_is_refused() {
        let dir = std::env::temp_dir().join(format!("ml-transcription-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("not-a-model.bin");
        std::fs::write(&path, b"definitely not ggml").unwrap_or_else(|e| panic!("{e}"));
        let result = Transcriber::load(&path, TranscriberConfig::default());
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(result, Err(ModelError::Load { .. })));
    }
}
