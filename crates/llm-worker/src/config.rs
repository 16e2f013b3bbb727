//! The llm-worker's settings: every flag has an environment name
//! (`--help` lists all, with defaults).

use std::path::PathBuf;

use clap::Parser;
use ml_llm::{LlmConfig, SamplingParams};
use ml_runtime::RuntimeArgs;

use crate::preflight::InputLimits;

/// Summarises content with a local quantized GGUF LLM (candle) and writes
/// `summarize_llm` rows to PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(name = "llm-worker", version, about)]
#[command(mut_arg("metrics_port", |arg| arg.default_value("9091")))]
pub struct Config {
    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Queue of `llm_service.tasks.summarize_content`.
    #[arg(long, env = "SUMMARIZE_QUEUE", default_value = "ml.summarize")]
    pub queue: String,

    /// Queue of `llm_service.tasks.summarize_content_local` (the gateway's
    /// `backend: local` route; these workers are the local backend).
    #[arg(
        long,
        env = "SUMMARIZE_LOCAL_QUEUE",
        default_value = "ml.summarize_local"
    )]
    pub local_queue: String,

    /// Queue of `summarize_video_combined`.
    #[arg(
        long,
        env = "SUMMARIZE_VIDEO_COMBINED_QUEUE",
        default_value = "ml.summarize_video_combined"
    )]
    pub video_combined_queue: String,

    /// Folder holding the models (`$HOME/.cache/ml-workers/models` when unset).
    #[arg(long, env = "MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Model name: a folder inside MODELS_DIR holding one `.gguf` file
    /// (`smollm2-135m-instruct`, or `qwen2.5-coder-0.5b-instruct` for the larger one).
    #[arg(long, env = "LLM_MODEL", default_value = "smollm2-135m-instruct")]
    pub model: String,

    /// Explicit path of a GGUF file (architecture `llama` or `qwen2`);
    /// overrides MODELS_DIR/LLM_MODEL.
    #[arg(long, env = "LLM_MODEL_PATH")]
    pub model_path: Option<PathBuf>,

    /// A `tokenizer.json` to use instead of the tokenizer in the GGUF metadata.
    #[arg(long, env = "LLM_TOKENIZER_PATH")]
    pub tokenizer_path: Option<PathBuf>,

    /// Context window in tokens (input prompt + summary); capped at the
    /// model's limit. Longer inputs are cut at a sentence boundary.
    #[arg(long, env = "LLM_CONTEXT_TOKENS", default_value_t = 2048)]
    pub context_tokens: usize,

    /// Prompt tokens read per forward pass.
    #[arg(long, env = "LLM_PROMPT_CHUNK_TOKENS", default_value_t = 256)]
    pub prompt_chunk_tokens: usize,

    /// Summary tokens when a task gives no maxLength/max_length.
    #[arg(long, env = "LLM_DEFAULT_MAX_TOKENS", default_value_t = 500)]
    pub default_max_tokens: usize,

    /// Sampling temperature; 0 is greedy decoding (deterministic).
    #[arg(long, env = "LLM_TEMPERATURE", default_value_t = 0.0)]
    pub temperature: f64,

    /// Nucleus sampling threshold (1.0 disables it); used when temperature > 0.
    #[arg(long, env = "LLM_TOP_P", default_value_t = 0.9)]
    pub top_p: f64,

    /// Seed of the sampler: the same seed and input give the same summary.
    #[arg(long, env = "LLM_SEED", default_value_t = 299_792_458)]
    pub seed: u64,

    /// Penalty on tokens repeated within the last LLM_REPEAT_LAST_N generated tokens (1.0 = off).
    #[arg(long, env = "LLM_REPEAT_PENALTY", default_value_t = 1.1)]
    pub repeat_penalty: f32,

    /// How many recent tokens the repetition penalty looks at.
    #[arg(long, env = "LLM_REPEAT_LAST_N", default_value_t = 64)]
    pub repeat_last_n: usize,

    /// Generations running at once on the shared model (each with its own KV cache).
    #[arg(long, env = "LLM_PARALLEL_GENERATIONS", default_value_t = 2)]
    pub parallel_generations: usize,

    /// Convert Q4_1/Q5_0/Q5_1 tensors to Q8_0 at load (candle has no SIMD kernels for them).
    #[arg(long, env = "LLM_REQUANTIZE", default_value_t = true, action = clap::ArgAction::Set)]
    pub requantize: bool,

    /// Run the model on the first CUDA GPU (needs a build with the `cuda` feature).
    #[arg(long, env = "LLM_USE_GPU", default_value_t = false)]
    pub use_gpu: bool,

    /// Inputs with more words than this are refused (longer ones are truncated
    /// to the context anyway; this guards against junk).
    #[arg(long, env = "LLM_MAX_INPUT_WORDS", default_value_t = 100_000)]
    pub max_input_words: usize,

    /// Inputs of more bytes than this are refused before they are read.
    #[arg(long, env = "LLM_MAX_INPUT_BYTES", default_value_t = 1 << 20)]
    pub max_input_bytes: usize,
}

impl Config {
    /// The most input a summary is made from.
    pub fn input_limits(&self) -> InputLimits {
        InputLimits {
            max_words: self.max_input_words,
            max_bytes: self.max_input_bytes,
        }
    }

    /// The GGUF file to load: LLM_MODEL_PATH, else the one `.gguf` file in
    /// MODELS_DIR/LLM_MODEL.
    ///
    /// # Errors
    /// When the model folder has no `.gguf` file or several.
    pub fn model_file(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.model_path {
            return Ok(path.clone());
        }
        let models_dir = ml_runtime::config::models_dir_or_default(self.models_dir.as_deref());
        let folder = models_dir.join(&self.model);
        let entries = std::fs::read_dir(&folder).map_err(|e| {
            anyhow::anyhow!(
                "model folder {} cannot be read ({e}); run scripts/fetch-models or set LLM_MODEL_PATH",
                folder.display()
            )
        })?;
        let mut ggufs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "gguf"))
            .collect();
        ggufs.sort();
        match ggufs.as_slice() {
            [one] => Ok(one.clone()),
            [] => anyhow::bail!("no .gguf file in {}", folder.display()),
            many => anyhow::bail!(
                "several .gguf files in {} ({many:?}); set LLM_MODEL_PATH",
                folder.display()
            ),
        }
    }

    /// How the model is loaded.
    ///
    /// # Errors
    /// When the model file cannot be found.
    pub fn llm_config(&self) -> anyhow::Result<LlmConfig> {
        let mut config = LlmConfig::new(self.model_file()?);
        config.tokenizer_path = self.tokenizer_path.clone();
        config.requantize = self.requantize;
        config.context_tokens = Some(self.context_tokens);
        config.prompt_chunk_tokens = self.prompt_chunk_tokens.max(1);
        config.use_gpu = self.use_gpu;
        Ok(config)
    }

    /// Decoding settings of every summary.
    pub fn sampling(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature.max(0.0),
            top_p: self.top_p,
            seed: self.seed,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
        }
    }
}
