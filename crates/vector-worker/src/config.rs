//! The vector-worker's settings: every flag has an environment name
//! (`--help` lists all, with defaults).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ml_embedding::{ChunkConfig, PassLimits};
use ml_runtime::RuntimeArgs;

use crate::limits::TaskLimits;
use crate::openai::{ApiKey, ApiLimits};
use crate::service::BatchLimits;

/// Embeds text with a local BERT model and stores vectors in PostgreSQL + pgvector.
#[derive(Debug, Clone, Parser)]
#[command(name = "vector-worker", version, about)]
// Embed tasks mostly wait for the shared model thread, which batches across
// them: more tasks in flight make bigger forward passes.
#[command(mut_arg("concurrency", |arg| arg.default_value("8")))]
#[command(mut_arg("metrics_port", |arg| arg.default_value("9093")))]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Queue to consume.
    #[arg(long, env = "EMBED_QUEUE", default_value = "ml.embed")]
    pub queue: String,

    /// Folder holding the models (`$HOME/.cache/ml-workers/models` when unset).
    #[arg(long, env = "MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Name of the embedding model's folder inside MODELS_DIR.
    #[arg(long, env = "EMBEDDING_MODEL", default_value = "all-MiniLM-L6-v2")]
    pub embedding_model: String,

    /// Explicit path of a sentence-transformers BERT model folder; overrides
    /// MODELS_DIR/EMBEDDING_MODEL.
    #[arg(long, env = "EMBEDDING_MODEL_PATH")]
    pub embedding_model_path: Option<PathBuf>,

    /// Tokens per chunk at most (default and ceiling: the model's limit).
    #[arg(long, env = "EMBED_CHUNK_MAX_TOKENS")]
    pub chunk_max_tokens: Option<usize>,

    /// Window size in tokens of the `fixed` chunk strategy.
    #[arg(long, env = "EMBED_CHUNK_SIZE", default_value_t = 200)]
    pub chunk_size: usize,

    /// Tokens shared by consecutive `fixed` chunks.
    #[arg(long, env = "EMBED_CHUNK_OVERLAP", default_value_t = 40)]
    pub chunk_overlap: usize,

    /// Tokens in one forward pass (texts are packed, not padded). Larger
    /// passes get slower per text on CPU once their activations outgrow the
    /// caches (see benches/embedding_throughput.rs): 2048 gives 8
    /// full-length chunks per pass.
    #[arg(long, env = "EMBED_BATCH_MAX_TOKENS", default_value_t = PassLimits::default().max_tokens)]
    pub batch_max_tokens: usize,

    /// Texts in one forward pass, gathered across tasks.
    #[arg(long, env = "EMBED_BATCH_MAX_TEXTS", default_value_t = PassLimits::default().max_texts)]
    pub batch_max_texts: usize,

    /// Milliseconds the model waits for more tasks' texts before a pass.
    #[arg(long, env = "EMBED_BATCH_MAX_WAIT_MS", default_value_t = 2)]
    pub batch_max_wait_ms: u64,

    /// Inputs in one `POST /v1/embeddings` request.
    #[arg(long, env = "EMBED_API_MAX_INPUTS", default_value_t = 256)]
    pub api_max_inputs: usize,

    /// Bytes of one input of `POST /v1/embeddings`.
    #[arg(long, env = "EMBED_API_MAX_INPUT_BYTES", default_value_t = 32_768)]
    pub api_max_input_bytes: usize,

    /// Bytes of a whole `POST /v1/embeddings` request body.
    #[arg(long, env = "EMBED_API_MAX_BODY_BYTES", default_value_t = 2_097_152)]
    pub api_max_body_bytes: usize,

    /// Bearer key `POST /v1/embeddings` requires (`Authorization: Bearer
    /// <key>`); unset, the API is open to whoever reaches the port.
    #[arg(long, env = "EMBED_API_KEY")]
    pub api_key: Option<ApiKey>,

    /// Bytes of an embed task's `content.text`.
    #[arg(long, env = "EMBED_MAX_TEXT_BYTES", default_value_t = 1 << 20)]
    pub max_text_bytes: usize,

    /// Bytes of an embed task's `content.metadata` as JSON (stored with
    /// every chunk; timed segments included).
    #[arg(long, env = "EMBED_MAX_METADATA_BYTES", default_value_t = 256 << 10)]
    pub max_metadata_bytes: usize,

    /// Items of one `embed_batch` task.
    #[arg(long, env = "EMBED_MAX_BATCH_TASKS", default_value_t = 256)]
    pub max_batch_tasks: usize,
}

impl Config {
    /// Size limits of embed tasks.
    pub fn task_limits(&self) -> TaskLimits {
        TaskLimits {
            max_text_bytes: self.max_text_bytes,
            max_metadata_bytes: self.max_metadata_bytes,
            max_batch_tasks: self.max_batch_tasks,
        }
    }

    /// Limits of the embeddings API.
    pub fn api_limits(&self) -> ApiLimits {
        ApiLimits {
            max_inputs: self.api_max_inputs.max(1),
            max_input_bytes: self.api_max_input_bytes.max(1),
            max_body_bytes: self.api_max_body_bytes.max(1),
        }
    }

    /// Cross-task batching limits.
    pub fn batch_limits(&self) -> BatchLimits {
        BatchLimits {
            passes: PassLimits {
                max_tokens: self.batch_max_tokens.max(1),
                max_texts: self.batch_max_texts.max(1),
            },
            max_wait: Duration::from_millis(self.batch_max_wait_ms),
        }
    }

    /// How texts are chunked for a model that reads `model_max_tokens`
    /// tokens at most: the chunk settings, capped at that.
    pub fn chunking(&self, model_max_tokens: usize) -> ChunkConfig {
        ChunkConfig {
            max_tokens: self
                .chunk_max_tokens
                .unwrap_or(model_max_tokens)
                .min(model_max_tokens),
            fixed_size: self.chunk_size.min(model_max_tokens),
            overlap: self.chunk_overlap,
        }
    }

    /// Where the embedding model is loaded from.
    pub fn model_path(&self) -> PathBuf {
        if let Some(path) = &self.embedding_model_path {
            return path.clone();
        }
        let models_dir = ml_runtime::config::models_dir_or_default(self.models_dir.as_deref());
        models_dir.join(&self.embedding_model)
    }
}
