//! The whisper-worker's settings: every flag has an environment name
//! (`--help` lists all, with defaults).

use std::path::PathBuf;

use clap::Parser;
use ml_media::MediaArgs;
use ml_runtime::RuntimeArgs;
use ml_transcription::TranscriberConfig;

/// Transcribes audio and video with whisper.cpp into `ml_results`.
#[derive(Clone, Parser)]
#[command(name = "whisper-worker", version, about)]
// One transcription already uses every core through whisper.cpp's threads.
#[command(mut_arg("concurrency", |arg| arg.default_value("1")))]
// The contract's cap: longer media is refused, not transcribed for an hour.
#[command(mut_arg("media_max_duration_secs", |arg| arg.default_value("1800")))]
#[command(mut_arg("metrics_port", |arg| arg.default_value("9092")))]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    #[command(flatten)]
    pub media: MediaArgs,

    /// Queues to consume, comma-separated.
    #[arg(
        long,
        env = "TRANSCRIBE_QUEUES",
        value_delimiter = ',',
        default_value = "ml.transcribe,ml.transcribe_local"
    )]
    pub queues: Vec<String>,

    /// Folder holding the models (`$HOME/.cache/ml-workers/models` when unset).
    #[arg(long, env = "MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Whisper model name: loads MODELS_DIR/whisper-<name>/ggml-<name>.bin.
    #[arg(long, env = "WHISPER_MODEL", default_value = "tiny.en")]
    pub whisper_model: String,

    /// Explicit path of a whisper.cpp ggml model file (any official one
    /// works); overrides MODELS_DIR/WHISPER_MODEL.
    #[arg(long, env = "WHISPER_MODEL_PATH")]
    pub whisper_model_path: Option<PathBuf>,

    /// CPU threads per transcription (default: the cores divided by the
    /// concurrency).
    #[arg(long, env = "WHISPER_THREADS")]
    pub whisper_threads: Option<usize>,

    /// whisper.cpp flash attention (slower than the default on most CPUs).
    #[arg(long, env = "WHISPER_FLASH_ATTENTION", default_value_t = false)]
    pub whisper_flash_attention: bool,

    /// Audio quieter than this (RMS, dBFS) is recorded as skipped silence.
    #[arg(
        long,
        env = "WHISPER_SILENCE_THRESHOLD_DB",
        default_value_t = -40.0,
        allow_negative_numbers = true
    )]
    pub silence_threshold_db: f32,

    /// Longest initial prompt (`options.prompt`) accepted, in bytes; whisper
    /// reads at most half its text context of it anyway.
    #[arg(long, env = "WHISPER_MAX_PROMPT_BYTES", default_value_t = 4096)]
    pub max_prompt_bytes: usize,
}

impl Config {
    /// Where the whisper model is loaded from.
    pub fn model_path(&self) -> PathBuf {
        if let Some(path) = &self.whisper_model_path {
            return path.clone();
        }
        let models_dir = ml_runtime::config::models_dir_or_default(self.models_dir.as_deref());
        let name = &self.whisper_model;
        models_dir
            .join(format!("whisper-{name}"))
            .join(format!("ggml-{name}.bin"))
    }

    /// How the model runs.
    pub fn transcriber(&self) -> TranscriberConfig {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        TranscriberConfig {
            threads: self
                .whisper_threads
                .unwrap_or(cores / self.runtime.concurrency.max(1))
                .max(1),
            flash_attention: self.whisper_flash_attention,
        }
    }
}

impl std::fmt::Debug for Config {
    // MediaArgs redacts its secrets in Debug; the rest holds none.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("runtime", &self.runtime)
            .field("media", &self.media)
            .field("queues", &self.queues)
            .field("model_path", &self.model_path())
            .field("transcriber", &self.transcriber())
            .field("silence_threshold_db", &self.silence_threshold_db)
            .field("max_prompt_bytes", &self.max_prompt_bytes)
            .finish()
    }
}
